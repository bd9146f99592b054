"""A seeded corpus of hostile Kafka records mixed with good rides, each labelled with what must become of it.

The label comes from how the record was made, not from the code under test: a good ride must reach the
output, anything else the dead-letter topic. Kinds of bad record: random bytes, random bytes behind an Avro
header with an unknown schema id and behind the known one, truncated Avro, an Avro timestamp-millis of 2**62,
truncated JSON, JSON with a field of the wrong type, numbers that overflow their type, a number of 5,000 digits,
JSON nested 20,000 and 100,000 deep, a ride without its ride_id, a value of 900 KB, CSV lines with invalid UTF-8 or
a field of 200,000 characters, JSON with invalid UTF-8 in a text field, an empty value, a tombstone (null value),
plain text, pickups far in the past or future. Good rides come as Avro and JSON, with ordinary,
empty and null keys, and one with a huge text field.

A "bad" label means bad for the jobs, which validate rides; the console consumer prints any JSON it can parse
(a ride without ride_id among them) and dead-letters only what it cannot decode.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime

from producers.generator import GeneratorSettings, RideGenerator
from rides.serialization import AvroWireSerializer, to_json


@dataclass(frozen=True)
class HostileRecord:
    kind: str
    key: bytes | None
    value: bytes | None
    good: bool
    ride_id: str | None = None  # for a good ride


def _json_with(ride: dict, **changes) -> bytes:
    record = json.loads(to_json(ride))
    record.update(changes)
    return json.dumps(record).encode()


# A line of the seed's CSV format (the green layout: the hostile topic's name holds no other kind).
GREEN_LINE = b"2,2020-10-01 00:31:19,2020-10-01 00:34:55,N,1,7,7,1,.79,5,0.5,0.5,1.58,0,,0.3,7.88,1,1,0"


def _nested_json(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def _avro_with_raw_pickup(avro: AvroWireSerializer, ride: dict, pickup_millis: int) -> bytes:
    """fastavro writes an int given for a timestamp-millis field as it is: here a pickup past the year 9999."""
    return avro({**ride, "pickup_datetime": pickup_millis, "dropoff_datetime": None})


def hostile_corpus(avro: AvroWireSerializer, count: int = 600, seed: int = 5) -> list[HostileRecord]:
    """`count` records, about half good; the same seed gives the same corpus."""
    rnd = random.Random(seed)
    rides = iter(RideGenerator(GeneratorSettings(seed=seed, late_share=0, out_of_order_share=0)).rides())

    def good(kind: str, value_of, key=b"use-ride-id") -> HostileRecord:
        ride = next(rides)
        record_key = ride["ride_id"].encode() if key == b"use-ride-id" else key
        return HostileRecord(kind, record_key, value_of(ride), True, ride["ride_id"])

    def bad(kind: str, value: bytes | None, key: bytes | None = b"hostile") -> HostileRecord:
        return HostileRecord(kind, key, value, False)

    def random_bytes(length: int) -> bytes:
        first = rnd.choice([b for b in range(1, 256) if b not in b"{ \t\r\n"])  # not Avro's 0, not JSON's {
        return bytes([first]) + rnd.randbytes(length - 1)

    makers = [
        lambda: good("avro", avro),
        lambda: good("json", to_json),
        lambda: good("json, null key", to_json, key=None),
        lambda: good("json, empty key", to_json, key=b""),
        lambda: good("avro, huge text field", lambda r: avro({**r, "dispatching_base_num": "B" * 100_000})),
        lambda: bad("random bytes", random_bytes(rnd.randint(1, 400))),
        lambda: bad(
            "unknown schema id", b"\x00" + rnd.randint(1_000_000, 2**31 - 1).to_bytes(4, "big") + rnd.randbytes(40)
        ),
        lambda: bad("truncated Avro", (lambda v: v[: rnd.randint(5, len(v) - 1)])(avro(next(rides)))),
        lambda: bad("truncated JSON", (lambda v: v[: rnd.randint(1, len(v) - 2)])(to_json(next(rides)))),
        lambda: bad("JSON, wrong type", _json_with(next(rides), PULocationID=rnd.choice(["abc", [1], {"x": 1}, True]))),
        lambda: bad("JSON, overflowing number", _json_with(next(rides), passenger_count=10**30)),
        lambda: bad("empty value", b""),
        lambda: bad("tombstone (null value)", None, key=None),
        lambda: bad("plain text", rnd.choice([b"hello", b"null", b"[]", b"42", "üñí©ødé".encode()])),
        lambda: bad(
            "pickup far in the past",
            _json_with(next(rides), pickup_datetime="1970-01-01T00:00:00.000Z", dropoff_datetime=None),
        ),
        lambda: bad(
            "pickup far in the future",
            _json_with(
                next(rides), pickup_datetime=f"{datetime.now().year + 5}-06-01T00:00:00.000Z", dropoff_datetime=None
            ),
        ),
        lambda: bad("garbage behind a known schema id", avro.header + rnd.randbytes(rnd.randint(1, 60))),
        lambda: bad("Avro timestamp-millis of 2**62", _avro_with_raw_pickup(avro, next(rides), 2**62)),
        lambda: bad("JSON nested 20,000 deep", _nested_json(20_000)),
        lambda: bad("JSON nested 100,000 deep", _nested_json(100_000)),
        lambda: bad(
            "JSON number of 5,000 digits",
            _json_with(next(rides), passenger_count=0).replace(
                b'"passenger_count": 0', b'"passenger_count": ' + b"7" * 5000
            ),
        ),
        lambda: bad("JSON ride without ride_id", _json_with(next(rides), ride_id=None)),
        lambda: bad("value of 900 KB", b"\x00" + (2**31 - 7).to_bytes(4, "big") + rnd.randbytes(900_000)),
        lambda: bad("CSV line with invalid UTF-8", GREEN_LINE.replace(b",N,", b",\xff\xfe,")),
        lambda: bad(
            "CSV line with a field of 200,000 characters", GREEN_LINE.replace(b",N,", b"," + b"N" * 200_000 + b",")
        ),
        lambda: bad(
            "JSON with invalid UTF-8 in a text field",
            _json_with(next(rides), dispatching_base_num="B0").replace(b'"B0"', b'"B\xff\xfe0"'),
        ),
    ]
    weights = [30, 30, 6, 6, 2] + [3] * (len(makers) - 5)
    return [rnd.choices(makers, weights)[0]() for _ in range(count)]
