"""Prometheus (Debian's `prometheus` package) as a plain process, scraping every service of the stack.

Its configuration is written on every start from the settings, so it scrapes whatever brokers, workers and
services this stack runs: the brokers' and the Connect worker's JMX exporter agents (conf/prometheus/*-jmx.yml),
the registry's own /metrics, the results database's exporter (stack/postgres_exporter.py), the Spark master's and workers' PrometheusServlet (conf/spark-metrics.properties), the
web console's /metrics, and, through file-based discovery, each job's driver and each producer run while they
live (pipeline_config/metrics_targets.py). The alert rules are conf/prometheus/alerts.yml. Samples are kept in
`<state>/data/prometheus/tsdb` for `prometheus.retention`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from pipeline_config.metrics_targets import prune, targets_dir
from pipeline_config.settings import CONF_DIR, StackSettings
from stack.service import Service, find_program

ALERT_RULES = CONF_DIR / "prometheus" / "alerts.yml"


def _static(job: str, targets: list[str], path: str = "/metrics", labels: dict | None = None) -> dict[str, Any]:
    group: dict[str, Any] = {"targets": targets}
    if labels:
        group["labels"] = labels
    return {"job_name": job, "metrics_path": path, "static_configs": [group]}


def _brokers(targets: list[str]) -> dict[str, Any]:
    """One job for every broker (Prometheus refuses two jobs of one name), each target labelled with its node id."""
    groups = [{"targets": [target], "labels": {"broker": str(n)}} for n, target in enumerate(targets, start=1)]
    return {"job_name": "kafka", "metrics_path": "/metrics", "static_configs": groups}


def _discovered(job: str, kind: str, path: str, settings: StackSettings) -> dict[str, Any]:
    return {
        "job_name": job,
        "metrics_path": path,
        "file_sd_configs": [{"files": [str(targets_dir(settings, kind) / "*.json")], "refresh_interval": "5s"}],
    }


@dataclass(frozen=True)
class ScrapeAddresses:
    """Where Prometheus finds each service: host:port, as it sees them."""

    prometheus: str
    brokers: list[str]
    registry: str
    spark_master: str
    spark_workers: list[str]
    console: str | None
    connect: str | None
    postgres: str | None  # the results database's exporter
    rule_file: str
    discovery: bool  # drivers and producers through file-based discovery (they run beside the local stack)


def local_addresses(settings: StackSettings) -> ScrapeAddresses:
    host, prometheus, spark = "127.0.0.1", settings.prometheus, settings.spark
    return ScrapeAddresses(
        prometheus=f"{host}:{prometheus.port}",
        brokers=[f"{host}:{prometheus.kafka_exporter_port(n)}" for n in range(1, settings.kafka.brokers + 1)],
        registry=f"{host}:{settings.registry.port}",
        spark_master=f"{host}:{spark.master_ui_port}",
        spark_workers=[f"{host}:{port}" for port in spark.worker_ui_ports[: spark.workers]],
        console=f"{host}:{settings.console.port}" if settings.console.enabled else None,
        connect=f"{host}:{prometheus.connect_metrics_port}" if settings.connect.enabled else None,
        postgres=f"{host}:{prometheus.postgres_exporter_port}" if settings.postgres.enabled else None,
        rule_file=str(ALERT_RULES),
        discovery=True,
    )


# docker-compose.yml's services, by name, on the ports their containers listen on; the brokers' JMX exporter
# agents listen on COMPOSE_EXPORTER_PORT (KAFKA_OPTS in docker-compose.yml).
COMPOSE_BROKERS = ("kafka", "kafka-2", "kafka-3")
COMPOSE_EXPORTER_PORT = 9404
COMPOSE_RULE_FILE = "/etc/prometheus/alerts.yml"


def compose_addresses(settings: StackSettings) -> ScrapeAddresses:
    """The compose stack as its Prometheus container sees it. Redpanda's profile has no JMX exporter: no broker
    target then. Jobs' drivers and producers are not discovered (they run on the host, beyond the network)."""
    brokers = [] if settings.broker == "redpanda" else list(COMPOSE_BROKERS[: settings.kafka.brokers])
    return ScrapeAddresses(
        prometheus="localhost:9090",
        brokers=[f"{broker}:{COMPOSE_EXPORTER_PORT}" for broker in brokers],
        registry="schema-registry:8080",
        spark_master="spark-master:8080",
        spark_workers=["spark-worker-1:8082", "spark-worker-2:8084"],
        console=f"console:{settings.console.port}",
        connect=None,
        postgres="postgres-exporter:9187",
        rule_file=COMPOSE_RULE_FILE,
        discovery=False,
    )


