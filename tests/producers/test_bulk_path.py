"""The producer's bulk path against its per-row path: the same rides, ids, bad rows and reasons from the reader,
and the same message bytes (key, value, timestamp) and dead letters from the encoders, on the real green file,
the generator, Parquet, and a file of every kind of trouble, at several block sizes and limits."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import csv as arrow_csv

from producers.bulk import BlockEncoder, generated_blocks
from producers.generator import GeneratorSettings, RideGenerator
from rides import tlc_bulk
from rides.bulk_encoding import AvroBulkEncoder, BulkUnsupportedError, JsonBulkEncoder, arrow_schema
from rides.events import RIDE_EVENT_SCHEMA, RIDE_KEY_SCHEMA, pickup_millis
from rides.serialization import AvroWireSerializer, SerializationError, encode_ride, key_bytes, to_json
from rides.tlc import GREEN, BadRow, ReadReport, read_rides
from rides.tlc_bulk import read_ride_blocks
from tests.conftest import GREEN_FILE

GOOD = "2,2020-10-01 00:31:19,2020-10-01 00:34:55,N,1,7,7,1,.79,5,0.5,0.5,1.58,0,,0.3,7.88,1,1,0"


def _row(**changes: str) -> str:
    values = dict(zip(GREEN.header, GOOD.split(","), strict=True))
    values.update(changes)
    return ",".join(values[column] for column in GREEN.header)


# Every kind of trouble a row can bring, each after a plain row; the block with a quote, and all after it, are read
# row by row (a quoted field may span lines).
TROUBLE = [
    _row(VendorID="1.0"),  # an int written as a float
    "",  # a blank line
    _row(passenger_count="2.5"),
    _row(lpep_pickup_datetime="2020-02-30 00:00:00"),  # no such day
    _row(lpep_pickup_datetime="2020-11-05 00:00:00"),  # past the file's month
    _row(lpep_pickup_datetime=""),
    GOOD.rsplit(",", 1)[0],  # a field short
    GOOD + ",9",  # a field too many
    _row(PULocationID=" 7"),  # read by float(): valid
    _row(DOLocationID="+1"),
    _row(fare_amount="-5.5"),
    _row(fare_amount="nan"),  # a null
    _row(fare_amount="inf"),  # not finite: bad
    _row(fare_amount="1e3"),
    _row(store_and_fwd_flag=" N "),
    _row(store_and_fwd_flag="É"),  # JSON writes it escaped
    _row(lpep_pickup_datetime="2020-10-01T00:31:19"),
    _row(lpep_pickup_datetime="2020-10-01 00:31:19.500"),  # milliseconds, cut as to_epoch_millis cuts them
    _row(lpep_pickup_datetime="1969-12-31 23:59:59"),  # before the epoch: isoformat's and the millis' edge
    _row(PULocationID="1234567890"),  # past nine digits: read and written one by one
    _row(PULocationID="0999999999"),
    _row(trip_distance="-0"),
    _row(lpep_dropoff_datetime="2020-10-01 24:00:00"),
    "x" * (70 * 1024),  # longer than any TLC row
]
LATE_TROUBLE = [_row(store_and_fwd_flag='"N"'), _row(VendorID="1")]


def _write(path: Path, lines: list[str], newline: str, tail: bytes = b"") -> Path:
    body = newline.join([",".join(GREEN.header), *lines]) + newline
    path.write_bytes(body.encode() + tail)
    return path


@pytest.fixture(params=["\n", "\r\n"], ids=["lf", "crlf"])
def troubled_file(request, tmp_path) -> Path:
    plain = [GOOD] * 3
    lines = [line for trouble in TROUBLE for line in (GOOD, trouble)] + plain + LATE_TROUBLE + plain
    return _write(tmp_path / "green_tripdata_2020-10.csv", lines, request.param, b"\xff\xfe not text\n" + GOOD.encode())


def _per_row(path: Path, limit: int | None = None) -> tuple[list, ReadReport]:
    report = ReadReport(source=str(path))
    events = list(islice(read_rides(path, report=report), limit))
    return events, report


def _bulk(path: Path, limit: int | None = None) -> tuple[list, ReadReport, list]:
    report = ReadReport(source=str(path))
    blocks = list(read_ride_blocks(path, report=report, limit=limit))
    rides = []
    for block in blocks:
        numbered = list(zip(block.lines.tolist(), block.table.to_pylist(), strict=True))
        numbered += [(line, event) for line, event in block.one_by_one if not isinstance(event, BadRow)]
        rides += [event for _, event in sorted(numbered, key=lambda pair: pair[0])]
    return rides, report, blocks


@pytest.fixture(scope="module")
def green_per_row() -> tuple[list, ReadReport]:
    return _per_row(GREEN_FILE)


def _same_reads(path: Path, limit: int | None = None, per_row: tuple[list, ReadReport] | None = None) -> list:
    expected, expected_report = per_row or _per_row(path, limit)
    rides, report, blocks = _bulk(path, limit)
    assert rides == expected
    assert (report.rows, report.events, report.layout) == (
        expected_report.rows,
        expected_report.events,
        expected_report.layout,
    )
    assert [(bad.line, bad.reason, bad.raw) for bad in report.bad_rows] == [
        (bad.line, bad.reason, bad.raw) for bad in expected_report.bad_rows
    ]
    return blocks


def test_the_real_green_file_reads_the_same_in_columns_with_no_row_left_to_python(green_per_row):
    blocks = _same_reads(GREEN_FILE, per_row=green_per_row)
    assert sum(block.table.num_rows for block in blocks) == 95_120, "every real row is read in columns"
    assert not any(block.one_by_one for block in blocks)


@pytest.mark.parametrize("block_bytes", [200, 1_000, tlc_bulk.BLOCK_BYTES])
def test_every_kind_of_trouble_reads_as_the_per_row_reader_reads_it(troubled_file, monkeypatch, block_bytes):
    monkeypatch.setattr(tlc_bulk, "BLOCK_BYTES", block_bytes)
    blocks = _same_reads(troubled_file)
    in_columns = sum(block.table.num_rows for block in blocks)
    if block_bytes < troubled_file.stat().st_size // 2:
        assert in_columns >= len(TROUBLE), "the blocks before the quote are read in columns"
    else:
        assert in_columns == 0, "one block, with a quote in it: all of it is read row by row"
    for limit in (0, 1, 7, 30, 10_000):
        _same_reads(troubled_file, limit)


def test_parquet_reads_the_same_in_columns(tmp_path):
    table = arrow_csv.read_csv(str(GREEN_FILE)).slice(0, 5_000)  # decompressed by its name
    fares = table.column("fare_amount").to_pylist()
    fares[3], fares[4] = float("nan"), None  # NaN is a null for the per-row reader; so is a null
    table = table.set_column(table.schema.get_field_index("fare_amount"), "fare_amount", pa.array(fares))
    path = tmp_path / "green_tripdata_2020-10.parquet"
    pq.write_table(table, path)
    blocks = _same_reads(path)
    assert sum(block.table.num_rows for block in blocks) >= 4_999


# ---- message bytes --------------------------------------------------------------------------------------------


def _serializers(fmt: str):
    if fmt == "json":
        return key_bytes, to_json
    return AvroWireSerializer(11, RIDE_KEY_SCHEMA), AvroWireSerializer(12, RIDE_EVENT_SCHEMA)


def _per_row_messages(events, fmt: str, key_field: str = "ride_id") -> tuple[list, list]:
    encode_key, encode_value = _serializers(fmt)
    messages, dead = [], []
    for event in events:
        try:
            key, value = encode_ride(event, encode_key, encode_value, key_field)
        except SerializationError as exc:
            dead.append(str(exc))
            continue
        messages.append((key, value, pickup_millis(event)))
    return messages, dead


def _bulk_messages(blocks, fmt: str, key_field: str = "ride_id") -> tuple[list, list]:
    encode_key, encode_value = _serializers(fmt)
    encoder = BlockEncoder(encode_key, encode_value, key_field, RIDE_EVENT_SCHEMA, "a file")
    messages, dead = [], []
    for block in blocks:
        batch = encoder.batch(block)
        messages += zip(batch.keys, batch.values, batch.timestamps, strict=True)
        dead += [letter[0] for _, letter in batch.dead_letters if letter[1].startswith("ride ")]
    return messages, dead


@pytest.mark.parametrize("fmt", ["avro", "json"])
def test_the_real_green_file_makes_the_same_bytes_in_bulk(fmt, green_per_row):
    events, _ = green_per_row
    expected = _per_row_messages(events, fmt)
    assert _bulk_messages(read_ride_blocks(GREEN_FILE), fmt) == expected
    assert len(expected[0]) == 95_120


@pytest.mark.parametrize("fmt", ["avro", "json"])
@pytest.mark.parametrize("key_field", ["ride_id", "PULocationID", "pickup_datetime", "fare_amount"])
def test_generated_rides_make_the_same_bytes_in_bulk(fmt, key_field):
    events = list(RideGenerator(GeneratorSettings(seed=5)).rides(3_000))
    assert _bulk_messages(generated_blocks(events), fmt, key_field) == _per_row_messages(events, fmt, key_field)


@pytest.mark.parametrize("fmt", ["avro", "json"])
def test_troubled_rows_make_the_same_bytes_and_dead_letters_in_bulk(troubled_file, fmt):
    events, _ = _per_row(troubled_file)
    expected = _per_row_messages(events, fmt)
    assert _bulk_messages(read_ride_blocks(troubled_file), fmt) == expected


def test_odd_values_are_written_as_python_writes_them():
    """Floats past fixed notation, text to escape, times before 1970, nulls of every type."""
    events = [dict(event) for event in RideGenerator(GeneratorSettings(seed=8)).rides(6)]
    odd = {"trip_distance": 1e-05, "fare_amount": 1e16, "tip_amount": -0.0, "tolls_amount": 123456789012345.6}
    events[0].update(odd, store_and_fwd_flag='a"b\\c\u00e9\n', dispatching_base_num="\U0001f695")
    events[1].update(pickup_datetime=events[1]["pickup_datetime"].replace(year=1969, microsecond=123456))
    events[2].update(wheelchair_accessible=True, SR_Flag=0, extra=None)
    table = pa.Table.from_pylist(events, schema=arrow_schema())
    assert JsonBulkEncoder().encode(table) == [to_json(event) for event in events]
    avro = AvroWireSerializer(3)
    assert AvroBulkEncoder(3).encode(table) == [avro(event) for event in events]


def test_a_schema_the_bulk_encoders_do_not_write_is_refused_so_the_producer_goes_row_by_row(tmp_path):
    schema = json.loads(RIDE_EVENT_SCHEMA.read_text())
    schema["fields"].append({"name": "tip_share", "type": ["null", "float"], "default": None})
    path = tmp_path / "ride_event_float.avsc"
    path.write_text(json.dumps(schema))
    with pytest.raises(BulkUnsupportedError, match="float"):
        BlockEncoder(AvroWireSerializer(1, RIDE_KEY_SCHEMA), AvroWireSerializer(2, path), "ride_id", path, "a file")
