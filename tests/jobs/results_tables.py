"""Reading what a job wrote to the results database, as a pull query does (the read-only role)."""

from __future__ import annotations

from typing import Any

from pipeline_config.settings import StackSettings
from results.pull import pull


def table_rows(settings: StackSettings, schema: str, statement: str) -> list[dict[str, Any]]:
    """Every row the statement returns from the schema's tables, as dicts by column name."""
    result = pull(settings.postgres.reader_url, statement, schema=schema, max_rows=10_000_000, timeout_s=60)
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def iso(moment) -> str:
    """A timestamptz as the batch answers key windows: '2020-10-01T00:05:00Z'."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
