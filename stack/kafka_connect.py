"""A Kafka Connect worker in distributed mode, with the file connectors of conf/connectors.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import requests

from stack.kafka_node import kafka_jvm
from stack.service import Service, StackError


@dataclass
class KafkaConnect(Service):
    """A Kafka Connect worker in distributed mode (CONNECT=1): its connectors, offsets and status live in Kafka
    topics, and it is driven through its REST API (stack/connectors.py applies conf/connectors.yaml)."""

    @property
    def ports(self) -> list[int]:
        metrics = [self.settings.prometheus.connect_metrics_port] if self.settings.prometheus.enabled else []
        return [self.settings.connect.port, *metrics]

    @property
    def address(self) -> str:
        return self.settings.connect.url

    @property
    def web_ui(self) -> str:
        return f"{self.settings.connect.url}/connectors?expand=status"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "connect-distributed.properties"

    def worker_properties(self) -> dict[str, str]:
        connect, rf = self.settings.connect, str(self.settings.kafka.replication_factor)
        return {
            "bootstrap.servers": self.settings.kafka.bootstrap_servers,
            "group.id": connect.group_id,
            # Lines of text in, lines of text out: what the file connectors carry.
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter",
            "config.storage.topic": f"{connect.group_id}-configs",
            "offset.storage.topic": f"{connect.group_id}-offsets",
            "status.storage.topic": f"{connect.group_id}-status",
            "config.storage.replication.factor": rf,
            "offset.storage.replication.factor": rf,
            "status.storage.replication.factor": rf,
            "offset.flush.interval.ms": "2000",
            "listeners": f"http://{self.settings.bind_host}:{connect.port}",
            "rest.advertised.host.name": self.settings.bind_host,
            "rest.advertised.port": str(connect.port),
        }

    def prepare(self) -> None:
        if self.settings.kafka.secure:
            raise StackError("Kafka Connect is not set up for the secured mode (SECURE=1); start it without CONNECT=1")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            "# Written by `python -m stack` from conf/stack.yaml on every start; edit that file instead.\n"
            + "".join(f"{key}={value}\n" for key, value in self.worker_properties().items())
        )

    def command(self) -> list[str]:
        return kafka_jvm(
            self.settings,
            "kafka-connect",
            "org.apache.kafka.connect.cli.ConnectDistributed",
            str(self.config_path),
            heap=self.settings.connect.heap,
            metrics=(self.settings.prometheus.connect_metrics_port, "connect-jmx.yml"),
        )

    def health(self) -> str | None:
        try:
            response = requests.get(f"{self.settings.connect.url}/connectors", timeout=3)
        except requests.RequestException as exc:
            return f"no answer from the REST API ({exc.__class__.__name__})"
        return None if response.ok else f"REST API answers {response.status_code}"
