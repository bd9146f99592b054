"""Kafka records to ride rows, whatever their format, and the split of what cannot be decoded or validated.

Each record's format is detected from its bytes: the Confluent Avro wire format (magic byte 0 and a schema
id; decoded with that writer's schema from the registry and resolved to rides/schemas/ride_event.avsc, so v1 and
v2 messages both decode; an id registered while the job runs is looked up: jobs/writer_schemas.py), JSON (a value starting with '{'), or the seed's CSV line (the TLC columns of the
topic's layout, comma-separated). A record that fails gets a `dead_letter_reason`; nothing becomes a
silent row of nulls.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame
from pyspark.sql.avro.functions import from_avro
from pyspark.sql.types import StructType

from jobs.ride_schema import (
    REQUIRED_RIDE_FIELDS,
    RIDE_FIELDS,
    RIDE_SCHEMA,
    RIDE_SCHEMA_JSON,
    csv_layout_schema,
    csv_to_ride_columns,
)
from jobs.writer_schemas import NEWER_SCHEMA_ID, KnownWriters, WriterSchema

REASON = "dead_letter_reason"
KAFKA_METADATA = ("topic", "partition", "offset", "timestamp")
VALID_RIDE_TYPES = ("yellow", "green", "fhv")
DEFAULT_MAX_RECORD_BYTES = 131072
ZONE_RANGE = (1, 265)
# A pickup outside these bounds is a broken clock or a hostile record, not a ride: the TLC's trip records begin
# in January 2009, and a ride does not start tomorrow. One such record let through would drag the watermark
# years ahead (or hold it back) and every windowed job would drop the good rides that follow as late.
EARLIEST_PICKUP = "2009-01-01 00:00:00"
LATEST_PICKUP_AHEAD = "1 day"


def _detected_format(value: Column) -> Column:
    text = F.ltrim(value.cast("string"))
    return (
        F.when(value.isNull() | (F.length(value) == 0), F.lit("empty"))
        .when((F.substring(value, 1, 1) == F.lit(b"\x00")) & (F.length(value) >= 5), F.lit("avro"))
        .when(text.startswith("{"), F.lit("json"))
        .otherwise(F.lit("csv"))
    )


def _schema_id(value: Column) -> Column:
    return F.conv(F.hex(F.substring(value, 2, 4)), 16, 10).cast("long")


def _avro_rides(value: Column, writers: list[WriterSchema]) -> Column:
    """One from_avro per known writer schema, each resolved to the current reader schema."""
    payload = F.expr("substring(value, 6)")
    branches = [
        F.when(
            _schema_id(value) == F.lit(writer.schema_id),
            from_avro(payload, writer.schema_json, {"mode": "PERMISSIVE", "avroSchema": RIDE_SCHEMA_JSON}),
        )
        for writer in writers
    ]
    if not branches:
        return F.lit(None).cast(RIDE_SCHEMA)
    return F.coalesce(*branches) if len(branches) > 1 else branches[0]


def _json_rides(value: Column) -> Column:
    with_corrupt = StructType([*RIDE_SCHEMA.fields]).add("_corrupt_record", "string")
    return F.from_json(
        value.cast("string"),
        with_corrupt,
        {
            "mode": "PERMISSIVE",
            "columnNameOfCorruptRecord": "_corrupt_record",
            "timestampFormat": "yyyy-MM-dd'T'HH:mm:ss[.SSS]XXX",
        },
    )


def _parsed_csv(value: Column, ride_type: str) -> Column:
    layout = csv_layout_schema(ride_type)
    with_corrupt = StructType([*layout.fields]).add("_corrupt_record", "string")
    return F.from_csv(
        value.cast("string"),
        with_corrupt.simpleString(),
        {
            "mode": "PERMISSIVE",
            "columnNameOfCorruptRecord": "_corrupt_record",
            "timestampFormat": "yyyy-MM-dd HH:mm:ss",
        },
    )


def _csv_problem(value: Column, parsed: Column, ride_type: str) -> Column:
    """Why a CSV line of this layout is unusable: the wrong number of fields, or the first field whose text
    did not parse as its type. Null when the line is fine or is not a line of this layout."""
    columns = csv_layout_schema(ride_type).fieldNames()
    tokens = F.split(value.cast("string"), ",")
    wrong_width = F.size(tokens) != F.lit(len(columns))
    problem = F.when(
        wrong_width,
        F.concat(
            F.lit("CSV line has "),
            F.size(tokens).cast("string"),
            F.lit(f" fields where the {ride_type} layout has {len(columns)}"),
        ),
    )
    for position, column in enumerate(columns):
        token = F.trim(tokens.getItem(position))
        problem = problem.when(
            (token != F.lit("")) & parsed[column].isNull(),
            F.concat(F.lit(f"CSV field {column} '"), token, F.lit("' is not a valid value")),
        )
    return F.when(parsed.isNotNull(), problem)


def _ride_type_of_topic(topic: Column) -> Column:
    """The seed's CSV lines carry no ride type: the topic name says it (rides_yellow, rides_fhv, ...)."""
    return (
        F.when(topic.contains("yellow"), F.lit("yellow"))
        .when(topic.contains("fhv"), F.lit("fhv"))
        .otherwise(F.lit("green"))
    )


