"""The normalized ride event, as defined by rides/schemas/ride_event.avsc (the only place its fields are typed)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import fastavro

# Package data: a folder in a checkout or an installed wheel, a zip entry on a cluster's executors.
SCHEMA_DIR: Traversable = resources.files("rides") / "schemas"
RIDE_EVENT_SCHEMA = SCHEMA_DIR / "ride_event.avsc"
RIDE_KEY_SCHEMA = SCHEMA_DIR / "ride_key.avsc"
RIDE_TYPES = ("yellow", "green", "fhv")


@lru_cache(maxsize=None)
def schema_text(path: Path | Traversable = RIDE_EVENT_SCHEMA) -> str:
    return path.read_text()


@lru_cache(maxsize=None)
def parsed_schema(path: Path | Traversable = RIDE_EVENT_SCHEMA) -> dict:
    return fastavro.parse_schema(json.loads(schema_text(path)))


@lru_cache(maxsize=None)
def field_names(path: Path | Traversable = RIDE_EVENT_SCHEMA) -> tuple[str, ...]:
    return tuple(field["name"] for field in json.loads(schema_text(path))["fields"])


def _nullable(avro_type) -> bool:
    return avro_type == "null" or (isinstance(avro_type, list) and "null" in avro_type)


@lru_cache(maxsize=None)
def required_fields(path: Path | Traversable = RIDE_EVENT_SCHEMA) -> tuple[str, ...]:
    """The fields the schema does not allow to be null: a ride without one of them can be written by no sink
    that uses the schema, so validation refuses it (the schema is the one list of them)."""
    return tuple(field["name"] for field in json.loads(schema_text(path))["fields"] if not _nullable(field["type"]))


def empty_event(ride_type: str) -> dict:
    """Every field of the schema present, null unless the layout fills it."""
    event = dict.fromkeys(field_names())
    event["ride_type"] = ride_type
    return event


def make_ride_id(ride_type: str, source: str, line: int) -> str:
    """Deterministic: the same file replayed twice gives the same ids, so downstream can deduplicate."""
    digest = hashlib.blake2b(f"{ride_type}|{source}|{line}".encode(), digest_size=8).hexdigest()
    return f"{ride_type}-{digest}"


def to_epoch_millis(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def event_time_millis(event: dict, field: str = "pickup_datetime") -> int | None:
    value = event.get(field)
    return to_epoch_millis(value) if isinstance(value, datetime) else value
