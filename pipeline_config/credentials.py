"""Kafka credentials of the secured mode (SECURE=1 make up): one SCRAM user per role, passwords never in conf/.

The stack's own passwords live in `<STACK_HOME>/secrets/credentials.env` (created on the first secured start with
random passwords, readable by the owner only, outside git like all of .stack/), unless the environment sets
KAFKA_<ROLE>_PASSWORD. For each role a client file `<STACK_HOME>/secrets/<role>.env` is written, which a client
is pointed at with KAFKA_CREDENTIALS_FILE; a client may instead take KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and
KAFKA_SSL_CA_LOCATION from its environment. A client with neither connects without authentication or TLS (the
default, unsecured stack).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline_config.settings import METRICS_ROLE, READER_ROLE, WRITER_ROLE, SettingsError, StackSettings, read_env_file

ADMIN_ROLE = "admin"  # the brokers' own user; the other roles are those conf/security.yaml declares
CONSOLE_ROLE = "console"  # the web console's read-only login (declared in conf/security.yaml like the others)
MECHANISM = "SCRAM-SHA-512"
PROTOCOL = "SASL_SSL"  # SASL logins over TLS (stack/tls.py makes the certificates)


@dataclass(frozen=True)
class Credential:
    username: str
    password: str

    def __repr__(self) -> str:  # never print a password, even in a traceback's locals
        return f"Credential(username={self.username!r}, password=<hidden>)"


def secrets_dir(settings: StackSettings) -> Path:
    return settings.state_dir / "secrets"


@dataclass(frozen=True)
class ClientLogin:
    """How one client connects to the secured stack: its credential, over TLS trusting the stack's CA."""

    credential: Credential
    ca_location: str | None = None
    protocol: str = PROTOCOL


TLS_PASSWORD = "KAFKA_TLS_PASSWORD"  # of the broker's key store (stack/tls.py)
TLS_CA_PASSWORD = "KAFKA_TLS_CA_PASSWORD"  # of the certificate authority's key store, a secret of its own
CONSOLE_PASSWORD = "CONSOLE_PASSWORD"  # of the web console's own login on the secured stack (console/login.py)
# The results database's superuser (the stack's own), writer, reader and metrics roles.
DATABASE_PASSWORDS = {
    "postgres": "POSTGRES_PASSWORD",
    WRITER_ROLE: "RESULTS_WRITER_PASSWORD",
    READER_ROLE: "RESULTS_READER_PASSWORD",
    METRICS_ROLE: "RESULTS_METRICS_PASSWORD",
}


def password_key(role: str) -> str:
    return f"KAFKA_{role.upper()}_PASSWORD"


def stack_secrets(
    settings: StackSettings, env: Mapping[str, str] = os.environ, roles: tuple[str, ...] = (ADMIN_ROLE,)
) -> dict[str, str]:
    """KAFKA_<ROLE>_PASSWORD for the roles, the TLS key stores' and the console's passwords: from the environment,
    else from `<STACK_HOME>/secrets/credentials.env`, else new random ones, written there for next time (with the
    stored secrets of other roles kept)."""
    keys = [password_key(role) for role in roles] + [TLS_PASSWORD, TLS_CA_PASSWORD, CONSOLE_PASSWORD]
    return stored_secrets(settings, keys, env)


