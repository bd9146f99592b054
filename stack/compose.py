"""The Docker side of `make up`: docker-compose.yml, used when a Docker engine answers."""

from __future__ import annotations

import os
import shutil
import subprocess

from pipeline_config.credentials import (
    CONSOLE_PASSWORD,
    DATABASE_PASSWORDS,
    database_passwords,
    password_key,
    stack_credentials,
    stack_secrets,
    write_client_files,
    write_pgpass,
)
from pipeline_config.settings import CONF_DIR, SettingsError, StackSettings
from stack.prometheus import compose_addresses, compose_configuration_path, write_configuration
from stack.security import declared_roles, load_security_spec
from stack.service import CHECKOUT_DIR, StackError

COMPOSE_FILE = CHECKOUT_DIR / "docker-compose.yml"
SECURE_COMPOSE_FILE = CHECKOUT_DIR / "docker-compose.secure.yml"  # SECURE=1: SASL/SCRAM and ACLs


def docker_engine_available() -> bool:
    """True only when a Docker engine answers; the docker client alone is not enough."""
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


def choose_mode(requested: str | None = None) -> str:
    """`local` or `docker`: STACK_MODE forces one, otherwise docker when an engine runs."""
    mode = (requested or os.environ.get("STACK_MODE") or "auto").lower()
    if mode not in ("auto", "local", "docker"):
        raise SettingsError(f"STACK_MODE must be auto, local or docker, got {mode!r}")
    if mode == "auto":
        return "docker" if docker_engine_available() else "local"
    return mode


def compose_environment(settings: StackSettings) -> dict[str, str]:
    """The profiles and variables docker-compose.yml expects: `kafka` or `redpanda` (STACK_BROKER), `cluster` and
    the three-broker replication defaults (BROKERS=3), the passwords of the secured mode (SECURE=1)."""
    if settings.broker == "redpanda" and (settings.kafka.brokers > 1 or settings.kafka.secure):
        raise StackError("the redpanda profile is one Redpanda node without logins: drop BROKERS and SECURE")
    env = dict(os.environ)
    profiles = [p for p in env.get("COMPOSE_PROFILES", "").split(",") if p]
    profiles.append(settings.broker)  # `kafka` (Kafka and Apicurio) or `redpanda`
    if settings.broker == "redpanda":
        env["SCHEMA_REGISTRY_PATH"] = settings.registry.path
    if settings.kafka.brokers > 1:
        profiles.append("cluster")
        env["KAFKA_REPLICATION_FACTOR"] = str(settings.kafka.replication_factor)
        env["KAFKA_MIN_INSYNC_REPLICAS"] = str(settings.kafka.min_insync_replicas)
    env["COMPOSE_PROFILES"] = ",".join(dict.fromkeys(profiles))
    # Prometheus's scrape configuration, from the same code as the local stack's, with the compose services' names.
    write_configuration(settings, compose_configuration_path(settings), compose_addresses(settings))
    # The results database's passwords, as the official image and the init service take them.
    passwords = database_passwords(settings, env)
    write_pgpass(settings, passwords)
    env.update({DATABASE_PASSWORDS[role]: password for role, password in passwords.items()})
    if settings.kafka.secure:  # the override file takes every password from these variables
        credentials = stack_credentials(settings, declared_roles(load_security_spec()), env)
        for role, credential in credentials.items():
            env[password_key(role)] = credential.password
        env[CONSOLE_PASSWORD] = stack_secrets(settings, env)[CONSOLE_PASSWORD]
        write_client_files(settings, credentials, ca_pem=None)  # compose's secured Kafka has no TLS
    return env


def compose_files(settings: StackSettings) -> list[str]:
    files = [COMPOSE_FILE, *([SECURE_COMPOSE_FILE] if settings.kafka.secure else [])]
    return [argument for path in files for argument in ("-f", str(path))]


def compose(settings: StackSettings, *args: str) -> int:
    command = [
        "docker",
        "compose",
        "--project-directory",
        str(CHECKOUT_DIR),
        "--env-file",
        str(CONF_DIR / "versions.env"),
        *compose_files(settings),
        *args,
    ]
    return subprocess.call(command, env=compose_environment(settings))
