"""The project's web console as a service of the stack."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import requests

from pipeline_config.credentials import (
    CONSOLE_ROLE,
    pgpass_path,
    secrets_dir,
    stack_credentials,
    write_client_files,
)
from stack.service import Service, stack_ca_pem


@dataclass
class WebConsole(Service):
    """The project's web console (python -m console, FastAPI under uvicorn): it reads Kafka, the registry,
    the Spark master and Kafka Connect, so it starts last."""

    @property
    def ports(self) -> list[int]:
        return [self.settings.console.port]

    @property
    def address(self) -> str:
        return self.settings.console.url

    @property
    def web_ui(self) -> str:
        return self.settings.console.url

    def command(self) -> list[str]:
        return [sys.executable, "-m", "console"]

    def prepare(self) -> None:
        if self.settings.kafka.secure:  # its own read-only login; the user and its ACLs come from conf/security.yaml
            credentials = stack_credentials(self.settings, (CONSOLE_ROLE,))
            write_client_files(self.settings, credentials, stack_ca_pem(self.settings))

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # The console loads the stack's settings itself: the same ones this stack was started with.
        settings = self.settings
        env.update(
            {
                "STACK_HOME": str(settings.state_dir),
                "BROKERS": str(settings.kafka.brokers),
                "WORKERS": str(settings.spark.workers),
                "CONNECT": "1" if settings.connect.enabled else "0",
                "SECURE": "1" if settings.kafka.secure else "0",
                "KAFKA_TLS": "1" if settings.kafka.tls else "0",
            }
        )
        env.setdefault("PGPASSFILE", str(pgpass_path(settings)))  # the results view reads as the read-only role
        if settings.kafka.secure:
            env["KAFKA_CREDENTIALS_FILE"] = str(secrets_dir(settings) / f"{CONSOLE_ROLE}.env")
        return env

    def health(self) -> str | None:
        try:
            response = requests.get(f"{self.settings.console.url}/api/health", timeout=3)
        except requests.RequestException as exc:
            return f"no answer ({exc.__class__.__name__})"
        return None if response.ok else f"answers {response.status_code}"
