"""Windowed counts per vendor: window boundaries, nulls, exact revenue, the Kafka projection, late rows."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest
from chispa import assert_df_equality

from jobs.vendor_counts import to_vendor_count_records, windowed_vendor_counts
from tests.jobs.rows import at, ride, rides_df

COLUMNS = ["window_kind", "window_start", "window_end", "VendorID", "rides", "passengers", "revenue"]


def _counts(spark, rows, length="10 minutes", slide="10 minutes", kind="tumbling"):
    return windowed_vendor_counts(rides_df(spark, *rows), length, slide, "30 minutes", kind)


def _expected(spark, rows):
    return spark.createDataFrame(
        rows,
        "window_kind string, window_start timestamp, window_end timestamp, VendorID int, rides long, "
        "passengers long, revenue decimal(14,2)",
    )


def test_tumbling_window_start_is_inclusive_and_end_exclusive(spark):
    rows = [
        ride(pickup_datetime=at(0), VendorID=1, passenger_count=1, total_amount=10.0),
        ride(pickup_datetime=at(9.99), VendorID=1, passenger_count=2, total_amount=5.5),
        ride(pickup_datetime=at(10), VendorID=1, passenger_count=1, total_amount=1.0),
    ]
    expected = _expected(
        spark,
        [
            ("tumbling", at(0), at(10), 1, 2, 3, Decimal("15.50")),
            ("tumbling", at(10), at(20), 1, 1, 1, Decimal("1.00")),
        ],
    )
    assert_df_equality(_counts(spark, rows), expected, ignore_row_order=True, ignore_nullable=True)


def test_sliding_windows_count_a_ride_on_a_boundary_in_both_windows_it_falls_in(spark):
    rows = [ride(pickup_datetime=at(5), VendorID=2, passenger_count=1, total_amount=7.0)]
    expected = _expected(
        spark,
        [
            ("sliding", at(0), at(10), 2, 1, 1, Decimal("7.00")),
            ("sliding", at(5), at(15), 2, 1, 1, Decimal("7.00")),
        ],
    )
    actual = _counts(spark, rows, slide="5 minutes", kind="sliding")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_rides_without_a_vendor_form_their_own_group_and_null_passengers_stay_null(spark):
    rows = [
        ride(pickup_datetime=at(1), VendorID=None, passenger_count=None, total_amount=0.1),
        ride(pickup_datetime=at(2), VendorID=None, passenger_count=None, total_amount=0.2),
        ride(pickup_datetime=at(3), VendorID=2, passenger_count=3, total_amount=None),
    ]
    expected = _expected(
        spark,
        [
            ("tumbling", at(0), at(10), None, 2, None, Decimal("0.30")),  # exactly 0.30, not 0.30000000000000004
            ("tumbling", at(0), at(10), 2, 1, 3, None),
        ],
    )
    assert_df_equality(_counts(spark, rows), expected, ignore_row_order=True, ignore_nullable=True)


def test_revenue_rounds_each_amount_to_the_cent_half_up_and_sums_refunds_exactly(spark):
    amounts = [2.675, 0.005, -5.5, 1234567.89, 0.1, 0.2]  # 2.675 is 2.67499... as a double
    rows = [ride(pickup_datetime=at(i), VendorID=1, passenger_count=1, total_amount=a) for i, a in enumerate(amounts)]
    expected_revenue = sum(Decimal(str(a)).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP") for a in amounts)
    (row,) = _counts(spark, rows).collect()
    assert row.revenue == expected_revenue == Decimal("1234565.38")


def test_kafka_records_are_keyed_by_kind_window_start_and_vendor(spark):
    rows = [ride(pickup_datetime=at(4), VendorID=None, passenger_count=1, total_amount=2.5)]
    (record,) = to_vendor_count_records(_counts(spark, rows)).collect()
    assert record.key == "tumbling|2020-10-01T08:00:00Z|null"
    value = json.loads(record.value)
    assert value == {
        "window_kind": "tumbling",
        "window_start": "2020-10-01T08:00:00.000Z",
        "window_end": "2020-10-01T08:10:00.000Z",
        "VendorID": None,
        "rides": 1,
        "passengers": 1,
        "revenue": 2.5,
    }


def test_late_ride_beyond_the_watermark_is_dropped_and_counted(spark, tmp_path):
    """A real streaming run (file source, two micro-batches): the second batch's ride is 40 minutes behind the
    watermark's reference and is dropped; Spark counts it in numRowsDroppedByWatermark."""
    source, checkpoint = tmp_path / "in", tmp_path / "checkpoint"
    source.mkdir()

    def write(name, pickups):
        lines = [
            json.dumps(
                {
                    "ride_id": f"{name}{i}",
                    "ride_type": "green",
                    "VendorID": 1,
                    "pickup_datetime": p.isoformat(),
                    "passenger_count": 1,
                    "total_amount": 1.0,
                }
            )
            for i, p in enumerate(pickups)
        ]
        (source / f"{name}.json").write_text("\n".join(lines))

    emitted = []

    def run_batch():
        from jobs.ride_schema import RIDE_SCHEMA

        stream = spark.readStream.schema(RIDE_SCHEMA).json(str(source))
        counts = windowed_vendor_counts(stream, "10 minutes", "10 minutes", "30 minutes", "tumbling")
        query = (
            counts.writeStream.outputMode("update")
            .foreachBatch(lambda batch_df, _: emitted.extend(batch_df.collect()))
            .option("checkpointLocation", str(checkpoint))
            .trigger(availableNow=True)
            .start()
        )
        query.awaitTermination()
        return query

    write("a", [datetime(2020, 10, 1, 9, 0), datetime(2020, 10, 1, 10, 0)])
    run_batch()
    write("b", [datetime(2020, 10, 1, 9, 1)])  # watermark is now 09:30: the 09:00 window is closed
    query = run_batch()
    dropped = sum(op["numRowsDroppedByWatermark"] for p in query.recentProgress for op in p["stateOperators"])
    assert dropped == 1
    late_window = [row.rides for row in emitted if row.window_start == datetime(2020, 10, 1, 9, 0)]
    assert late_window == [1]  # emitted once, from the first batch: the late ride never counted


def test_the_window_queries_to_run_are_chosen_on_the_command_line_and_a_wrong_kind_is_refused():
    from jobs.catalog import JOBS
    from jobs.settings import overrides_from
    from pipeline_config.settings import SettingsError

    job = JOBS["vendor_counts"]
    assert job.load_settings().window_kinds == ["sliding", "tumbling"]
    chosen = job.load_settings(overrides_from(job.parser().parse_args(["--window-kinds", "tumbling"])))
    assert chosen.window_kinds == ["tumbling"]
    with pytest.raises(SettingsError, match="window_kinds"):
        job.load_settings({"window_kinds": "hopping"})
