"""SQL over streams end to end: each example query of queries/ runs on the standalone cluster over the real
green file in Kafka, and both its result topic and its results table equal an independent batch computation over
the same rows."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from cluster.topic_snapshot import read_all
from tests.jobs.batch_answers import (
    floor_minutes,
    is_valid_ride,
    iso_utc,
    money,
    zone_names,
)
from tests.jobs.cluster import latest_per_key, run_job, run_job_unchecked
from tests.jobs.results_tables import iso, table_rows
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.stack

QUERIES = REPO_ROOT / "queries"
AIRPORTS = {1: "Newark", 132: "JFK", 138: "LaGuardia"}


def _run_query(settings, query: str, green_topic: str, output: str, checkpoints, results_schema: str) -> str:
    """The query over the green topic into its topic and its results table (in a schema of the test's own)."""
    return run_job(
        settings,
        "stream_sql",
        checkpoints,
        str(QUERIES / query),
        "--stream",
        f"rides={green_topic}",
        "--output-topic",
        output,
        "--results-schema",
        results_schema,
        sinks="kafka,postgres",
    )


def _windowed_rows(settings, schema: str, table: str, group: str) -> dict[str, dict[str, Any]]:
    """A windowed results table keyed as the batch answers are ('<window start>|<group>'), its figures by name."""
    return {
        f"{iso(row.pop('window_start'))}|{row.pop(group)}": {
            name: value for name, value in row.items() if name != "window_end"
        }
        for row in table_rows(settings, schema, f"SELECT * FROM {table}")
    }


def _add(total, value):
    return value if total is None else total if value is None else total + value


def test_rides_per_zone_query_equals_a_batch_count(
    local_stack, green_topic, green_rides, topic_factory, tmp_path, results_schema
):
    output = topic_factory(prefix="sql_zone_15m")
    _run_query(local_stack, "rides_per_zone_15m.sql", green_topic, output, tmp_path, results_schema)

    expected: defaultdict[str, dict[str, Any]] = defaultdict(lambda: {"rides": 0, "passengers": None, "revenue": None})
    for ride in filter(is_valid_ride, green_rides):
        if ride["PULocationID"] is None:
            continue
        figures = expected[f"{iso_utc(floor_minutes(ride['pickup_datetime'], 15))}|{ride['PULocationID']}"]
        figures["rides"] += 1
        figures["passengers"] = _add(figures["passengers"], ride["passenger_count"])
        figures["revenue"] = _add(figures["revenue"], money(ride["total_amount"]))
    streamed = {
        key: {"rides": value["rides"], "passengers": value["passengers"], "revenue": money(value["revenue"])}
        for key, value in latest_per_key(local_stack, output).items()
    }
    assert streamed == dict(expected)
    assert sum(figures["rides"] for figures in streamed.values()) > 90_000
    tabled = _windowed_rows(local_stack, results_schema, "rides_per_zone_15m", "pu_location_id")
    assert tabled == dict(expected), "the results table holds the latest row per key, each key once"


def test_borough_query_joins_the_zone_lookup_like_a_batch_join(
    local_stack, green_topic, green_rides, topic_factory, tmp_path, results_schema
):
    output = topic_factory(prefix="sql_borough")
    _run_query(local_stack, "borough_hourly.sql", green_topic, output, tmp_path, results_schema)

    names = zone_names()
    expected: defaultdict[str, dict[str, Any]] = defaultdict(
        lambda: {"rides": 0, "tips": None, "longest_trip_miles": None}
    )
    for ride in filter(is_valid_ride, green_rides):
        borough = names[ride["PULocationID"]][0] if ride["PULocationID"] in names else "Unknown"
        figures = expected[f"{iso_utc(floor_minutes(ride['pickup_datetime'], 60))}|{borough}"]
        figures["rides"] += 1
        figures["tips"] = _add(figures["tips"], money(ride["tip_amount"]))
        if ride["trip_distance"] is not None:
            figures["longest_trip_miles"] = max(figures["longest_trip_miles"] or 0.0, ride["trip_distance"])
    streamed = {
        key: {"rides": value["rides"], "tips": money(value["tips"]), "longest_trip_miles": value["longest_trip_miles"]}
        for key, value in latest_per_key(local_stack, output).items()
    }
    assert streamed == dict(expected)
    assert {key.split("|")[1] for key in streamed} >= {"Manhattan", "Brooklyn", "Queens", "Bronx"}
    assert _windowed_rows(local_stack, results_schema, "borough_hourly", "borough") == dict(expected)


def test_airport_stream_appends_each_matching_ride_once(
    local_stack, green_topic, green_rides, topic_factory, tmp_path, results_schema
):
    output = topic_factory(prefix="sql_airport")
    _run_query(local_stack, "airport_dropoffs.sql", green_topic, output, tmp_path, results_schema)

    expected = {
        ride["ride_id"]: {
            "airport": AIRPORTS[ride["DOLocationID"]],
            "duration_s": None
            if ride["dropoff_datetime"] is None
            else int((ride["dropoff_datetime"] - ride["pickup_datetime"]).total_seconds()),
            "total_amount": ride["total_amount"],
            "PULocationID": ride["PULocationID"],
        }
        for ride in filter(is_valid_ride, green_rides)
        if ride["DOLocationID"] in AIRPORTS
    }
    messages = read_all(local_stack.kafka.bootstrap_servers, output)
    assert len(messages) == len(expected), "a STREAM appends each result row exactly once"
    streamed = {
        key: {field: value[field] for field in ("airport", "duration_s", "total_amount", "PULocationID")}
        for key, value in latest_per_key(local_stack, output).items()
    }
    assert streamed == expected
    assert len(expected) > 100
    rows = table_rows(local_stack, results_schema, "SELECT * FROM airport_dropoffs")
    assert len(rows) == len(expected)
    tabled = {
        row["ride_id"]: {
            "airport": row["airport"],
            "duration_s": row["duration_s"],
            "total_amount": row["total_amount"],
            "PULocationID": row["pu_location_id"],
        }
        for row in rows
    }
    assert tabled == expected


def test_a_query_spark_cannot_run_is_refused_with_spark_s_reason(local_stack, green_topic, tmp_path):
    query = tmp_path / "typo.sql"
    query.write_text(
        "CREATE TABLE typo WITH (KEY = 'PULocationID')\n"
        "AS SELECT PULocationID, count(*) AS rides, tip_amont FROM rides GROUP BY PULocationID;\n"
    )
    code, out, err = run_job_unchecked(
        local_stack, "stream_sql", tmp_path / "checkpoints", str(query), "--stream", f"rides={green_topic}"
    )
    said = out + err  # spark-submit hands the Python driver's stderr on as its own stdout
    assert code == 2, said[-3000:]
    assert f"error: {query}: [UNRESOLVED_COLUMN.WITH_SUGGESTION]" in said and "`tip_amont`" in said
    assert "Did you mean" in said and "`tip_amount`" in said
    assert "Traceback" not in said and "SQLQueryContextLogger" not in said


def test_a_query_that_reads_a_file_is_refused_on_the_cluster_and_writes_nothing(
    local_stack, green_topic, topic_factory, tmp_path
):
    """The reported attack: a STREAM joining every ride with a local file's line wrote the machine's host name
    into a topic. Now refused before any query starts, with Spark's reason, and nothing is written."""
    output = topic_factory(prefix="sql_attack")
    query = tmp_path / "attack.sql"
    query.write_text(
        "CREATE STREAM attack AS SELECT r.ride_id, f.value /* FROM rides */\n"
        "FROM rides r JOIN text.`/etc/hostname` f ON true;\n"
    )
    code, out, err = run_job_unchecked(
        local_stack,
        "stream_sql",
        tmp_path / "checkpoints",
        str(query),
        "--stream",
        f"rides={green_topic}",
        "--output-topic",
        output,
    )
    said = out + err
    assert code == 2, said[-3000:]
    assert f"error: {query}: [TABLE_OR_VIEW_NOT_FOUND]" in said and "`text`.`/etc/hostname`" in said
    assert "Traceback" not in said
    assert read_all(local_stack.kafka.bootstrap_servers, output) == []


@pytest.mark.parametrize("target", ["input", "dead letters"])
def test_a_result_topic_that_is_an_input_or_the_dead_letters_is_refused(local_stack, green_topic, tmp_path, target):
    topic = green_topic if target == "input" else "rides_dead_letter"
    code, out, err = run_job_unchecked(
        local_stack,
        "stream_sql",
        tmp_path / "checkpoints",
        str(QUERIES / "airport_dropoffs.sql"),
        "--stream",
        f"rides={green_topic}",
        "--output-topic",
        topic,
    )
    said = out + err
    assert code == 2, said[-3000:]
    expected = "is also an input of the query" if target == "input" else "is the dead-letter topic"
    assert f"the result topic {topic} {expected}" in said