def _wrong_format(expected: str) -> Column:
    """In a single-format job, a record of another format is a dead letter that says so."""
    return F.when(
        F.col("_format") != expected,
        F.concat(
            F.lit(f"expected {expected}, found "),
            F.when(F.col("_format") == "empty", F.lit("an empty value")).otherwise(F.col("_format")),
        ),
    )


def _parsed_columns(formats: tuple[str, ...], writers: list[WriterSchema]) -> list[Column]:
    """One column per decoder, each run only on the records of its format (null on the others): `_avro`,
    `_json`, and `_csv_<kind>` per TLC layout."""
    value, detected, kind = F.col("value"), F.col("_format"), F.col("_kind")
    columns = []
    if "avro" in formats:
        columns.append(F.when(detected == "avro", _avro_rides(value, writers)).alias("_avro"))
    if "json" in formats:
        columns.append(F.when(detected == "json", _json_rides(value)).alias("_json"))
    if "csv" in formats:
        columns += [
            F.when((detected == "csv") & (kind == ride_type), _parsed_csv(value, ride_type)).alias(f"_csv_{ride_type}")
            for ride_type in VALID_RIDE_TYPES
        ]
    return columns


def _ride_of_parsed(formats: tuple[str, ...]) -> Column:
    """The ride struct from whichever decoder ran (at most one per record)."""
    rides = []
    if "avro" in formats:
        rides.append(F.col("_avro"))
    if "json" in formats:
        rides.append(F.col("_json").dropFields("_corrupt_record"))
    if "csv" in formats:
        rides += [
            csv_to_ride_columns(F.col(f"_csv_{ride_type}").dropFields("_corrupt_record"), ride_type)
            for ride_type in VALID_RIDE_TYPES
        ]
    return F.coalesce(*rides) if len(rides) > 1 else rides[0]


def _too_large(max_record_bytes: int) -> Column:
    """A record larger than any ride could be: refused before decoding, so that every sink (JSON may write six
    bytes for one it reads, and Kafka takes 1 MiB) can write whatever passes."""
    return F.when(
        F.length("value") > max_record_bytes,
        F.concat(
            F.lit("record of "),
            F.length("value").cast("string"),
            F.lit(f" bytes is larger than max_record_bytes ({max_record_bytes})"),
        ),
    )


