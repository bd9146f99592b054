"""Helpers the integration tests share: read a whole topic back, make a topic of one's own."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaError
from confluent_kafka.admin import NewTopic

from cluster.clients import admin_client


def read_topic(bootstrap: str, topic: str, expected: int, timeout_s: float = 60) -> list:
    """Every message of a topic from the beginning, stopping at `expected` messages or the timeout."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                if message.error() is None:
                    messages.append(message)
                elif message.error().code() != KafkaError._PARTITION_EOF:
                    raise AssertionError(f"consumer error: {message.error()}")
    finally:
        consumer.close()
    return messages


def create_topic(bootstrap: str, partitions: int = 3, prefix: str = "test", name: str | None = None) -> str:
    admin = admin_client(bootstrap)
    name = name or f"{prefix}_{uuid.uuid4().hex[:10]}"
    # Size-based retention, as the ride topics: tests write 2020 event times as Kafka timestamps.
    config = {"retention.ms": "-1", "retention.bytes": "1073741824"}
    admin.create_topics([NewTopic(name, num_partitions=partitions, config=config)])[name].result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        topic = admin.list_topics(topic=name, timeout=10).topics.get(name)
        if topic is not None and topic.error is None and all(p.leader >= 0 for p in topic.partitions.values()):
            break
        time.sleep(0.1)
    return name


def delete_topic(bootstrap: str, name: str) -> None:
    admin = admin_client(bootstrap)  # held: a client collected mid-call cancels its futures
    admin.delete_topics([name])[name].result(30)