def stored_secrets(settings: StackSettings, keys: list[str], env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Each key's secret: from the environment, else from `<STACK_HOME>/secrets/credentials.env`, else a new random
    one, written there for next time (with the other stored secrets kept)."""
    path = secrets_dir(settings) / "credentials.env"
    stored = read_env_file(path) if path.exists() else {}
    values = {key: env.get(key) or stored.get(key) or secrets.token_urlsafe(24) for key in keys}
    merged = {**stored, **values}
    if merged != stored:
        write_private(path, "".join(f"{key}={value}\n" for key, value in merged.items()))
    else:
        _make_private(path)  # a secret file made or loosened by hand is made private again
    return values


def stack_credentials(
    settings: StackSettings, roles: tuple[str, ...] = (ADMIN_ROLE,), env: Mapping[str, str] = os.environ
) -> dict[str, Credential]:
    """The credential of each role (see stack_secrets)."""
    values = stack_secrets(settings, env, roles)
    return {role: Credential(role, values[password_key(role)]) for role in roles}


def write_client_files(settings: StackSettings, credentials: dict[str, Credential], ca_pem: Path | None) -> None:
    """<STACK_HOME>/secrets/<role>.env for each role, what KAFKA_CREDENTIALS_FILE points a client at; without a
    CA certificate (the Docker stack) the login goes over SASL_PLAINTEXT."""
    for credential in credentials.values():
        write_private(secrets_dir(settings) / f"{credential.username}.env", client_file_text(credential, ca_pem))


def client_file_text(credential: Credential, ca_pem: Path | None) -> str:
    transport = (
        f"KAFKA_SECURITY_PROTOCOL={PROTOCOL}\nKAFKA_SSL_CA_LOCATION={ca_pem}\n"
        if ca_pem
        else "KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT\n"
    )
    return (
        f"# Kafka login of the '{credential.username}' role: KAFKA_CREDENTIALS_FILE=<this file> <command>\n"
        f"{transport}KAFKA_SASL_MECHANISM={MECHANISM}\n"
        f"KAFKA_SASL_USERNAME={credential.username}\nKAFKA_SASL_PASSWORD={credential.password}\n"
    )


def private_dir(folder: Path) -> Path:
    """A folder of secrets, created or not: 0700 (mkdir's mode applies only to a folder it creates)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    return folder


def _make_private(path: Path) -> None:
    private_dir(path.parent)
    if path.exists():
        path.chmod(0o600)


def write_private(path: Path, text: str) -> None:
    """A secret file, 0600 whether it existed or not (os.open's mode applies only to a file it creates)."""
    private_dir(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def client_login(env: Mapping[str, str] = os.environ) -> ClientLogin | None:
    """The calling client's login: KAFKA_SASL_USERNAME/PASSWORD (with KAFKA_SSL_CA_LOCATION), else the file
    KAFKA_CREDENTIALS_FILE names, else none (the unsecured stack)."""
    values: Mapping[str, str] = env
    if not env.get("KAFKA_SASL_USERNAME") and env.get("KAFKA_CREDENTIALS_FILE"):
        file = env["KAFKA_CREDENTIALS_FILE"]
        try:
            values = read_env_file(Path(file))
        except FileNotFoundError:
            raise SettingsError(
                f"KAFKA_CREDENTIALS_FILE points at {file}, which does not exist "
                f"(SECURE=1 make up writes one per role under .stack/secrets/)"
            ) from None
    if not values.get("KAFKA_SASL_USERNAME"):
        return None
    if not values.get("KAFKA_SASL_PASSWORD"):
        raise SettingsError(
            "KAFKA_SASL_USERNAME is set but KAFKA_SASL_PASSWORD is not "
            "(in the environment or the KAFKA_CREDENTIALS_FILE)"
        )
    return ClientLogin(
        Credential(values["KAFKA_SASL_USERNAME"], values["KAFKA_SASL_PASSWORD"]),
        values.get("KAFKA_SSL_CA_LOCATION") or None,
        values.get("KAFKA_SECURITY_PROTOCOL") or PROTOCOL,
    )


def librdkafka_auth(login: ClientLogin | None, mechanism: str = MECHANISM) -> dict[str, str]:
    """Settings for confluent-kafka clients (producer, consumer, admin); empty without a login."""
    if login is None:
        return {}
    config = {
        "security.protocol": login.protocol,
        "sasl.mechanism": mechanism,
        "sasl.username": login.credential.username,
        "sasl.password": login.credential.password,
    }
    if login.ca_location:
        config["ssl.ca.location"] = login.ca_location
    return config


def client_auth(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The calling client's confluent-kafka settings, from its environment."""
    return librdkafka_auth(client_login(env))


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jaas_config(credential: Credential) -> str:
    """A Java client's SCRAM login."""
    return (
        f"org.apache.kafka.common.security.scram.ScramLoginModule required "
        f"username={_quoted(credential.username)} password={_quoted(credential.password)};"
    )


def plain_jaas_config(admin: Credential) -> str:
    """A broker's SASL/PLAIN login as the admin, with the admin as the listener's only PLAIN user."""
    return (
        f"org.apache.kafka.common.security.plain.PlainLoginModule required "
        f"username={_quoted(admin.username)} password={_quoted(admin.password)} "
        f"user_{admin.username}={_quoted(admin.password)};"
    )


def spark_kafka_auth(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Options for Spark's Kafka source and sink (the `kafka.` prefix passes them to the Java clients). The CA
    certificate goes inline, so executors on other machines need no file of it."""
    login = client_login(env)
    if login is None:
        return {}
    options = {
        "kafka.security.protocol": login.protocol,
        "kafka.sasl.mechanism": MECHANISM,
        "kafka.sasl.jaas.config": jaas_config(login.credential),
    }
    if login.ca_location:
        options["kafka.ssl.truststore.type"] = "PEM"
        options["kafka.ssl.truststore.certificates"] = Path(login.ca_location).read_text()
    return options


def database_passwords(settings: StackSettings, env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The password of each role of the results database (superuser `postgres`, writer, reader), kept with the
    stack's other secrets."""
    values = stored_secrets(settings, list(DATABASE_PASSWORDS.values()), env)
    return {role: values[key] for role, key in DATABASE_PASSWORDS.items()}


def pgpass_path(settings: StackSettings) -> Path:
    """The libpq password file of the local results database: clients find it through PGPASSFILE."""
    return secrets_dir(settings) / "pgpass"


def write_pgpass(settings: StackSettings, passwords: Mapping[str, str]) -> Path:
    """One `host:port:database:role:password` line per role (libpq's own format, read by psql and psycopg alike)."""
    postgres = settings.postgres
    # Any host name (127.0.0.1, localhost, a tunnel), this port and any database.
    lines = [f"*:{postgres.port}:*:{role}:{password}\n" for role, password in passwords.items()]
    path = pgpass_path(settings)
    write_private(path, "".join(lines))
    return path
