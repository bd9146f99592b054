"""The results table of a SQL-over-streams statement, made from its result's Spark schema: names, types, key and
kind of write, and the results that cannot be a table refused with the reason."""

from __future__ import annotations

import pytest
from pyspark.sql.types import (
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from jobs.sql_result_table import result_table
from jobs.sql_statement import StatementError, parse_statement

NAMES = ["rides"]


def _statement(text: str):
    return parse_statement(text, "q.sql", NAMES)


def test_a_table_is_upserted_by_its_key_with_postgres_types():
    statement = _statement("CREATE TABLE per_zone WITH (KEY = 'window_start, PULocationID') AS SELECT 1 FROM rides")
    schema = StructType(
        [
            StructField("window_start", TimestampType(), False),
            StructField("PULocationID", IntegerType(), True),
            StructField("rides", LongType(), False),
            StructField("revenue", DecimalType(14, 2), True),
            StructField("longest", DoubleType(), True),
            StructField("zone", StringType(), True),
        ]
    )
    table = result_table(statement, schema, "q.sql")
    assert (table.name, table.write, table.key) == ("per_zone", "upsert", ("window_start", "pu_location_id"))
    assert table.columns == {
        "window_start": "timestamptz not null",
        "pu_location_id": "integer",
        "rides": "bigint not null",
        "revenue": "numeric(14,2)",
        "longest": "double precision",
        "zone": "text",
    }
    assert table.declared_in == "q.sql"


def test_a_stream_is_appended_with_or_without_a_key():
    schema = StructType([StructField("ride_id", StringType(), False)])
    keyed = result_table(_statement("CREATE STREAM s WITH (KEY = 'ride_id') AS SELECT 1 FROM rides"), schema, "q")
    assert (keyed.write, keyed.key) == ("append", ("ride_id",))
    keyless = result_table(_statement("CREATE STREAM s AS SELECT 1 FROM rides"), schema, "q")
    assert (keyless.write, keyless.key) == ("append", ())
    assert "CONSTRAINT" not in keyless.create_statement("results").as_string(None)


def test_results_that_cannot_be_a_table_are_refused_with_the_reason():
    statement = _statement("CREATE STREAM s AS SELECT 1 FROM rides")
    window = StructType([StructField("start", TimestampType()), StructField("end", TimestampType())])
    with pytest.raises(StatementError, match=r"q.sql: column window is struct<start:timestamp,end:timestamp>.*window"):
        result_table(statement, StructType([StructField("window", window)]), "q.sql")
    with pytest.raises(StatementError, match=r"column 'count\(1\)' cannot name a table column; give it an alias"):
        result_table(statement, StructType([StructField("count(1)", LongType())]), "q.sql")
    with pytest.raises(StatementError, match="two result columns are both ride_id"):
        result_table(
            statement, StructType([StructField("ride_id", LongType()), StructField("rideId", LongType())]), "q"
        )
    with pytest.raises(StatementError, match="vendor_counts is already a table of the pipeline"):
        result_table(_statement("CREATE STREAM vendor_counts AS SELECT 1 FROM rides"), StructType([]), "q")
