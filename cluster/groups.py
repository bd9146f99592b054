"""Consumer groups and their lag: committed offset against the end of each partition, in messages and in seconds
(the age of the oldest record the group has not processed)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from pipeline_config.credentials import client_auth

TIMEOUT_S = 30


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int | None  # None: the group has no committed offset there
    end: int
    behind_s: float | None = None  # now minus the timestamp of the first record not processed; 0 when caught up

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


def group_lags(
    admin: AdminClient, bootstrap: str, auth: dict | None = None, in_time: bool = True
) -> list[PartitionLag]:
    """Every group's committed offset and lag per partition; `in_time` also reads the timestamps that say how far
    behind in time (two reads per lagging partition)."""
    groups = admin.list_consumer_groups().result(timeout=TIMEOUT_S)
    group_ids = sorted(g.group_id for g in groups.valid)
    if not group_ids:
        return []
    watermarks = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "stack-lag-probe",
            "log_level": 0,
            **(client_auth() if auth is None else auth),
        }
    )
    rows = []
    try:
        for group_id in group_ids:
            futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group_id)])
            offsets = futures[group_id].result(timeout=TIMEOUT_S)
            for tp in offsets.topic_partitions:
                _, high = watermarks.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=TIMEOUT_S)
                committed = tp.offset if tp.offset >= 0 else None
                rows.append(PartitionLag(group_id, tp.topic, tp.partition, committed, high))
        if in_time:
            rows = _with_seconds_behind(watermarks, rows)
    finally:
        watermarks.close()
    return sorted(rows, key=lambda r: (r.group, r.topic, r.partition))


def _with_seconds_behind(probe: Consumer, rows: list[PartitionLag]) -> list[PartitionLag]:
    """Each row with how far behind in time its group is: the timestamp of the partition's last record minus that of
    the first record the group has not processed (a record deleted by retention since: the first one left). With
    event-time timestamps (the rides' pickups) that is the event time still to process; with the time records
    were written, about how long ago the oldest unprocessed one arrived. None when a record did not arrive in time."""
    lagging = [row for row in rows if row.committed is not None and row.lag > 0]
    first = _timestamps(probe, {(row.topic, row.partition): row.committed or 0 for row in lagging})
    last = _timestamps(probe, {(row.topic, row.partition): row.end - 1 for row in lagging})

    def behind(row: PartitionLag) -> float | None:
        if row.lag <= 0:
            return 0.0
        place = (row.topic, row.partition)
        if place not in first or place not in last:
            return None
        return max(0.0, (last[place] - first[place]) / 1000)

    return [replace(row, behind_s=behind(row)) for row in rows]


def _timestamps(
    probe: Consumer, offsets: dict[tuple[str, int], int], patience_s: float = 5
) -> dict[tuple[str, int], int]:
    """The timestamp (ms) of the first record at or after each partition's offset."""
    found: dict[tuple[str, int], int] = {}
    if not offsets:
        return found
    probe.assign([TopicPartition(topic, partition, offset) for (topic, partition), offset in offsets.items()])
    deadline = time.monotonic() + patience_s
    while len(found) < len(offsets) and time.monotonic() < deadline:
        for message in probe.consume(len(offsets), timeout=0.5):
            place = (message.topic() or "", message.partition() or 0)
            if message.error() is None and place in offsets:
                found.setdefault(place, message.timestamp()[1])
    probe.unassign()
    return found
