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
