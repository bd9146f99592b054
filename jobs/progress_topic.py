"""Each streaming query's progress, also sent to a Kafka topic (conf/jobs.yaml `progress_topic`), where the web
console reads it: Spark's own progress JSON per micro-batch, an event when a query idles and when it ends.

A job never fails for want of this topic: a refused send is reported once on the driver's output and the
job goes on."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

from confluent_kafka import KafkaException, Producer

from pipeline_config.credentials import client_auth


class ProgressPublisher:
    def __init__(self, bootstrap: str, topic: str, application: str):
        self.topic = topic
        self.application = application
        self._complained = False
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "linger.ms": 200,
                "log_level": 0,
                "message.timeout.ms": 10000,
                **client_auth(),
            }
        )

    def publish(self, event: str, query_id: str, query: str, key: str | None = None, **fields) -> None:
        """An event of a query, keyed by the query's id (or `key`: the topic is compacted, the latest per key stays)."""
        record = {
            "event": event,
            "query": query,
            "id": query_id,
            "application": self.application,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            **fields,
        }
        try:
            self._producer.produce(
                self.topic, key=key or query_id, value=json.dumps(record), on_delivery=self._delivered
            )
            self._producer.poll(0)
        except (BufferError, KafkaException) as exc:  # a full queue or a refused send: the job goes on
            self._complain(str(exc))

    def close(self, timeout_s: float = 5) -> None:
        self._producer.flush(timeout_s)

    def _delivered(self, error, message) -> None:
        if error is not None:
            self._complain(error.str())

    def _complain(self, why: str) -> None:
        if not self._complained:
            self._complained = True
            print(
                f"progress not sent to {self.topic} ({why}); the web console will not show these queries",
                file=sys.stderr,
                flush=True,
            )