def scrape_configuration(settings: StackSettings, where: ScrapeAddresses | None = None) -> dict[str, Any]:
    """prometheus.yml for this stack: one scrape job per kind of service, with the targets that run."""
    where = where or local_addresses(settings)
    interval = f"{settings.prometheus.scrape_interval_s}s"
    jobs = [
        _static("prometheus", [where.prometheus]),
        _brokers(where.brokers),
        _static("schema-registry", [where.registry]),
        _static("spark-master", [where.spark_master], "/metrics/master/prometheus"),
        _static("spark-applications", [where.spark_master], "/metrics/applications/prometheus"),
        _static("spark-worker", where.spark_workers, "/metrics/prometheus"),
    ]
    if where.discovery:
        jobs += [
            _discovered("spark-driver", "drivers", "/metrics/prometheus", settings),
            _discovered("spark-executors", "drivers", "/metrics/executors/prometheus", settings),
            _discovered("producer", "producers", "/metrics", settings),
        ]
    if where.connect:
        jobs.append(_static("kafka-connect", [where.connect]))
    if where.console:
        jobs.append(_static("console", [where.console]))
    if where.postgres:
        jobs.append(_static("postgres", [where.postgres]))
    return {
        "global": {
            "scrape_interval": interval,
            "evaluation_interval": interval,
            "scrape_timeout": f"{min(settings.prometheus.scrape_interval_s, 10)}s",
        },
        "rule_files": [where.rule_file],
        "scrape_configs": jobs,
    }


def write_configuration(settings: StackSettings, path: Path, where: ScrapeAddresses | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by `python -m stack` from conf/stack.yaml on every start; edit that file instead.\n"
        + yaml.safe_dump(scrape_configuration(settings, where), sort_keys=False)
    )
    return path


def compose_configuration_path(settings: StackSettings) -> Path:
    """Where `make up` on Docker writes the Prometheus container's configuration (docker-compose.yml mounts it)."""
    return settings.state_dir / "compose" / "prometheus.yml"


@dataclass
class PrometheusServer(Service):
    @property
    def ports(self) -> list[int]:
        return [self.settings.prometheus.port]

    @property
    def address(self) -> str:
        return self.settings.prometheus.url

    @property
    def web_ui(self) -> str:
        return self.settings.prometheus.url

    @property
    def config_path(self) -> Path:
        return self.data_dir / "prometheus.yml"

    def _binary(self) -> str:
        return find_program(
            self.settings.prometheus.binary,
            "Prometheus",
            "install it (Debian: apt-get install prometheus), or set prometheus.binary in conf/stack.yaml, or "
            "PROMETHEUS=0 make up to run without it",
        )

    def prepare(self) -> None:
        self._binary()
        prune(self.settings)
        write_configuration(self.settings, self.config_path)

    def command(self) -> list[str]:
        prometheus = self.settings.prometheus
        return [
            self._binary(),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
            f"--storage.tsdb.retention.time={prometheus.retention}",
            f"--web.listen-address={self.settings.bind_host}:{prometheus.port}",
            "--web.enable-lifecycle",  # POST /-/reload re-reads the configuration
        ]

    def health(self) -> str | None:
        try:
            response = requests.get(f"{self.settings.prometheus.url}/-/ready", timeout=3)
        except requests.RequestException as exc:
            return f"no answer ({exc.__class__.__name__})"
        return None if response.ok else f"not ready ({response.status_code})"
