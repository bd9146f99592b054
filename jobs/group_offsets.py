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

from confluent_kafka import Consumer, KafkaException, TopicPartition

from jobs.query_listener import JsonProgressListener
from pipeline_config.credentials import client_auth


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


class ConsumerGroupOffsets(JsonProgressListener):
    def __init__(self, bootstrap: str, group_prefix: str):
        self.bootstrap = bootstrap
        self.group_prefix = group_prefix
        self._committers: dict[str, Consumer] = {}
        self._last: dict[str, list[TopicPartition]] = {}  # per group, the offsets committed last
        self._groups: dict[str, str] = {}  # per query id, its group
        self._complained = False

    def group_of(self, query_name: str) -> str:
        return f"{self.group_prefix}{query_name}"

    def onQueryStarted(self, event):
        self._groups[str(event.id)] = self.group_of(event.name or str(event.id))

    def onQueryProgress(self, event):
        progress = event.progress
        partitions = [tp for source in progress.sources for tp in processed_offsets(source.endOffset)]
        if not partitions:
            return
        group = self.group_of(progress.name or str(progress.id))
        committer = self._committer(group)
        committer.poll(0)  # the outcome of the previous commit (on_commit below)
        self._last[group] = partitions
        try:
            committer.commit(offsets=partitions, asynchronous=True)
        except KafkaException as exc:  # the job goes on: the group only reports
            self._complain(group, str(exc))

    def _committer(self, group: str) -> Consumer:
        """A consumer of the group that never subscribes and only commits, asynchronously while the query runs (a
        listener must not wait on Kafka). It replaces the admin client's offset change, which tripped an assertion
        inside librdkafka when a request timed out while a broker was being killed, aborting the whole driver (the
        leader-kill test of RELIABILITY.md found it)."""
        committer = self._committers.get(group)
        if committer is None:
            committer = Consumer(
                {
                    "bootstrap.servers": self.bootstrap,
                    "group.id": group,
                    "enable.auto.commit": False,
                    "log_level": 0,
                    "on_commit": self._commit_outcome(group),
                    **client_auth(),
                }
            )
            self._committers[group] = committer
        return committer

    def onQueryIdle(self, event):
        pass

    def onQueryTerminated(self, event):
        """The query's last offsets committed for sure (the driver may exit next), and its consumer closed."""
        group = self._groups.pop(str(event.id), "")
        committer = self._committers.pop(group, None)
        if committer is None:
            return
        last = self._last.pop(group, [])
        try:
            if last:
                committer.commit(offsets=last, asynchronous=False)
        except KafkaException as exc:
            self._complain(group, str(exc))
        finally:
            committer.close()

    def _commit_outcome(self, group: str):
        def outcome(error, _partitions) -> None:
            if error is not None:
                self._complain(group, str(error))

        return outcome

    def _complain(self, group: str, why: str) -> None:
        if not self._complained:
            self._complained = True
            print(
                f"offsets not committed to the consumer group {group} ({why}); Kafka's tools will not show this "
                f"job's lag",
                file=sys.stderr,
                flush=True,
            )
