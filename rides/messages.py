"""A Kafka message's bytes as a Python value, whatever the pipeline wrote: Avro in the Confluent wire format,
JSON, or text. Used by the console consumer, the web console and the tests that read results back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient

from rides.serialization import (
    AvroWireDeserializer,
    DeserializationError,
    describe_bytes,
    is_avro_wire,
)


class MessageDecoder:
    """Bytes -> Python value by format: avro (wire format), json, text, or auto-detected."""

    def __init__(self, mode: str, registry: SchemaRegistryClient, reader_schema: Path | None = None):
        self.mode = mode
        self.registry = registry
        self.reader_schema = reader_schema
        self._avro: AvroWireDeserializer | None = None

    @property
    def avro(self) -> AvroWireDeserializer:
        if self._avro is None:
            self._avro = AvroWireDeserializer(self.registry, self.reader_schema)
        return self._avro

    def decode_key(self, payload: bytes | None) -> Any:
        """Keys are Avro when in the wire format, text otherwise (a key "8" stays "8", not the number 8)."""
        if payload is None:
            return None
        if self.mode in ("auto", "avro") and is_avro_wire(payload):
            return self.avro(payload)
        return describe_bytes(payload)

    def __call__(self, payload: bytes | None) -> Any:
        if payload is None:
            return None
        mode = self.mode
        if mode == "auto":
            mode = "avro" if is_avro_wire(payload) else "json"
        if mode == "avro":
            return self.avro(payload)
        if mode == "json":
            try:
                return json.loads(payload)
            # ValueError: also a number of more digits than Python converts; RecursionError: deep nesting.
            except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                if self.mode == "auto" and _is_text(payload) and not _looks_like_json(payload):
                    return payload.decode()  # plain text; what looks like JSON but is not is a dead letter
                raise DeserializationError(f"neither Avro wire format nor JSON: {type(exc).__name__}: {exc}") from None
        return describe_bytes(payload)


def _looks_like_json(payload: bytes) -> bool:
    return payload.lstrip()[:1] in (b"{", b"[")


def _is_text(payload: bytes) -> bool:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return text.isprintable()
