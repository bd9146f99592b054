"""Consumer groups and their lag: committed offset against the end of each partition."""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


def group_lags(admin: AdminClient, bootstrap: str, auth: dict | None = None) -> list[PartitionLag]:
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
    finally:
        watermarks.close()
    return sorted(rows, key=lambda r: (r.group, r.topic, r.partition))
