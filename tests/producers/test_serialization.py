"""Avro round trips against the .avsc files, schema evolution resolution, JSON, and the wire format."""

from __future__ import annotations

import io
import json
import struct
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import fastavro
import pytest

from producers.generator import RideGenerator
from rides.events import RIDE_EVENT_SCHEMA, SCHEMA_DIR, parsed_schema
from rides.serialization import AvroWireSerializer, SerializationError, to_json
from rides.tlc import read_rides
from tests.conftest import GREEN_FILE

V1 = SCHEMA_DIR / "evolution" / "ride_event_v1.avsc"
V3 = SCHEMA_DIR / "evolution" / "ride_event_v3_breaking.avsc"


def _as_utc(event: dict) -> dict:
    return {key: value.replace(tzinfo=UTC) if isinstance(value, datetime) else value for key, value in event.items()}


def _decode(payload: bytes, writer=RIDE_EVENT_SCHEMA, reader=None) -> Any:
    magic, _schema_id = struct.unpack(">bI", payload[:5])
    assert magic == 0
    return fastavro.schemaless_reader(
        io.BytesIO(payload[5:]), parsed_schema(writer), parsed_schema(reader) if reader else None
    )


def test_real_green_rows_round_trip_through_avro_unchanged():
    serialize = AvroWireSerializer(schema_id=7)
    events = list(islice(read_rides(GREEN_FILE), 2000))
    for event in events:
        payload = serialize(event)
        assert payload[:5] == b"\x00\x00\x00\x00\x07"
        assert _decode(payload) == _as_utc(event)


def test_generated_rides_of_every_kind_round_trip_through_avro():
    serialize = AvroWireSerializer(schema_id=1)
    rides = list(RideGenerator().rides(500))
    assert {ride["ride_type"] for ride in rides} == {"green", "yellow", "fhv"}
    for ride in rides:
        assert _decode(serialize(ride)) == _as_utc(ride)


def test_v1_reader_reads_v2_data_and_v2_reader_reads_v1_data():
    ride = next(RideGenerator().rides(1))
    v2_payload = AvroWireSerializer(2, RIDE_EVENT_SCHEMA)({**ride, "wheelchair_accessible": True})
    as_v1 = _decode(v2_payload, writer=RIDE_EVENT_SCHEMA, reader=V1)
    assert "wheelchair_accessible" not in as_v1 and as_v1["ride_id"] == ride["ride_id"]

    v1_ride = {key: value for key, value in ride.items() if key != "wheelchair_accessible"}
    v1_payload = AvroWireSerializer(1, V1)(v1_ride)
    as_v2 = _decode(v1_payload, writer=V1, reader=RIDE_EVENT_SCHEMA)
    assert as_v2["wheelchair_accessible"] is None and as_v2["PULocationID"] == ride["PULocationID"]


def test_v3_reader_cannot_read_v2_data_which_is_why_the_registry_refuses_it():
    payload = AvroWireSerializer(2)(next(RideGenerator().rides(1)))
    with pytest.raises(fastavro.read.SchemaResolutionError, match="driver_license"):
        _decode(payload, writer=RIDE_EVENT_SCHEMA, reader=V3)


def test_event_that_does_not_fit_the_schema_raises_the_projects_error_naming_the_ride():
    ride = {**next(RideGenerator().rides(1)), "PULocationID": "not-a-zone"}
    with pytest.raises(SerializationError, match=rf"record '{ride['ride_id']}' does not fit schema"):
        AvroWireSerializer(1)(ride)


def test_json_carries_the_same_fields_with_utc_timestamps():
    (event,) = islice(read_rides(GREEN_FILE), 1)
    decoded = json.loads(to_json(event))
    assert set(decoded) == set(event)
    assert decoded["pickup_datetime"] == "2020-10-01T00:31:19.000Z"
    assert decoded["trip_distance"] == pytest.approx(0.79) and decoded["ehail_fee"] is None
