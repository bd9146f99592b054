"""Pull queries: a SELECT over the results tables, answered as a table of rows, read-only, bounded in rows and in
time (what `make query`, the web console's results view and the notebook run)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from pipeline_config.errors import CannotRunError
from results.database import ResultsDatabaseError, connect


class QueryRefusedError(CannotRunError):
    """The statement is wrong for the database (syntax, unknown name, not read-only): bad input, exit 2."""


@dataclass(frozen=True)
class PullResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool  # more rows matched than max_rows


def pull(
    url: str,
    statement: str,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
    max_rows: int = 1000,
    timeout_s: float = 10.0,
    schema: str = "results",
) -> PullResult:
    """Run one statement in a read-only transaction with a statement timeout; the results schema comes first
    on the search path, so `SELECT * FROM vendor_counts` needs no prefix. A statement the database refuses (a
    typo, a write, a timeout) is a ResultsDatabaseError with the database's own message."""
    options = f"-c statement_timeout={int(timeout_s * 1000)} -c default_transaction_read_only=on"
    with connect(url, options=options) as connection:
        connection.read_only = True
        try:
            connection.execute("SELECT set_config('search_path', %s, false)", (f"{schema}, public",))
            cursor = connection.execute(statement, params)
            if cursor.description is None:
                return PullResult([], [], False)
            rows = cursor.fetchmany(max_rows + 1)
        except psycopg.OperationalError as exc:  # a timeout, the connection lost
            raise ResultsDatabaseError(f"the results database failed the query: {str(exc).strip()}") from None
        except psycopg.errors.UndefinedTable as exc:
            raise QueryRefusedError(
                f"the results database refused the query: {str(exc).strip()}\n(schema {schema}: a job creates its "
                f"tables when it starts with postgres among its sinks, e.g. `make stream`)"
            ) from None
        except psycopg.Error as exc:  # the query itself: a typo, a write
            raise QueryRefusedError(f"the results database refused the query: {str(exc).strip()}") from None
        return PullResult([column.name for column in cursor.description], rows[:max_rows], len(rows) > max_rows)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Rows as aligned text columns under their names; null as '-', times to the minute."""
    values = [[cell_text(value) for value in row] for row in rows]
    widths = [
        max(len(name), *(len(row[i]) for row in values)) if values else len(name) for i, name in enumerate(columns)
    ]
    lines = ["  ".join(name.ljust(width) for name, width in zip(columns, widths, strict=True))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in values]
    return "\n".join(lines)


def cell_text(value: Any) -> str:
    if value is None:
        return "-"
    if hasattr(value, "strftime"):  # datetime, date, pandas Timestamp
        return str(value.strftime("%Y-%m-%d %H:%M"))
    return str(value)
