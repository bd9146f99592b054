"""The synthetic ride generator: reproducible, realistic distributions, out-of-order and late shares."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from statistics import median

import pytest

from producers.generator import GeneratorSettings, RideGenerator

N = 20_000


@pytest.fixture(scope="module")
def rides():
    return list(RideGenerator(GeneratorSettings(seed=7)).rides(N))


def test_same_seed_gives_the_same_rides_and_another_seed_does_not(rides):
    assert list(RideGenerator(GeneratorSettings(seed=7)).rides(500)) == rides[:500]
    assert list(RideGenerator(GeneratorSettings(seed=8)).rides(500)) != rides[:500]


def test_zones_are_valid_and_popularity_is_skewed(rides):
    counts = Counter(ride["PULocationID"] for ride in rides)
    assert set(counts) <= set(range(1, 266))
    top_ten_share = sum(count for _, count in counts.most_common(10)) / N
    assert top_ten_share > 3 * (10 / 265)  # far more than uniform popularity would give
    assert len(counts) > 200  # but the long tail is there


def test_ride_kinds_follow_the_configured_mix(rides):
    shares = {kind: count / N for kind, count in Counter(ride["ride_type"] for ride in rides).items()}
    assert shares == pytest.approx({"green": 0.5, "yellow": 0.3, "fhv": 0.2}, abs=0.02)


def test_durations_distances_and_fares_are_plausible(rides):
    minutes = [(r["dropoff_datetime"] - r["pickup_datetime"]).total_seconds() / 60 for r in rides]
    assert all(0 < m <= 180 for m in minutes)
    assert 9 < median(minutes) < 15
    metered = [r for r in rides if r["ride_type"] != "fhv"]
    assert all(r["fare_amount"] >= 2.5 and r["total_amount"] >= r["fare_amount"] for r in metered)
    assert 1 < median(r["trip_distance"] for r in metered) < 5
    fhv = [r for r in rides if r["ride_type"] == "fhv"]
    assert all(r["fare_amount"] is None and r["dispatching_base_num"] for r in fhv)


def test_out_of_order_and_late_shares_are_as_configured(rides):
    latest = rides[0]["pickup_datetime"]
    behind = []
    for ride in rides:
        if ride["pickup_datetime"] < latest:
            behind.append(latest - ride["pickup_datetime"])
        latest = max(latest, ride["pickup_datetime"])
    late = [delay for delay in behind if delay > timedelta(minutes=10)]
    assert len(late) / N == pytest.approx(0.01, abs=0.004)
    assert len(behind) / N == pytest.approx(0.06, abs=0.015)


def test_no_late_or_out_of_order_rides_when_the_shares_are_zero():
    rides = list(RideGenerator(GeneratorSettings(late_share=0, out_of_order_share=0)).rides(2000))
    pickups = [ride["pickup_datetime"] for ride in rides]
    assert pickups == sorted(pickups)


def test_invalid_shares_are_refused_by_name():
    with pytest.raises(ValueError, match="late_share must be between 0 and 1"):
        GeneratorSettings(late_share=2)
