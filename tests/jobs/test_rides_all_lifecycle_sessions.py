"""The merge to rides_all, the lifecycle join and route sessions, on batch DataFrames."""

from __future__ import annotations

import io
import json
from datetime import UTC

import fastavro
from chispa import assert_df_equality

from jobs.decode import WriterSchema, decode_rides, good_rides
from jobs.ride_lifecycle import join_starts_with_ends, ride_ends, ride_starts
from jobs.ride_schema import RIDE_FIELDS, RIDE_SCHEMA_JSON
from jobs.ride_sessions import filter_streaks, route_sessions
from jobs.rides_all import to_ride_records
from rides.events import parsed_schema
from rides.serialization import WIRE_HEADER
from tests.jobs.rows import at, ride, rides_df

FHV_RIDE = ride(ride_id="fhv-1", ride_type="fhv", dispatching_base_num="B00013", pickup_datetime=at(1), PULocationID=4)
GREEN_RIDE = ride(
    ride_id="g-1",
    VendorID=2,
    pickup_datetime=at(2),
    dropoff_datetime=at(9),
    PULocationID=7,
    passenger_count=1,
    trip_distance=1.5,
    total_amount=12.35,
)


def test_rides_all_json_records_are_the_normalized_ride_keyed_by_ride_id(spark):
    (record,) = to_ride_records(rides_df(spark, FHV_RIDE)).collect()
    value = json.loads(record.value)
    assert record.key == "fhv-1"
    assert list(value) == RIDE_FIELDS  # every field, nulls included: the same model for every kind
    assert value["dispatching_base_num"] == "B00013" and value["VendorID"] is None
    assert value["pickup_datetime"] == "2020-10-01T08:01:00.000Z"


def test_rides_all_avro_records_carry_the_schema_id_and_decode_with_the_ride_schema(spark):
    records = to_ride_records(rides_df(spark, FHV_RIDE, GREEN_RIDE), avro_schema_id=42).orderBy("key").collect()
    assert [record.key for record in records] == ["fhv-1", "g-1"]
    for record, row in zip(records, (FHV_RIDE, GREEN_RIDE), strict=False):
        payload = bytes(record.value)
        assert WIRE_HEADER.unpack_from(payload) == (0, 42)  # magic byte, schema id
        decoded = fastavro.schemaless_reader(io.BytesIO(payload[WIRE_HEADER.size :]), parsed_schema())
        expected = dict(zip(RIDE_FIELDS, row, strict=False))
        for name in ("pickup_datetime", "dropoff_datetime"):
            if expected[name] is not None:
                expected[name] = expected[name].replace(tzinfo=UTC)
        assert decoded == expected  # every field, nulls included, as fastavro reads them


def test_rides_all_avro_records_decode_back_to_the_same_rides_in_a_job(spark):
    written = to_ride_records(rides_df(spark, FHV_RIDE, GREEN_RIDE), avro_schema_id=42)
    raw = written.selectExpr(
        "cast(key as binary) as key",
        "value",
        "'rides_all' as topic",
        "0 as partition",
        "0L as offset",
        "cast(null as timestamp) as timestamp",
    )
    read_back = good_rides(decode_rides(raw, [WriterSchema(42, RIDE_SCHEMA_JSON)], "avro")).select(*RIDE_FIELDS)
    assert_df_equality(read_back, rides_df(spark, FHV_RIDE, GREEN_RIDE), ignore_row_order=True, ignore_nullable=True)


def _trips(spark, starts, ends, max_duration="3 hours"):
    return join_starts_with_ends(
        ride_starts(rides_df(spark, *starts), "30 minutes"),
        ride_ends(rides_df(spark, *ends), "30 minutes"),
        max_duration,
    ).select("ride_id", "status", "duration_minutes", "speed_mph")


def test_a_start_joins_its_end_within_the_bound_into_a_completed_trip_with_speed(spark):
    start = ride(ride_id="a", pickup_datetime=at(0))
    end = ride(ride_id="a", pickup_datetime=at(0), dropoff_datetime=at(30), trip_distance=6.0)
    expected = spark.createDataFrame(
        [("a", "completed", 30.0, 12.0)], "ride_id string, status string, duration_minutes double, speed_mph double"
    )
    assert_df_equality(_trips(spark, [start], [end]), expected, ignore_nullable=True)


def test_an_end_exactly_on_the_bound_joins_and_one_past_it_does_not(spark):
    starts = [ride(ride_id="on", pickup_datetime=at(0)), ride(ride_id="past", pickup_datetime=at(0))]
    ends = [
        ride(ride_id="on", dropoff_datetime=at(0, hour=11), trip_distance=1.0),
        ride(ride_id="past", dropoff_datetime=at(0.02, hour=11), trip_distance=1.0),
    ]
    statuses = {row.ride_id: row.status for row in _trips(spark, starts, ends).collect()}
    assert statuses == {"on": "completed", "past": "never_ended"}


def test_a_start_without_an_end_and_an_end_before_its_start_are_never_ended(spark):
    starts = [ride(ride_id="lost", pickup_datetime=at(0)), ride(ride_id="backwards", pickup_datetime=at(30))]
    ends = [ride(ride_id="backwards", dropoff_datetime=at(10))]
    rows = _trips(spark, starts, ends).collect()
    assert {(r.ride_id, r.status, r.duration_minutes) for r in rows} == {
        ("lost", "never_ended", None),
        ("backwards", "never_ended", None),
    }


def test_sessions_group_rides_on_one_route_within_the_gap(spark):
    rows = [
        ride(pickup_datetime=at(0), PULocationID=1, DOLocationID=2),
        ride(pickup_datetime=at(4.99), PULocationID=1, DOLocationID=2),  # within 5 minutes: same session
        ride(pickup_datetime=at(9.99), PULocationID=1, DOLocationID=2),  # exactly 5 minutes later: Spark extends
        ride(pickup_datetime=at(15), PULocationID=1, DOLocationID=2),  # 5:01 later: a new session
        ride(pickup_datetime=at(1), PULocationID=2, DOLocationID=1),  # the other direction: its own route
        ride(pickup_datetime=at(2), PULocationID=None, DOLocationID=1),  # no route
    ]
    expected = rides_df(spark).sparkSession.createDataFrame(
        [(at(0), at(14.99), 1, 2, 3), (at(15), at(20), 1, 2, 1), (at(1), at(6), 2, 1, 1)],
        "session_start timestamp, session_end timestamp, PULocationID int, DOLocationID int, rides long",
    )
    actual = route_sessions(rides_df(spark, *rows), "5 minutes", "30 minutes")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_streaks_are_sessions_of_at_least_min_rides(spark):
    sessions = spark.createDataFrame(
        [(at(0), at(10), 1, 2, 2), (at(0), at(5), 3, 4, 1)],
        "session_start timestamp, session_end timestamp, PULocationID int, DOLocationID int, rides long",
    )
    assert [row.PULocationID for row in filter_streaks(sessions, 2).collect()] == [1]
