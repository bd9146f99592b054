"""The local stack for real: Kafka, the Confluent-compatible registry and the Spark cluster answer and work."""

from __future__ import annotations

import subprocess
import uuid

import pytest
import requests
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from cluster.clients import admin_client
from cluster.spark_master import master_state
from cluster.topics import (
    TopicError,
    TopicSpec,
    apply_topics,
    describe_topics,
    load_topic_specs,
)
from stack import lifecycle
from stack.submit import submit_command, submit_environment
from tests.kafka_helpers import read_topic
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.stack


def test_every_service_reports_healthy(local_stack):
    rows = lifecycle.status(local_stack)
    assert [row.name for row in rows] == [
        "kafka-1",
        "schema-registry",
        "postgres",
        "spark-master",
        "spark-worker-1",
        "job-server",
        "console",
        "postgres-exporter",
        "prometheus",
    ]
    assert all(row.health == "healthy" for row in rows), rows
    assert all(row.pid for row in rows)


def test_message_produced_with_confluent_kafka_is_consumed_back(local_stack, fresh_topic):
    producer = Producer({"bootstrap.servers": local_stack.kafka.bootstrap_servers, "acks": "all"})
    sent = {f"ride-{i}": f'{{"ride": {i}}}' for i in range(20)}
    for key, value in sent.items():
        producer.produce(fresh_topic, key=key, value=value)
    assert producer.flush(30) == 0

    received = read_topic(local_stack.kafka.bootstrap_servers, fresh_topic, expected=len(sent))
    assert {m.key().decode(): m.value().decode() for m in received} == sent
    assert {m.partition() for m in received} <= {0, 1, 2}


def test_schema_is_registered_and_fetched_through_the_confluent_api(local_stack):
    client = SchemaRegistryClient({"url": local_stack.registry.url})
    subject = f"test_{uuid.uuid4().hex[:8]}-value"
    schema_v1 = '{"type":"record","name":"Ride","fields":[{"name":"fare","type":"double"}]}'
    schema_id = client.register_schema(subject, Schema(schema_v1, "AVRO"))

    fetched = client.get_schema(schema_id)
    assert fetched.schema_type == "AVRO"
    assert '"fare"' in (fetched.schema_str or "")
    assert subject in client.get_subjects()
    assert client.get_latest_version(subject).schema_id == schema_id

    context = SerializationContext(subject.removesuffix("-value"), MessageField.VALUE)
    payload = AvroSerializer(client, schema_v1, conf={"auto.register.schemas": False, "use.latest.version": True})(
        {"fare": 12.5}, context
    )
    assert payload[0] == 0 and int.from_bytes(payload[1:5], "big") == schema_id  # Confluent wire format
    assert AvroDeserializer(client)(payload, context) == {"fare": 12.5}


def test_registry_default_compatibility_is_backward_and_refuses_a_breaking_change(local_stack):
    client = SchemaRegistryClient({"url": local_stack.registry.url})
    assert client.get_compatibility() == "BACKWARD"
    subject = f"test_{uuid.uuid4().hex[:8]}-value"
    client.register_schema(subject, Schema('{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}', "AVRO"))
    breaking = Schema('{"type":"record","name":"R","fields":[{"name":"b","type":"int"}]}', "AVRO")
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(subject, breaking)
    assert refused.value.http_status_code == 409


def test_pyspark_job_submitted_to_the_standalone_master_reads_the_topic(local_stack, fresh_topic):
    producer = Producer({"bootstrap.servers": local_stack.kafka.bootstrap_servers})
    for i in range(7):
        producer.produce(fresh_topic, value=f"v{i}")
    assert producer.flush(30) == 0

    completed_before = len(master_state(local_stack).get("completedapps", []))
    result = subprocess.run(
        submit_command(
            local_stack,
            str(REPO_ROOT / "tests" / "apps" / "count_topic.py"),
            [local_stack.kafka.bootstrap_servers, fresh_topic],
        ),
        env=submit_environment(local_stack),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RESULT count=7 values=v0,v1,v2,v3,v4,v5,v6" in result.stdout
    assert f"RESULT master={local_stack.spark.master_url}" in result.stdout
    # The application ran on the cluster's executors, not in local mode: the master lists it as completed.
    completed = master_state(local_stack).get("completedapps", [])
    assert len(completed) == completed_before + 1
    assert completed[-1]["name"] == "stack-test-count-topic"


def test_declared_topics_exist_with_their_configs(local_stack):
    rows = {row["topic"]: row for row in describe_topics(admin_client(local_stack.kafka.bootstrap_servers))}
    for spec in load_topic_specs():
        assert rows[spec.name]["partitions"] == spec.partitions
        assert rows[spec.name]["replication_factor"] == local_stack.kafka.replication_factor
        for key, value in spec.config.items():
            assert rows[spec.name]["config"][key] == value, (spec.name, key)


def test_applying_topics_is_idempotent_grows_partitions_and_refuses_to_shrink(local_stack):
    admin = admin_client(local_stack.kafka.bootstrap_servers)
    name = f"test_apply_{uuid.uuid4().hex[:8]}"
    spec = TopicSpec(name=name, partitions=2, config={"retention.ms": "3600000", "cleanup.policy": "delete"})
    try:
        assert apply_topics(admin, [spec]).created == [name]
        again = apply_topics(admin, [spec])
        assert not again.changed and again.unchanged == [name]

        grown = apply_topics(admin, [spec.model_copy(update={"partitions": 4})])
        assert grown.grown == [name]
        reconfigured = apply_topics(
            admin, [spec.model_copy(update={"partitions": 4, "config": {"retention.ms": "7200000"}})]
        )
        assert reconfigured.reconfigured == [f"{name} (retention.ms=7200000)"]

        with pytest.raises(TopicError, match=rf"{name}: declared with 2 partitions but has 4"):
            apply_topics(admin, [spec])
    finally:
        admin.delete_topics([name])[name].result(30)


def test_second_up_starts_nothing_and_keeps_the_same_processes(local_stack):
    before = {row.name: row.pid for row in lifecycle.status(local_stack)}
    lines = []
    assert lifecycle.up(local_stack, say=lines.append) == []
    assert any("already running" in line for line in lines)
    assert {row.name: row.pid for row in lifecycle.status(local_stack)} == before


def test_master_web_ui_shows_the_alive_worker(local_stack):
    response = requests.get(f"http://127.0.0.1:{local_stack.spark.master_ui_port}/json/", timeout=5)
    alive = [w for w in response.json()["workers"] if w["state"] == "ALIVE"]
    assert len(alive) == local_stack.spark.workers
    assert alive[0]["cores"] == local_stack.spark.worker_cores
