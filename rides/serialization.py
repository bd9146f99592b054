"""Ride events to bytes and back: JSON, and Avro in the Confluent wire format through the schema registry.

Serializers are callables that parse their schema once and write with fastavro; failures raise the
project's own errors with the subject, the rule or the field named.
"""

from __future__ import annotations

import base64
import io
import json
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

# The HTTP library of confluent-kafka's registry client (httpx2, or httpx), as that package itself picks it: its
# TransportError covers a refused connection, a timeout and a connection broken mid-answer.
from confluent_kafka.schema_registry.common._httpx_compat import httpx as _registry_http
from confluent_kafka.schema_registry.error import SchemaRegistryError

from pipeline_config.errors import CannotRunError, PipelineError
from rides.events import (
    RIDE_EVENT_SCHEMA,
    RIDE_KEY_SCHEMA,
    Ride,
    SchemaFile,
    parsed_schema,
    schema_text,
    to_epoch_millis,
)

TransportError = _registry_http.TransportError


MAGIC_BYTE = 0
WIRE_HEADER = struct.Struct(">bI")  # magic byte, 4-byte big-endian schema id


class SerializationError(PipelineError):
    """An event could not be written in the chosen format."""


class DeserializationError(PipelineError):
    """Bytes could not be decoded; the message says why (unknown schema id, truncated Avro, bad JSON...)."""


class SchemaRefusedError(CannotRunError):
    """The registry refused a schema; the message names the subject, its compatibility rule and the breach."""


class RegistryUnavailableError(CannotRunError):
    """The schema registry could not be reached."""


# ---- JSON ----------------------------------------------------------------------------------------------------


def json_default(value: object) -> str:
    """How to_json writes what JSON lacks: a time as ISO-8601 UTC with milliseconds (a naive time is UTC)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(event: Ride) -> bytes:
    try:
        return json.dumps(event, default=json_default, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"event {event.get('ride_id')} cannot be written as JSON: {exc}") from None


def key_bytes(value: object) -> bytes | None:
    """The plain (JSON-format) key: the key field's value as UTF-8 text; None stays a null key."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return json_default(value).encode()
    return str(value).encode()


def encode_ride(
    event: Ride, encode_key: Callable[[str], bytes | None], encode_value: Callable[[Ride], bytes], key_field: str
) -> tuple[bytes | None, bytes]:
    """A ride as a message's key and value: the value encoded whole, the key from the key field's text (a null
    field is a null key). Raises SerializationError."""
    value = encode_value(event)
    key_value = event.get(key_field)
    return (None if key_value is None else encode_key(str(key_value))), value


# ---- Avro, Confluent wire format ------------------------------------------------------------------------------


def _unavailable(exc: Exception) -> RegistryUnavailableError:
    """The registry did not answer (refused, timed out, broken connection) or answered with a server error."""
    if isinstance(exc, SchemaRegistryError):
        return RegistryUnavailableError(
            f"the schema registry answered HTTP {exc.http_status_code}: {str(exc.error_message)[:200]}"
        )
    return RegistryUnavailableError(f"cannot reach the schema registry ({type(exc).__name__}: {str(exc)[:200]})")


def _server_failed(exc: SchemaRegistryError) -> bool:
    return (exc.http_status_code or 0) >= 500


def subject_compatibility(client: SchemaRegistryClient, subject: str) -> str:
    """The level that governs a subject: its own, else the global one. Apicurio answers NONE (Confluent
    answers 404) for a subject without a level of its own, and then applies the global rule."""
    try:
        level = client.get_compatibility(subject)
    except SchemaRegistryError:
        level = "NONE"
    return level if level != "NONE" else client.get_compatibility()


def register(client: SchemaRegistryClient, subject: str, schema_path: SchemaFile) -> int:
    """Register (or find) the schema under the subject; refusals name the compatibility rule broken."""
    schema = Schema(schema_text(schema_path), "AVRO")
    try:
        return client.register_schema(subject, schema)
    except SchemaRegistryError as exc:
        if exc.http_status_code == 409:
            try:
                level = subject_compatibility(client, subject)
            except (SchemaRegistryError, TransportError):
                level = "unknown"
            raise SchemaRefusedError(
                f"the registry refused {schema_path.name} for subject {subject}: it breaks the subject's "
                f"{level} compatibility rule ({exc.error_message})"
            ) from None
        if exc.http_status_code in (400, 422):
            raise SchemaRefusedError(
                f"the registry refused {schema_path.name} for subject {subject} as invalid: {exc.error_message}"
            ) from None
        if _server_failed(exc):
            raise _unavailable(exc) from None
        raise
    except TransportError as exc:
        raise _unavailable(exc) from None


def avro_versions(client: SchemaRegistryClient, subject: str) -> dict[int, str]:
    """Every Avro schema registered under the subject, by id; none for a subject that does not exist."""
    try:
        registered = [client.get_version(subject, version) for version in client.get_versions(subject)]
    except SchemaRegistryError as exc:
        if exc.http_status_code == 404:
            return {}
        raise _unavailable(exc) from None
    except TransportError as exc:
        raise _unavailable(exc) from None
    return {
        schema.schema_id: schema.schema.schema_str
        for schema in registered
        if schema.schema_id is not None and schema.schema.schema_str and schema.schema.schema_type in (None, "AVRO")
    }


