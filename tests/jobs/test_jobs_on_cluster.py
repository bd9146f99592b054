"""Each job on the standalone cluster over the real green file in Kafka, run to the end of its input, and
its output topic compared with an independent batch computation of the same question in plain Python."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from producers import produce
from producers.tlc import read_rides
from tests.conftest import GREEN_FILE
from tests.jobs.cluster import latest_per_key, run_job

pytestmark = pytest.mark.stack

EPOCH = datetime(1970, 1, 1)


@pytest.fixture(scope="module")
def green_rides():
    return list(read_rides(GREEN_FILE))


@pytest.fixture(scope="module")
def green_topic(local_stack, green_rides):
    """The real green file, produced once as Avro into a topic of its own for this module's jobs."""
    from tests.kafka_helpers import create_topic, delete_topic

    topic = create_topic(local_stack.kafka.bootstrap_servers, prefix="jobs_green")
    assert produce.main(["--source", str(GREEN_FILE), "--topic", topic, "--quiet"]) == 0
    yield topic
    delete_topic(local_stack.kafka.bootstrap_servers, topic)


def _floor(moment: datetime, minutes: int) -> datetime:
    step = timedelta(minutes=minutes)
    return EPOCH + ((moment - EPOCH) // step) * step


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _money(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


def batch_vendor_counts(rides, length_min: int, slide_min: int, kind: str) -> dict[str, dict]:
    """Rides, passengers and revenue per (window, VendorID), computed directly from the file's rows."""
    groups = defaultdict(lambda: {"rides": 0, "passengers": None, "revenue": None})
    for ride in rides:
        last_start = _floor(ride["pickup_datetime"], slide_min)
        start = last_start
        while start > ride["pickup_datetime"] - timedelta(minutes=length_min):
            group = groups[(start, ride["VendorID"])]
            group["rides"] += 1
            if ride["passenger_count"] is not None:
                group["passengers"] = (group["passengers"] or 0) + ride["passenger_count"]
            if ride["total_amount"] is not None:
                group["revenue"] = (group["revenue"] or Decimal(0)) + _money(ride["total_amount"])
            start -= timedelta(minutes=slide_min)
    return {
        f"{kind}|{_iso(start)}|{'null' if vendor is None else vendor}": {
            "window_end": _iso(start + timedelta(minutes=length_min)), **figures
        }
        for (start, vendor), figures in groups.items()
    }


def test_vendor_counts_equal_a_batch_computation_over_the_same_rows(local_stack, green_topic, green_rides, topic_factory, tmp_path):
    output = topic_factory(prefix="out_vendor_counts")
    log = run_job(local_stack, "vendor_counts", tmp_path / "checkpoints",
                  "--input-topics", green_topic, "--output-topic", output)
    assert "[vendor_counts_sliding] batch" in log and " 95120 rows in" in log, log[-2000:]

    streamed = latest_per_key(local_stack, output)
    expected = {**batch_vendor_counts(green_rides, 10, 5, "sliding"), **batch_vendor_counts(green_rides, 10, 10, "tumbling")}
    assert set(streamed) == set(expected)
    mismatches = []
    for key, figures in expected.items():
        got = streamed[key]
        actual = {
            "window_end": got["window_end"].replace(".000Z", "Z"),
            "rides": got["rides"],
            "passengers": got["passengers"],
            "revenue": None if got["revenue"] is None else Decimal(str(got["revenue"])).quantize(Decimal("0.01")),
        }
        if actual != figures:
            mismatches.append((key, actual, figures))
    assert not mismatches, mismatches[:5]
    assert sum(f["rides"] for k, f in expected.items() if k.startswith("tumbling")) == 95_120


def test_zone_popularity_and_top_zones_equal_a_batch_computation(local_stack, green_topic, green_rides, topic_factory, tmp_path):
    counts_topic, top_topic = topic_factory(prefix="out_zone_counts"), topic_factory(prefix="out_zone_top")
    run_job(local_stack, "zone_popularity", tmp_path / "checkpoints",
            "--input-topics", green_topic, "--output-topic", counts_topic, "--top-topic", top_topic, "--top-n", "5")

    names = {}
    import csv

    from tests.conftest import ZONE_LOOKUP

    with open(ZONE_LOOKUP, newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            names[int(row["LocationID"])] = (row["Borough"].strip(), row["Zone"].strip())

    per_hour = defaultdict(lambda: defaultdict(int))
    for ride in green_rides:
        if ride["PULocationID"] is not None:
            per_hour[_floor(ride["pickup_datetime"], 60)][ride["PULocationID"]] += 1

    expected_counts = {
        f"{_iso(hour)}|{zone}": (rides, *names.get(zone, (None, None)))
        for hour, zones in per_hour.items() for zone, rides in zones.items()
    }
    streamed_counts = {
        key: (value["rides"], value["borough"], value["zone"])
        for key, value in latest_per_key(local_stack, counts_topic).items()
    }
    assert streamed_counts == expected_counts

    expected_top = {
        _iso(hour): [zone for zone, _ in sorted(zones.items(), key=lambda item: (-item[1], item[0]))[:5]]
        for hour, zones in per_hour.items()
    }
    streamed_top = {
        key: [entry["PULocationID"] for entry in value["top_zones"]]
        for key, value in latest_per_key(local_stack, top_topic).items()
    }
    assert streamed_top == expected_top
