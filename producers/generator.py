"""Synthetic ride events for when no TLC file is at hand.

Realistic enough for the jobs to have something to find: pickup zones 1..265 with skewed (Zipf-like)
popularity, log-normal durations, speeds that give plausible distances, fares from the TLC meter formula, a
mix of green, yellow and FHV rides, and a share of out-of-order and late events so watermarks have work.
The same seed gives the same rides.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from rides.events import empty_event, make_ride_id

ZONE_COUNT = 265
FHV_BASES = ("B00013", "B00014", "B02510", "B02764", "B02875", "B03404")


@dataclass(frozen=True)
class GeneratorSettings:
    seed: int = 42
    start: datetime = datetime(2020, 10, 1)
    rides_per_minute: float = 60.0
    mix: tuple[tuple[str, float], ...] = (("green", 0.5), ("yellow", 0.3), ("fhv", 0.2))
    zipf_exponent: float = 0.8
    out_of_order_share: float = 0.05  # emitted up to `out_of_order_max` after rides that picked up later
    out_of_order_max: timedelta = timedelta(minutes=2)
    late_share: float = 0.01  # emitted far behind event time, beyond a typical watermark
    late_delay: timedelta = timedelta(minutes=30)

    def __post_init__(self):
        for name in ("out_of_order_share", "late_share"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.rides_per_minute <= 0:
            raise ValueError(f"rides_per_minute must be positive, got {self.rides_per_minute}")
        if not self.mix or abs(sum(weight for _, weight in self.mix) - 1) > 1e-6:
            raise ValueError("mix weights must add up to 1")


class RideGenerator:
    def __init__(self, settings: GeneratorSettings = GeneratorSettings()):
        self.settings = settings
        self.random = random.Random(settings.seed)
        # Zone popularity: a random permutation of zones ranked by a Zipf law, so popular zones are spread out.
        zones = list(range(1, ZONE_COUNT + 1))
        self.random.shuffle(zones)
        weights = [1 / (rank**settings.zipf_exponent) for rank in range(1, ZONE_COUNT + 1)]
        self.zones = zones
        self.cumulative_zone_weights = _cumulative(weights)
        self.kinds = [kind for kind, _ in settings.mix]
        self.cumulative_kind_weights = _cumulative([weight for _, weight in settings.mix])

    def _zone(self) -> int:
        return self.random.choices(self.zones, cum_weights=self.cumulative_zone_weights)[0]

    def _ride(self, number: int, pickup: datetime) -> dict:
        rnd = self.random
        kind = rnd.choices(self.kinds, cum_weights=self.cumulative_kind_weights)[0]
        event = empty_event(kind)
        event["ride_id"] = make_ride_id(kind, f"generator-seed-{self.settings.seed}", number)
        minutes = min(rnd.lognormvariate(math.log(12), 0.6), 180)  # median 12 min, long tail
        speed_mph = max(rnd.gauss(12, 4), 3)
        distance = round(speed_mph * minutes / 60, 2)
        event.update(
            pickup_datetime=pickup,
            dropoff_datetime=pickup + timedelta(seconds=round(minutes * 60)),
            PULocationID=self._zone(),
            DOLocationID=self._zone(),
        )
        if kind == "fhv":
            event.update(
                dispatching_base_num=rnd.choice(FHV_BASES),
                affiliated_base_number=rnd.choice(FHV_BASES),
                SR_Flag=1 if rnd.random() < 0.1 else None,
            )
            return event
        fare = round(2.5 + 2.5 * distance + 0.5 * minutes, 2)
        tip = round(fare * rnd.choice((0, 0, 0.15, 0.2, 0.25)), 2)
        extra = rnd.choice((0.0, 0.5, 1.0))
        event.update(
            VendorID=rnd.choice((1, 2)),
            passenger_count=rnd.choices((1, 2, 3, 4, 5, 6), weights=(70, 15, 5, 4, 4, 2))[0],
            trip_distance=distance,
            RatecodeID=1,
            store_and_fwd_flag="N",
            payment_type=rnd.choices((1, 2, 3, 4), weights=(60, 35, 3, 2))[0],
            fare_amount=fare,
            extra=extra,
            mta_tax=0.5,
            tip_amount=tip,
            tolls_amount=0.0,
            improvement_surcharge=0.3,
            congestion_surcharge=2.5 if kind == "yellow" else 0.0,
            total_amount=round(fare + extra + 0.5 + tip + 0.3 + (2.5 if kind == "yellow" else 0.0), 2),
        )
        if kind == "green":
            event["trip_type"] = 1
        return event

    def rides(self, limit: int | None = None) -> Iterator[dict]:
        """Rides in emission order: mostly by pickup time, with the configured out-of-order and late shares.

        Emission is modelled as the time a ride's event reaches the producer: pickup time for most, a bit
        later for out-of-order ones, much later for late ones. Rides are yielded sorted by emission time.
        """
        settings = self.settings
        mean_gap_s = 60.0 / settings.rides_per_minute
        pending: list[tuple[datetime, int, dict]] = []  # a heap of (emit_at, number, ride)

        pickup = settings.start
        number = 0
        emitted = 0
        horizon = max(settings.out_of_order_max, settings.late_delay)
        while limit is None or emitted < limit:
            # Generate ahead until the earliest pending ride can no longer be overtaken by a new one.
            while not pending or pending[0][0] + horizon >= pickup:
                number += 1
                pickup = pickup + timedelta(seconds=self.random.expovariate(1 / mean_gap_s))
                pickup = pickup.replace(microsecond=0)
                ride = self._ride(number, pickup)
                draw = self.random.random()
                if draw < settings.late_share:
                    emit_at = pickup + settings.late_delay
                elif draw < settings.late_share + settings.out_of_order_share:
                    emit_at = pickup + settings.out_of_order_max * self.random.random()
                else:
                    emit_at = pickup
                heapq.heappush(pending, (emit_at, number, ride))
            _, _, ride = heapq.heappop(pending)
            emitted += 1
            yield ride


def _cumulative(weights: list[float]) -> list[float]:
    total, cumulative = 0.0, []
    for weight in weights:
        total += weight
        cumulative.append(total)
    return cumulative