class AvroWireSerializer:
    """dict -> magic byte + schema id + Avro body, for one registered schema."""

    def __init__(self, schema_id: int, schema_path: SchemaFile = RIDE_EVENT_SCHEMA):
        self.schema_id = schema_id
        self.schema = parsed_schema(schema_path)
        self.header = WIRE_HEADER.pack(MAGIC_BYTE, schema_id)
        self.timestamp_fields = timestamp_millis_fields(schema_text(schema_path))

    def __call__(self, record: Any) -> bytes:
        if self.timestamp_fields:
            # Epoch millis instead of datetimes: fastavro's datetime conversion is a third of its time.
            record = dict(record)
            for name in self.timestamp_fields:
                value = record.get(name)
                if isinstance(value, datetime):
                    record[name] = to_epoch_millis(value)
        buffer = io.BytesIO()
        buffer.write(self.header)
        try:
            fastavro.schemaless_writer(buffer, self.schema, record)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            ride = record.get("ride_id") if isinstance(record, dict) else record
            raise SerializationError(f"record {ride!r} does not fit schema {self.schema.get('name')}: {exc}") from None
        return buffer.getvalue()


def timestamp_millis_fields(schema_json: str) -> tuple[str, ...]:
    schema = json.loads(schema_json)
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return ()

    def is_millis(kind: object) -> bool:
        if isinstance(kind, list):
            return any(is_millis(branch) for branch in kind)
        return isinstance(kind, dict) and kind.get("logicalType") == "timestamp-millis"

    return tuple(field["name"] for field in schema["fields"] if is_millis(field["type"]))


def avro_serializers(
    client: SchemaRegistryClient,
    topic: str,
    value_schema: SchemaFile = RIDE_EVENT_SCHEMA,
    key_schema: SchemaFile = RIDE_KEY_SCHEMA,
) -> tuple[AvroWireSerializer, AvroWireSerializer]:
    """Key and value serializers for a topic, their schemas registered as <topic>-key and <topic>-value."""
    value_id = register(client, f"{topic}-value", value_schema)
    key_id = register(client, f"{topic}-key", key_schema)
    return AvroWireSerializer(key_id, key_schema), AvroWireSerializer(value_id, value_schema)


def writer_schema_text(client: SchemaRegistryClient, schema_id: int) -> str:
    """The Avro schema the registry holds under this id. DeserializationError when it holds none (or not Avro): the
    record's fault; RegistryUnavailableError when it does not answer: not the record's fault."""
    try:
        registered = client.get_schema(schema_id)
    except SchemaRegistryError as exc:
        if _server_failed(exc):
            raise _unavailable(exc) from None
        raise DeserializationError(f"unknown schema id {schema_id}: {exc.error_message}") from None
    except TransportError as exc:
        raise _unavailable(exc) from None
    if registered.schema_type not in (None, "AVRO") or not registered.schema_str:
        raise DeserializationError(f"schema id {schema_id} is a {registered.schema_type} schema, not Avro")
    return registered.schema_str


def is_avro_wire(payload: bytes | None) -> bool:
    return payload is not None and len(payload) >= WIRE_HEADER.size and payload[0] == MAGIC_BYTE


class AvroWireDeserializer:
    """Confluent wire format -> dict, with the writer's schema fetched by id (cached), optionally resolved
    to a reader schema: that is how a v1 reader reads v2 data and a v2 reader reads v1 data.

    Ours rather than confluent-kafka's AvroDeserializer (which it otherwise resembles: the same registry client,
    the same fastavro reader) because a hostile record must end as a dead letter with a reason: AvroDeserializer
    accepts trailing bytes after a record, and lets the many errors fastavro raises on garbage through untyped."""

    def __init__(self, client: SchemaRegistryClient, reader_schema: SchemaFile | None = None):
        self.client = client
        self.reader = parsed_schema(reader_schema) if reader_schema else None
        self.writers: dict[int, dict[str, Any]] = {}

    def writer_schema(self, schema_id: int) -> dict[str, Any]:
        if schema_id not in self.writers:
            writer = fastavro.parse_schema(json.loads(writer_schema_text(self.client, schema_id)))
            if not isinstance(writer, dict):
                raise DeserializationError(f"schema id {schema_id} is not an Avro record schema")
            self.writers[schema_id] = writer
        return self.writers[schema_id]

    def __call__(self, payload: bytes) -> Any:
        if not is_avro_wire(payload):
            raise DeserializationError("not in the Avro wire format (no magic byte 0 and schema id)")
        _, schema_id = WIRE_HEADER.unpack_from(payload)
        writer = self.writer_schema(schema_id)
        body = io.BytesIO(payload[WIRE_HEADER.size :])
        try:
            record = fastavro.schemaless_reader(body, writer, self.reader)
        # Any exception: a body of garbage behind a known schema id makes fastavro raise almost anything (EOFError,
        # ValueError, IndexError, UnicodeDecodeError, MemoryError for a huge length, OverflowError for a
        # timestamp-millis past year 9999...). All of them mean the same thing here: these bytes are not a record.
        except Exception as exc:
            raise DeserializationError(
                f"truncated or corrupt Avro for schema id {schema_id}: {type(exc).__name__}: {str(exc)[:200]}"
            ) from None
        if body.read(1):
            raise DeserializationError(f"trailing bytes after the Avro record of schema id {schema_id}")
        return record


def describe_bytes(payload: bytes | None) -> str:
    """Bytes as text for a dead letter: UTF-8 when it is, base64 otherwise."""
    if payload is None:
        return ""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(payload).decode()
