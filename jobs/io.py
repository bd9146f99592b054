"""Sources and sinks shared by the jobs: Kafka in and out, dead letters, triggers (results to all their sinks:
jobs/result_sinks.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pyspark.sql.functions as F
from pyspark import SparkContext
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from jobs.decode import REASON, bad_records, decode_rides
from jobs.settings import JobSettings
from jobs.writer_schemas import BOOK, KnownWriters
from pipeline_config.credentials import spark_kafka_auth
from rides.dead_letter import DEFAULT_ORIGINAL_MAX_BYTES, REASON_MAX_CHARS

log = logging.getLogger("jobs")
# The fair scheduler's pool of the dead-letter queries (conf/fair-scheduler.xml: served after the result queries).
DEAD_LETTER_POOL = "dead_letters"
SCHEDULER_POOL = "spark.scheduler.pool"
JSON_OPTIONS = {"timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "ignoreNullFields": "false"}


def kafka_options(settings: JobSettings) -> dict[str, str]:
    """Where Kafka is and, on the secured stack, the job's SASL/SCRAM login (from KAFKA_CREDENTIALS_FILE or
    KAFKA_SASL_USERNAME/PASSWORD in the driver's environment): for every Kafka source and sink of a job."""
    return {"kafka.bootstrap.servers": settings.bootstrap_servers, **spark_kafka_auth()}


def kafka_sink_options(settings: JobSettings, trigger: dict | None = None) -> dict[str, str]:
    """kafka_options plus the producer settings of conf/jobs.yaml `kafka_producer` (batching: a micro-batch
    writes many records at once, and Kafka's defaults, 16 KiB batches sent at once, cost a query that writes as
    much as it reads a quarter of its speed). Under the real-time trigger records go out one by one as they come,
    so they are sent at once (linger.ms 0): waiting for a batch to fill would be all of their latency."""
    producer = {f"kafka.{key}": str(value) for key, value in settings.kafka_producer.items()}
    if trigger and "realTime" in trigger:
        producer["kafka.linger.ms"] = "0"
    return {**kafka_options(settings), **producer}


def read_kafka(spark: SparkSession, settings: JobSettings, topics: list[str]) -> DataFrame:
    reader = (
        spark.readStream.format("kafka")
        .options(**kafka_options(settings))
        .option("subscribe", ",".join(topics))
        .options(**settings.kafka_start())
        # Records deleted before the job read them fail the query, unless the loss was accepted: the job checked
        # before it started (jobs/data_loss.py) and said what would be skipped.
        .option("failOnDataLoss", "false" if settings.accept_data_loss else "true")
    )
    if settings.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", settings.max_offsets_per_trigger)
    if settings.min_partitions:
        reader = reader.option("minPartitions", settings.min_partitions)
    return reader.load()


def read_rides(spark: SparkSession, settings: JobSettings, topics: list[str]) -> DataFrame:
    """Decoded ride records of the topics, good and bad, with `dead_letter_reason` set on the bad ones.

    Only a job that reads Avro asks the registry for the topics' writer schemas: one told its input is JSON or CSV
    lines starts without the round trips (0.2 s of a short job's start) and registers nothing under its topics."""
    reads_avro = settings.input_format in ("auto", "avro")
    writers = (
        BOOK.writers(settings.registry_url, topics, settings.new_schema_id_lookahead)
        if reads_avro
        else KnownWriters(())
    )
    return decode_rides(read_kafka(spark, settings, topics), writers, settings.input_format, settings.max_record_bytes)


def trigger_of(settings: JobSettings) -> dict:
    if settings.trigger == "available-now":
        return {"availableNow": True}
    return {"processingTime": settings.trigger}


def to_kafka_record(df: DataFrame, key: Column, value_columns: list[str] | None = None) -> DataFrame:
    """The Kafka projection: a deterministic key and the row as JSON (timestamps in UTC ISO-8601)."""
    columns = value_columns or df.columns
    return df.select(key.cast("string").alias("key"), F.to_json(F.struct(*columns), JSON_OPTIONS).alias("value"))


def window_key(window_start: Column, *groups: Column) -> Column:
    """'2020-10-01T00:05:00Z|2' style keys: deterministic, so a downstream reader keeps the latest value
    per key (the output topics are compacted)."""
    rendered = [F.date_format(window_start, "yyyy-MM-dd'T'HH:mm:ss'Z'")]
    rendered += [F.coalesce(group.cast("string"), F.lit("null")) for group in groups]
    return F.concat_ws("|", *rendered)


