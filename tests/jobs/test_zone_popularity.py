"""Zone popularity: counts per window and zone, the zone lookup join, and the top zones of each window."""

from __future__ import annotations

from chispa import assert_df_equality

from jobs.zone_popularity import (
    join_zone_counts_with_zones,
    ranked_windows,
    read_zones,
    top_zones,
    zone_counts,
)
from tests.conftest import ZONE_LOOKUP
from tests.jobs.rows import at, ride, rides_df


def test_counts_per_hour_and_zone_leave_out_rides_without_a_zone(spark):
    rows = [
        ride(pickup_datetime=at(0), PULocationID=7),
        ride(pickup_datetime=at(59.99), PULocationID=7),
        ride(pickup_datetime=at(0, hour=9), PULocationID=7),
        ride(pickup_datetime=at(5), PULocationID=None),
    ]
    expected = spark.createDataFrame(
        [(at(0), at(0, hour=9), 7, 2), (at(0, hour=9), at(0, hour=10), 7, 1)],
        "window_start timestamp, window_end timestamp, PULocationID int, rides long",
    )
    actual = zone_counts(rides_df(spark, *rows), "1 hour", "30 minutes")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_zone_lookup_is_read_from_the_real_file_with_names_trimmed(spark):
    zones = {row.LocationID: (row.borough, row.zone) for row in read_zones(spark, str(ZONE_LOOKUP)).collect()}
    assert len(zones) == 265
    assert zones[1] == ("EWR", "Newark Airport") and zones[7] == ("Queens", "Astoria")


def test_join_keeps_counts_of_zones_missing_from_the_lookup(spark):
    counts = spark.createDataFrame(
        [(at(0), at(60), 7, 3), (at(0), at(60), 999, 1)],
        "window_start timestamp, window_end timestamp, PULocationID int, rides long",
    )
    zones = spark.createDataFrame([(7, "Queens", "Astoria")], "LocationID int, borough string, zone string")
    expected = spark.createDataFrame(
        [(at(0), at(60), 7, 3, "Queens", "Astoria"), (at(0), at(60), 999, 1, None, None)],
        "window_start timestamp, window_end timestamp, PULocationID int, rides long, borough string, zone string",
    )
    assert_df_equality(
        join_zone_counts_with_zones(counts, zones), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_top_zones_rank_by_rides_then_lower_zone_id(spark, tmp_path):
    """applyInPandasWithState only runs on streams: a file stream with one micro-batch."""
    from jobs.ride_schema import RIDE_SCHEMA

    rows = (
        [ride(pickup_datetime=at(m), PULocationID=5) for m in (1, 2, 3)]
        + [ride(pickup_datetime=at(m), PULocationID=9) for m in (4, 5)]
        + [ride(pickup_datetime=at(m), PULocationID=3) for m in (6, 7)]
        + [ride(pickup_datetime=at(8), PULocationID=1)]
    )
    rides_df(spark, *rows).write.json(str(tmp_path / "in"))
    emitted = []
    stream = spark.readStream.schema(RIDE_SCHEMA).json(str(tmp_path / "in"))
    query = (
        top_zones(stream, "1 hour", "30 minutes", top_n=3)
        .writeStream.outputMode("update")
        .foreachBatch(lambda df, _: emitted.extend(df.collect()))
        .option("checkpointLocation", str(tmp_path / "ck"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    assert [(r.rank, r.PULocationID, r.rides) for r in sorted(emitted, key=lambda r: r.rank)] == [
        (1, 5, 3),
        (2, 3, 2),
        (3, 9, 2),
    ]


def test_ranked_windows_hold_the_ranking_in_order(spark):
    top = spark.createDataFrame(
        [(at(0), at(60), 2, 3, "Bronx", "X", 2), (at(0), at(60), 1, 5, "Queens", "Y", 3)],
        "window_start timestamp, window_end timestamp, rank int, PULocationID int, borough string, zone string, rides long",
    )
    (row,) = ranked_windows(top).collect()
    assert [(entry.rank, entry.PULocationID) for entry in row.top_zones] == [(1, 5), (2, 3)]


def test_the_zone_table_from_its_topic_is_the_latest_row_of_each_zone_without_the_removed(spark):
    from jobs.zone_table import latest_zone_rows

    def record(key, offset, value):
        return (key.encode(), None if value is None else value.encode(), offset)

    records = spark.createDataFrame(
        [
            record("1", 0, '{"LocationID": 1, "Borough": "EWR", "Zone": "Newark Airport"}'),
            record("2", 1, '{"LocationID": 2, "Borough": "Queens", "Zone": "Jamaica Bay"}'),
            record("1", 2, '{"LocationID": 1, "Borough": "EWR", "Zone": " Newark Liberty "}'),
            record("3", 3, '{"LocationID": 3, "Borough": "Bronx", "Zone": "Allerton"}'),
            record("3", 4, None),  # a tombstone: zone 3 is gone
        ],
        "key binary, value binary, offset long",
    )
    rows = {row.LocationID: (row.borough, row.zone) for row in latest_zone_rows(records).collect()}
    assert rows == {1: ("EWR", "Newark Liberty"), 2: ("Queens", "Jamaica Bay")}
