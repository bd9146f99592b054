"""Zone popularity: rides per pickup zone per tumbling window, with borough and zone name, and the top zones
of each window.

Reads:   the ride topics of conf/jobs.yaml [zone_popularity] (rides_green), any format; the zone table from its
         compacted topic `taxi_zones` (jobs/zone_table.py: read again when it changed, so a zone renamed or added
         is used from the next micro-batch on), or with `zones_topic: null` the taxi zone lookup CSV, read once.
Writes:  `zone_popularity`: one JSON record per (window, zone), key `<window start>|<PULocationID>`;
         `zone_top`: one JSON record per window with its top N zones ranked, key `<window start>`;
         the same in the results tables zone_popularity and zone_top (conf/results.yaml);
         also printed to the terminal; bad records to `rides_dead_letter`.
State:   counts per (window, zone) and, for the ranking, the counts of each open window (applyInPandasWithState),
         both evicted once the watermark passes the window's end.
Run:     python -m stack submit jobs/zone_popularity.py     (or: make submit JOB=zone_popularity)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pandas as pd
import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery
from pyspark.sql.streaming.state import GroupState, GroupStateTimeout

from jobs.catalog import JOBS
from jobs.decode import good_rides
from jobs.io import (
    read_rides,
    start_dead_letter_query,
    start_foreach_batch_query,
    to_kafka_record,
    window_key,
)
from jobs.job_settings import ZonePopularitySettings
from jobs.late_rides import WindowedQuery, watch
from jobs.launch import launch
from jobs.result_sinks import ResultSinks, result_handler
from jobs.zone_table import LatestZones

TOP_SCHEMA = "window_start timestamp, window_end timestamp, rank int, PULocationID int, rides long"


def read_zones(spark: SparkSession, path: str) -> DataFrame:
    """The 265 TLC zones (LocationID, Borough, Zone, service_zone); the file has CRLF endings and quotes."""
    return (
        spark.read.option("header", True)
        .csv(str(path))
        .select(
            F.col("LocationID").cast("int").alias("LocationID"),
            F.trim("Borough").alias("borough"),
            F.trim("Zone").alias("zone"),
        )
    )


def zone_counts(rides_df: DataFrame, window_length: str, watermark: str) -> DataFrame:
    """Rides per tumbling window and pickup zone; rides without a pickup zone are not anyone's popularity."""
    return (
        rides_df.filter(F.col("PULocationID").isNotNull())
        .withWatermark("pickup_datetime", watermark)
        .groupBy(F.window("pickup_datetime", window_length).alias("window"), "PULocationID")
        .agg(F.count(F.lit(1)).alias("rides"))
        .select(
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            "PULocationID",
            "rides",
        )
    )


def join_zone_counts_with_zones(counts_df: DataFrame, zones_df: DataFrame) -> DataFrame:
    """Borough and zone name for each count; an id missing from the lookup keeps null names, not dropped."""
    return counts_df.join(F.broadcast(zones_df), counts_df["PULocationID"] == zones_df["LocationID"], how="left").drop(
        "LocationID"
    )


def _top_zones_of_window(top_n: int):
    """The state function: per window start, the running count of every zone; emits the window's top N."""

    def update(key: tuple, batches: Iterator[pd.DataFrame], state: GroupState) -> Iterator[pd.DataFrame]:
        if state.hasTimedOut:
            state.remove()  # the watermark passed the window's end: its ranking is final
            return
        counts = {int(k): v for k, v in json.loads(state.get[0]).items()} if state.exists else {}
        window_end = None
        for batch in batches:
            window_end = batch["window_end"].iloc[0]
            for zone, rides in batch.groupby("PULocationID").size().items():
                counts[int(zone)] = counts.get(int(zone), 0) + int(rides)
        state.update((json.dumps(counts),))
        end_ms = int(pd.Timestamp(window_end).timestamp() * 1000)
        state.setTimeoutTimestamp(max(end_ms, state.getCurrentWatermarkMs() + 1))
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top_n]
        yield pd.DataFrame(
            {
                "window_start": [key[0]] * len(ranked),
                "window_end": [window_end] * len(ranked),
                "rank": list(range(1, len(ranked) + 1)),
                "PULocationID": [zone for zone, _ in ranked],
                "rides": [rides for _, rides in ranked],
            }
        )

    return update


def top_zones(rides_df: DataFrame, window_length: str, watermark: str, top_n: int) -> DataFrame:
    """The top N pickup zones of each tumbling window (ties broken by the lower zone id), re-emitted as the
    window's counts change. One row per (window, rank)."""
    windowed_df = (
        rides_df.filter(F.col("PULocationID").isNotNull())
        .withWatermark("pickup_datetime", watermark)
        .select(
            F.window("pickup_datetime", window_length).start.alias("window_start"),
            F.window("pickup_datetime", window_length).end.alias("window_end"),
            "PULocationID",
            "pickup_datetime",
        )
    )
    return windowed_df.groupBy("window_start").applyInPandasWithState(
        _top_zones_of_window(top_n), TOP_SCHEMA, "counts string", "Update", GroupStateTimeout.EventTimeTimeout
    )


def ranked_windows(top_df: DataFrame) -> DataFrame:
    """One row per window with its ranking as a list, the shape of the `zone_top` records."""
    entry = F.struct("rank", "PULocationID", "borough", "zone", "rides")
    return top_df.groupBy("window_start", "window_end").agg(F.sort_array(F.collect_list(entry)).alias("top_zones"))


def start_queries(spark: SparkSession, settings: ZonePopularitySettings) -> list[StreamingQuery]:
    if settings.zones_topic:  # the latest zone table from its topic, at every micro-batch
        zone_table = LatestZones(spark, settings, settings.zones_topic)
        zones = zone_table.current
    else:  # the lookup file, read once
        zones_df = read_zones(spark, settings.zone_lookup_path()).cache()
        zones = lambda: zones_df  # noqa: E731
    decoded_df = read_rides(spark, settings, settings.input_topics)
    rides_df = good_rides(decoded_df)

    with_zones = lambda df: join_zone_counts_with_zones(df, zones())  # noqa: E731
    counts_handler = result_handler(
        settings,
        "zone_counts",
        ResultSinks(
            title=f"Rides per pickup zone, windows of {settings.window}",
            topic=settings.output_topic,
            to_record=lambda df: to_kafka_record(df, window_key(F.col("window_start"), F.col("PULocationID"))),
            table="zone_popularity",
            order_by=[F.col("window_start").desc(), F.col("rides").desc()],
            enrich=with_zones,
        ),
    )
    top_handler = result_handler(
        settings,
        "zone_top",
        ResultSinks(
            title=f"Top {settings.top_n} pickup zones per window",
            topic=settings.top_topic,
            to_record=lambda df: to_kafka_record(ranked_windows(df), window_key(F.col("window_start"))),
            table="zone_top",
            order_by=[F.col("window_start").desc(), "rank"],
            enrich=with_zones,
        ),
    )
    watch(
        WindowedQuery(
            "zone_counts",
            settings,
            tuple(settings.input_topics),
            settings.window,
            settings.window,
            keeps=F.col("PULocationID").isNotNull(),
        )
    )
    return [
        start_dead_letter_query(decoded_df, settings),
        start_foreach_batch_query(
            zone_counts(rides_df, settings.window, settings.watermark), settings, "zone_counts", counts_handler
        ),
        start_foreach_batch_query(
            top_zones(rides_df, settings.window, settings.watermark, settings.top_n), settings, "zone_top", top_handler
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    return launch(JOBS["zone_popularity"], argv)


if __name__ == "__main__":
    sys.exit(main())