def _decode_error(formats: tuple[str, ...], writers: KnownWriters, max_record_bytes: int) -> Column:
    """Why the record could not be decoded, or null: too large, a format the job does not read, text that is not
    UTF-8, an unknown schema id, corrupt Avro, malformed JSON, a CSV line of the wrong width or with a field that
    does not parse."""
    detected = F.col("_format")
    too_large = F.length("value") > max_record_bytes
    error = F.when(too_large, _too_large(max_record_bytes))
    if len(formats) == 1:
        error = error.when(F.col("_format") != formats[0], _wrong_format(formats[0]))
    else:
        error = error.when(detected == "empty", F.lit("empty value"))
    # Text formats must be text: Spark would read invalid bytes as replacement characters, and a ride with a
    # field of U+FFFD would pass (the producer refuses such a line of a file in the same way).
    not_utf8 = detected.isin("json", "csv") & ~F.is_valid_utf8(F.col("value").cast("string"))
    error = error.when(not_utf8, F.concat(F.lit("not valid UTF-8 "), detected))
    if "avro" in formats:
        schema_id = F.col("_schema_id").cast("string")
        unknown_schema_id = ~F.col("_schema_id").isin(writers.ids) if writers.ids else F.lit(True)
        is_avro = detected == "avro"
        if writers.lookup_range is not None:
            # A schema registered after the job started: the batch fails naming the id, the runner looks it up and
            # starts the queries again from their checkpoints (jobs/writer_schemas.py).
            first, last = writers.lookup_range
            newer = F.col("_schema_id").between(first, last)
            if writers.absent:  # looked up already, and not in the registry: dead letters
                newer = newer & ~F.col("_schema_id").isin(*sorted(writers.absent))
            message = NEWER_SCHEMA_ID.split("{}")
            error = error.when(
                is_avro & unknown_schema_id & newer,
                F.raise_error(F.concat(F.lit(message[0]), schema_id, F.lit(message[1]))).cast("string"),
            )
        # from_avro in PERMISSIVE mode may hand back a half-read record rather than null: a record without its
        # required fields (required in every version of the schema) was not Avro of that schema.
        corrupt = F.col("_avro").isNull() | F.col("_avro.ride_id").isNull() | F.col("_avro.pickup_datetime").isNull()
        error = error.when(is_avro & unknown_schema_id, F.concat(F.lit("unknown schema id "), schema_id)).when(
            is_avro & corrupt, F.concat(F.lit("corrupt Avro for schema id "), schema_id)
        )
    if "json" in formats:
        error = error.when(
            (detected == "json") & F.col("_json._corrupt_record").isNotNull(),
            F.lit("malformed JSON or a field of the wrong type"),
        )
    if "csv" in formats:
        problems = [
            _csv_problem(F.col("value"), F.col(f"_csv_{ride_type}"), ride_type) for ride_type in VALID_RIDE_TYPES
        ]
        error = error.when(detected == "csv", F.coalesce(*problems))
    return error


