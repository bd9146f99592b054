"""A topic's contents as they are now: every message up to each partition's end offset at the time of the call.

Used by the benchmarks and the tests to compare what a job wrote with what it should have written.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from pipeline_config.credentials import client_auth


def read_all(bootstrap: str, topic: str, timeout_s: float = 60, auth: dict[str, str] | None = None) -> list:
    """Every message in the topic now: reads each partition up to its end offset at the time of the call (as the
    caller's login, or `auth`)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"snapshot-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            **(client_auth() if auth is None else auth),
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {}
        for partition in partitions:
            low, high = _watermarks(consumer, TopicPartition(topic, partition), timeout_s)
            if high > low:
                ends[partition] = high
        # OFFSET_BEGINNING (-2): from the first offset retention kept
        consumer.assign([TopicPartition(topic, p, -2) for p in partitions])
        messages: list[Message] = []
        done: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while len(done) < len(ends) and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                if message.error() is not None:
                    continue
                messages.append(message)
                partition, offset = message.partition(), message.offset()
                if partition is not None and offset is not None and offset + 1 >= ends.get(partition, 0):
                    done.add(partition)
        if len(done) < len(ends):
            raise TimeoutError(f"read {len(messages)} messages of {topic} but not to its end in {timeout_s:g} s")
        return messages
    finally:
        consumer.close()


# What a partition of a topic created a moment ago answers until its leader is elected and known.
NO_LEADER_YET = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
}


def _watermarks(consumer: Consumer, partition: TopicPartition, timeout_s: float) -> tuple[int, int]:
    """The partition's low and high offsets, asked again until the timeout while the partition has no leader yet."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            low, high = consumer.get_watermark_offsets(partition, timeout=10)
            return low, high
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() not in NO_LEADER_YET or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
