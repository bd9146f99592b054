"""The schema registry: Apicurio's Quarkus distribution with its Confluent-compatible API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import requests

from stack.service import Service, StackError, find_java, require_dir


@dataclass
class SchemaRegistry(Service):
    """Apicurio Registry 3 with its schemas in an H2 file database, so they survive a restart."""

    @property
    def ports(self) -> list[int]:
        return [self.settings.registry.port]

    @property
    def address(self) -> str:
        return self.settings.registry.url

    @property
    def web_ui(self) -> str:
        return f"http://127.0.0.1:{self.settings.registry.port}/apis/ccompat/v7/subjects"

    def _runner_jar(self) -> Path:
        home = require_dir(self.settings.lib_dir / "apicurio", "The Apicurio Registry distribution")
        jars = sorted(home.glob("apicurio-registry-app-*-runner.jar"))
        if not jars:
            raise StackError(f"no apicurio-registry-app-*-runner.jar in {home}: run `make jars`")
        return jars[-1]

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        registry = self.settings.registry
        return [
            find_java(),
            f"-Xmx{registry.heap}",
            "-XX:+UseSerialGC",
            f"-Dquarkus.http.host={self.settings.bind_host}",
            f"-Dquarkus.http.port={registry.port}",
            # File-backed H2 instead of the default in-memory database: schemas survive `make down`/`make up`.
            f"-Dapicurio.datasource.url=jdbc:h2:file:{self.data_dir / 'registry'}",
            "-Dapicurio.datasource.jdbc.initial-size=2",
            "-Dapicurio.datasource.jdbc.min-size=2",
            "-Dapicurio.datasource.jdbc.max-size=10",
            "-jar",
            str(self._runner_jar()),
        ]

    def health(self) -> str | None:
        try:
            response = requests.get(f"{self.address}/subjects", timeout=3)
        except requests.RequestException as exc:
            return f"no answer from {self.address} ({exc.__class__.__name__})"
        if response.status_code != 200:
            return f"{self.address}/subjects answered HTTP {response.status_code}"
        return None
