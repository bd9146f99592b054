"""A topic's contents as they are now: every message up to each partition's end offset at the time of the call,
or the messages at given offsets.

Used by the benchmarks and the tests to compare what a job wrote with what it should have written, and by the
dead-letter replay to find a dead letter's original record.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from pipeline_config.credentials import client_auth


def _reader(bootstrap: str, auth: dict[str, str] | None) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"snapshot-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "log_level": 0,
            **(client_auth() if auth is None else auth),
        }
    )


def read_all(bootstrap: str, topic: str, timeout_s: float = 60, auth: dict[str, str] | None = None) -> list:
    """Every message in the topic now: reads each partition up to its end offset at the time of the call (as the
    caller's login, or `auth`)."""
    consumer = _reader(bootstrap, auth)
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


def end_offsets(
    bootstrap: str, topic: str, timeout_s: float = 30, auth: dict[str, str] | None = None
) -> dict[int, int]:
    """Each partition's end offset now (the offset its next message will get); none for a topic that is not there."""
    consumer = _reader(bootstrap, auth)
    try:
        found = consumer.list_topics(topic, timeout=10).topics.get(topic)
        partitions = found.partitions if found is not None and found.error is None else {}
        return {p: _watermarks(consumer, TopicPartition(topic, p), timeout_s)[1] for p in partitions}
    finally:
        consumer.close()


Place = tuple[str, int, int]  # topic, partition, offset


def read_at(
    bootstrap: str, places: set[Place], timeout_s: float = 60, auth: dict[str, str] | None = None
) -> dict[Place, Message]:
    """The messages at these offsets that are still there (retention may have deleted some): each partition read
    from the first offset asked to the last, or to its end."""
    wanted: dict[tuple[str, int], set[int]] = {}
    for topic, partition, offset in places:
        wanted.setdefault((topic, partition), set()).add(offset)
    if not wanted:
        return {}
    consumer = _reader(bootstrap, auth)
    found: dict[Place, Message] = {}
    try:
        last = {}
        for (topic, partition), offsets in wanted.items():
            _, high = _watermarks(consumer, TopicPartition(topic, partition), timeout_s)
            last[(topic, partition)] = min(max(offsets), high - 1)
        reading = {place for place, end in last.items() if end >= min(wanted[place])}
        consumer.assign(
            [TopicPartition(topic, partition, min(wanted[(topic, partition)])) for topic, partition in reading]
        )
        deadline = time.monotonic() + timeout_s
        while reading and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                name, number, at = message.topic(), message.partition(), message.offset()
                if message.error() is not None or name is None or number is None or at is None:
                    continue
                if at in wanted[(name, number)]:
                    found[(name, number, at)] = message
                if at >= last[(name, number)]:
                    reading.discard((name, number))
        return found
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
