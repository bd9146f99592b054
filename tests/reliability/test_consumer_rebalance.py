"""Consumer group rebalance: one of a group's two consumers is killed (SIGKILL) mid-stream; its partitions move
to the survivor, which goes on from the group's committed offsets.

What at-least-once allows, and what the test holds the pipeline to: every message is processed (none missing);
a message is processed twice only if the killed consumer printed it after its last offset commit, so for each
partition the duplicates are one unbroken run of offsets starting where the survivor took over and ending at the
last message the killed consumer printed; with commits every auto_commit_interval_ms (conf/clients.yaml) that
run is at most about one commit interval of that partition's traffic. Within a partition, each consumer
processes messages in offset order, so the order of rides of one key is kept.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict

import pytest

from cluster.topic_snapshot import read_all
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.stack

RIDES, RATE = 4_000, 400  # ten seconds of traffic


def _consumer(topic: str, group: str, out_path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "producers.consume",
            topic,
            "--group",
            group,
            "--output",
            "jsonl",
            "--idle-timeout",
            "20",
            "--dead-letter-topic",
            "",
        ],
        cwd=REPO_ROOT,
        stdout=open(out_path, "w"),
        stderr=subprocess.DEVNULL,
    )


def _printed(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def _wait_for_lines(path, count: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path.name} printed fewer than {count} messages in {timeout_s} s")


def test_a_killed_consumers_partitions_move_to_the_survivor_and_nothing_is_lost(local_stack, topic_factory, tmp_path):
    topic = topic_factory(partitions=4, prefix="rebalance")
    group = f"rebalance-{topic}"
    killed_out, survivor_out = tmp_path / "killed.jsonl", tmp_path / "survivor.jsonl"
    killed, survivor = _consumer(topic, group, killed_out), _consumer(topic, group, survivor_out)
    time.sleep(5)  # both join the group and split the four partitions before the traffic starts
    producer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "producers.produce",
            "--source",
            "generator",
            "--limit",
            str(RIDES),
            "--rate",
            str(RATE),
            "--format",
            "json",
            "--topic",
            topic,
            "--quiet",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_lines(killed_out, 600)
        killed.kill()
        killed.wait(10)
        assert producer.wait(60) == 0, producer.stderr.read()
        assert survivor.wait(120) == 0
    finally:
        for proc in (killed, survivor, producer):
            if proc.poll() is None:
                proc.kill()

    in_topic = {(m.partition(), m.offset()) for m in read_all(local_stack.kafka.bootstrap_servers, topic)}
    assert len(in_topic) == RIDES
    by_killed, by_survivor = _printed(killed_out), _printed(survivor_out)
    seen_killed = {(r["partition"], r["offset"]) for r in by_killed}
    seen_survivor = {(r["partition"], r["offset"]) for r in by_survivor}
    assert seen_killed | seen_survivor == in_topic, f"{len(in_topic - seen_killed - seen_survivor)} never processed"

    killed_partitions = {p for p, _ in seen_killed}
    assert killed_partitions and killed_partitions < {0, 1, 2, 3}, "the two consumers did not split the partitions"
    assert {p for p, _ in seen_survivor} == {0, 1, 2, 3}, "the killed consumer's partitions did not move"

    duplicates = seen_killed & seen_survivor
    for partition in killed_partitions:
        printed_by_killed = sorted(o for p, o in seen_killed if p == partition)
        assert printed_by_killed == sorted(printed_by_killed) and len(set(printed_by_killed)) == len(printed_by_killed)
        taken_over_at = min(o for p, o in seen_survivor if p == partition)
        twice = sorted(o for p, o in duplicates if p == partition)
        # the survivor started at the committed offset: at or before the killed consumer's next message, and
        # everything it saw twice is the killed consumer's uncommitted tail
        assert taken_over_at <= printed_by_killed[-1] + 1
        assert twice == list(range(taken_over_at, printed_by_killed[-1] + 1))
    per_partition_rate = RATE / 4
    assert len(duplicates) <= len(killed_partitions) * per_partition_rate * 3, len(duplicates)

    order = defaultdict(list)
    for record in by_survivor:
        order[record["partition"]].append(record["offset"])
    assert all(offsets == sorted(offsets) for offsets in order.values())
    print(
        f"rebalance: {len(in_topic)} messages, {len(duplicates)} processed twice "
        f"(the killed consumer's uncommitted tail on partitions {sorted(killed_partitions)})"
    )
