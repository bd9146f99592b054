"""Hostile input: a seeded mix of good rides and every kind of bad record, fed to a job on the cluster and to
the console consumer. Every good ride reaches the output, every bad record the dead-letter topic with a reason
that fits it, the job and the consumer run to the end, and the counts add up."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter

import pytest
from confluent_kafka import Producer

from cluster.clients import registry_client
from cluster.topic_snapshot import read_all
from rides.serialization import avro_serializers
from tests.jobs.cluster import read_decoded, run_job
from tests.paths import REPO_ROOT
from tests.reliability.hostile_records import hostile_corpus

pytestmark = pytest.mark.stack

# What the reason of a dead letter must say, for the kinds whose decoding path is certain.
REASON_OF_KIND = {
    "unknown schema id": "unknown schema id",
    "truncated Avro": "corrupt Avro",
    "truncated JSON": "malformed JSON",
    "JSON, wrong type": "malformed JSON or a field of the wrong type",
    "JSON, overflowing number": "malformed JSON or a field of the wrong type",
    "empty value": "empty value",
    "tombstone (null value)": "empty value",
    "pickup far in the past": "is before 2009-01-01",
    "pickup far in the future": "in the future",
    "JSON nested 100,000 deep": "larger than max_record_bytes",
    "JSON ride without ride_id": "ride_id is missing",
    "value of 900 KB": "larger than max_record_bytes",
    "CSV line with invalid UTF-8": "not valid UTF-8 csv",
    "CSV line with a field of 200,000 characters": "larger than max_record_bytes",
    "JSON with invalid UTF-8 in a text field": "not valid UTF-8 json",
}
# What a dead letter of any bad record may weigh at most: the cut original (16 KiB, base64) and the rest.
MAX_DEAD_LETTER_BYTES = 32 * 1024


@pytest.fixture()
def hostile_topic(local_stack, topic_factory):
    """The corpus produced in order into one partition, so that offset n holds record n."""
    topic = topic_factory(partitions=1, prefix="hostile")
    _, avro = avro_serializers(registry_client(local_stack.registry.url), topic)
    corpus = hostile_corpus(avro)
    producer = Producer({"bootstrap.servers": local_stack.kafka.bootstrap_servers, "message.max.bytes": 2_000_000})
    for record in corpus:
        producer.produce(topic, key=record.key, value=record.value)
    assert producer.flush(60) == 0
    return topic, corpus


def _by_offset(messages) -> dict[int, dict]:
    return {int(m.key().decode().rsplit("/", 1)[1]): json.loads(m.value()) for m in messages}


def test_a_job_sends_every_good_ride_on_and_every_bad_record_to_the_dead_letters(
    local_stack, hostile_topic, topic_factory, tmp_path
):
    topic, corpus = hostile_topic
    output, leaders, dead = (topic_factory(prefix=p) for p in ("hostile_out", "hostile_top", "hostile_dlq"))
    log = run_job(
        local_stack,
        "rides_all",
        tmp_path / "checkpoints",
        "--input-topics",
        topic,
        "--output-topic",
        output,
        "--top-topic",
        leaders,
        "--dead-letter-topic",
        dead,
    )
    assert "rides_all_merge" in log

    bootstrap = local_stack.kafka.bootstrap_servers
    out_ids = [value["ride_id"] for _, value in read_decoded(local_stack, output) if isinstance(value, dict)]
    assert Counter(out_ids) == Counter(r.ride_id for r in corpus if r.good)  # each good ride, once

    letters = _by_offset(read_all(bootstrap, dead))
    assert set(letters) == {offset for offset, r in enumerate(corpus) if not r.good}
    for offset, letter in letters.items():
        record = corpus[offset]
        assert letter["reason"] and letter["source"] == f"{topic}/0/{offset}" and letter["stage"] == "rides_all"
        expected = REASON_OF_KIND.get(record.kind)
        assert expected is None or expected in letter["reason"], (record.kind, letter["reason"])
        _assert_fits_and_identifies(letter, record)
    assert len(out_ids) + len(letters) == len(corpus)
    assert {corpus[offset].kind for offset in letters} >= set(REASON_OF_KIND)  # every kind was tried
    largest = max(len(json.dumps(letter)) for letter in letters.values())
    print(
        f"\nhostile input: {len(corpus)} records of {len({r.kind for r in corpus})} kinds: {len(out_ids)} good rides "
        f"all in the output once; {len(letters)} bad, all dead letters with a reason; the largest dead letter "
        f"{largest:,} bytes (of a {max(len(r.value or b'') for r in corpus):,}-byte record)"
    )


def _assert_fits_and_identifies(letter: dict, record) -> None:
    """A dead letter always fits, and names the whole original by length and SHA-256 even when cut."""
    assert len(json.dumps(letter)) < MAX_DEAD_LETTER_BYTES, record.kind
    whole = record.value or b""
    assert letter["original_length"] == len(whole) and letter["original_sha256"] == hashlib.sha256(whole).hexdigest()
    assert letter["truncated"] == (len(whole) > 16384)


def test_the_console_consumer_survives_the_same_input_and_accounts_for_every_record(
    local_stack, hostile_topic, topic_factory
):
    topic, corpus = hostile_topic
    dead = topic_factory(prefix="hostile_consumer_dlq")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "producers.consume",
            topic,
            "--group",
            f"fuzz-{topic}",
            "--output",
            "jsonl",
            "--idle-timeout",
            "5",
            "--dead-letter-topic",
            dead,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = {json.loads(line)["offset"]: json.loads(line) for line in result.stdout.splitlines()}
    letters = _by_offset(read_all(local_stack.kafka.bootstrap_servers, dead))
    assert set(printed) | set(letters) == set(range(len(corpus))) and not set(printed) & set(letters)
    avro_framed = (
        "unknown schema id",
        "truncated Avro",
        "garbage behind a known schema id",
        "Avro timestamp-millis of 2**62",
        "value of 900 KB",
    )
    crashed_python_before = (
        "JSON nested 20,000 deep",
        "JSON nested 100,000 deep",
        "JSON number of 5,000 digits",
        "CSV line with invalid UTF-8",
        "JSON with invalid UTF-8 in a text field",
    )
    for offset, record in enumerate(corpus):
        if record.good:
            assert printed[offset]["value"]["ride_id"] == record.ride_id
        elif record.kind in avro_framed + crashed_python_before:  # never printed
            assert letters[offset]["reason"], record.kind
            _assert_fits_and_identifies(letters[offset], record)
    assert all(letter["reason"] and letter["stage"] == "consumer" for letter in letters.values())
    assert {corpus[offset].kind for offset in letters} >= set(avro_framed + crashed_python_before)
