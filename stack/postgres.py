"""The results database: a PostgreSQL server of Debian's `postgresql` package, run as a plain local process.

Its data folder is `<state>/data/postgres`, made by initdb on the first start with the stack's own superuser
password; logins are by password (SCRAM) over TCP on 127.0.0.1 only. PostgreSQL refuses to run as root, so when
the stack is started by root (as in CI) initdb and the server run as an unprivileged user (postgres.os_user,
the `postgres` user the package creates) through setpriv, which execs the server in place: the PID the stack
keeps is the server's own.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from pipeline_config.credentials import database_passwords, write_pgpass
from pipeline_config.settings import METRICS_ROLE, READER_ROLE, WRITER_ROLE, StackSettings
from stack.service import Service, StackError

SUPERUSER = "postgres"


def postgres_bin_dir(settings: StackSettings) -> Path:
    """Where initdb and postgres are: the setting, the PATH, or the newest of Debian's versioned folders."""
    if settings.postgres.bin_dir:
        return Path(settings.postgres.bin_dir)
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if versions:
        return versions[-1].parent
    raise StackError(
        "PostgreSQL's server (initdb, postgres) was not found: install it (Debian: apt-get install postgresql), "
        "or set postgres.bin_dir in conf/stack.yaml, or POSTGRES=0 make up to run without the results database"
    )


@dataclass
class PostgresServer(Service):
    @property
    def stop_signal(self) -> int:
        return signal.SIGINT  # "fast" shutdown: SIGTERM would wait for every client to disconnect

    @property
    def ports(self) -> list[int]:
        return [self.settings.postgres.port]

    @property
    def address(self) -> str:
        return f"postgresql://127.0.0.1:{self.settings.postgres.port}/{self.settings.postgres.database}"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def _run_as(self) -> list[str]:
        """The command prefix that drops root to the unprivileged user; nothing when not root."""
        if os.geteuid() != 0:
            return []
        user = self.settings.postgres.os_user
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise StackError(
                f"PostgreSQL refuses to run as root, and the user {user!r} it would run as does not exist: "
                f"install Debian's postgresql package (it creates the user), or `useradd --system {user}`, or "
                f"set postgres.os_user in conf/stack.yaml"
            ) from None
        return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]

    def _give_to_server_user(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(self.settings.postgres.os_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def prepare(self) -> None:
        passwords = database_passwords(self.settings)
        write_pgpass(self.settings, passwords)
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._give_to_server_user(self.data_dir)
        password_file = self.data_dir / "initdb-password"
        password_file.write_text(passwords[SUPERUSER] + "\n")
        password_file.chmod(0o600)
        self._give_to_server_user(password_file)
        command = [
            *self._run_as(),
            str(postgres_bin_dir(self.settings) / "initdb"),
            f"--pgdata={self.pgdata}",
            f"--username={SUPERUSER}",
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ]
        try:
            result = subprocess.run(command, capture_output=True, text=True)
        finally:
            password_file.unlink(missing_ok=True)
        if result.returncode != 0:
            shutil.rmtree(self.pgdata, ignore_errors=True)
            raise StackError(
                f"initdb failed for {self.pgdata} (as {self.settings.postgres.os_user if self._run_as() else 'you'}):"
                f"\n{(result.stderr or result.stdout)[-2000:]}\nEvery folder above it must be readable by that user."
            )

    def command(self) -> list[str]:
        postgres = self.settings.postgres
        return [
            *self._run_as(),
            str(postgres_bin_dir(self.settings) / "postgres"),
            "-D",
            str(self.pgdata),
            "-p",
            str(postgres.port),
            "-c",
            f"listen_addresses={self.settings.bind_host}",
            "-c",
            "unix_socket_directories=",  # TCP only: no socket file in /var/run that root would have to make
            "-c",
            f"shared_buffers={postgres.shared_buffers}",
            "-c",
            f"max_connections={postgres.max_connections}",
            "-c",
            "timezone=UTC",  # what a session shows times in unless it asks otherwise
        ]

    def _superuser_connection(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            host=self.settings.postgres.host,
            port=self.settings.postgres.port,
            dbname=dbname,
            user=SUPERUSER,
            password=database_passwords(self.settings)[SUPERUSER],
            connect_timeout=3,
            autocommit=True,
        )

    def health(self) -> str | None:
        try:
            with self._superuser_connection() as connection:
                connection.execute("SELECT 1")
        except psycopg.OperationalError as exc:
            return f"no answer ({str(exc).strip().splitlines()[-1] if str(exc).strip() else 'refused'})"
        return None

    def initialize(self) -> str:  # also run by the compose stack's one-shot init (`python -m stack init`)
        """The results database, its writer, read-only and statistics roles with the stack's passwords (set again on every
        start, so that a password changed in credentials.env takes effect); what the reader may see."""
        passwords = database_passwords(self.settings)
        database = self.settings.postgres.database
        with self._superuser_connection() as connection:
            for role in (WRITER_ROLE, READER_ROLE, METRICS_ROLE):
                if connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
                    connection.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
                connection.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(passwords[role]))
                )
            # The exporter reads PostgreSQL's statistics views (pg_monitor), none of the results.
            connection.execute(sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier(METRICS_ROLE)))
            # The reader's sessions are read-only and bounded, whatever the client asks.
            connection.execute(
                sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(sql.Identifier(READER_ROLE))
            )
            connection.execute(
                sql.SQL("ALTER ROLE {} SET statement_timeout = '30s'").format(sql.Identifier(READER_ROLE))
            )
            if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is None:
                connection.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(WRITER_ROLE))
                )
        with self._superuser_connection(database) as connection:
            connection.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
            connection.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(database), sql.Identifier(READER_ROLE)
                )
            )
            # Whatever schema and table the writer makes (jobs make them as they start), the reader may read.
            for objects, privilege in (("SCHEMAS", "USAGE"), ("TABLES", "SELECT")):
                connection.execute(
                    sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT {} ON {} TO {}").format(
                        sql.Identifier(WRITER_ROLE), sql.SQL(privilege), sql.SQL(objects), sql.Identifier(READER_ROLE)
                    )
                )
        return f"database {database}, roles {WRITER_ROLE} (writes), {READER_ROLE} (reads), {METRICS_ROLE} (statistics)"
