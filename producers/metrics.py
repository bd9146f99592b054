"""The producer's metrics for Prometheus while it runs: librdkafka's own statistics (its queue, what it sent, its
errors, the brokers' round trips) and the deliveries the producer counted, served on 127.0.0.1 and registered as a
scrape target of the stack's Prometheus (pipeline_config/metrics_targets.py) for as long as the run lasts.

librdkafka computes the statistics itself (`statistics.interval.ms`) and hands them over as JSON through
`stats_cb` during poll(); they are read here at each scrape, so producing costs nothing more."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from pipeline_config.metrics_targets import register, unregister
from pipeline_config.settings import StackSettings

STATISTICS_INTERVAL_MS = 1000


class ProducerMetrics(Collector):
    def __init__(self, deliveries: Any):
        """`deliveries` counts sent, delivered, failed and dead_letters (produce.DeliveryStats)."""
        self.deliveries = deliveries
        self._statistics: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._server: Any = None
        self._target: Path | None = None

    def librdkafka_config(self) -> dict[str, Any]:
        return {"statistics.interval.ms": STATISTICS_INTERVAL_MS, "stats_cb": self.on_statistics}

    def on_statistics(self, text: str) -> None:
        try:
            statistics = json.loads(text)
        except ValueError:
            return
        with self._lock:
            self._statistics = statistics

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        for name, meaning in (
            ("sent", "Records handed to the client"),
            ("delivered", "Records Kafka acknowledged"),
            ("failed", "Records whose delivery failed"),
            ("dead_letters", "Unreadable rows sent to the dead-letter topic"),
        ):
            yield CounterMetricFamily(f"producer_records_{name}", meaning, value=getattr(self.deliveries, name))
        with self._lock:
            statistics = dict(self._statistics)
        if not statistics:
            return
        yield GaugeMetricFamily(
            "producer_queue_messages", "Records waiting in librdkafka's queue", value=statistics.get("msg_cnt", 0)
        )
        yield GaugeMetricFamily(
            "producer_queue_bytes", "Bytes waiting in librdkafka's queue", value=statistics.get("msg_size", 0)
        )
        yield CounterMetricFamily(
            "producer_transmitted_messages", "Records librdkafka sent to brokers", value=statistics.get("txmsgs", 0)
        )
        yield CounterMetricFamily(
            "producer_transmitted_bytes", "Record bytes librdkafka sent", value=statistics.get("txmsg_bytes", 0)
        )
        brokers = [b for b in (statistics.get("brokers") or {}).values() if b.get("nodeid", -1) >= 0]
        errors = CounterMetricFamily("producer_broker_errors", "Transmission errors per broker", labels=["broker"])
        rtt = GaugeMetricFamily("producer_broker_rtt_seconds", "Average round trip per broker", labels=["broker"])
        for broker in brokers:
            name = str(broker.get("nodename", broker.get("name", "?")))
            errors.add_metric([name], broker.get("txerrs", 0) + broker.get("rxerrs", 0))
            rtt.add_metric([name], (broker.get("rtt") or {}).get("avg", 0) / 1_000_000)
        yield errors
        yield rtt

    def serve(self, settings: StackSettings, labels: dict[str, str], port: int = 0) -> int:
        """Serve /metrics on 127.0.0.1 (a free port unless given) and register it; returns the port."""
        registry = CollectorRegistry()
        registry.register(self)
        self._server, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
        served = self._server.server_port
        self._target = register(settings, "producers", f"127.0.0.1:{served}", labels)
        return served

    def close(self) -> None:
        """Forget the target at once; the server stops on its own thread: shutdown() waits for the serving loop's
        next turn (half a second), which the run's end has no reason to wait for."""
        unregister(self._target)
        server, self._server = self._server, None
        if server is not None:
            threading.Thread(target=lambda: (server.shutdown(), server.server_close()), daemon=True).start()
