"""Producer logic that needs no broker: the lifecycle event stream and pacing."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from producers import produce
from producers.produce import Pacer, lifecycle_messages, replay_from_argument
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


def _ms(year: int, month: int, day: int, hour: int, minute: int) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


def test_a_replay_from_a_time_of_day_sends_what_comes_before_at_once_and_paces_from_there():
    fake = FakeClock()
    pacer = Pacer(replay_speed=60, clock=fake.clock, sleep=fake.sleep, replay_from=replay_from_argument("07:00"))
    pacer.wait(_ms(2020, 10, 1, 0, 31))  # the night's rides: before the replay's start, sent at once
    pacer.wait(_ms(2020, 10, 1, 6, 59))
    assert fake.sleeps == []
    pacer.wait(_ms(2020, 10, 1, 7, 2))  # two minutes after 07:00 on the first ride's day: two seconds at 60x
    assert fake.now == 2.0


def test_a_replay_from_a_moment_starts_there_whatever_the_first_ride():
    fake = FakeClock()
    pacer = Pacer(
        replay_speed=60, clock=fake.clock, sleep=fake.sleep, replay_from=replay_from_argument("2020-10-02T08:00")
    )
    pacer.wait(_ms(2020, 10, 1, 23, 0))
    pacer.wait(_ms(2020, 10, 2, 8, 10))
    assert fake.now == 10.0


@pytest.mark.parametrize("text", ["7am", "25:00", "2020-13-01T07:00"])
def test_a_replay_start_that_is_no_time_is_refused_naming_the_forms_it_takes(text):
    with pytest.raises(argparse.ArgumentTypeError, match=r"a time of day \(07:00\) or a moment"):
        replay_from_argument(text)


def test_a_replay_start_without_a_replay_is_refused(capsys):
    assert produce.main(["--source", "generator", "--limit", "1", "--replay-from", "07:00"]) == 2
    assert "--replay-from sets where a replay starts: it needs --replay-speed" in capsys.readouterr().err
