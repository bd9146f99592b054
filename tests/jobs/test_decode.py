"""Decoding Kafka records of every format, and the dead-letter split, on batch DataFrames."""

from __future__ import annotations

import json
from datetime import datetime

import pyspark.sql.functions as F
import pytest
from chispa import assert_df_equality

from jobs.decode import REASON, WriterSchema, bad_records, decode_rides, good_rides
from jobs.io import dead_letter_records
from jobs.writer_schemas import NEWER_SCHEMA_ID, KnownWriters, newer_schema_ids
from producers.generator import RideGenerator
from rides.events import SCHEMA_DIR, schema_text
from rides.serialization import AvroWireSerializer, to_json

V1 = SCHEMA_DIR / "evolution" / "ride_event_v1.avsc"
WRITERS = [WriterSchema(1, schema_text()), WriterSchema(2, schema_text(V1))]
GREEN_LINE = b"2,2020-10-01 00:31:19,2020-10-01 00:34:55,N,1,7,7,1,.79,5,0.5,0.5,1.58,0,,0.3,7.88,1,1,0"
RAW_SCHEMA = "key binary, value binary, topic string, partition int, offset long, timestamp timestamp"


def _raw(spark, values, topic="rides_green"):
    return spark.createDataFrame([(None, v, topic, 0, i, None) for i, v in enumerate(values)], RAW_SCHEMA)


def _reasons(spark, values, topic="rides_green"):
    rows = decode_rides(_raw(spark, values, topic), WRITERS).select("offset", REASON).collect()
    return {row.offset: row[REASON] for row in rows}


def test_avro_of_both_schema_versions_and_json_decode_to_the_same_rides(spark):
    rides = list(RideGenerator().rides(3))
    v1_ride = {k: v for k, v in rides[1].items() if k != "wheelchair_accessible"}
    values = [AvroWireSerializer(1)(rides[0]), AvroWireSerializer(2, V1)(v1_ride), to_json(rides[2])]
    decoded = decode_rides(_raw(spark, values), WRITERS)
    good = good_rides(decoded).orderBy("pickup_datetime", "ride_id").collect()
    expected = sorted(rides, key=lambda r: (r["pickup_datetime"], r["ride_id"]))
    assert [row.ride_id for row in good] == [r["ride_id"] for r in expected]
    for row, ride in zip(good, expected, strict=False):
        assert row.pickup_datetime == ride["pickup_datetime"]
        assert row.PULocationID == ride["PULocationID"] and row.total_amount == ride["total_amount"]
        assert row.wheelchair_accessible is None


def test_seed_csv_line_decodes_by_the_topics_layout(spark):
    (row,) = good_rides(decode_rides(_raw(spark, [GREEN_LINE]), WRITERS)).collect()
    assert row.ride_type == "green" and row.VendorID == 2
    assert row.pickup_datetime == datetime(2020, 10, 1, 0, 31, 19)
    assert row.trip_distance == pytest.approx(0.79) and row.total_amount == pytest.approx(7.88)
    assert row.ride_id.startswith("green-csv-")


def test_every_kind_of_bad_record_gets_a_reason_and_none_becomes_a_row_of_nulls(spark):
    values = [
        b"\x00\x00\x00\x00\x09junk",  # unknown schema id
        b"\x00\x00\x00\x00\x01\x02",  # truncated Avro
        b'{"ride_id":"x","ride_type":"green","pickup_datetime":"2020-10-01T00:00:00.000Z","PULocationID":"abc"}',
        b'{"ride_id":"x","ride_type":"green","pickup_datetime":"2020-10-01T00:00:00.000Z","PULocationID":999}',
        b'{"ride_id":"x","ride_type":"taxi","pickup_datetime":"2020-10-01T00:00:00.000Z"}',
        b'{"ride_id":"x","ride_type":"green"}',
        b'{"ride_id":"x","ride_type":"green","pickup_datetime":"2020-10-01T01:00:00.000Z","dropoff_datetime":"2020-10-01T00:00:00.000Z"}',
        GREEN_LINE.replace(b"2020-10-01 00:31:19", b"yesterday"),
        b"random garbage \xff\xfe",
        b"",
        b'{"ride_id":"x","ride_type":"green","pickup_datetime":"1999-12-31T23:59:59.000Z"}',
        b'{"ride_id":"x","ride_type":"green","pickup_datetime":"2999-01-01T00:00:00.000Z"}',
        b'{"ride_id":"x","ride_type":"green","pickup_datetime":"2009-01-01T00:00:00.000Z"}',  # the first allowed
        b'{"ride_type":"green","pickup_datetime":"2020-10-01T00:00:00.000Z"}',
        b'{"ride_id":"x","pickup_datetime":"2020-10-01T00:00:00.000Z"}',
        b"random garbage",
    ]
    assert _reasons(spark, values) == {
        0: "unknown schema id 9",
        1: "corrupt Avro for schema id 1",
        2: "malformed JSON or a field of the wrong type",
        3: "PULocationID outside 1..265: 999",
        4: "ride_type is not yellow, green or fhv: taxi",
        5: "pickup_datetime is missing",
        6: "dropoff_datetime is before pickup_datetime",
        7: "CSV field lpep_pickup_datetime 'yesterday' is not a valid value",
        8: "not valid UTF-8 csv",
        9: "empty value",
        10: "pickup_datetime 1999-12-31 23:59:59 is before 2009-01-01, the first TLC records",
        11: "pickup_datetime 2999-01-01 00:00:00 is more than 1 day in the future",
        12: None,
        13: "ride_id is missing",
        14: "ride_type is missing",
        15: "CSV line has 1 fields where the green layout has 20",
    }


