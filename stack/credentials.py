"""Kafka credentials of the secured mode (SECURE=1 make up): one SCRAM user per role, passwords never in conf/.

The stack's own passwords live in `<STACK_HOME>/secrets/credentials.env` (created on the first secured start with
random passwords, readable by the owner only, outside git like all of .stack/), unless the environment sets
KAFKA_<ROLE>_PASSWORD. For each role a client file `<STACK_HOME>/secrets/<role>.env` is written, which a client
is pointed at with KAFKA_CREDENTIALS_FILE; a client may instead take KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD
from its environment. A client with neither connects without authentication (the default, unsecured stack).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from stack.settings import SettingsError, StackSettings, read_env_file

ROLES = ("admin", "producer", "consumer", "spark")
MECHANISM = "SCRAM-SHA-512"
PROTOCOL = "SASL_PLAINTEXT"


@dataclass(frozen=True)
class Credential:
    username: str
    password: str

    def __repr__(self) -> str:  # never print a password, even in a traceback's locals
        return f"Credential(username={self.username!r}, password=<hidden>)"


def secrets_dir(settings: StackSettings) -> Path:
    return settings.state_dir / "secrets"


def stack_credentials(settings: StackSettings, env: Mapping[str, str] = os.environ) -> dict[str, Credential]:
    """Every role's credential, creating the secrets file with random passwords on first use."""
    path = secrets_dir(settings) / "credentials.env"
    stored = read_env_file(path) if path.exists() else {}
    passwords = {}
    for role in ROLES:
        key = f"KAFKA_{role.upper()}_PASSWORD"
        passwords[key] = env.get(key) or stored.get(key) or secrets.token_urlsafe(24)
    if passwords != {k: stored.get(k) for k in passwords}:
        _write_private(path, "".join(f"{key}={value}\n" for key, value in passwords.items()))
    credentials = {role: Credential(role, passwords[f"KAFKA_{role.upper()}_PASSWORD"]) for role in ROLES}
    for role, credential in credentials.items():
        _write_private(secrets_dir(settings) / f"{role}.env", client_file_text(credential))
    return credentials


def client_file_text(credential: Credential) -> str:
    return (
        f"# Kafka credentials of the '{credential.username}' role: KAFKA_CREDENTIALS_FILE=<this file> <command>\n"
        f"KAFKA_SECURITY_PROTOCOL={PROTOCOL}\nKAFKA_SASL_MECHANISM={MECHANISM}\n"
        f"KAFKA_SASL_USERNAME={credential.username}\nKAFKA_SASL_PASSWORD={credential.password}\n"
    )


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def client_credential(env: Mapping[str, str] = os.environ) -> Credential | None:
    """The calling client's credential: KAFKA_SASL_USERNAME/PASSWORD, else KAFKA_CREDENTIALS_FILE, else none."""
    if env.get("KAFKA_SASL_USERNAME"):
        if not env.get("KAFKA_SASL_PASSWORD"):
            raise SettingsError("KAFKA_SASL_USERNAME is set but KAFKA_SASL_PASSWORD is not")
        return Credential(env["KAFKA_SASL_USERNAME"], env["KAFKA_SASL_PASSWORD"])
    file = env.get("KAFKA_CREDENTIALS_FILE")
    if not file:
        return None
    try:
        values = read_env_file(Path(file))
    except FileNotFoundError:
        raise SettingsError(f"KAFKA_CREDENTIALS_FILE points at {file}, which does not exist "
                            f"(SECURE=1 make up writes one per role under .stack/secrets/)") from None
    if not values.get("KAFKA_SASL_USERNAME") or not values.get("KAFKA_SASL_PASSWORD"):
        raise SettingsError(f"{file} (KAFKA_CREDENTIALS_FILE) lacks KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD")
    return Credential(values["KAFKA_SASL_USERNAME"], values["KAFKA_SASL_PASSWORD"])


def librdkafka_auth(credential: Credential | None, mechanism: str = MECHANISM) -> dict[str, str]:
    """Settings for confluent-kafka clients (producer, consumer, admin); empty without a credential."""
    if credential is None:
        return {}
    return {"security.protocol": PROTOCOL, "sasl.mechanism": mechanism,
            "sasl.username": credential.username, "sasl.password": credential.password}


def client_auth(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The calling client's confluent-kafka settings, from its environment."""
    return librdkafka_auth(client_credential(env))


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jaas_config(credential: Credential) -> str:
    """A Java client's SCRAM login."""
    return (f"org.apache.kafka.common.security.scram.ScramLoginModule required "
            f"username={_quoted(credential.username)} password={_quoted(credential.password)};")


def plain_jaas_config(admin: Credential) -> str:
    """A broker's SASL/PLAIN login as the admin, with the admin as the listener's only PLAIN user."""
    return (f"org.apache.kafka.common.security.plain.PlainLoginModule required "
            f"username={_quoted(admin.username)} password={_quoted(admin.password)} "
            f"user_{admin.username}={_quoted(admin.password)};")


def spark_kafka_auth(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Options for Spark's Kafka source and sink (the `kafka.` prefix passes them to the Java clients)."""
    credential = client_credential(env)
    if credential is None:
        return {}
    return {"kafka.security.protocol": PROTOCOL, "kafka.sasl.mechanism": MECHANISM,
            "kafka.sasl.jaas.config": jaas_config(credential)}
