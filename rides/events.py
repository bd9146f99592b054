"""The normalized ride event, as defined by rides/schemas/ride_event.avsc (the only place its fields are typed)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import fastavro

# A ride event: field name to value, every field of the schema present.
Ride = dict[str, Any]
# An Avro schema file: a path given by a user, or package data (a folder in a checkout or an installed wheel, a
# zip entry on a cluster's executors).
SchemaFile = Path | Traversable

SCHEMA_DIR: Traversable = resources.files("rides") / "schemas"
RIDE_EVENT_SCHEMA: SchemaFile = SCHEMA_DIR / "ride_event.avsc"
RIDE_KEY_SCHEMA: SchemaFile = SCHEMA_DIR / "ride_key.avsc"
RIDE_TYPES = ("yellow", "green", "fhv")


_TEXTS: dict[str, str] = {}


def schema_text(path: SchemaFile = RIDE_EVENT_SCHEMA) -> str:
    """The schema file's text, read once per process (empty_event asks for it for every ride). Cached by the
    path's text: a package-data path in a zip is not hashable."""
    key = str(path)
    if key not in _TEXTS:
        _TEXTS[key] = path.read_text()
    return _TEXTS[key]


@cache
def _parsed(text: str) -> dict[str, Any]:
    parsed = fastavro.parse_schema(json.loads(text))
    assert isinstance(parsed, dict), "a ride schema is an Avro record"
    return parsed


def parsed_schema(path: SchemaFile = RIDE_EVENT_SCHEMA) -> dict[str, Any]:
    """The schema parsed by fastavro, once per distinct schema text."""
    return _parsed(schema_text(path))


def field_names(path: SchemaFile = RIDE_EVENT_SCHEMA) -> tuple[str, ...]:
    return _field_names(schema_text(path))


@cache
def _field_names(text: str) -> tuple[str, ...]:
    return tuple(field["name"] for field in json.loads(text)["fields"])


def _nullable(avro_type: object) -> bool:
    return avro_type == "null" or (isinstance(avro_type, list) and "null" in avro_type)


def required_fields(path: SchemaFile = RIDE_EVENT_SCHEMA) -> tuple[str, ...]:
    """The fields the schema does not allow to be null: a ride without one of them can be written by no sink
    that uses the schema, so validation refuses it (the schema is the one list of them)."""
    fields: list[dict[str, Any]] = json.loads(schema_text(path))["fields"]
    return tuple(field["name"] for field in fields if not _nullable(field["type"]))


def empty_event(ride_type: str) -> Ride:
    """Every field of the schema present, null unless the layout fills it."""
    event = dict.fromkeys(field_names())
    event["ride_type"] = ride_type
    return event


def make_ride_id(ride_type: str, source: str, line: int) -> str:
    """Deterministic: the same file replayed twice gives the same ids, so downstream can deduplicate."""
    return make_ride_ids(ride_type, source, [line])[0]


def make_ride_ids(ride_type: str, source: str, lines: list[int]) -> list[str]:
    """The ids of many lines of one file: the hash of the file's part is worked out once, and copied for each."""
    common = hashlib.blake2b(f"{ride_type}|{source}|".encode(), digest_size=8)
    ids = []
    for line in lines:
        digest = common.copy()
        digest.update(b"%d" % line)
        ids.append(f"{ride_type}-{digest.hexdigest()}")
    return ids


def to_epoch_millis(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def event_time_millis(event: Ride, field: str = "pickup_datetime") -> int | None:
    value = event.get(field)
    return to_epoch_millis(value) if isinstance(value, datetime) else value


def pickup_millis(event: Ride) -> int:
    """A valid ride's pickup time in epoch milliseconds (pickup_datetime may not be null, see the schema)."""
    millis = event_time_millis(event)
    if millis is None:
        raise ValueError(f"ride {event.get('ride_id')!r} has no pickup_datetime")
    return millis
