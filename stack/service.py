"""What every service of the local stack is: a process with its folders, ports, health check and log; and
the things several services need (Java, Spark's home, the stack's own admin login)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline_config.credentials import (
    ADMIN_ROLE,
    ClientLogin,
    librdkafka_auth,
    stack_credentials,
)
from pipeline_config.errors import PipelineError
from pipeline_config.settings import StackSettings
from stack.processes import PidFile
from stack.tls import tls_material

# The launcher works from a checkout: its compose files, and the poms of the JVM services beside this module.
CHECKOUT_DIR = Path(__file__).resolve().parent.parent
JVM_DIR = Path(__file__).resolve().parent / "jvm"


class StackError(PipelineError):
    """The stack cannot be started or used as asked; the message says why and what to do."""


def find_java(minimum_major: int = 17) -> str:
    """The java executable (JAVA_HOME first), refusing one older than the project needs."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise StackError(
            f"Java {minimum_major}+ is needed and none was found: install a JDK "
            f"(Debian: apt-get install openjdk-17-jdk-headless) or set JAVA_HOME"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):
        major = int(match.group(2))
    if major < minimum_major:
        raise StackError(f"{java} is Java {major}; Kafka 4 and Spark 4 need Java {minimum_major} or newer")
    return java


def find_program(wanted: str, what: str, remedy: str) -> str:
    """The executable on the PATH (or at the path given), or a StackError that says how to get it."""
    found = shutil.which(wanted)
    if not found:
        raise StackError(f"{what} ({wanted}) was not found: {remedy}")
    return found


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir() or not any(path.iterdir()):
        raise StackError(f"{what} not found in {path}: run `make jars` first (it resolves them from Maven Central)")
    return path


def stack_admin_auth(settings: StackSettings) -> dict[str, str]:
    """What the stack's own admin operations (health, topics, users, ACLs) connect with: on the secured stack the
    admin over SASL/PLAIN (see KafkaNode._listener_properties)."""
    if not settings.kafka.secure:
        return {}
    ca_pem = stack_ca_pem(settings)
    login = ClientLogin(
        stack_credentials(settings)[ADMIN_ROLE],
        str(ca_pem) if ca_pem else None,
        "SASL_SSL" if ca_pem else "SASL_PLAINTEXT",
    )
    return librdkafka_auth(login, mechanism="PLAIN")


def stack_ca_pem(settings: StackSettings) -> Path | None:
    """The CA certificate clients of the secured stack trust, or None when it runs without TLS (KAFKA_TLS=0)."""
    return tls_material(settings).ca_pem if settings.kafka.tls else None


@dataclass
class Service:
    """One daemon of the stack. Subclasses say how to start it and how to tell it is healthy."""

    name: str
    settings: StackSettings

    # --- where things live -------------------------------------------------------------------------
    @property
    def pid_file(self) -> PidFile:
        return PidFile(self.settings.run_dir / f"{self.name}.pid")

    @property
    def log_path(self) -> Path:
        return self.settings.log_dir / f"{self.name}.log"

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir / self.name

    # --- what subclasses provide -------------------------------------------------------------------
    @property
    def ports(self) -> list[int]:
        raise NotImplementedError

    @property
    def address(self) -> str:
        raise NotImplementedError

    @property
    def web_ui(self) -> str:
        return "-"

    @property
    def stop_signal(self) -> int:
        """What asks the process to stop (SIGKILL follows after a grace period)."""
        return signal.SIGTERM

    def prepare(self) -> None:
        """One-off work before the first start (formatting storage, writing config files)."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    @property
    def working_dir(self) -> Path | None:
        """Where the process runs; None: where the launcher runs."""
        return None

    def health(self) -> str | None:
        """None when healthy, otherwise what is still missing."""
        raise NotImplementedError
