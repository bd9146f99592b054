"""One ride dated years ahead must not throw good rides away. Replayed in pickup order, a single ride of 2024 in
the green file of 2020-10 used to pass every check (2009 .. now + 1 day), move the windowed jobs' watermark four
years ahead, and every later ride was "dropped as late". The producer knows the file's month and refuses such a
ride (a dead letter, with the reason), so vendor_counts over the file with the ride inserted equals the batch
computation over the file without it, in micro-batches small enough that the watermark moves between them."""

from __future__ import annotations

import csv
import gzip
import json

import pytest

from cluster.topic_snapshot import read_all
from producers import produce
from rides.tlc import read_rides
from tests.conftest import GREEN_FILE
from tests.jobs.batch_answers import expected_vendor_counts, vendor_count_mismatches
from tests.jobs.cluster import latest_per_key, run_job

pytestmark = pytest.mark.stack
RIDES = 5000
INSERTED_AFTER = 100


def _green_in_pickup_order_with_a_ride_of_2024(folder):
    """The first 5,000 rides of the green file in pickup order, and one ride of 2024 after the first 100."""
    with gzip.open(GREEN_FILE, "rt", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = sorted(reader, key=lambda row: row[1])[:RIDES]
    future = list(rows[INSERTED_AFTER])
    future[1], future[2] = "2024-05-01 10:00:00", "2024-05-01 10:20:00"
    plain, with_future = folder / "plain" / "green_tripdata_2020-10.csv", folder / "green_tripdata_2020-10.csv"
    plain.parent.mkdir()
    for path, body in (
        (plain, rows),
        (with_future, [*rows[: INSERTED_AFTER + 1], future, *rows[INSERTED_AFTER + 1 :]]),
    ):
        with open(path, "w", newline="") as handle:
            csv.writer(handle).writerows([header, *body])
    return plain, with_future


def test_a_ride_dated_years_ahead_is_refused_and_no_good_ride_is_dropped(local_stack, topic_factory, tmp_path):
    plain, with_future = _green_in_pickup_order_with_a_ride_of_2024(tmp_path)
    topic, dead = topic_factory(partitions=1, prefix="future_ride"), topic_factory(partitions=1, prefix="future_dlq")
    assert (
        produce.main(
            ["--source", str(with_future), "--topic", topic, "--format", "json", "--dead-letter-topic", dead, "--quiet"]
        )
        == 0
    )

    (letter,) = [json.loads(m.value()) for m in read_all(local_stack.kafka.bootstrap_servers, dead)]
    assert letter["source"] == f"{with_future}:{INSERTED_AFTER + 3}" and letter["stage"] == "producer"
    assert letter["reason"].startswith("pickup_datetime 2024-05-01 10:00:00 is after 2020-11-02 00:00")

    output = topic_factory(prefix="future_out")
    log = run_job(
        local_stack,
        "vendor_counts",
        tmp_path / "checkpoints",
        "--input-topics",
        topic,
        "--output-topic",
        output,
        "--max-offsets-per-trigger",
        "300",
    )
    assert "[vendor_counts_tumbling] batch 16:" in log, log[-2000:]  # 5,000 rides in 17 micro-batches
    expected = expected_vendor_counts(list(read_rides(plain)))
    streamed = latest_per_key(local_stack, output)
    assert set(streamed) == set(expected)
    assert not vendor_count_mismatches(streamed, expected)
