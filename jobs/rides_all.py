"""All rides: the green, yellow and FHV topics merged into one normalized `rides_all` topic, and the most
popular pickup location of each hour over the merged stream.

Reads:   the topics of conf/jobs.yaml [rides_all] (rides_green, rides_yellow, rides_fhv), any format.
Writes:  `rides_all`: every good ride in the normalized model (rides/schemas/ride_event.avsc), key ride_id (text);
         Avro in the Confluent wire format, the schema registered under `rides_all-value` at start (or JSON with
         `--output-format json`);
         `pickup_leaders`: per hour, the pickup zone with the most rides of any kind, key `<window start>`;
         the leaders also printed to the terminal; bad records to `rides_dead_letter`.
State:   none for the merge (a stateless query: BENCHMARKS.md measures it under Spark's real-time trigger too);
         the leaders keep the counts of each open hour until the watermark closes it.
Run:     python -m stack submit jobs/rides_all.py            (or: make submit JOB=rides_all)
"""

from __future__ import annotations

import sys

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from jobs.avro_output import confluent_avro, registered_value_schema
from jobs.catalog import JOBS
from jobs.decode import good_rides
from jobs.io import (
    kafka_sink_options,
    read_rides,
    start_dead_letter_query,
    start_foreach_batch_query,
    to_kafka_record,
    trigger_of,
    window_key,
)
from jobs.job_settings import RidesAllSettings
from jobs.launch import launch
from jobs.result_sinks import ResultSinks, result_handler
from jobs.ride_schema import RIDE_FIELDS
from jobs.zone_popularity import top_zones


def to_ride_records(rides_df: DataFrame, avro_schema_id: int | None = None) -> DataFrame:
    """The normalized ride keyed by ride_id (the same ride replayed lands on the same key): Avro in the wire
    format under the registered schema id, or JSON when there is none."""
    if avro_schema_id is None:
        return to_kafka_record(rides_df, F.col("ride_id"), RIDE_FIELDS)
    return rides_df.select(
        F.col("ride_id").alias("key"), confluent_avro(F.struct(*RIDE_FIELDS), avro_schema_id).alias("value")
    )


def output_schema_id(settings: RidesAllSettings) -> int | None:
    """The registry's id of the ride schema under the output topic's subject, for Avro output."""
    if settings.output_format == "json":
        return None
    return registered_value_schema(settings.registry_url, settings.output_topic)


def pickup_leaders(rides_df: DataFrame, window_length: str, watermark: str) -> DataFrame:
    """The most popular pickup zone of each window, over rides of every kind."""
    return top_zones(rides_df, window_length, watermark, top_n=1).drop("rank")


def start_merge_query(rides_df: DataFrame, settings: RidesAllSettings, schema_id: int | None) -> StreamingQuery | None:
    """Every ride to the `rides_all` topic and, among the sinks, to the `rides` table (once per ride). Kafka alone
    goes straight to Spark's Kafka sink, the path of the real-time trigger; with the database, micro-batches."""
    query = "rides_all_merge"
    if settings.writes_to("postgres"):
        sinks = ResultSinks(
            title="All rides",
            topic=settings.output_topic,
            to_record=lambda df: to_ride_records(df, schema_id),
            table="rides",
            order_by=["ride_id"],
            printed=False,  # every ride: too many to print
        )
        return start_foreach_batch_query(
            rides_df, settings, query, result_handler(settings, query, sinks), output_mode="append"
        )
    if not settings.writes_to("kafka"):
        return None
    trigger = trigger_of(settings)
    return (
        to_ride_records(rides_df, schema_id)
        .writeStream.queryName(query)
        .format("kafka")
        .options(**kafka_sink_options(settings, trigger))
        .option("topic", settings.output_topic)
        .option("checkpointLocation", settings.checkpoint(query))
        .trigger(**trigger)
        .start()
    )


def start_queries(spark: SparkSession, settings: RidesAllSettings) -> list[StreamingQuery]:
    schema_id = output_schema_id(settings)  # before any query starts: a refusal stops the job here
    decoded_df = read_rides(spark, settings, settings.input_topics)
    rides_df = good_rides(decoded_df)
    leaders_handler = result_handler(
        settings,
        "pickup_leaders",
        ResultSinks(
            title=f"Most popular pickup zone per {settings.window}, all ride kinds",
            topic=settings.top_topic,
            to_record=lambda df: to_kafka_record(df, window_key(F.col("window_start"))),
            table="pickup_leaders",
            order_by=[F.col("window_start").desc()],
        ),
    )
    merge_query = start_merge_query(rides_df, settings, schema_id)
    return [
        start_dead_letter_query(decoded_df, settings),
        *([merge_query] if merge_query is not None else []),
        start_foreach_batch_query(
            pickup_leaders(rides_df, settings.window, settings.watermark), settings, "pickup_leaders", leaders_handler
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    return launch(JOBS["rides_all"], argv)


if __name__ == "__main__":
    sys.exit(main())
