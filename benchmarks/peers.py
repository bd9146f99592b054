"""Our producer against the tools users would pick instead, on the same rides, in one run (not part of make test).

  .venv/bin/python -m benchmarks.peers [--file PATH] [--repeat 2]

Producers: the real green file into a fresh 3-partition topic, each run a command as its user runs it, timed from
its start to its exit (interpreter, imports, reading the file, the last acknowledgement):
  ours, avro / json      python -m producers.produce (the bulk path; acks=all, idempotence, lz4: conf/clients.yaml)
  course's pattern       pandas iterrows, a dataclass per row, json.dumps, kafka-python's KafkaProducer with its
                         defaults (acks=1, no compression): benchmarks/peer_apps/course_producer.py
Each run's topic must then hold exactly the file's rides, or the run does not count. The runs are interleaved; the
best of each counts, and every run is printed.

The peers' packages are installed on first use into a virtual environment of their own under the state folder
(.stack/peers), never into the project's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
import venv
from functools import partial
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from benchmarks.side_by_side import delete_topic, interleaved_runs, print_rates, ride_topic
from pipeline_config.settings import load_settings
from rides.tlc import read_rides

REPO_ROOT = Path(__file__).resolve().parent.parent
GREEN_FILE = REPO_ROOT.parent / "shared" / "data" / "green_tripdata_2020-10.csv.gz"
PEER_APPS = Path(__file__).resolve().parent / "peer_apps"
# The peers' versions: the newest on PyPI when this was written.
PEER_PACKAGES = ("kafka-python==2.2.15", "pandas==2.3.3")


def peer_python(state_dir: Path) -> str:
    """The peers' interpreter, its environment made and filled on first use."""
    home = state_dir / "peers" / "venv"
    python = home / "bin" / "python"
    marker = home / "installed.txt"
    if not marker.is_file() or marker.read_text() != "\n".join(PEER_PACKAGES):
        print(f"installing the peers' packages into {home}: {', '.join(PEER_PACKAGES)}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(home)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
        marker.write_text("\n".join(PEER_PACKAGES))
    return str(python)


def records_in(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:6]}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(
            high - low
            for low, high in (consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions)
        )
    finally:
        consumer.close()


def timed_run(command: list[str], bootstrap: str, rides: int) -> float:
    """Rides per second of one command producing the file into a topic of its own, checked to hold every ride."""
    topic = ride_topic(bootstrap, "bench_peers")
    try:
        started = time.perf_counter()
        subprocess.run(
            [arg.replace("{topic}", topic) for arg in command], cwd=REPO_ROOT, check=True, capture_output=True
        )
        took = time.perf_counter() - started
        landed = records_in(bootstrap, topic)
        if landed != rides:
            raise SystemExit(f"{' '.join(command[:3])}... left {landed:,} records in {topic}, not {rides:,}")
        return rides / took
    finally:
        delete_topic(bootstrap, topic)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", default=str(GREEN_FILE))
    parser.add_argument("--repeat", type=int, default=2)
    options = parser.parse_args(argv)

    settings = load_settings()
    bootstrap = settings.kafka.bootstrap_servers
    rides = sum(1 for _ in read_rides(options.file))
    peers = peer_python(settings.state_dir)
    ours = [sys.executable, "-m", "producers.produce", "--source", options.file, "--topic", "{topic}", "--quiet"]
    commands = {
        "ours, avro": [*ours, "--format", "avro"],
        "ours, json": [*ours, "--format", "json"],
        "course's pattern (json)": [peers, str(PEER_APPS / "course_producer.py"), options.file, "{topic}", bootstrap],
    }
    variants = {name: partial(timed_run, command, bootstrap, rides) for name, command in commands.items()}
    runs = interleaved_runs(variants, options.repeat)
    title = (
        f"Producers: {rides:,} rides of {options.file}, each run a command from start to exit, best of {options.repeat}"
    )
    print_rates(title, runs, "course's pattern (json)", "vs course")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