def test_good_and_bad_records_split_without_loss(spark):
    rides = list(RideGenerator().rides(4))
    values = [AvroWireSerializer(1)(r) for r in rides] + [b"{not json", b"\x00\x00\x00\x00\x05xx"]
    decoded = decode_rides(_raw(spark, values), WRITERS)
    assert good_rides(decoded).count() == 4
    assert bad_records(decoded).count() == 2
    assert decoded.count() == 6


def test_dead_letters_carry_reason_source_and_original_bytes(spark):
    decoded = decode_rides(_raw(spark, [b"\x00\x00\x00\x00\x09junk"], topic="rides_green"), WRITERS)
    (letter,) = dead_letter_records(bad_records(decoded), "vendor_counts").collect()
    record = json.loads(letter.value)
    assert record["reason"] == "unknown schema id 9"
    assert record["source"] == "rides_green/0/0" and letter.key == "rides_green/0/0"
    assert record["stage"] == "vendor_counts"
    assert record["original"] == "base64:AAAAAAlqdW5r"
    assert {h.key: bytes(h.value).decode() for h in letter.headers}["dlq.reason"] == "unknown schema id 9"


def test_a_newer_schema_id_fails_the_batch_naming_it_and_an_absent_or_far_one_is_a_dead_letter(spark):
    newer = AvroWireSerializer(7)(next(RideGenerator().rides(1)))  # the registry gave id 7 after the job started
    looking = KnownWriters(tuple(WRITERS), lookup_range=(3, 1002), absent=frozenset({5}))
    with pytest.raises(Exception) as failure:
        decode_rides(_raw(spark, [GREEN_LINE, newer]), looking).collect()
    assert newer_schema_ids(str(failure.value)) == {7}

    absent = b"\x00\x00\x00\x00\x05" + newer[5:]  # looked up already: not in the registry
    far = b"\x00\x00\x00\x10\x00" + newer[5:]  # 4096: beyond the lookahead, random bytes rather than a schema
    below = b"\x00\x00\x00\x00\x00" + newer[5:]  # 0: under the highest known, never issued since
    rows = decode_rides(_raw(spark, [absent, far, below, GREEN_LINE]), looking).select("offset", REASON).collect()
    assert {row.offset: row[REASON] for row in rows} == {
        0: "unknown schema id 5",
        1: "unknown schema id 4096",
        2: "unknown schema id 0",
        3: None,
    }
    learned = KnownWriters((*WRITERS, WriterSchema(7, schema_text())), lookup_range=(8, 1002))
    assert decode_rides(_raw(spark, [newer]), learned).select(REASON).collect() == [(None,)]


def test_only_failures_on_a_newer_schema_id_name_one():
    message = "Job aborted: [USER_RAISED_EXCEPTION] " + NEWER_SCHEMA_ID.format(12) + " SQLSTATE: P0001"
    assert newer_schema_ids(message) == {12}
    assert newer_schema_ids("[KAFKA_DATA_LOSS] Some data may have been lost") == set()


def test_good_rides_keep_exactly_the_ride_columns_and_the_kafka_timestamp(spark):
    decoded = decode_rides(_raw(spark, [GREEN_LINE]), WRITERS)
    from jobs.ride_schema import RIDE_FIELDS

    assert good_rides(decoded).columns == [*RIDE_FIELDS, "kafka_timestamp"]
    assert_df_equality(bad_records(decoded), bad_records(decoded).limit(0))


def _single(spark, values, input_format, topic="rides_green"):
    rows = decode_rides(_raw(spark, values, topic), WRITERS, input_format).select("offset", "ride_id", REASON).collect()
    return {row.offset: (row.ride_id, row[REASON]) for row in rows}


def test_a_single_format_job_decodes_its_format_and_dead_letters_the_others_saying_so(spark):
    ride = next(RideGenerator().rides(1))
    avro, json_value = AvroWireSerializer(1)(ride), to_json(ride)
    assert _single(spark, [avro, json_value, b""], "avro") == {
        0: (ride["ride_id"], None),
        1: (None, "expected avro, found json"),
        2: (None, "expected avro, found an empty value"),
    }
    assert _single(spark, [json_value, avro], "json") == {
        0: (ride["ride_id"], None),
        1: (None, "expected json, found avro"),
    }


