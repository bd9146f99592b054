"""Independent batch answers to the jobs' questions, computed in plain Python from the file's rows, and the
comparison of a job's output topic with them. Shared by the equality tests and the fault tests."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

EPOCH = datetime(1970, 1, 1)
EARLIEST_PICKUP = datetime(2009, 1, 1)  # the TLC's records begin here; the green file has a ride of 2008-12-31


def floor_minutes(moment: datetime, minutes: int) -> datetime:
    step = timedelta(minutes=minutes)
    return EPOCH + ((moment - EPOCH) // step) * step


def iso_utc(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


def batch_vendor_counts(rides, length_min: int, slide_min: int, kind: str) -> dict[str, dict]:
    """Rides, passengers and revenue per (window, VendorID), computed directly from the file's rows."""
    groups: defaultdict[tuple, dict[str, Any]] = defaultdict(lambda: {"rides": 0, "passengers": None, "revenue": None})
    for ride in rides:
        last_start = floor_minutes(ride["pickup_datetime"], slide_min)
        start = last_start
        while start > ride["pickup_datetime"] - timedelta(minutes=length_min):
            group = groups[(start, ride["VendorID"])]
            group["rides"] += 1
            if ride["passenger_count"] is not None:
                group["passengers"] = (group["passengers"] or 0) + ride["passenger_count"]
            if ride["total_amount"] is not None:
                group["revenue"] = (group["revenue"] or Decimal(0)) + (money(ride["total_amount"]) or Decimal(0))
            start -= timedelta(minutes=slide_min)
    return {
        f"{kind}|{iso_utc(start)}|{'null' if vendor is None else vendor}": {
            "window_end": iso_utc(start + timedelta(minutes=length_min)),
            **figures,
        }
        for (start, vendor), figures in groups.items()
    }


def is_valid_ride(ride) -> bool:
    """The jobs' validation, restated: rides failing it go to the dead-letter topic, not into results."""
    zones_ok = all(ride[f] is None or 1 <= ride[f] <= 265 for f in ("PULocationID", "DOLocationID"))
    ordered = ride["dropoff_datetime"] is None or ride["dropoff_datetime"] >= ride["pickup_datetime"]
    plausible = EARLIEST_PICKUP <= ride["pickup_datetime"] <= datetime.now() + timedelta(days=1)
    return zones_ok and ordered and plausible and (ride["passenger_count"] or 0) >= 0


def expected_vendor_counts(rides) -> dict[str, dict]:
    """What vendor_counts must end with under conf/jobs.yaml's windows: sliding 10/5 and tumbling 10 minutes."""
    valid = [ride for ride in rides if is_valid_ride(ride)]
    return {**batch_vendor_counts(valid, 10, 5, "sliding"), **batch_vendor_counts(valid, 10, 10, "tumbling")}


def vendor_count_mismatches(streamed: dict[str, dict], expected: dict[str, dict]) -> list[tuple]:
    """(key, streamed, expected) for every window whose figures differ; money compared to the cent."""
    mismatches: list[tuple] = []
    for key, figures in expected.items():
        got = streamed.get(key)
        if got is None:
            mismatches.append((key, None, figures))
            continue
        actual = {
            "window_end": got["window_end"].replace(".000Z", "Z"),
            "rides": got["rides"],
            "passengers": got["passengers"],
            "revenue": None if got["revenue"] is None else Decimal(str(got["revenue"])).quantize(Decimal("0.01")),
        }
        if actual != figures:
            mismatches.append((key, actual, figures))
    return mismatches


def zone_names() -> dict[int, tuple[str, str]]:
    """LocationID -> (borough, zone) from the taxi zone lookup, read with the csv module."""
    import csv

    from tests.conftest import ZONE_LOOKUP

    with open(ZONE_LOOKUP, newline="", encoding="utf-8-sig") as handle:
        return {int(row["LocationID"]): (row["Borough"].strip(), row["Zone"].strip()) for row in csv.DictReader(handle)}
