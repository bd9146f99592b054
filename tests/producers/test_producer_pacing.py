"""Producer logic that needs no broker: the lifecycle event stream and pacing."""

from __future__ import annotations

from datetime import datetime, timedelta

from producers.produce import Pacer, lifecycle_messages
from rides.events import event_time_millis


def _ride(ride_id, pickup_minute, minutes):
    pickup = datetime(2020, 10, 1, 8, 0) + timedelta(minutes=pickup_minute)
    return {
        "ride_id": ride_id,
        "pickup_datetime": pickup,
        "dropoff_datetime": None if minutes is None else pickup + timedelta(minutes=minutes),
    }


def test_lifecycle_emits_started_at_pickup_and_ended_at_dropoff_in_event_time_order():
    rides = [_ride("a", 0, 10), _ride("b", 2, 3), _ride("c", 6, None), _ride("d", 12, 1)]
    messages = list(lifecycle_messages(rides, "started", "ended"))
    assert [(m.topic, m.event["ride_id"]) for m in messages] == [
        ("started", "a"),
        ("started", "b"),
        ("ended", "b"),
        ("started", "c"),
        ("ended", "a"),
        ("started", "d"),
        ("ended", "d"),
    ]
    timestamps = [m.timestamp_ms for m in messages]
    assert timestamps == sorted(timestamps)
    ended_a = next(m for m in messages if m.topic == "ended" and m.event["ride_id"] == "a")
    assert ended_a.timestamp_ms == event_time_millis(rides[0], "dropoff_datetime")
    # a ride without a dropoff never ends: the lifecycle job reports it once its bound has passed
    assert not [m for m in messages if m.topic == "ended" and m.event["ride_id"] == "c"]


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_rate_pacing_spaces_events_evenly():
    fake = FakeClock()
    pacer = Pacer(rate=4, clock=fake.clock, sleep=fake.sleep)
    for i in range(5):
        pacer.wait(event_time_ms=i)
    assert fake.now == 1.0  # the fifth event is due at 4/4 s


def test_replay_pacing_follows_event_time_sped_up_and_never_waits_for_late_events():
    fake = FakeClock()
    pacer = Pacer(replay_speed=60, clock=fake.clock, sleep=fake.sleep)
    base = 1_600_000_000_000
    pacer.wait(base)
    pacer.wait(base + 60_000)  # one minute of event time: one second at 60x
    assert fake.now == 1.0
    pacer.wait(base + 30_000)  # out of order: due in the past, sent at once
    assert fake.now == 1.0
    pacer.wait(base + 600_000)
    assert fake.now == 10.0


def test_no_pacing_means_no_waiting():
    fake = FakeClock()
    pacer = Pacer(clock=fake.clock, sleep=fake.sleep)
    for i in range(100):
        pacer.wait(i * 1_000_000)
    assert fake.sleeps == []
