"""Each streaming query's progress as a Kafka consumer group, so that Kafka's own tools show how far a job is behind.

Spark's Kafka source keeps its offsets in the checkpoint and commits none to Kafka (its consumers use throwaway
group ids), so `kafka-consumer-groups.sh`, `make topics` and the console saw no lag for a job. After each
micro-batch this listener commits the offsets the batch read up to (the source's `endOffset`: the next offset to
process) to the group `<lag_group_prefix><query name>`. The checkpoint stays the truth Spark resumes from; the
group only reports. A refused commit (a missing ACL, Kafka away) is said once on the driver's output and the job
goes on.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from pyspark.sql.streaming import StreamingQueryListener

from cluster.clients import admin_client

COMMIT_TIMEOUT_S = 10


def processed_offsets(end_offset: str | None) -> Iterator[TopicPartition]:
    """The partitions and next offsets of a Kafka source's endOffset ({"topic": {"0": 42}}); nothing for another
    source's offsets (a rate source's number, a file source's)."""
    try:
        offsets = json.loads(end_offset or "null")
    except ValueError:
        return
    if not isinstance(offsets, dict):
        return
    for topic, partitions in offsets.items():
        if not isinstance(partitions, dict):
            continue
        for partition, offset in partitions.items():
            if str(partition).isdigit() and isinstance(offset, int) and offset >= 0:
                yield TopicPartition(topic, int(partition), offset)


class ConsumerGroupOffsets(StreamingQueryListener):
    def __init__(self, bootstrap: str, group_prefix: str):
        self.admin = admin_client(bootstrap)
        self.group_prefix = group_prefix
        self._complained = False

    def group_of(self, query_name: str) -> str:
        return f"{self.group_prefix}{query_name}"

    def onQueryStarted(self, event):
        pass

    def onQueryProgress(self, event):
        progress = event.progress
        partitions = [tp for source in progress.sources for tp in processed_offsets(source.endOffset)]
        if not partitions:
            return
        group = self.group_of(progress.name or str(progress.id))
        try:
            futures = self.admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, partitions)])
            futures[group].result(timeout=COMMIT_TIMEOUT_S)
        except (KafkaException, TimeoutError) as exc:  # the job goes on: the group only reports
            self._complain(group, str(exc))

    def onQueryIdle(self, event):
        pass

    def onQueryTerminated(self, event):
        pass

    def _complain(self, group: str, why: str) -> None:
        if not self._complained:
            self._complained = True
            print(
                f"offsets not committed to the consumer group {group} ({why}); Kafka's tools will not show this "
                f"job's lag",
                file=sys.stderr,
                flush=True,
            )
