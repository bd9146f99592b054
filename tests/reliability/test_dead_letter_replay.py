"""make replay-dead-letters end to end: dead letters written by a real consumer are counted by a dry run, re-sent to
their topic as the records they were (key, value, a header saying so), never twice, and a record that fails again
returns to the dead letters once and stays there."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from cluster.dead_letter_replay import REPLAYED_HEADER, main
from cluster.topic_snapshot import read_all
from tests.jobs.cluster import produce_generated
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.stack

JSON_RIDES, AVRO_RIDES = 6, 4


def _consume_avro_only(topic: str, group: str, dead_letter_topic: str) -> None:
    """The console consumer reading Avro only: each JSON ride becomes a dead letter."""
    subprocess.run(
        [sys.executable, "-m", "producers.consume", topic, "--group", group, "--format", "avro", "--output", "jsonl",
         "--idle-timeout", "3", "--dead-letter-topic", dead_letter_topic],
        cwd=REPO_ROOT, capture_output=True, check=True, timeout=120,
    )  # fmt: skip


def _replay(capsys, *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


def test_dead_letters_are_replayed_once_and_a_record_that_fails_again_stays_put(local_stack, topic_factory, capsys):
    bootstrap = local_stack.kafka.bootstrap_servers
    rides, letters = (
        topic_factory(partitions=1, prefix="replay_rides"),
        topic_factory(partitions=1, prefix="replay_dlq"),
    )
    produce_generated(rides, 41, JSON_RIDES, "--format", "json")
    produce_generated(rides, 42, AVRO_RIDES)
    before_letters = datetime.now(UTC).isoformat()
    _consume_avro_only(rides, "replay-test", letters)
    originals = read_all(bootstrap, rides)[:JSON_RIDES]
    assert len(read_all(bootstrap, letters)) == JSON_RIDES

    dry = _replay(capsys, "--dead-letter-topic", letters, "--source-topic", rides, "--dry-run")
    assert f"{JSON_RIDES} dead letters match; {JSON_RIDES} to re-send" in dry and "nothing sent" in dry
    assert len(read_all(bootstrap, rides)) == JSON_RIDES + AVRO_RIDES
    assert "0 dead letters match" in _replay(capsys, "--dead-letter-topic", letters, "--until", before_letters)
    assert "0 dead letters match" in _replay(capsys, "--dead-letter-topic", letters, "--reason", "no such reason")

    assert f"re-sent {JSON_RIDES} records" in _replay(capsys, "--dead-letter-topic", letters, "--source-topic", rides)
    replayed = read_all(bootstrap, rides)[JSON_RIDES + AVRO_RIDES :]
    assert [(m.key(), m.value()) for m in replayed] == [(m.key(), m.value()) for m in originals]
    for message, letter in zip(replayed, read_all(bootstrap, letters), strict=True):
        assert (REPLAYED_HEADER, f"{letters}/0/{letter.offset()}".encode()) in message.headers()

    # Read again by the Avro-only consumer, the replayed records fail again: back to the dead letters, once.
    _consume_avro_only(rides, "replay-test", letters)
    assert len(read_all(bootstrap, letters)) == 2 * JSON_RIDES
    again = _replay(capsys, "--dead-letter-topic", letters)
    assert f"{2 * JSON_RIDES} dead letters match; 0 to re-send" in again
    assert f"{JSON_RIDES}  left: failed again after a replay" in again
    assert f"{JSON_RIDES}  left: re-sent by an earlier replay" in again
    assert len(read_all(bootstrap, rides)) == 2 * JSON_RIDES + AVRO_RIDES
