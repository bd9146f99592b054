"""Taking the stack down and up again: data survives, nothing is left behind; the three-broker cluster.

These tests stop and start services themselves, so they run after every other test (see conftest.py).
"""

from __future__ import annotations

import uuid

import psutil
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import ConfigResource
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from cluster.clients import admin_client
from cluster.topics import describe_topics
from results.database import connect
from stack import lifecycle
from stack.processes import listening_pid
from stack.services import build_services
from tests.jobs.results_tables import use_stack_logins

pytestmark = [pytest.mark.stack, pytest.mark.stack_lifecycle]


def _service_processes(settings) -> list[psutil.Process]:
    processes = []
    for service in build_services(settings):
        proc = service.pid_file.alive()
        if proc is not None:
            processes += [proc, *proc.children(recursive=True)]
    return processes


def _all_ports(settings) -> list[int]:
    return [port for service in build_services(settings) for port in service.ports]


def test_down_leaves_no_port_or_process_and_schemas_survive_the_restart(local_stack):
    use_stack_logins(local_stack)
    kept = f"kept_{uuid.uuid4().hex[:8]}"
    with connect(local_stack.postgres.url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {kept}")
        connection.execute(f"CREATE TABLE {kept}.t AS SELECT 42 AS answer")
    client = SchemaRegistryClient({"url": local_stack.registry.url})
    subject = f"test_restart_{uuid.uuid4().hex[:8]}-value"
    schema_id = client.register_schema(
        subject, Schema('{"type":"record","name":"Kept","fields":[{"name":"x","type":"long"}]}', "AVRO")
    )
    processes = _service_processes(local_stack)
    assert len(processes) >= 4

    lifecycle.down(local_stack, say=lambda line: None)

    assert not [p.pid for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert {port: listening_pid(port) for port in _all_ports(local_stack)} == dict.fromkeys(_all_ports(local_stack))
    assert not list(local_stack.run_dir.glob("*.pid"))

    lifecycle.up(local_stack, say=lambda line: None)
    fresh_client = SchemaRegistryClient({"url": local_stack.registry.url})
    assert subject in fresh_client.get_subjects()
    assert fresh_client.get_latest_version(subject).schema_id == schema_id
    # and the results database kept its tables
    with connect(local_stack.postgres.url, autocommit=True) as connection:
        assert connection.execute(f"SELECT answer FROM {kept}.t").fetchall() == [(42,)]
        connection.execute(f"DROP SCHEMA {kept} CASCADE")


def test_three_broker_cluster_replicates_topics_three_ways_with_min_insync_two(three_broker_cluster):
    cluster = three_broker_cluster
    admin = admin_client(cluster.kafka.bootstrap_servers)
    assert sorted(admin.list_topics(timeout=10).brokers) == [1, 2, 3]

    rows = {row["topic"]: row for row in describe_topics(admin)}
    assert rows["rides_green"]["replication_factor"] == 3
    topic_config = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "rides_green")])
    entries = next(iter(topic_config.values())).result(30)
    assert entries["min.insync.replicas"].value == "2"

    producer = Producer({"bootstrap.servers": cluster.kafka.bootstrap_servers, "acks": "all"})
    producer.produce("rides_green", key="k", value="v")
    assert producer.flush(30) == 0
