"""Offsets a job would skip: Kafka deleted them (retention, `delete_records`) before the job read them.

Spark's Kafka source with failOnDataLoss=false skips such offsets without a word, and with true fails with a
message that names neither the query nor the way out. Before any query starts, each query's checkpoint says where
it will go on reading; Kafka says where each partition's log now starts. A log that starts past that point has
lost records the job never read: the job refuses to start and names topic, partition, offsets and the flag that
accepts the loss (--accept-data-loss), and when the loss is accepted it says how much was skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec


@dataclass(frozen=True)
class LostOffsets:
    query: str
    topic: str
    partition: int
    next_offset: int  # where the query's checkpoint will go on reading
    log_start: int  # where the partition's log now starts

    @property
    def count(self) -> int:
        return self.log_start - self.next_offset

    def __str__(self) -> str:
        return (
            f"{self.topic} partition {self.partition}: offsets {self.next_offset}..{self.log_start - 1} "
            f"({self.count:,} records) were deleted before query {self.query} read them"
        )


def _batch_ids(folder: Path) -> list[int]:
    return sorted(int(path.name) for path in folder.glob("[0-9]*") if path.name.isdigit()) if folder.is_dir() else []


def checkpointed_positions(query_checkpoint: Path) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the next offset the query reads: the end offsets of its last committed batch.
    Empty for a query that has committed no batch (it starts at startingOffsets)."""
    committed = _batch_ids(query_checkpoint / "commits")
    if not committed:
        return {}
    lines = (query_checkpoint / "offsets" / str(committed[-1])).read_text().splitlines()
    positions: dict[tuple[str, int], int] = {}
    for line in lines[2:]:  # "v1", the batch's metadata, then one line per source ("-" for none)
        source = json.loads(line) if line.strip().startswith("{") else {}
        for topic, partitions in source.items():
            if isinstance(partitions, dict):
                positions.update({(topic, int(partition)): int(offset) for partition, offset in partitions.items()})
    return positions


def lost_offsets(admin: AdminClient, job_checkpoints: Path, timeout_s: float = 10) -> list[LostOffsets]:
    """Every partition whose log starts past where one of the job's queries will go on reading."""
    positions = {
        query.name: checkpointed_positions(query) for query in sorted(job_checkpoints.glob("*")) if query.is_dir()
    }
    wanted = {key for per_query in positions.values() for key in per_query}
    if not wanted:
        return []
    futures = admin.list_offsets(
        {TopicPartition(topic, partition): OffsetSpec.earliest() for topic, partition in wanted},
        request_timeout=timeout_s,
    )
    starts = {}
    for partition, future in futures.items():
        try:
            starts[(partition.topic, partition.partition)] = future.result().offset
        except Exception:
            continue
    return [
        LostOffsets(query, topic, partition, offset, starts[(topic, partition)])
        for query, per_query in positions.items()
        for (topic, partition), offset in sorted(per_query.items())
        if starts.get((topic, partition), -1) > offset
    ]
