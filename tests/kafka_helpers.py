"""Helpers the integration tests share: read a whole topic back, make a topic of one's own."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaError
from confluent_kafka.admin import NewTopic

from stack.services import quiet_kafka_admin


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


def create_topic(bootstrap: str, partitions: int = 3, prefix: str = "test") -> str:
    admin = quiet_kafka_admin(bootstrap)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
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
    admin = quiet_kafka_admin(bootstrap)  # held: a client collected mid-call cancels its futures
    admin.delete_topics([name])[name].result(30)


def read_all(bootstrap: str, topic: str, timeout_s: float = 60) -> list:
    """Every message in the topic now: reads each partition up to its end offset at the time of the call."""
    from confluent_kafka import TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-all-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {}
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high > low:
                ends[partition] = high
        # OFFSET_BEGINNING (-2): from the first offset retention kept
        consumer.assign([TopicPartition(topic, p, -2) for p in partitions])
        messages, done = [], set()
        deadline = time.monotonic() + timeout_s
        while len(done) < len(ends) and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                if message.error() is not None:
                    continue
                messages.append(message)
                if message.offset() + 1 >= ends.get(message.partition(), 0):
                    done.add(message.partition())
        assert len(done) == len(ends), f"read {len(messages)} messages of {topic} but not to the end in {timeout_s}s"
        return messages
    finally:
        consumer.close()
