"""The rows a result writes to its table: the declared columns by their snake-case names, as CSV lines that
PostgreSQL's COPY reads back to the same values."""

from __future__ import annotations

import csv
from datetime import datetime
from decimal import Decimal

import pytest

from jobs.result_sinks import csv_lines
from results.database import ResultsDatabaseError
from results.tables import TableSpec

TABLE = TableSpec(
    name="t",
    job="j",
    write="upsert",
    key=("window_start", "pu_location_id"),
    columns={
        "window_start": "timestamptz not null",
        "pu_location_id": "integer not null",
        "zone": "text",
        "revenue": "numeric(14,2)",
        "ok": "boolean",
    },
)


def test_rows_become_csv_lines_with_utc_times_quoted_text_and_null_apart_from_empty(spark):
    df = spark.createDataFrame(
        [
            (datetime(2020, 10, 1, 0, 5), 7, 'a "quoted", zone ', Decimal("12.30"), True, "unused"),
            (datetime(2020, 10, 1, 1, 0), 8, "", None, None, "unused"),
            (datetime(2020, 10, 1, 2, 0), 9, None, Decimal("0.00"), False, "unused"),
        ],
        "window_start timestamp, PULocationID int, zone string, revenue decimal(14,2), ok boolean, other string",
    )
    lines = [row.line for row in csv_lines(df, TABLE).collect()]
    assert lines == [
        '2020-10-01T00:05:00.000000Z,7,"a ""quoted"", zone ",12.30,true',
        '2020-10-01T01:00:00.000000Z,8,"",,',
        "2020-10-01T02:00:00.000000Z,9,,0.00,false",
    ]
    # What COPY (FORMAT csv) reads: quoted empty is an empty string, unquoted empty is null.
    assert next(csv.reader([lines[0]]))[2] == 'a "quoted", zone '


def test_a_result_that_lacks_a_declared_column_is_refused_naming_it(spark):
    df = spark.createDataFrame([(datetime(2020, 10, 1), 7)], "window_start timestamp, PULocationID int")
    with pytest.raises(ResultsDatabaseError, match=r"table t of conf/results.yaml has column.s. zone, revenue, ok"):
        csv_lines(df, TABLE)
