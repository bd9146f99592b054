"""Exactly-once writes of a micro-batch: its rows and the record that the batch is done, in one transaction.

Spark runs a micro-batch again after a crash between our commit and its own checkpoint commit. The batch's record
(query id, table, batch id) is inserted first, in the same transaction as the rows: a batch already recorded
changes nothing, a batch whose transaction did not commit left nothing behind. The query id is the one Spark keeps
in the checkpoint, so a fresh checkpoint (batch ids from 0 again) is a new query, not a replay.

The rows arrive as CSV lines (made by Spark on the executors) and go in with COPY into a temporary table, merged
into the result table by one INSERT ... ON CONFLICT: upsert tables keep the latest value per key, append tables
each key once (an append table without a key takes the batch's rows as they are).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from results.tables import BATCHES_TABLE, TableSpec

# Where a test may stop the writer (PIPELINE_CRASH_POINT; see jobs/crash_points.py): inside the transaction with
# the rows written, and right after the commit, before Spark records the batch in its checkpoint.
BEFORE_COMMIT = "before_db_commit"
AFTER_COMMIT = "after_db_commit"


@dataclass(frozen=True)
class BatchWrite:
    table: str
    batch_id: int
    rows: int  # rows inserted or updated
    replayed: bool  # the batch was committed before: nothing was written


def write_batch(
    connection: psycopg.Connection,
    schema: str,
    table: TableSpec,
    query_id: str,
    query_name: str,
    batch_id: int,
    csv_lines: Iterable[str],
    reached: Callable[[str], None] = lambda point: None,
) -> BatchWrite:
    target = sql.Identifier(schema, table.name)
    columns = sql.SQL(", ").join(map(sql.Identifier, table.column_names))
    with connection.transaction():
        recorded = connection.execute(
            sql.SQL(
                "INSERT INTO {} (query_id, table_name, batch_id, query_name, rows) VALUES (%s, %s, %s, %s, 0) "
                "ON CONFLICT DO NOTHING RETURNING 1"
            ).format(sql.Identifier(schema, BATCHES_TABLE)),
            (query_id, table.name, batch_id, query_name),
        ).fetchone()
        if recorded is None:
            return BatchWrite(table.name, batch_id, 0, replayed=True)
        connection.execute(sql.SQL("CREATE TEMP TABLE staged (LIKE {}) ON COMMIT DROP").format(target))
        with (
            connection.cursor() as cursor,
            cursor.copy(sql.SQL("COPY staged ({}) FROM STDIN (FORMAT csv)").format(columns)) as copy,
        ):
            for line in csv_lines:
                copy.write(line)
                copy.write("\n")
        rows = connection.execute(_merge(schema, table)).rowcount
        connection.execute(
            sql.SQL("UPDATE {} SET rows = %s WHERE query_id = %s AND table_name = %s AND batch_id = %s").format(
                sql.Identifier(schema, BATCHES_TABLE)
            ),
            (rows, query_id, table.name, batch_id),
        )
        reached(BEFORE_COMMIT)
    reached(AFTER_COMMIT)
    return BatchWrite(table.name, batch_id, rows, replayed=False)


def _merge(schema: str, table: TableSpec) -> sql.Composed:
    columns = sql.SQL(", ").join(map(sql.Identifier, table.column_names))
    if not table.key:  # an append table without a key: the batch record alone keeps a replay out
        return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM staged").format(
            sql.Identifier(schema, table.name), columns, columns
        )
    constraint = sql.Identifier(f"{table.name}_key")
    action: sql.Composable
    if table.write == "append" or not table.value_columns:
        action = sql.SQL("DO NOTHING")
    else:
        action = sql.SQL("DO UPDATE SET {}").format(
            sql.SQL(", ").join(
                sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(name), sql.Identifier(name))
                for name in table.value_columns
            )
        )
    return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM staged ON CONFLICT ON CONSTRAINT {} {}").format(
        sql.Identifier(schema, table.name), columns, columns, constraint, action
    )
