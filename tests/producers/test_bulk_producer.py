"""The producer's bulk path on the real stack: the records it writes are the per-row path's (partition, order, key,
value bytes, timestamp), for the real green file and the generator in both formats, and replay pacing still holds
the pace of event time."""

from __future__ import annotations

import time
from itertools import islice

import pytest

from cluster.topic_snapshot import read_all
from producers import produce
from rides.events import pickup_millis
from rides.tlc import read_rides
from tests.conftest import GREEN_FILE

pytestmark = pytest.mark.stack

RIDES = 20_000


def _records(bootstrap: str, topic: str) -> dict[int, list[tuple]]:
    by_partition: dict[int, list[tuple]] = {}
    for message in sorted(read_all(bootstrap, topic), key=lambda m: (m.partition(), m.offset())):
        by_partition.setdefault(message.partition(), []).append((message.key(), message.value(), message.timestamp()))
    return by_partition


@pytest.mark.parametrize("fmt", ["avro", "json"])
@pytest.mark.parametrize("source", ["file", "generator"])
def test_bulk_and_row_by_row_write_the_same_records(local_stack, fresh_topic, fmt, source):
    """Both runs into one topic (one schema id): each partition holds the bulk run's records, then the same again."""
    where = ["--source", str(GREEN_FILE)] if source == "file" else ["--source", "generator", "--seed", "9"]
    for extra in ([], ["--row-by-row"]):
        command = [*where, "--limit", str(RIDES), "--topic", fresh_topic, "--format", fmt, "--quiet", *extra]
        assert produce.main(command) == 0
    written = _records(local_stack.kafka.bootstrap_servers, fresh_topic)
    assert sum(len(records) for records in written.values()) == 2 * RIDES
    assert len(written) == 3, "keys spread the rides over every partition"
    for partition, records in written.items():
        half = len(records) // 2
        assert records[:half] == records[half:], f"partition {partition}"


def test_replay_pacing_holds_on_the_bulk_path(local_stack, fresh_topic):
    rides, speed = 150, 4_800  # about 7.5 hours of the first night: 5.6 s
    pickups = [pickup_millis(event) for event in islice(read_rides(GREEN_FILE), rides)]
    span_s = (max(pickups) - pickups[0]) / 1000 / speed  # the pacer never goes back in time: the latest pickup
    started = time.monotonic()
    command = ["--source", str(GREEN_FILE), "--limit", str(rides), "--replay-speed", str(speed)]
    assert produce.main([*command, "--topic", fresh_topic, "--quiet"]) == 0
    took = time.monotonic() - started
    assert span_s > 3, "the rides span enough event time to see the pace"
    assert span_s <= took, f"{rides} rides over {span_s:.1f} s of sped-up event time were sent in {took:.1f} s"
    assert len(read_all(local_stack.kafka.bootstrap_servers, fresh_topic)) == rides
