"""The console's operations panel, from the stack's Prometheus: the active alerts, charts of throughput, job lag and
batch duration over the last minutes, and links to the web UIs of Spark's master, workers and running drivers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import requests

from pipeline_config.metrics_targets import targets_dir
from pipeline_config.settings import StackSettings

TIMEOUT_S = 5

# What each chart draws: a PromQL expression and the label that names its series.
CHARTS = {
    "throughput": (
        'sum by (topic) (rate(kafka_server_brokertopicmetrics_messagesin_total{topic=~"rides_.*|ride_.*"}[1m]))',
        "topic",
    ),
    "lag": ('sum by (group) (pipeline_consumer_group_lag{group=~"spark-job-.+"})', "group"),
    "batch_duration": ("max by (query) (pipeline_streaming_query_batch_duration_seconds)", "query"),
}


class PrometheusUnavailableError(Exception):
    """The stack's Prometheus did not answer; the message says where it was asked."""


class OperationsView:
    def __init__(self, settings: StackSettings):
        self.settings = settings
        self.url = settings.prometheus.url

    def _get(self, path: str, **params) -> dict:
        try:
            answer = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=TIMEOUT_S)
            body = answer.json()
        except (requests.RequestException, ValueError) as exc:
            raise PrometheusUnavailableError(
                f"Prometheus at {self.url} does not answer ({exc.__class__.__name__}); `make status` says whether it "
                f"runs (PROMETHEUS=0 leaves it out)"
            ) from None
        if body.get("status") != "success":
            raise PrometheusUnavailableError(f"Prometheus refused {path}: {body.get('error', answer.status_code)}")
        return body["data"]

    def alerts(self) -> list[dict]:
        """Active alerts, firing first, each with its name, severity, state, since when, summary and labels."""
        rows = []
        for alert in self._get("alerts")["alerts"]:
            labels = dict(alert["labels"])
            rows.append(
                {
                    "alert": labels.pop("alertname"),
                    "severity": labels.pop("severity", None),
                    "state": alert["state"],
                    "since": alert.get("activeAt"),
                    "summary": alert.get("annotations", {}).get("summary"),
                    "labels": labels,
                }
            )
        return sorted(rows, key=lambda row: (row["state"] != "firing", row["since"] or ""))

    def chart(self, name: str, minutes: int = 15) -> dict:
        """One chart's series over the last `minutes`, a point every 15 s."""
        expression, label = CHARTS[name]
        end = datetime.now(UTC)
        data = self._get(
            "query_range",
            query=expression,
            start=(end - timedelta(minutes=minutes)).timestamp(),
            end=end.timestamp(),
            step="15s",
        )
        series = [
            {
                "name": result["metric"].get(label, "?"),
                "x": [datetime.fromtimestamp(float(at), UTC).isoformat() for at, _ in result["values"]],
                "y": [float(value) for _, value in result["values"]],
            }
            for result in data["result"]
        ]
        return {"chart": name, "expression": expression, "series": sorted(series, key=lambda s: s["name"])}

    def web_uis(self) -> list[dict]:
        """The web UIs worth a click: Prometheus, the Spark master, each worker, each job's driver while it runs."""
        spark = self.settings.spark
        links = [
            {"name": "Prometheus", "url": self.url},
            {"name": "Spark master", "url": f"http://127.0.0.1:{spark.master_ui_port}"},
            *[
                {"name": f"Spark worker {n}", "url": f"http://127.0.0.1:{port}"}
                for n, port in enumerate(spark.worker_ui_ports[: spark.workers], start=1)
            ],
        ]
        for path in sorted(targets_dir(self.settings, "drivers").glob("*.json")):
            try:
                (group,) = json.loads(path.read_text())
                links.append(
                    {"name": f"driver of {group['labels']['application']}", "url": f"http://{group['targets'][0]}"}
                )
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a target file half written or removed meanwhile
        return links
