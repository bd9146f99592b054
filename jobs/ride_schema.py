"""The ride event as Spark types, derived from rides/schemas/ride_event.avsc (no schema is typed twice), and the
seed's CSV line layouts, derived from the TLC layouts the producers read."""

from __future__ import annotations

import json

import pyspark.sql.functions as F
from pyspark.sql import Column
from pyspark.sql.types import (
    BooleanType,
    DataType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from rides.events import RIDE_EVENT_SCHEMA, required_fields, schema_text
from rides.tlc import LAYOUTS, field_of_column

_PRIMITIVES: dict[str, DataType] = {
    "string": StringType(),
    "int": IntegerType(),
    "long": LongType(),
    "double": DoubleType(),
    "boolean": BooleanType(),
}


def _spark_type(avro_type) -> tuple[DataType, bool]:
    """(Spark type, nullable) of an Avro field type."""
    if isinstance(avro_type, list):
        branches = [branch for branch in avro_type if branch != "null"]
        if len(branches) != 1:
            raise ValueError(f"only unions of null and one type are supported, got {avro_type}")
        return _spark_type(branches[0])[0], True
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") == "timestamp-millis":
            return TimestampType(), False
        if avro_type.get("type") == "enum":
            return StringType(), False
        return _spark_type(avro_type["type"])
    return _PRIMITIVES[avro_type], False


def struct_from_avro(schema_json: str) -> StructType:
    """Every field nullable: records are decoded before they are validated, and a decoder of JSON or CSV
    may find any field missing (validation then names it)."""
    return StructType(
        [StructField(field["name"], _spark_type(field["type"])[0], True) for field in json.loads(schema_json)["fields"]]
    )


RIDE_SCHEMA_JSON = schema_text(RIDE_EVENT_SCHEMA)
RIDE_SCHEMA = struct_from_avro(RIDE_SCHEMA_JSON)
RIDE_FIELDS = [field.name for field in RIDE_SCHEMA.fields]
# Not null in rides/schemas/ride_event.avsc: a ride without one is a dead letter, never a row a sink cannot write.
REQUIRED_RIDE_FIELDS = required_fields(RIDE_EVENT_SCHEMA)


def csv_layout_schema(ride_type: str) -> StructType:
    """The columns of a TLC CSV line of this layout, in the TLC's order, typed as their ride fields."""
    layout = LAYOUTS[ride_type]
    mapping = field_of_column(layout)
    types = {field.name: field.dataType for field in RIDE_SCHEMA.fields}
    return StructType([StructField(column, types[mapping[column]], True) for column in layout.header])


def csv_to_ride_columns(parsed: Column, ride_type: str) -> Column:
    """A parsed CSV struct to the ride struct; null when there is no parsed line (another format or kind)."""
    mapping = field_of_column(LAYOUTS[ride_type])
    by_field = {field_name: column for column, field_name in mapping.items()}
    ride = F.struct(
        *[
            (
                parsed[by_field[field.name]]
                if field.name in by_field
                else F.lit(ride_type)
                if field.name == "ride_type"
                else F.lit(None).cast(field.dataType)
            ).alias(field.name)
            for field in RIDE_SCHEMA.fields
        ]
    )
    with_id = ride.withField(
        "ride_id",
        # The seed's lines carry no id: a stable one from the line itself, so a replay gives the same ids.
        F.concat(F.lit(f"{ride_type}-csv-"), F.substring(F.sha2(F.to_json(parsed), 256), 1, 16)),
    )
    return F.when(parsed.isNotNull(), with_id)
