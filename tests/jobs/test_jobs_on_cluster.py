"""Each job on the standalone cluster over the real green file in Kafka, run to the end of its input, and
its output topic compared with an independent batch computation of the same question in plain Python."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, timedelta

import pytest
from confluent_kafka.schema_registry import Schema

from cluster.clients import registry_client
from producers import produce
from tests.conftest import GREEN_FILE
from tests.jobs.batch_answers import (
    expected_vendor_counts,
    floor_minutes,
    is_valid_ride,
    iso_utc,
    money,
    vendor_count_mismatches,
    zone_names,
)
from tests.jobs.cluster import latest_per_key, run_job, run_job_unchecked
from tests.jobs.results_tables import iso, table_rows, vendor_counts_table

pytestmark = pytest.mark.stack


def test_vendor_counts_equal_a_batch_computation_over_the_same_rows(
    local_stack, green_topic, green_rides, topic_factory, tmp_path, results_schema
):
    output = topic_factory(prefix="out_vendor_counts")
    log = run_job(
        local_stack,
        "vendor_counts",
        tmp_path / "checkpoints",
        "--input-topics",
        green_topic,
        "--output-topic",
        output,
        "--results-schema",
        results_schema,
        sinks="kafka,postgres",
    )
    assert "[vendor_counts_sliding] batch" in log and " 95120 rows in" in log, log[-2000:]

    expected = expected_vendor_counts(green_rides)
    streamed = latest_per_key(local_stack, output)
    assert set(streamed) == set(expected)
    mismatches = vendor_count_mismatches(streamed, expected)
    assert not mismatches, mismatches[:5]

    # The same answer in the results database: one row per window and vendor, money as numeric(14,2).
    table = vendor_counts_table(local_stack, results_schema)
    assert table == expected
    valid = sum(1 for ride in green_rides if is_valid_ride(ride))
    assert sum(f["rides"] for k, f in expected.items() if k.startswith("tumbling")) == valid == 95_120 - 1  # 2008


def test_zone_popularity_and_top_zones_equal_a_batch_computation(
    local_stack, green_topic, green_rides, topic_factory, tmp_path, results_schema
):
    counts_topic, top_topic = topic_factory(prefix="out_zone_counts"), topic_factory(prefix="out_zone_top")
    run_job(
        local_stack,
        "zone_popularity",
        tmp_path / "checkpoints",
        "--input-topics",
        green_topic,
        "--output-topic",
        counts_topic,
        "--top-topic",
        top_topic,
        "--top-n",
        "5",
        "--results-schema",
        results_schema,
        sinks="kafka,postgres",
    )

    names = zone_names()
    per_hour = defaultdict(lambda: defaultdict(int))
    for ride in filter(is_valid_ride, green_rides):
        if ride["PULocationID"] is not None:
            per_hour[floor_minutes(ride["pickup_datetime"], 60)][ride["PULocationID"]] += 1

    expected_counts = {
        f"{iso_utc(hour)}|{zone}": (rides, *names.get(zone, (None, None)))
        for hour, zones in per_hour.items()
        for zone, rides in zones.items()
    }
    streamed_counts = {
        key: (value["rides"], value["borough"], value["zone"])
        for key, value in latest_per_key(local_stack, counts_topic).items()
    }
    assert streamed_counts == expected_counts

    expected_top = {
        iso_utc(hour): [zone for zone, _ in sorted(zones.items(), key=lambda item: (-item[1], item[0]))[:5]]
        for hour, zones in per_hour.items()
    }
    streamed_top = {
        key: [entry["PULocationID"] for entry in value["top_zones"]]
        for key, value in latest_per_key(local_stack, top_topic).items()
    }
    assert streamed_top == expected_top

    # The same answers in the results database: a row per window and zone, and per window and rank.
    counts_table = {
        f"{iso(row['window_start'])}|{row['pu_location_id']}": (row["rides"], row["borough"], row["zone"])
        for row in table_rows(local_stack, results_schema, "SELECT * FROM zone_popularity")
    }
    assert counts_table == expected_counts
    top_table = defaultdict(list)
    for row in table_rows(local_stack, results_schema, "SELECT * FROM zone_top ORDER BY window_start, rank"):
        top_table[iso(row["window_start"])].append(row["pu_location_id"])
    assert top_table == expected_top


def test_rides_all_merges_every_kind_unchanged_and_names_the_hourly_leader(
    local_stack, green_topic, green_rides, topic_factory, tmp_path, results_schema
):
    generated_topic = topic_factory(prefix="jobs_generated")
    assert (
        produce.main(
            [
                "--source",
                "generator",
                "--limit",
                "2000",
                "--format",
                "json",
                "--topic",
                generated_topic,
                "--seed",
                "3",
                "--quiet",
            ]
        )
        == 0
    )
    from producers.generator import GeneratorSettings, RideGenerator

    generated = list(RideGenerator(GeneratorSettings(seed=3)).rides(2000))
    merged_topic, leaders_topic = topic_factory(prefix="out_rides_all"), topic_factory(prefix="out_leaders")
    run_job(
        local_stack,
        "rides_all",
        tmp_path / "checkpoints",
        "--input-topics",
        f"{green_topic},{generated_topic}",
        "--output-topic",
        merged_topic,
        "--top-topic",
        leaders_topic,
        "--results-schema",
        results_schema,
        sinks="kafka,postgres",
    )

    every_ride = [r for r in green_rides + generated if is_valid_ride(r)]
    merged = latest_per_key(local_stack, merged_topic)
    assert set(merged) == {r["ride_id"] for r in every_ride}
    for ride in every_ride[::97]:
        got = merged[ride["ride_id"]]
        assert got["ride_type"] == ride["ride_type"] and got["PULocationID"] == ride["PULocationID"]
        assert got["pickup_datetime"] == ride["pickup_datetime"].replace(tzinfo=UTC)
        assert (
            got["total_amount"] == ride["total_amount"] and got["dispatching_base_num"] == ride["dispatching_base_num"]
        )

    per_hour = defaultdict(lambda: defaultdict(int))
    for ride in every_ride:
        if ride["PULocationID"] is not None:
            per_hour[floor_minutes(ride["pickup_datetime"], 60)][ride["PULocationID"]] += 1
    expected = {iso_utc(h): min(z.items(), key=lambda item: (-item[1], item[0])) for h, z in per_hour.items()}
    streamed = {key: (v["PULocationID"], v["rides"]) for key, v in latest_per_key(local_stack, leaders_topic).items()}
    assert streamed == expected

    # The results database: every ride once, with its money to the cent, and the same leaders.
    table = {row["ride_id"]: row for row in table_rows(local_stack, results_schema, "SELECT * FROM rides")}
    assert set(table) == {r["ride_id"] for r in every_ride}
    for ride in every_ride:
        got = table[ride["ride_id"]]
        assert (got["ride_type"], got["vendor_id"], got["pu_location_id"], got["do_location_id"]) == (
            ride["ride_type"],
            ride["VendorID"],
            ride["PULocationID"],
            ride["DOLocationID"],
        )
        assert got["pickup_datetime"] == ride["pickup_datetime"].replace(tzinfo=UTC)
        assert got["total_amount"] == money(ride["total_amount"]) and got["trip_distance"] == ride["trip_distance"]
    leaders = {
        iso(row["window_start"]): (row["pu_location_id"], row["rides"])
        for row in table_rows(local_stack, results_schema, "SELECT * FROM pickup_leaders")
    }
    assert leaders == expected


def test_rides_all_refuses_to_start_when_the_registry_refuses_its_output_schema(local_stack, topic_factory, tmp_path):
    output = topic_factory(prefix="out_rides_all_taken")
    other = '{"type": "record", "name": "Other", "fields": [{"name": "x", "type": "int"}]}'
    registry_client(local_stack.registry.url).register_schema(f"{output}-value", Schema(other, "AVRO"))
    code, out, err = run_job_unchecked(
        local_stack,
        "rides_all",
        tmp_path / "checkpoints",
        "--input-topics",
        topic_factory(prefix="in_rides_all_taken"),
        "--output-topic",
        output,
        "--top-topic",
        topic_factory(prefix="out_leaders"),
    )
    said = out + err  # spark-submit hands the Python driver's stderr on as its own stdout
    assert code == 2, said[-3000:]
    assert f"error: the registry refused ride_event.avsc for subject {output}-value" in said, said[-3000:]
    assert "BACKWARD compatibility rule" in said and "Traceback" not in said
    assert "started (id" not in said  # refused before any query ran


def test_ride_lifecycle_join_completes_trips_and_reports_rides_that_never_ended(
    local_stack, green_rides, topic_factory, tmp_path, results_schema
):
    started, ended, trips = (topic_factory(prefix=p) for p in ("jobs_started", "jobs_ended", "out_trips"))
    assert (
        produce.main(
            ["--source", str(GREEN_FILE), "--lifecycle", "--started-topic", started, "--ended-topic", ended, "--quiet"]
        )
        == 0
    )
    run_job(
        local_stack,
        "ride_lifecycle",
        tmp_path / "checkpoints",
        "--started-topic",
        started,
        "--ended-topic",
        ended,
        "--output-topic",
        trips,
        "--results-schema",
        results_schema,
        sinks="kafka,postgres",
    )
    streamed = latest_per_key(local_stack, trips)
    # The results database holds each trip once, the same as the topic's latest value per ride.
    table = {row["ride_id"]: row for row in table_rows(local_stack, results_schema, "SELECT * FROM completed_trips")}
    assert {k: v["status"] for k, v in table.items()} == {k: v["status"] for k, v in streamed.items()}
    assert all(
        table[k]["duration_minutes"] == money(v["duration_minutes"])
        for k, v in streamed.items()
        if v["status"] == "completed"
    )

    bound = timedelta(hours=3)
    valid = [r for r in green_rides if is_valid_ride(r)]
    completed = {
        r["ride_id"]: r for r in valid if timedelta(0) <= r["dropoff_datetime"] - r["pickup_datetime"] <= bound
    }
    assert {k for k, v in streamed.items() if v["status"] == "completed"} == set(completed)
    for ride_id in list(completed)[::211]:
        ride, got = completed[ride_id], streamed[ride_id]
        minutes = (ride["dropoff_datetime"] - ride["pickup_datetime"]).total_seconds() / 60
        assert got["duration_minutes"] == pytest.approx(round(minutes, 2))

    # A start is reported as never ended once the watermark (latest event time minus 30 minutes) has passed
    # its bound; ends are drawn from all valid rides, starts whose bound is near the watermark are left out.
    watermark = min(max(r["pickup_datetime"] for r in valid), max(r["dropoff_datetime"] for r in valid)) - timedelta(
        minutes=30
    )
    never = {k for k, v in streamed.items() if v["status"] == "never_ended"}
    unmatched = [r for r in valid if r["ride_id"] not in completed]
    must = {r["ride_id"] for r in unmatched if r["pickup_datetime"] + bound < watermark - timedelta(minutes=1)}
    must_not = {r["ride_id"] for r in unmatched if r["pickup_datetime"] + bound > watermark + timedelta(minutes=1)}
    assert must and must <= never and not (never & must_not)


def test_ride_sessions_equal_a_batch_sessionization(
    local_stack, green_topic, green_rides, topic_factory, tmp_path, results_schema
):
    output = topic_factory(prefix="out_sessions")
    run_job(
        local_stack,
        "ride_sessions",
        tmp_path / "checkpoints",
        "--input-topics",
        green_topic,
        "--output-topic",
        output,
        "--gap",
        "5 minutes",
        "--min-rides",
        "2",
        "--results-schema",
        results_schema,
        sinks="kafka,postgres",
    )
    streamed = {key: v["rides"] for key, v in latest_per_key(local_stack, output).items()}
    table = {
        f"{iso(row['session_start'])}|{row['pu_location_id']}|{row['do_location_id']}": row["rides"]
        for row in table_rows(local_stack, results_schema, "SELECT * FROM ride_sessions")
    }
    assert table == streamed  # each session once in the database, as in the topic

    gap = timedelta(minutes=5)
    valid = [r for r in green_rides if is_valid_ride(r)]
    routes = defaultdict(list)
    for ride in valid:
        if ride["PULocationID"] is not None and ride["DOLocationID"] is not None:
            routes[(ride["PULocationID"], ride["DOLocationID"])].append(ride["pickup_datetime"])
    sessions = []  # (start, end, route, rides); a ride at or before the session's end extends it, as in Spark
    for route, pickups in routes.items():
        pickups.sort()
        start, end, count = pickups[0], pickups[0] + gap, 1
        for pickup in pickups[1:]:
            if pickup <= end:
                end, count = max(end, pickup + gap), count + 1
            else:
                sessions.append((start, end, route, count))
                start, end, count = pickup, pickup + gap, 1
        sessions.append((start, end, route, count))

    watermark = max(r["pickup_datetime"] for r in valid) - timedelta(minutes=30)
    closed = {
        f"{iso_utc(s)}|{pu}|{do}": n
        for s, e, (pu, do), n in sessions
        if n >= 2 and e < watermark - timedelta(minutes=1)
    }
    still_open = {f"{iso_utc(s)}|{pu}|{do}" for s, e, (pu, do), n in sessions if e > watermark + timedelta(minutes=1)}
    assert closed and {k: streamed[k] for k in closed if k in streamed} == closed
    assert set(closed) <= set(streamed) and not (set(streamed) & still_open)
