"""The SQL-over-streams statement: what the runner reads around the SELECT, what it refuses, and the record key
of a result row."""

from __future__ import annotations

import datetime

import pytest
from chispa import assert_column_equality

from jobs.sql_statement import StatementError, parse_statement
from jobs.stream_sql import load_statement_settings, record_key
from tests.paths import REPO_ROOT

NAMES = ["rides", "green_rides", "zones"]


def test_a_table_with_key_and_partitions():
    statement = parse_statement(
        "-- Rides per zone.\n-- second line\nCREATE TABLE per_zone\nWITH (KEY = 'window_start, PULocationID', "
        "PARTITIONS = 6)\nAS SELECT window.start AS window_start, PULocationID, count(*) AS rides FROM green_rides "
        "GROUP BY window(pickup_datetime, '1 hour'), PULocationID;\n",
        "q.sql",
        NAMES,
    )
    assert (statement.kind, statement.name, statement.partitions) == ("TABLE", "per_zone", 6)
    assert statement.key_columns == ("window_start", "PULocationID")
    assert statement.names_used == ("green_rides",), "a column named like a stream is not read"
    assert statement.select.startswith("SELECT window.start") and statement.select.endswith("PULocationID")
    assert (statement.output_mode, statement.topic_cleanup_policy) == ("update", "compact,delete")
    assert statement.description == "Rides per zone."


def test_a_stream_appends_and_needs_no_key():
    statement = parse_statement(
        "create stream long_rides as select * from RIDES r left join Zones z "
        "on r.PULocationID = z.LocationID where trip_distance > 20",
        "q.sql",
        NAMES,
    )
    assert statement.names_used == ("rides", "zones")
    assert (statement.kind, statement.key_columns, statement.partitions) == ("STREAM", (), None)
    assert (statement.output_mode, statement.topic_cleanup_policy) == ("append", "delete")


def test_every_example_query_parses():
    parsed = [
        parse_statement(path.read_text(), path.name, NAMES) for path in sorted((REPO_ROOT / "queries").glob("*.sql"))
    ]
    assert {statement.name for statement in parsed} == {"airport_dropoffs", "borough_hourly", "rides_per_zone_15m"}
    assert all(statement.description for statement in parsed)


@pytest.mark.parametrize(
    "text, message",
    [
        ("SELECT * FROM rides", "not a statement of the form CREATE STREAM|TABLE"),
        ("CREATE TABLE t AS SELECT * FROM rides", "a TABLE needs WITH (KEY = '...')"),
        ("CREATE STREAM t WITH (COLOR = 'red') AS SELECT * FROM rides", "unknown WITH option COLOR"),
        ("CREATE STREAM t WITH (KEY) AS SELECT * FROM rides", "WITH option 'KEY' is not NAME = 'value'"),
        ("CREATE STREAM t WITH (PARTITIONS = 0) AS SELECT * FROM rides", "PARTITIONS must be a whole number"),
        (
            "CREATE STREAM t AS SELECT * FROM taxis",
            "reads none of the known streams and tables (rides, green_rides, zones",
        ),
        ("CREATE STREAM a AS SELECT * FROM rides; CREATE STREAM b AS SELECT * FROM rides;", "more than one statement"),
    ],
)
def test_what_the_runner_refuses_is_named(text, message):
    with pytest.raises(StatementError, match=r"^bad\.sql: ") as refused:
        parse_statement(text, "bad.sql", NAMES)
    assert message in str(refused.value)


def test_record_key_joins_the_key_columns_with_timestamps_in_utc(spark):
    df = spark.createDataFrame(
        [
            (datetime.datetime(2020, 10, 1, 0, 15), 74, "74|x", "2020-10-01T00:15:00Z|74"),
            (datetime.datetime(2020, 10, 1, 23, 45), None, "null|y", "2020-10-01T23:45:00Z|null"),
        ],
        "window_start timestamp, PULocationID int, other string, expected string",
    )
    keyed = df.withColumn("key", record_key(df, ("window_start", "PULocationID")))
    assert_column_equality(keyed, "key", "expected")


def test_record_key_refuses_a_column_the_result_lacks(spark):
    df = spark.createDataFrame([(1,)], "rides long")
    from jobs.runtime import QueryRefused

    with pytest.raises(
        QueryRefused, match=r"KEY column\(s\) window_start are not in the result \(its columns: rides\)"
    ):
        record_key(df, ("window_start",))


def test_names_in_string_literals_and_comments_are_not_read():
    statement = parse_statement(
        "CREATE STREAM s AS SELECT 'FROM rides' AS a, \"JOIN green_rides\" AS b FROM zones "
        "/* JOIN rides */ -- FROM green_rides\n",
        "q.sql",
        NAMES,
    )
    assert statement.names_used == ("zones",)


def test_sinks_are_chosen_in_the_with_clause_and_unknown_ones_refused():
    text = "CREATE TABLE t WITH (KEY = 'a', SINKS = 'Postgres, terminal') AS SELECT 1 AS a FROM rides"
    assert parse_statement(text, "q.sql", NAMES).sinks == ("postgres", "terminal")
    assert parse_statement("CREATE STREAM t AS SELECT * FROM rides", "q.sql", NAMES).sinks == ()
    with pytest.raises(StatementError, match=r"q.sql: SINKS = 'kafka, mysql': expected .* kafka, postgres, terminal"):
        parse_statement("CREATE STREAM t WITH (SINKS = 'kafka, mysql') AS SELECT * FROM rides", "q.sql", NAMES)


def test_the_statement_s_sinks_win_over_conf_and_the_command_line_over_both(tmp_path):
    query = tmp_path / "q.sql"
    query.write_text("CREATE STREAM t WITH (SINKS = 'terminal') AS SELECT ride_id FROM rides")
    assert load_statement_settings([str(query)]).sinks == ("terminal",)
    assert load_statement_settings([str(query), "--sinks", "kafka,postgres"]).sinks == ("kafka", "postgres")
    query.write_text("CREATE STREAM t AS SELECT ride_id FROM rides")
    assert load_statement_settings([str(query)]).sinks == ("kafka", "postgres", "terminal")  # conf/jobs.yaml
