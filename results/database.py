"""Reaching the results database: connections that name the address when they fail, and the schema migration a
job runs before its queries start."""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pipeline_config.errors import CannotRunError, PipelineError
from results.tables import BATCHES_TABLE, TableSpec

CONNECT_TIMEOUT_S = 5


class ResultsDatabaseError(PipelineError):
    """The results database failed or refused while the pipeline ran; the message names it and what it said."""


class ResultsDatabaseUnreachableError(CannotRunError):
    """The results database does not answer, or refuses the login, before anything started (exit 2)."""


def address(url: str) -> str:
    """host:port/database of a libpq URL, with the role but never a password, for messages."""
    parts = conninfo_to_dict(url)
    host, port = parts.get("host", "localhost"), parts.get("port", "5432")
    return f"{parts.get('user', '?')}@{host}:{port}/{parts.get('dbname', '?')}"


def connect(url: str, **options: object) -> psycopg.Connection:
    """A connection (password from PGPASSFILE), or ResultsDatabaseUnreachableError naming the address and the
    reason, with the fix for the local stack."""
    try:
        return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, **options)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else exc.__class__.__name__
        raise ResultsDatabaseUnreachableError(
            f"the results database {address(url)} cannot be reached: {reason}. "
            "On the local stack `make up` starts it (its logins are in .stack/secrets/pgpass, PGPASSFILE); "
            "elsewhere set RESULTS_DATABASE_URL, or leave postgres out of the job's sinks"
        ) from None


def migrate(connection: psycopg.Connection, schema: str, tables: list[TableSpec]) -> list[str]:
    """Create the schema, the committed-batches table and the tables if they are missing, and add the columns a
    table lacks; a column whose type differs from the declaration is refused, never rewritten. One transaction,
    under a lock, so that jobs starting together do not race. Returns what was changed."""
    changes: list[str] = []
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"results-migration:{schema}",))
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        connection.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (query_id uuid NOT NULL, table_name text NOT NULL, "
                "batch_id bigint NOT NULL, query_name text NOT NULL, rows bigint NOT NULL, "
                "committed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (query_id, table_name, batch_id))"
            ).format(sql.Identifier(schema, BATCHES_TABLE))
        )
        for table in tables:
            existing = _column_types(connection, schema, table.name)
            if not existing:
                connection.execute(table.create_statement(schema))
                changes.append(f"created {schema}.{table.name}")
                continue
            declared = _declared_types(connection, table)
            for name, kind in declared.items():
                if name not in existing:
                    # Added without NOT NULL: the rows already there have no value for it.
                    plain = table.columns[name].lower().replace("not null", "").strip()
                    connection.execute(
                        sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                            sql.Identifier(schema, table.name), sql.Identifier(name), sql.SQL(plain)
                        )
                    )
                    changes.append(f"added {schema}.{table.name}.{name} {kind}")
                elif existing[name] != kind:
                    raise ResultsDatabaseError(
                        f"{schema}.{table.name}.{name} is {existing[name]} in the database but {kind} in "
                        f"{table.declared_in}: migrate it by hand, or write to a new schema (--results-schema)"
                    )
    return changes


def _column_types(connection: psycopg.Connection, schema: str, table: str) -> dict[str, str]:
    rows = connection.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped",
        (schema, table),
    ).fetchall()
    return {name: kind for name, kind in rows}


def _declared_types(connection: psycopg.Connection, table: TableSpec) -> dict[str, str]:
    """The declared types as PostgreSQL spells them (timestamptz is `timestamp with time zone`), read from a
    temporary table of the declaration: the server is the one authority on its type names."""
    scratch = f"declared_{table.name}"
    connection.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(sql.Identifier(scratch)))
    connection.execute(
        sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(
            sql.Identifier(scratch),
            sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind.lower().replace("not null", "")))
                for name, kind in table.columns.items()
            ),
        )
    )
    schema = connection.execute("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()").fetchone()
    assert schema is not None
    return _column_types(connection, schema[0], scratch)
