"""The console consumer loses no bad record: a dead letter that Kafka does not acknowledge stops the run with
exit status 1 and the bad message's offset is not committed, so the same group starts again at it; a dead-letter
topic that does not exist is refused before anything is read."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from cluster.clients import admin_client
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.stack


def _consume(topic: str, group: str, dead_letter_topic: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "producers.consume",
            topic,
            "--group",
            group,
            "--output",
            "jsonl",
            "--idle-timeout",
            "4",
            "--dead-letter-topic",
            dead_letter_topic,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _set_max_message_bytes(bootstrap: str, topic: str, value: int) -> None:
    admin = admin_client(bootstrap)  # held until the result: a client collected mid-call cancels its futures
    entry = ConfigEntry("max.message.bytes", str(value), incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    admin.incremental_alter_configs([resource])[resource].result(30)


def _committed(bootstrap: str, group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        (partition,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return partition.offset
    finally:
        consumer.close()


def test_a_dead_letter_that_kafka_refuses_stops_the_consumer_before_its_offset_is_committed(local_stack, topic_factory):
    bootstrap = local_stack.kafka.bootstrap_servers
    topic, dead = (
        topic_factory(partitions=1, prefix="dlq_refused_in"),
        topic_factory(partitions=1, prefix="dlq_refused"),
    )
    # The dead-letter topic takes no message larger than 200 bytes: every dead letter is refused by the broker.
    _set_max_message_bytes(bootstrap, dead, 200)
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in (b'{"n": 0}', b'{"n": 1}', b'{"not json', b'{"n": 3}'):
        producer.produce(topic, value)
    assert producer.flush(30) == 0

    result = _consume(topic, "dlq-refused", dead)
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"the dead letter of {topic}/0/2 was refused by {dead}" in result.stderr
    assert [json.loads(line)["offset"] for line in result.stdout.splitlines()] == [0, 1]  # those before the bad one
    assert _committed(bootstrap, "dlq-refused", topic) == 2  # the bad message will be read again

    # With a dead-letter topic that takes it, the same group resumes at the bad message and accounts for it.
    _set_max_message_bytes(bootstrap, dead, 1048588)
    again = _consume(topic, "dlq-refused", dead)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [json.loads(line)["offset"] for line in again.stdout.splitlines()] == [3]
    assert "1 undecodable, sent to" in again.stderr
    assert _committed(bootstrap, "dlq-refused", topic) == 4


def test_a_dead_letter_topic_that_does_not_exist_is_refused_before_anything_is_read(local_stack, fresh_topic):
    result = _consume(fresh_topic, "dlq-missing", "no_such_dead_letter_topic")
    assert result.returncode == 2
    assert "the dead-letter topic no_such_dead_letter_topic" in result.stderr and "does not exist" in result.stderr
    assert _committed(local_stack.kafka.bootstrap_servers, "dlq-missing", fresh_topic) < 0  # nothing committed
