"""Avro values in the Confluent wire format, written by Spark: the schema registered under `<topic>-value`
(in the driver, once, at job start), its id in each record's 5-byte header, the body encoded by Spark's
`to_avro` in the JVM (no Python per row). Any consumer of the registry (ours, Kafka UI, a Confluent client,
another Spark job's decoder) reads the records by that id."""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column
from pyspark.sql.avro.functions import to_avro

from cluster.clients import registry_client
from rides.events import RIDE_EVENT_SCHEMA, SchemaFile, schema_text
from rides.serialization import (
    MAGIC_BYTE,
    WIRE_HEADER,
    RegistryUnavailableError,
    register,
)


def registered_value_schema(registry_url: str, topic: str, schema_path: SchemaFile = RIDE_EVENT_SCHEMA) -> int:
    """The id of the schema under `<topic>-value`, registered when new. A refusal (the subject's compatibility
    rule) raises SchemaRefusedError naming the rule; an unreachable registry, RegistryUnavailableError."""
    try:
        return register(registry_client(registry_url), f"{topic}-value", schema_path)
    except RegistryUnavailableError as exc:
        raise RegistryUnavailableError(
            f"cannot reach the schema registry at {registry_url} to register the schema of {topic} ({exc}); "
            "is the stack up? (make up)"
        ) from None


def confluent_avro(value: Column, schema_id: int, schema_path: SchemaFile = RIDE_EVENT_SCHEMA) -> Column:
    """A struct column as Avro bytes of the schema, behind the magic byte and the schema id."""
    header = WIRE_HEADER.pack(MAGIC_BYTE, schema_id)
    return F.concat(F.lit(header), to_avro(value, schema_text(schema_path)))
