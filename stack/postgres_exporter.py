"""The results database's metrics for Prometheus: Debian's `prometheus-postgres-exporter` as a plain process.

It logs in as the stack's statistics role (METRICS_ROLE: PostgreSQL's pg_monitor, no access to the results), its
password read from a private file of the stack's secrets rather than passed in its environment, and serves
`pg_up`, connections, transactions, rows, locks and database sizes on 127.0.0.1:9187/metrics (a library's
exporter rather than our own: PostgreSQL's statistics views change between versions, and it follows them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import requests

from pipeline_config.credentials import database_passwords, secrets_dir, write_private
from pipeline_config.settings import METRICS_ROLE
from stack.service import Service, find_program


@dataclass
class PostgresExporter(Service):
    @property
    def ports(self) -> list[int]:
        return [self.settings.prometheus.postgres_exporter_port]

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.settings.prometheus.postgres_exporter_port}/metrics"

    @property
    def password_file(self) -> Path:
        return secrets_dir(self.settings) / f"{METRICS_ROLE}.password"

    def _binary(self) -> str:
        return find_program(
            self.settings.prometheus.postgres_exporter_binary,
            "The PostgreSQL exporter",
            "install it (Debian: apt-get install prometheus-postgres-exporter), or set "
            "prometheus.postgres_exporter_binary in conf/stack.yaml, or PROMETHEUS=0 make up to run without metrics",
        )

    def prepare(self) -> None:
        self._binary()
        write_private(self.password_file, database_passwords(self.settings)[METRICS_ROLE])

    def command(self) -> list[str]:
        return [
            self._binary(),
            f"--web.listen-address={self.settings.bind_host}:{self.settings.prometheus.postgres_exporter_port}",
            "--log.level=warn",
        ]

    def environment(self) -> dict[str, str]:
        postgres = self.settings.postgres
        return {
            **os.environ,
            "DATA_SOURCE_URI": f"{postgres.host}:{postgres.port}/{postgres.database}?sslmode=disable",
            "DATA_SOURCE_USER": METRICS_ROLE,
            "DATA_SOURCE_PASS_FILE": str(self.password_file),
        }

    def health(self) -> str | None:
        try:
            metrics = requests.get(self.address, timeout=5).text
        except requests.RequestException as exc:
            return f"no answer ({exc.__class__.__name__})"
        return None if "\npg_up 1" in metrics else "not connected to the results database (pg_up is not 1)"
