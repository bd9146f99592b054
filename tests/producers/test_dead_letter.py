"""Dead letters always fit in a Kafka message, whatever the bad record: its first bytes, its length and hash."""

from __future__ import annotations

import base64
import hashlib
import json

from rides.dead_letter import REASON_MAX_CHARS, dead_letter


def test_a_small_text_record_is_kept_whole_as_text():
    value, headers = dead_letter("bad JSON", "rides_green/0/7", "consumer", b'{"ride_id": ')
    record = json.loads(value)
    assert record["original"] == '{"ride_id": ' and record["truncated"] is False
    assert record["original_length"] == 12 and record["original_sha256"] == hashlib.sha256(b'{"ride_id": ').hexdigest()
    assert dict(headers)["dlq.source"] == b"rides_green/0/7"


def test_a_900_kb_record_is_cut_to_the_configured_size_with_its_length_and_hash():
    huge = bytes(range(256)) * 3600  # 921,600 bytes, not text
    value, _headers = dead_letter("too large", "rides_green/0/8", "consumer", huge, max_original_bytes=4096)
    record = json.loads(value)
    assert len(value) < 8000
    assert base64.b64decode(record["original"].removeprefix("base64:")) == huge[:4096]
    assert record["truncated"] is True and record["original_length"] == len(huge)
    assert record["original_sha256"] == hashlib.sha256(huge).hexdigest()


def test_cut_text_stays_text_even_when_the_cut_splits_a_character():
    text = "é" * 5000  # two bytes each
    record = json.loads(dead_letter("r", "s", "producer", text, max_original_bytes=1001)[0])
    assert record["original"] == "é" * 500 and record["original_length"] == 10_000 and record["truncated"]


def test_a_reason_quoting_a_huge_value_is_cut_in_the_record_and_its_header():
    value, headers = dead_letter("bad value " + "x" * 100_000, "f.csv:3", "producer", "x")
    reason = json.loads(value)["reason"]
    assert len(reason) == REASON_MAX_CHARS and reason.endswith("…")
    assert dict(headers)["dlq.reason"] == reason.encode()
