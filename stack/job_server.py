"""The job server as a service of the stack (jobs/job_server.py): a Spark application on the cluster that stays up
and runs jobs one after another. Its client is stack/run_on_server.py (`python -m stack run`, `make stream`)."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass

from cluster import job_server as protocol
from stack.job_package import package_stamp
from stack.service import Service
from stack.submit import job_application, submit_command, submit_environment


@dataclass
class JobServer(Service):
    @property
    def ports(self) -> list[int]:
        return [self.settings.job_server.port]

    @property
    def address(self) -> str:
        host, port = self.settings.job_server.address
        return f"{host}:{port} (python -m stack run)"

    @property
    def web_ui(self) -> str:
        """Its application's Spark UI (4040 when it started before any other application)."""
        try:
            return str(protocol.status(self.settings.job_server.address, timeout_s=3).get("ui") or "-")
        except (OSError, ValueError):
            return "-"

    def command(self) -> list[str]:
        # The driver runs in this Python process and pyspark starts its JVM with spark-submit's options (the
        # same as `python -m stack submit`): the service's PID is the Python driver, which a SIGTERM stops cleanly.
        arguments = [
            "--port",
            str(self.settings.job_server.port),
            "--package-stamp",
            str(package_stamp(self.settings.job_package)),
        ]
        return [sys.executable, job_application("job_server"), *arguments]

    def environment(self) -> dict[str, str]:
        env = submit_environment(self.settings)
        options = submit_command(self.settings, "pyspark-shell")[1:]
        env["PYSPARK_SUBMIT_ARGS"] = shlex.join(options)
        return env

    def health(self) -> str | None:
        try:
            protocol.status(self.settings.job_server.address, timeout_s=3)
        except (OSError, ValueError) as exc:
            return f"no answer ({exc})"
        return None