def decode_rides(
    raw_df: DataFrame,
    writers: KnownWriters | list[WriterSchema],
    input_format: str = "auto",
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> DataFrame:
    """Kafka source rows -> one row per record: the ride fields, the Kafka metadata, the original bytes,
    and `dead_letter_reason` (null for a good ride).

    One pass over the topic whatever the format: each record's format is detected, and each decoder is a
    column of one projection that runs only on the records of its format. The ride and the reason are computed
    from those columns in the projection after it; Spark does not merge the two (a decoder's result is used
    more than once there, and Spark will not copy an expensive expression into each use), so each record is
    decoded once. A record over max_record_bytes is a dead letter whatever it holds. input_format "auto" reads
    Avro, JSON and the seed's CSV lines; "avro" or "json" reads that format only, and records of any other format
    go to the dead-letter topic saying what was expected. An Avro record of a writer schema id not in `writers` is
    a dead letter, unless `writers` has a lookup range that holds the id: then it fails the batch, naming the id
    (jobs/writer_schemas.py).
    """
    formats = ("avro", "json", "csv") if input_format == "auto" else (input_format,)
    known = writers if isinstance(writers, KnownWriters) else KnownWriters(tuple(writers))
    columns = decoder_columns(formats, known, max_record_bytes)
    parsed_df = raw_df.select("key", "value", *KAFKA_METADATA, *columns.framing).select("*", *columns.parsing)
    return (
        parsed_df.select("key", "value", *KAFKA_METADATA, *columns.ride_and_error)
        .select("key", "value", *KAFKA_METADATA, *columns.flattened)
        .withColumn(REASON, columns.reason)
        .drop("_decode_error")
    )


@dataclass(frozen=True)
class DecoderColumns:
    """The decoder's columns, in the order of its projections (see decode_rides)."""

    framing: tuple[Column, ...]  # the format detected, the ride type of the topic
    parsing: tuple[Column, ...]  # the schema id, one column per decoder
    ride_and_error: tuple[Column, ...]  # the ride struct from whichever decoder ran, and why decoding failed
    flattened: tuple[Column, ...]  # the ride's fields, and the decoding error
    reason: Column  # the decoding error or else the validation error: the dead letter's reason


@functools.cache
def decoder_columns(formats: tuple[str, ...], known: KnownWriters, max_record_bytes: int) -> DecoderColumns:
    """Built once per decoder shape and kept for the driver's life. Columns are expressions, not bound to a
    DataFrame, and building these takes some 5,000 calls from Python into the JVM (1.5 s): a job on the job
    server, whose decoder is the one the last job built, starts its queries that much sooner."""
    return DecoderColumns(
        framing=(
            _detected_format(F.col("value")).alias("_format"),
            _ride_type_of_topic(F.col("topic")).alias("_kind"),
        ),
        parsing=(_schema_id(F.col("value")).alias("_schema_id"), *_parsed_columns(formats, list(known.schemas))),
        ride_and_error=(
            _ride_of_parsed(formats).alias("_ride"),
            _decode_error(formats, known, max_record_bytes).alias("_decode_error"),
        ),
        flattened=(*[F.col(f"_ride.{name}").alias(name) for name in RIDE_FIELDS], F.col("_decode_error")),
        reason=_computed_once(F.coalesce(F.col("_decode_error"), validation_error())),
    )


def _computed_once(reason: Column) -> Column:
    """The reason column, made non-deterministic in form (never in value) so that it is computed once per record.

    Spark pushes a filter on a projected column below the projection, inlining the column's expression into the
    filter's condition, and a filter's condition gets no common-subexpression elimination: splitting good rides
    from dead letters then ran the Avro or JSON decoder once for every field the validation reads, a dozen times
    per record (14x slower on the benchmark's 285k rides). A projection holding a non-deterministic expression is
    never pushed through; spark_partition_id() >= 0 is always true, cheap, and not folded away by the optimizer.
    """
    return F.when(F.spark_partition_id() >= 0, reason)


def validation_error() -> Column:
    """Why a decoded ride cannot be used, or null. Named sub-conditions, first failure wins.

    First, every field that rides/schemas/ride_event.avsc does not let be null (ride_id, ride_type, pickup_datetime):
    a ride without one would pass here and then fail the sink that writes the schema, and with it the query."""
    missing = [(F.col(name).isNull(), F.lit(f"{name} is missing")) for name in REQUIRED_RIDE_FIELDS]
    bad_ride_type = ~F.col("ride_type").isin(*VALID_RIDE_TYPES)
    low, high = ZONE_RANGE
    bad_pickup_zone = F.col("PULocationID").isNotNull() & ~F.col("PULocationID").between(low, high)
    bad_dropoff_zone = F.col("DOLocationID").isNotNull() & ~F.col("DOLocationID").between(low, high)
    pickup_too_early = F.col("pickup_datetime") < F.lit(EARLIEST_PICKUP).cast("timestamp")
    pickup_in_future = F.col("pickup_datetime") > F.current_timestamp() + F.expr(f"INTERVAL {LATEST_PICKUP_AHEAD}")
    pickup_text = F.date_format("pickup_datetime", "yyyy-MM-dd HH:mm:ss")
    negative_passengers = F.col("passenger_count") < 0
    dropoff_before_pickup = F.col("dropoff_datetime") < F.col("pickup_datetime")
    error = F.when(*missing[0])
    for condition, reason in missing[1:]:
        error = error.when(condition, reason)
    return (
        error.when(
            pickup_too_early,
            F.concat(
                F.lit("pickup_datetime "),
                pickup_text,
                F.lit(f" is before {EARLIEST_PICKUP[:10]}, the first TLC records"),
            ),
        )
        .when(
            pickup_in_future,
            F.concat(
                F.lit("pickup_datetime "), pickup_text, F.lit(f" is more than {LATEST_PICKUP_AHEAD} in the future")
            ),
        )
        .when(bad_ride_type, F.concat(F.lit("ride_type is not yellow, green or fhv: "), F.col("ride_type")))
        .when(
            bad_pickup_zone,
            F.concat(F.lit(f"PULocationID outside {low}..{high}: "), F.col("PULocationID").cast("string")),
        )
        .when(
            bad_dropoff_zone,
            F.concat(F.lit(f"DOLocationID outside {low}..{high}: "), F.col("DOLocationID").cast("string")),
        )
        .when(negative_passengers, F.lit("passenger_count is negative"))
        .when(dropoff_before_pickup, F.lit("dropoff_datetime is before pickup_datetime"))
    )


def good_rides(decoded_df: DataFrame) -> DataFrame:
    """The rides that decoded and validated, with their Kafka timestamp kept for latency measurements."""
    return decoded_df.filter(F.col(REASON).isNull()).select(
        *[field.name for field in RIDE_SCHEMA.fields], F.col("timestamp").alias("kafka_timestamp")
    )


def bad_records(decoded_df: DataFrame) -> DataFrame:
    return decoded_df.filter(F.col(REASON).isNotNull()).select("key", "value", *KAFKA_METADATA, REASON)
