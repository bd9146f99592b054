"""Prometheus (Debian's `prometheus` package) as a plain process, scraping every service of the stack.

Its configuration is written on every start from the settings, so it scrapes whatever brokers, workers and
services this stack runs: the brokers' and the Connect worker's JMX exporter agents (conf/prometheus/*-jmx.yml),
the registry's own /metrics, the Spark master's and workers' PrometheusServlet (conf/spark-metrics.properties), the
web console's /metrics, and, through file-based discovery, each job's driver and each producer run while they
live (pipeline_config/metrics_targets.py). The alert rules are conf/prometheus/alerts.yml. Samples are kept in
`<state>/data/prometheus/tsdb` for `prometheus.retention`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from pipeline_config.metrics_targets import prune, targets_dir
from pipeline_config.settings import CONF_DIR, StackSettings
from stack.service import Service, StackError

ALERT_RULES = CONF_DIR / "prometheus" / "alerts.yml"


def _static(job: str, targets: list[str], path: str = "/metrics", labels: dict | None = None) -> dict[str, Any]:
    group: dict[str, Any] = {"targets": targets}
    if labels:
        group["labels"] = labels
    return {"job_name": job, "metrics_path": path, "static_configs": [group]}


def _discovered(job: str, kind: str, path: str, settings: StackSettings) -> dict[str, Any]:
    return {
        "job_name": job,
        "metrics_path": path,
        "file_sd_configs": [{"files": [str(targets_dir(settings, kind) / "*.json")], "refresh_interval": "5s"}],
    }


def scrape_configuration(settings: StackSettings) -> dict[str, Any]:
    """prometheus.yml for this stack: one scrape job per kind of service, with the targets that run."""
    interval = f"{settings.prometheus.scrape_interval_s}s"
    host = "127.0.0.1"
    spark = settings.spark
    jobs = [
        _static("prometheus", [f"{host}:{settings.prometheus.port}"]),
        *[
            _static("kafka", [f"{host}:{settings.prometheus.kafka_exporter_port(n)}"], labels={"broker": str(n)})
            for n in range(1, settings.kafka.brokers + 1)
        ],
        _static("schema-registry", [f"{host}:{settings.registry.port}"]),
        _static("spark-master", [f"{host}:{spark.master_ui_port}"], "/metrics/master/prometheus"),
        _static("spark-applications", [f"{host}:{spark.master_ui_port}"], "/metrics/applications/prometheus"),
        _static(
            "spark-worker",
            [f"{host}:{port}" for port in spark.worker_ui_ports[: spark.workers]],
            "/metrics/prometheus",
        ),
        _discovered("spark-driver", "drivers", "/metrics/prometheus", settings),
        _discovered("spark-executors", "drivers", "/metrics/executors/prometheus", settings),
        _discovered("producer", "producers", "/metrics", settings),
    ]
    if settings.connect.enabled:
        jobs.append(_static("kafka-connect", [f"{host}:{settings.prometheus.connect_metrics_port}"]))
    if settings.console.enabled:
        jobs.append(_static("console", [f"{host}:{settings.console.port}"]))
    return {
        "global": {
            "scrape_interval": interval,
            "evaluation_interval": interval,
            "scrape_timeout": f"{min(settings.prometheus.scrape_interval_s, 10)}s",
        },
        "rule_files": [str(ALERT_RULES)],
        "scrape_configs": jobs,
    }


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
        found = shutil.which(self.settings.prometheus.binary)
        if not found:
            raise StackError(
                f"Prometheus ({self.settings.prometheus.binary}) was not found: install it (Debian: apt-get install "
                f"prometheus), or set prometheus.binary in conf/stack.yaml, or PROMETHEUS=0 make up to run without it"
            )
        return found

    def prepare(self) -> None:
        self._binary()
        prune(self.settings)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            "# Written by `python -m stack` from conf/stack.yaml on every start; edit that file instead.\n"
            + yaml.safe_dump(scrape_configuration(self.settings), sort_keys=False)
        )

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