def test_single_format_and_auto_decoding_agree_on_good_rides(spark):
    values = [AvroWireSerializer(1)(r) for r in RideGenerator().rides(50)]
    auto = good_rides(decode_rides(_raw(spark, values), WRITERS, "auto"))
    single = good_rides(decode_rides(_raw(spark, values), WRITERS, "avro"))
    assert_df_equality(auto, single, ignore_row_order=True)


def test_the_fields_a_ride_cannot_lack_are_the_schemas_non_null_fields(spark):
    """Validation and the rides_all sink (Avro of rides/schemas/ride_event.avsc) read the same list: whatever
    validation lets through, the sink can write, and a ride lacking any one of them is a dead letter."""
    from pyspark.sql.avro.functions import to_avro

    from jobs.ride_schema import REQUIRED_RIDE_FIELDS, RIDE_FIELDS

    non_null_in_sink = [f["name"] for f in json.loads(schema_text())["fields"] if not isinstance(f["type"], list)]
    assert REQUIRED_RIDE_FIELDS == tuple(non_null_in_sink) == ("ride_id", "ride_type", "pickup_datetime")
    minimal = {"ride_id": "r1", "ride_type": "green", "pickup_datetime": "2020-10-01T00:00:00.000Z"}
    values = [json.dumps(minimal).encode()] + [
        json.dumps({k: v for k, v in minimal.items() if k != name}).encode() for name in REQUIRED_RIDE_FIELDS
    ]
    assert _reasons(spark, values) == {
        0: None,
        1: "ride_id is missing",
        2: "ride_type is missing",
        3: "pickup_datetime is missing",
    }
    good = good_rides(decode_rides(_raw(spark, values), WRITERS)).select(*RIDE_FIELDS)
    written = good.select(to_avro(F.struct(*RIDE_FIELDS), schema_text()).alias("avro")).collect()
    assert len(written) == 1


def test_a_record_larger_than_max_record_bytes_is_a_dead_letter_whatever_it_holds(spark):
    ride = next(RideGenerator().rides(1))
    big_but_allowed = to_json({**ride, "dispatching_base_num": "B" * 100_000})
    too_big = to_json({**ride, "dispatching_base_num": "\x01" * 200_000})
    rows = decode_rides(_raw(spark, [big_but_allowed, too_big]), WRITERS, max_record_bytes=131072)
    reasons = {row.offset: row[REASON] for row in rows.select("offset", REASON).collect()}
    assert reasons[0] is None
    assert reasons[1] == f"record of {len(too_big)} bytes is larger than max_record_bytes (131072)"


def test_a_dead_letter_of_a_huge_record_keeps_its_first_bytes_its_length_and_its_hash(spark):
    import base64
    import hashlib

    huge = b"\x00\x00\x00\x00\x09" + bytes(range(256)) * 3600  # 900 KB behind an unknown schema id
    decoded = decode_rides(_raw(spark, [huge]), WRITERS)
    (letter,) = dead_letter_records(bad_records(decoded), "rides_all", max_original_bytes=1000).collect()
    record = json.loads(letter.value)
    assert len(letter.value) < 3000
    assert record["reason"] == f"record of {len(huge)} bytes is larger than max_record_bytes (131072)"
    assert base64.b64decode(record["original"].removeprefix("base64:")) == huge[:1000]
    assert record["original_length"] == len(huge) and record["truncated"] is True
    assert record["original_sha256"] == hashlib.sha256(huge).hexdigest()


def test_a_reason_quoting_a_huge_value_is_cut(spark):
    line = GREEN_LINE.replace(b"2020-10-01 00:31:19", b"y" * 50_000)
    decoded = decode_rides(_raw(spark, [line]), WRITERS)
    (letter,) = dead_letter_records(bad_records(decoded), "vendor_counts").collect()
    reason = json.loads(letter.value)["reason"]
    assert reason.startswith("CSV field lpep_pickup_datetime 'yyy") and len(reason) == 1000 and reason.endswith("…")


def test_text_that_is_not_utf8_is_a_dead_letter_not_a_ride_of_replacement_characters(spark):
    ride = next(RideGenerator().rides(1))
    json_value = to_json({**ride, "dispatching_base_num": "B0"}).replace(b'"B0"', b'"B\xff0"')
    csv_value = GREEN_LINE.replace(b",N,", b",\xff\xfe,")
    assert _reasons(spark, [json_value, csv_value, to_json(ride), GREEN_LINE]) == {
        0: "not valid UTF-8 json",
        1: "not valid UTF-8 csv",
        2: None,
        3: None,
    }
