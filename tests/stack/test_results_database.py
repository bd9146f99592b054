"""The results database of the stack, for real: the server, its roles, migrations and pull queries."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid

import psutil
import psycopg
import pytest
from psycopg import sql

from pipeline_config.credentials import pgpass_path
from results.database import ResultsDatabaseError, connect, migrate
from results.pull import QueryRefusedError, pull
from results.tables import TableSpec
from results.writes import write_batch
from stack.lifecycle import status
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.stack


def test_the_server_is_healthy_runs_unprivileged_and_its_logins_are_private(local_stack):
    row = next(row for row in status(local_stack) if row.name == "postgres")
    assert row.health == "healthy" and row.address == "postgresql://127.0.0.1:5432/pipeline"
    if os.geteuid() == 0:  # PostgreSQL refuses root: the stack ran it as the unprivileged user
        assert psutil.Process(row.pid).username() == local_stack.postgres.os_user
    mode = stat.S_IMODE(pgpass_path(local_stack).stat().st_mode)
    assert mode == 0o600


def test_a_migration_creates_then_adds_a_column_and_refuses_a_changed_type(local_stack, results_schema):
    table = TableSpec(name="t", job="j", write="upsert", key=("k",), columns={"k": "integer not null", "v": "bigint"})
    wider = table.model_copy(update={"columns": {**table.columns, "note": "text"}})
    retyped = table.model_copy(update={"columns": {"k": "integer not null", "v": "numeric(14,2)"}})
    with connect(local_stack.postgres.url) as connection:
        assert migrate(connection, results_schema, [table]) == [f"created {results_schema}.t"]
        assert migrate(connection, results_schema, [table]) == []  # idempotent
        assert migrate(connection, results_schema, [wider]) == [f"added {results_schema}.t.note text"]
        with pytest.raises(ResultsDatabaseError, match=r"t\.v is bigint in the database but numeric\(14,2\)"):
            migrate(connection, results_schema, [retyped])


def test_a_keyless_append_table_takes_each_batch_once(local_stack, results_schema):
    table = TableSpec(name="events", job="j", write="append", columns={"n": "integer", "note": "text"})
    lines = ["1,a", "1,a", ',""']  # duplicate rows are the result's own; a null and an empty string
    with connect(local_stack.postgres.url) as connection:
        migrate(connection, results_schema, [table])
        first = write_batch(connection, results_schema, table, str(uuid.uuid4()), "q", 0, lines)
        query_id = connection.execute(
            sql.SQL("SELECT query_id FROM {}.committed_batches").format(sql.Identifier(results_schema))
        ).fetchone()
        assert query_id is not None
        replay = write_batch(connection, results_schema, table, str(query_id[0]), "q", 0, ["9,z"])
        rows = connection.execute(
            sql.SQL("SELECT n, note FROM {}.events ORDER BY n").format(sql.Identifier(results_schema))
        ).fetchall()
    assert (first.rows, first.replayed, replay.replayed) == (3, False, True)
    assert rows == [(1, "a"), (1, "a"), (None, "")]


def test_pull_queries_are_read_only_bounded_and_timed(local_stack, results_schema):
    with connect(local_stack.postgres.url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(results_schema)))
        connection.execute(
            sql.SQL("CREATE TABLE {}.n AS SELECT generate_series(1, 50) AS i").format(sql.Identifier(results_schema))
        )
    reader = local_stack.postgres.reader_url
    result = pull(reader, "SELECT i FROM n ORDER BY i", max_rows=10, schema=results_schema)
    assert result.rows == [(i,) for i in range(1, 11)] and result.truncated
    with pytest.raises(QueryRefusedError, match="read-only transaction"):
        pull(reader, "DELETE FROM n", schema=results_schema)
    with pytest.raises(ResultsDatabaseError, match="statement timeout"):
        pull(reader, "SELECT pg_sleep(3)", timeout_s=0.5, schema=results_schema)
    # The reader role itself is read-only, whatever a client asks.
    with psycopg.connect(reader, autocommit=True) as connection, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        connection.execute(sql.SQL("DELETE FROM {}.n").format(sql.Identifier(results_schema)))


def test_make_query_prints_a_table_and_refuses_bad_sql_with_exit_2(local_stack):
    ok = subprocess.run(
        [sys.executable, "-m", "results", "query", "SELECT 1 AS one, 'x' AS two"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == ["one  two", "1    x  ", "(1 row)"]
    bad = subprocess.run(
        [sys.executable, "-m", "results", "query", "SELEC 1"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and 'syntax error at or near "SELEC"' in bad.stderr
