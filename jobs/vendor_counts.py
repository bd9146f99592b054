"""Windowed ride counts per vendor: rides, passengers and revenue per window and VendorID.

Reads:   the ride topics of conf/jobs.yaml [vendor_counts] (rides_green), in any format the producer writes
         (Avro through the registry, JSON, the seed's CSV lines).
Writes:  `vendor_counts_windowed`, one JSON record per (window kind, window start, vendor), key
         `<kind>|<window start>|<VendorID>`; sliding windows (10 minutes every 5) and tumbling windows
         (10 minutes) over pickup time; also printed to the terminal. Bad records go to `rides_dead_letter`.
State:   bounded: a 30-minute watermark on pickup time, update output mode (a window's row is re-sent as it
         changes; the topic is compacted, so the latest value per key is the answer).
Run:     python -m stack submit jobs/vendor_counts.py            (or: make submit JOB=vendor_counts)
         python -m stack submit jobs/vendor_counts.py --trigger available-now   # to the end of the input
"""

from __future__ import annotations

import sys

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession
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
from jobs.job_settings import VendorCountsSettings
from jobs.late_rides import WindowedQuery, watch
from jobs.launch import launch
from jobs.result_sinks import ResultSinks, result_handler


def cents(amount: Column) -> Column:
    """An amount in dollars as whole cents (rounded half up, as a decimal(12,2) cast rounds): summing longs
    keeps the sum exact and is faster than summing decimals, whose sum Spark widens past 18 digits to Java
    BigDecimals (BENCHMARKS.md: the sliding-window query 1.2x faster)."""
    return (amount.cast("decimal(12,2)") * 100).cast("long")


def from_cents(total: Column) -> Column:
    return (total.cast("decimal(20,0)") / 100).cast("decimal(14,2)")


def windowed_vendor_counts(rides_df: DataFrame, window_length: str, slide: str, watermark: str, kind: str) -> DataFrame:
    """Rides, passengers and revenue per window of pickup time and VendorID (null VendorID is its own group:
    42% of the real green rows have none). Revenue is exact: each amount rounded to the cent, summed as whole
    cents, a decimal(14,2) in the output."""
    return (
        rides_df.withWatermark("pickup_datetime", watermark)
        .groupBy(F.window("pickup_datetime", window_length, slide).alias("window"), F.col("VendorID"))
        .agg(
            F.count(F.lit(1)).alias("rides"),
            F.sum("passenger_count").alias("passengers"),
            F.sum(cents(F.col("total_amount"))).alias("revenue_cents"),
        )
        .select(
            F.lit(kind).alias("window_kind"),
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            "VendorID",
            "rides",
            "passengers",
            from_cents(F.col("revenue_cents")).alias("revenue"),
        )
    )


def to_vendor_count_records(counts_df: DataFrame) -> DataFrame:
    key = F.concat_ws("|", F.col("window_kind"), window_key(F.col("window_start"), F.col("VendorID")))
    return to_kafka_record(counts_df, key)


def start_queries(spark: SparkSession, settings: VendorCountsSettings) -> list[StreamingQuery]:
    decoded_df = read_rides(spark, settings, settings.input_topics)
    rides_df = good_rides(decoded_df)
    shapes = {
        "sliding": (settings.sliding_window, settings.sliding_slide),
        "tumbling": (settings.tumbling_window, settings.tumbling_window),
    }
    windows = {kind: shapes[kind] for kind in dict.fromkeys(settings.window_kinds)}
    queries = [start_dead_letter_query(decoded_df, settings)]
    for kind, (length, slide) in windows.items():
        counts_df = windowed_vendor_counts(rides_df, length, slide, settings.watermark, kind)
        query = f"vendor_counts_{kind}"
        handler = result_handler(
            settings,
            query,
            ResultSinks(
                title=f"Rides per vendor, {kind} windows of {length}",
                topic=settings.output_topic,
                to_record=to_vendor_count_records,
                table="vendor_counts",
                order_by=[F.col("window_start").desc(), "VendorID"],
            ),
        )
        watch(WindowedQuery(query, settings, tuple(settings.input_topics), length, slide))
        queries.append(start_foreach_batch_query(counts_df, settings, query, handler))
    return queries


def main(argv: list[str] | None = None) -> int:
    return launch(JOBS["vendor_counts"], argv)


if __name__ == "__main__":
    sys.exit(main())