def write_kafka_batch(batch_df: DataFrame, settings: JobSettings, topic: str) -> None:
    (batch_df.write.format("kafka").options(**kafka_sink_options(settings)).option("topic", topic).save())


def start_foreach_batch_query(
    df: DataFrame,
    settings: JobSettings,
    query: str,
    handle_batch: Callable[[DataFrame, int], None],
    output_mode: str = "update",
) -> StreamingQuery:
    """A query whose micro-batches go to a function (Kafka and the terminal in one pass), with its own
    name and checkpoint."""
    return (
        df.writeStream.queryName(query)
        .outputMode(output_mode)
        .option("checkpointLocation", settings.checkpoint(query))
        .trigger(**trigger_of(settings))
        .foreachBatch(handle_batch)
        .start()
    )


def dead_letter_records(
    bad_df: DataFrame, stage: str, max_original_bytes: int = DEFAULT_ORIGINAL_MAX_BYTES
) -> DataFrame:
    """Bad records as dead letters (rides/schemas/dead_letter.avsc as JSON), with the reason in a header too.

    A dead letter always fits in a Kafka message, whatever the bad record's size: its bytes are kept up to
    `max_original_bytes` (then `truncated` is true), with their full length and SHA-256, and a reason that quotes
    a hostile value is cut (as rides.dead_letter does for the Python clients)."""
    source = F.concat_ws("/", F.col("topic"), F.col("partition").cast("string"), F.col("offset").cast("string"))
    kept = F.substring(F.col("value"), 1, max_original_bytes)
    original = F.when(F.col("value").isNull(), F.lit("")).otherwise(F.concat(F.lit("base64:"), F.base64(kept)))
    reason = F.when(F.length(REASON) <= REASON_MAX_CHARS, F.col(REASON)).otherwise(
        F.concat(F.substring(REASON, 1, REASON_MAX_CHARS - 1), F.lit("…"))
    )
    length = F.coalesce(F.length("value").cast("long"), F.lit(0).cast("long"))
    letter = F.struct(
        reason.alias("reason"),
        source.alias("source"),
        F.lit(stage).alias("stage"),
        original.alias("original"),
        length.alias("original_length"),
        F.sha2(F.coalesce(F.col("value"), F.lit(b"")), 256).alias("original_sha256"),
        (length > max_original_bytes).alias("truncated"),
        F.current_timestamp().alias("occurred_at"),
    )
    headers = F.array(
        F.struct(F.lit("dlq.reason").alias("key"), reason.cast("binary").alias("value")),
        F.struct(F.lit("dlq.source").alias("key"), source.cast("binary").alias("value")),
        F.struct(F.lit("dlq.stage").alias("key"), F.lit(stage).cast("binary").alias("value")),
    )
    return bad_df.select(source.alias("key"), F.to_json(letter, JSON_OPTIONS).alias("value"), headers.alias("headers"))


def start_dead_letter_query(decoded_df: DataFrame, settings: JobSettings) -> StreamingQuery:
    """Every record that could not be decoded or validated, to the dead-letter topic with its reason."""
    query = f"{settings.name}_dead_letters"
    writer = (
        dead_letter_records(bad_records(decoded_df), settings.name, settings.dead_letter_original_max_bytes)
        .writeStream.queryName(query)
        .format("kafka")
        .options(**kafka_sink_options(settings))
        .option("topic", settings.dead_letter_topic)
        .option("checkpointLocation", settings.checkpoint(query))
        .trigger(**trigger_of(settings))
    )
    with scheduler_pool(decoded_df.sparkSession.sparkContext, DEAD_LETTER_POOL):
        return writer.start()


@contextmanager
def scheduler_pool(context: SparkContext, pool: str) -> Iterator[None]:
    """Queries started within run their tasks in this pool of the fair scheduler (a query's thread inherits the
    local properties of the thread that starts it); those started after, in the pool before."""
    previous = context.getLocalProperty(SCHEDULER_POOL)
    context.setLocalProperty(SCHEDULER_POOL, pool)
    try:
        yield
    finally:
        context.setLocalProperty(SCHEDULER_POOL, previous)  # type: ignore[arg-type]  # None removes it
