"""Ride lifecycle, a stream-stream join: "ride started" events (at pickup) joined with "ride ended" events
(at dropoff) by ride id, into completed trips with duration and speed; rides that never end are reported
once the bound has passed.

Reads:   `ride_started` and `ride_ended` (python -m producers.produce --lifecycle), any format.
Writes:  `completed_trips`: one JSON record per ride, key ride_id, status `completed` (with duration_minutes
         and speed_mph) or `never_ended` (no end within max_ride_duration of the start); also printed to the terminal.
State:   both sides watermarked (30 minutes); the join is bounded in event time: an end must fall between the
         start and start + max_ride_duration (3 hours), so Spark can drop a start once the watermark passes
         that bound and emit it as never ended (left outer join, append mode).
Run:     python -m stack submit jobs/ride_lifecycle.py        (or: make submit JOB=ride_lifecycle)
"""

from __future__ import annotations

import sys

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from jobs.catalog import JOBS
from jobs.decode import good_rides
from jobs.io import (
    read_rides,
    start_dead_letter_query,
    start_foreach_batch_query,
    to_kafka_record,
)
from jobs.job_settings import RideLifecycleSettings
from jobs.launch import launch
from jobs.result_sinks import ResultSinks, result_handler


def ride_starts(rides_df: DataFrame, watermark: str) -> DataFrame:
    return rides_df.select(
        "ride_id", "ride_type", F.col("pickup_datetime").alias("started_at"), "PULocationID"
    ).withWatermark("started_at", watermark)


def ride_ends(rides_df: DataFrame, watermark: str) -> DataFrame:
    return (
        rides_df.select(
            F.col("ride_id").alias("ended_ride_id"),
            F.col("dropoff_datetime").alias("ended_at"),
            "DOLocationID",
            "trip_distance",
            "total_amount",
        )
        .filter(F.col("ended_at").isNotNull())
        .withWatermark("ended_at", watermark)
    )


def join_starts_with_ends(starts_df: DataFrame, ends_df: DataFrame, max_duration: str) -> DataFrame:
    """Completed trips and, once the bound has passed, starts that never ended.

    ride_id is assumed unique per start and per end (the producer derives it from the source row).
    """
    same_ride = F.col("ride_id") == F.col("ended_ride_id")
    ends_after_start = F.col("ended_at") >= F.col("started_at")
    within_bound = F.col("ended_at") <= F.col("started_at") + F.expr(f"INTERVAL {max_duration}")
    joined_df = starts_df.join(ends_df, same_ride & ends_after_start & within_bound, how="left_outer")
    return with_trip_figures(joined_df)


def with_trip_figures(joined_df: DataFrame) -> DataFrame:
    seconds = F.col("ended_at").cast("long") - F.col("started_at").cast("long")
    hours = seconds / 3600
    return joined_df.select(
        "ride_id",
        "ride_type",
        F.when(F.col("ended_at").isNotNull(), F.lit("completed")).otherwise(F.lit("never_ended")).alias("status"),
        "started_at",
        "ended_at",
        "PULocationID",
        "DOLocationID",
        F.round(seconds / 60, 2).alias("duration_minutes"),
        "trip_distance",
        F.when(hours > 0, F.round(F.col("trip_distance") / hours, 2)).alias("speed_mph"),
        "total_amount",
    )


def start_queries(spark: SparkSession, settings: RideLifecycleSettings) -> list[StreamingQuery]:
    started_df = read_rides(spark, settings, [settings.started_topic])
    ended_df = read_rides(spark, settings, [settings.ended_topic])
    trips_df = join_starts_with_ends(
        ride_starts(good_rides(started_df), settings.watermark),
        ride_ends(good_rides(ended_df), settings.watermark),
        settings.max_ride_duration,
    )
    handler = result_handler(
        settings,
        "completed_trips",
        ResultSinks(
            title="Trips completed or never ended",
            topic=settings.output_topic,
            to_record=lambda df: to_kafka_record(df, F.col("ride_id")),
            table="completed_trips",
            order_by=[F.col("started_at").desc()],
        ),
    )
    dead_letters = settings.model_copy(update={"name": f"{settings.name}_started"})
    dead_letters_ended = settings.model_copy(update={"name": f"{settings.name}_ended"})
    return [
        start_dead_letter_query(started_df, dead_letters),
        start_dead_letter_query(ended_df, dead_letters_ended),
        start_foreach_batch_query(trips_df, settings, "completed_trips", handler, output_mode="append"),
    ]


def main(argv: list[str] | None = None) -> int:
    return launch(JOBS["ride_lifecycle"], argv)


if __name__ == "__main__":
    sys.exit(main())
