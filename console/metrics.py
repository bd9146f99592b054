"""The web console's /metrics for Prometheus: what it knows that no other service exports.

- Each consumer group's lag per topic (the jobs' groups spark-job-<query> too: jobs/group_offsets.py), read from
  Kafka as a Kafka lag exporter would, at most every LAGS_CACHED_S.
- Each streaming query's state and figures from the jobs' progress events (the topic the console follows): up
  (running or idle) or not, failed, input and processing rates, batch duration, rows of state. A query's driver
  exports Spark's own metrics too, but only while it runs; these say what became of it afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cluster.groups import PartitionLag
from console.charts import query_rows

# Reading every group's offsets and every partition's end is a few hundred requests on a busy cluster: done at
# most this often, however often Prometheus (or anybody) asks.
LAGS_CACHED_S = 20.0


class PipelineCollector(Collector):
    def __init__(
        self,
        lags: Callable[[], list[PartitionLag]],
        progress_events: Callable[[], list[dict]],
        clock: Callable[[], float] = time.monotonic,
    ):
        self._read_lags = lags
        self.progress_events = progress_events
        self.clock = clock
        self._lags: tuple[float, list[PartitionLag]] | None = None

    def lags(self) -> list[PartitionLag]:
        now = self.clock()
        if self._lags is None or now - self._lags[0] > LAGS_CACHED_S:
            self._lags = (now, self._read_lags())
        return self._lags[1]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._group_lags()
        yield from self._queries()

    def _group_lags(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "pipeline_consumer_group_lag", "Records a consumer group has not processed yet", labels=["group", "topic"]
        )
        totals: dict[tuple[str, str], int] = {}
        for row in self.lags():
            totals[(row.group, row.topic)] = totals.get((row.group, row.topic), 0) + max(row.lag, 0)
        for (group, topic), value in sorted(totals.items()):
            lag.add_metric([group, topic], value)
        yield lag

    def _queries(self) -> Iterator[GaugeMetricFamily]:
        labels = ["query", "application"]
        families = {
            "up": GaugeMetricFamily(
                "pipeline_streaming_query_up", "1 while a query runs or idles, 0 once stopped or silent", labels=labels
            ),
            "failed": GaugeMetricFamily(
                "pipeline_streaming_query_failed", "1 when a query ended with an error", labels=labels
            ),
            "silent": GaugeMetricFamily(
                "pipeline_streaming_query_silent",
                "1 when a query stopped reporting without ending (its driver was killed or hangs)",
                labels=labels,
            ),
            "input_rate": GaugeMetricFamily(
                "pipeline_streaming_query_input_rows_per_second", "Rows per second arriving", labels=labels
            ),
            "processing_rate": GaugeMetricFamily(
                "pipeline_streaming_query_processed_rows_per_second", "Rows per second processed", labels=labels
            ),
            "batch_ms": GaugeMetricFamily(
                "pipeline_streaming_query_batch_duration_seconds", "Duration of the last micro-batch", labels=labels
            ),
            "state_rows": GaugeMetricFamily(
                "pipeline_streaming_query_state_rows", "Rows held in the query's state", labels=labels
            ),
        }
        seen: set[str] = set()
        for row in query_rows(self.progress_events()):  # newest first: a query's latest event wins
            if row["query"] in seen:
                continue
            seen.add(row["query"])
            values = [row["query"], str(row["application"] or "")]
            families["up"].add_metric(values, 1 if row["state"] in ("running", "idle") else 0)
            families["failed"].add_metric(values, 1 if row["state"] == "stopped" and row["error"] else 0)
            families["silent"].add_metric(values, 1 if row["state"] == "silent" else 0)
            for name in ("input_rate", "processing_rate", "state_rows"):
                if row[name] is not None:
                    families[name].add_metric(values, float(row[name]))
            if row["batch_ms"] is not None:
                families["batch_ms"].add_metric(values, row["batch_ms"] / 1000)
        yield from families.values()
