"""Reading what a job wrote to the results database, as a pull query does (the read-only role)."""

from __future__ import annotations

import os
from typing import Any

from pipeline_config.credentials import pgpass_path
from pipeline_config.settings import StackSettings
from results.pull import pull


def use_stack_logins(settings: StackSettings) -> None:
    """This process logs in to the results database with the stack's logins, as `make query` does."""
    os.environ.setdefault("PGPASSFILE", str(pgpass_path(settings)))


def table_rows(settings: StackSettings, schema: str, statement: str) -> list[dict[str, Any]]:
    """Every row the statement returns from the schema's tables, as dicts by column name."""
    use_stack_logins(settings)
    result = pull(settings.postgres.reader_url, statement, schema=schema, max_rows=10_000_000, timeout_s=60)
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def iso(moment) -> str:
    """A timestamptz as the batch answers key windows: '2020-10-01T00:05:00Z'."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def vendor_counts_table(settings: StackSettings, schema: str) -> dict[str, dict[str, Any]]:
    """The vendor_counts table keyed and shaped as the batch answers are (tests/jobs/batch_answers.py)."""
    return {
        f"{row['window_kind']}|{iso(row['window_start'])}|{'null' if row['vendor_id'] is None else row['vendor_id']}": {
            "window_end": iso(row["window_end"]),
            "rides": row["rides"],
            "passengers": row["passengers"],
            "revenue": row["revenue"],
        }
        for row in table_rows(settings, schema, "SELECT * FROM vendor_counts")
    }
