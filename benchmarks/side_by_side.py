"""What the benchmarks share: interleaved rounds of every variant, a table of rates side by side, a topic to
produce into, and the peers' own virtual environments."""

from __future__ import annotations

import subprocess
import time
import uuid
import venv
from collections.abc import Callable, Mapping
from pathlib import Path

from confluent_kafka.admin import NewTopic

from cluster.clients import admin_client

# Every package of each peer's environment, pinned (peer_venv).
PEER_CONSTRAINTS = Path(__file__).resolve().parent / "peer_constraints"


def interleaved_runs(variants: Mapping[str, Callable[[], float]], repeat: int) -> dict[str, list[float]]:
    """Each variant's rate in each round; a round runs every variant once, so that the machine's drift touches all
    alike."""
    runs: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeat):
        for name, run in variants.items():
            runs[name].append(run())
    return runs


def print_rates(title: str, runs: dict[str, list[float]], baseline: str, against: str) -> None:
    """The best run of each variant, its ratio to the baseline's best, and every run."""
    best = {name: max(rates) for name, rates in runs.items()}
    print(f"\n{title}")
    print(f"{'':<28} {'rides/s':>10} {against:>11}   all runs (rides/s)")
    for name, rate in best.items():
        every = " ".join(f"{run:,.0f}" for run in runs[name])
        print(f"{name:<28} {rate:>10,.0f} {rate / best[baseline]:>10.2f}x   {every}")


def ride_topic(bootstrap: str, prefix: str, partitions: int = 3) -> str:
    """A fresh topic (3 partitions, as the ride topics) with size-based retention: the rides' Kafka timestamps are
    of 2020 (the producer refuses a topic whose time retention would delete them on arrival)."""
    topic = f"{prefix}_{uuid.uuid4().hex[:8]}"
    config = {"retention.ms": "-1", "retention.bytes": str(4 << 30)}
    admin = admin_client(bootstrap)  # held until the answer: a client dropped meanwhile abandons its requests
    admin.create_topics([NewTopic(topic, num_partitions=partitions, config=config)])[topic].result(30)
    time.sleep(1)  # every broker hears of it
    return topic


def delete_topic(bootstrap: str, topic: str) -> None:
    admin = admin_client(bootstrap)
    admin.delete_topics([topic])[topic].result(30)


def peer_venv(home: Path, packages: tuple[str, ...], constraints: Path) -> str:
    """A peer's interpreter: a virtual environment of its own under the state folder, made and filled with the
    packages on first use (and again when they or their constraints change), never the project's. The constraints
    file pins every package the peer pulls in, not only the ones named, so that a run next month compares the same
    peer as the figures in BENCHMARKS.md."""
    python = home / "bin" / "python"
    marker = home / "installed.txt"
    wanted = "\n".join([*packages, constraints.read_text()])
    if not marker.is_file() or marker.read_text() != wanted:
        print(f"installing {', '.join(packages)} into {home}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(home)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-c", str(constraints), *packages], check=True)
        marker.write_text(wanted)
    return str(python)
