"""Ride sessions: rides between the same pickup and dropoff zones grouped in session windows with a 5-minute
gap, and the longest streaks.

Reads:   the ride topics of conf/jobs.yaml [ride_sessions] (rides_green), any format.
Writes:  `ride_sessions`: one JSON record per closed session of at least min_rides rides, key
         `<session start>|<PULocationID>|<DOLocationID>`, with its rides and span; the terminal shows the
         longest streaks of each micro-batch. Bad records to `rides_dead_letter`.
State:   session windows, append mode: a session is emitted once the watermark (30 minutes) has passed its
         end, so each is written once, final.
Run:     python -m stack submit jobs/ride_sessions.py         (or: make submit JOB=ride_sessions)
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
    window_key,
)
from jobs.job_settings import RideSessionsSettings
from jobs.launch import launch
from jobs.result_sinks import ResultSinks, result_handler


def route_sessions(rides_df: DataFrame, gap: str, watermark: str) -> DataFrame:
    """Sessions of rides on the same route (pickup zone, dropoff zone): a ride within `gap` of the previous
    one on that route extends the session. Rides without both zones have no route."""
    return (
        rides_df.filter(F.col("PULocationID").isNotNull() & F.col("DOLocationID").isNotNull())
        .withWatermark("pickup_datetime", watermark)
        .groupBy(F.session_window("pickup_datetime", gap).alias("session"), "PULocationID", "DOLocationID")
        .agg(F.count(F.lit(1)).alias("rides"))
        .select(
            F.col("session.start").alias("session_start"),
            F.col("session.end").alias("session_end"),
            "PULocationID",
            "DOLocationID",
            "rides",
        )
    )


def filter_streaks(sessions_df: DataFrame, min_rides: int) -> DataFrame:
    return sessions_df.filter(F.col("rides") >= min_rides)


def start_queries(spark: SparkSession, settings: RideSessionsSettings) -> list[StreamingQuery]:
    decoded_df = read_rides(spark, settings, settings.input_topics)
    sessions_df = route_sessions(good_rides(decoded_df), settings.gap, settings.watermark)
    handler = result_handler(
        settings,
        "ride_sessions",
        ResultSinks(
            title=f"Longest streaks on one route (sessions with a {settings.gap} gap)",
            topic=settings.output_topic,
            to_record=lambda df: to_kafka_record(
                df, window_key(F.col("session_start"), F.col("PULocationID"), F.col("DOLocationID"))
            ),
            table="ride_sessions",
            order_by=[F.col("rides").desc(), F.col("session_start")],
            enrich=lambda df: filter_streaks(df, settings.min_rides),
        ),
    )
    return [
        start_dead_letter_query(decoded_df, settings),
        start_foreach_batch_query(sessions_df, settings, "ride_sessions", handler, output_mode="append"),
    ]


def main(argv: list[str] | None = None) -> int:
    return launch(JOBS["ride_sessions"], argv)


if __name__ == "__main__":
    sys.exit(main())
