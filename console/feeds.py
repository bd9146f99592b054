"""The topic the console follows live (the jobs' progress events): a background consumer keeps the latest JSON
value of each key.

The feed starts a little before the end of each partition (its backlog), so that the recent events show at once,
then tails the topic. Keys are kept in arrival order; the oldest are forgotten past `max_keys`, which bounds the
console's memory however long it runs. (Results are not read from topics: the charts query the results
database, which keeps the latest value per key itself.)
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition


class TopicFeed:
    def __init__(self, bootstrap: str, auth: dict[str, str], topic: str, backlog: int = 2000, max_keys: int = 5000):
        self.topic = topic
        self.backlog = backlog
        self.max_keys = max_keys
        self.error: str | None = None
        self.received = 0
        self._latest: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "pipeline-console",
                "enable.auto.commit": False,
                "log_level": 0,
                **auth,
            }
        )
        self._thread = threading.Thread(target=self._run, name=f"feed-{topic}", daemon=True)
        self._thread.start()

    def latest(self) -> list[dict]:
        """The latest value of each key, oldest arrival first."""
        with self._lock:
            return list(self._latest.values())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _assign_near_the_end(self) -> bool:
        try:
            metadata = self._consumer.list_topics(self.topic, timeout=10).topics[self.topic]
            if metadata.error is not None:
                self.error = f"{self.topic}: {metadata.error.str()}"
                return False
            assignment = []
            for partition in metadata.partitions:
                low, high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=10)
                assignment.append(TopicPartition(self.topic, partition, max(low, high - self.backlog)))
        except KafkaException as exc:  # Kafka is down or restarting: try again later, the feed outlives it
            self.error = f"{self.topic}: {exc.args[0].str()}"
            return False
        self._consumer.assign(assignment)
        self.error = None
        return True

    def _run(self) -> None:
        try:
            while not self._stop.is_set() and not self._assign_near_the_end():
                self._stop.wait(5)  # the topic may not exist yet: a job creates it
            while not self._stop.is_set():
                for message in self._consumer.consume(500, timeout=0.5):
                    error = message.error()
                    if error is None:
                        self._keep(message)
                    elif error.code() != KafkaError._PARTITION_EOF:
                        self.error = error.str()
        finally:
            self._consumer.close()

    def _keep(self, message) -> None:
        try:
            value = json.loads(message.value()) if message.value() is not None else None
        except (UnicodeDecodeError, ValueError, RecursionError):
            return  # the results are JSON objects; anything else is not a chart's business
        if value is not None and not isinstance(value, dict):
            return
        key = message.key().decode(errors="replace") if message.key() else f"{message.partition()}/{message.offset()}"
        with self._lock:
            self._latest.pop(key, None)
            if value is not None:  # a tombstone deletes the key
                self._latest[key] = value
            while len(self._latest) > self.max_keys:
                self._latest.popitem(last=False)
            self.received += 1
