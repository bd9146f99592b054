"""The producer's bulk path: rides a block at a time (rides/tlc_bulk.py, or the generator's rides in batches),
encoded in columns (rides/bulk_encoding.py), and handed to the send loop as the bytes of each message.

The messages are those of the per-row path, in the same order, byte for byte: a ride the columns cannot carry
(a row read one by one, a value the bulk encoder leaves to the per-row serializer) is encoded by the per-row
serializers at its place, and one that fails there becomes the same dead letter.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from rides.bulk_encoding import (
    AvroBulkEncoder,
    BulkUnsupportedError,
    JsonBulkEncoder,
    arrow_schema,
    epoch_millis,
)
from rides.events import RIDE_KEY_SCHEMA, Ride, SchemaFile, pickup_millis
from rides.serialization import AvroWireSerializer, SerializationError, encode_ride
from rides.tlc import BadRow
from rides.tlc_bulk import RideBlock

GENERATOR_BATCH = 2_000  # generated rides encoded at a time: a paced run's first message is not kept waiting

# (reason, source, original): what Sender.send_dead_letter takes
DeadLetter = tuple[str, str, bytes | str]


@dataclass
class Batch:
    """Messages for one topic in the order they are sent, and the dead letters of the rows among them."""

    keys: list[bytes | None] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    ride_ids: list[str] = field(default_factory=list)  # to name a message Kafka refuses
    dead_letters: list[tuple[int, DeadLetter]] = field(default_factory=list)  # (messages before it, letter)


class BlockEncoder:
    """RideBlocks -> Batches, with the topic's per-row serializers for the rides the columns cannot carry."""

    def __init__(
        self,
        encode_key: Callable[[Any], bytes | None],
        encode_value: Callable[[Ride], bytes],
        key_field: str,
        value_schema: SchemaFile,
        source: str,
    ):
        self.encode_key, self.encode_value, self.key_field, self.source = encode_key, encode_value, key_field, source
        if isinstance(encode_value, AvroWireSerializer):
            self.values: AvroBulkEncoder | JsonBulkEncoder = AvroBulkEncoder(encode_value.schema_id, value_schema)
            missing = {name for name, *_ in self.values.fields} - set(arrow_schema().names)
            if missing:
                raise BulkUnsupportedError(f"fields {sorted(map(str, missing))} are not ride event fields")
            assert isinstance(encode_key, AvroWireSerializer)
            self.keys: AvroBulkEncoder | None = AvroBulkEncoder(encode_key.schema_id, RIDE_KEY_SCHEMA)
        else:  # JSON: the event's own fields, whatever --schema says (it is Avro's)
            self.values, self.keys = JsonBulkEncoder(), None

    def batch(self, block: RideBlock) -> Batch:
        table = block.table
        values = self.values.encode(table)
        keys = self._keys(table)
        timestamps = epoch_millis(table.column("pickup_datetime").combine_chunks()).tolist()
        ride_ids = table.column("ride_id").to_pylist()
        if not block.one_by_one and all(value is not None for value in values):  # the common case
            return Batch(keys, values, timestamps, ride_ids)  # type: ignore[arg-type]  # no None, checked
        batch = Batch()
        odd = iter(block.one_by_one)
        pending = next(odd, None)
        lines = block.lines.tolist()
        rows = table.to_pylist() if any(value is None for value in values) else None
        for index, line in enumerate(lines):
            while pending is not None and pending[0] < line:
                self._one_by_one(batch, pending[1])
                pending = next(odd, None)
            if values[index] is None:
                assert rows is not None
                self._one_by_one(batch, rows[index])
            else:
                batch.keys.append(keys[index])
                batch.values.append(values[index])  # type: ignore[arg-type]  # None was handled above
                batch.timestamps.append(timestamps[index])
                batch.ride_ids.append(ride_ids[index])
        while pending is not None:
            self._one_by_one(batch, pending[1])
            pending = next(odd, None)
        return batch

    def _keys(self, table: pa.Table) -> list[bytes | None]:
        column = table.column(self.key_field).combine_chunks()
        if not pa.types.is_string(column.type):  # as the per-row path: the key is the value's str()
            column = pa.array([None if value is None else str(value) for value in column.to_pylist()], pa.string())
        if self.keys is None:
            return column.cast(pa.binary()).to_pylist()
        return self.keys.encode(pa.table({"key": column}))  # a null key: None, as the per-row path's

    def _one_by_one(self, batch: Batch, event: Ride | BadRow) -> None:
        """A row read or encoded one by one, as the per-row path sends it."""
        if isinstance(event, BadRow):
            letter: DeadLetter = (event.reason, f"{self.source}:{event.line}", event.raw)
            batch.dead_letters.append((len(batch.values), letter))
            return
        try:
            key, value = encode_ride(event, self.encode_key, self.encode_value, self.key_field)
        except SerializationError as exc:
            batch.dead_letters.append((len(batch.values), (str(exc), f"ride {event.get('ride_id')}", repr(event))))
            return
        batch.keys.append(key)
        batch.values.append(value)
        batch.timestamps.append(pickup_millis(event))
        batch.ride_ids.append(str(event.get("ride_id")))


def generated_blocks(rides: Iterable[Ride]) -> Iterator[RideBlock]:
    """The generator's rides as blocks (their order kept: a block's lines are its positions)."""
    schema = arrow_schema()
    rides = iter(rides)
    while chunk := list(itertools.islice(rides, GENERATOR_BATCH)):
        yield RideBlock(pa.Table.from_pylist(chunk, schema=schema), np.arange(len(chunk)))
