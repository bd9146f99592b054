"""Our producer and our windowed job against the tools users would pick instead, on the same rides, in one run
(not part of make test; needs the stack: make up).

  .venv/bin/python -m benchmarks.peers [--file PATH] [--repeat 2] [--copies 10] [--only producers|windows]

Producers: the real green file into a fresh 3-partition topic, each run a command as its user runs it, timed from
its start to its exit (interpreter, imports, reading the file, the last acknowledgement):
  ours, avro / json      python -m producers.produce (the bulk path; acks=all, idempotence, lz4: conf/clients.yaml)
  course's pattern       pandas iterrows, a dataclass per row, json.dumps, kafka-python's KafkaProducer with its
                         defaults (acks=1, no compression): benchmarks/peer_apps/course_producer.py
Each run's topic must then hold exactly the file's rides, or the run does not count. The runs are interleaved; the
best of each counts, and every run is printed.

Windowed counts (benchmarks/peer_windows.py): our vendor_counts job, a Quix Streams application and a PyFlink SQL
job, on the file once and --copies times, each run checked against the batch count.

The peers' packages are installed on first use into a virtual environment of their own under the state folder
(.stack/peers), never into the project's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
from functools import partial
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from benchmarks import peer_windows
from benchmarks.side_by_side import (
    PEER_CONSTRAINTS,
    delete_topic,
    interleaved_runs,
    peer_venv,
    print_rates,
    ride_topic,
)
from pipeline_config.settings import load_settings
from rides.tlc import read_rides

REPO_ROOT = Path(__file__).resolve().parent.parent
GREEN_FILE = REPO_ROOT.parent / "shared" / "data" / "green_tripdata_2020-10.csv.gz"
PEER_APPS = Path(__file__).resolve().parent / "peer_apps"
# The peers' versions: the newest on PyPI when this was written.
PEER_PACKAGES = ("kafka-python==2.2.15", "pandas==2.3.3", "quixstreams==3.28.1")


def peer_python(state_dir: Path) -> str:
    """The interpreter of the course's producer and the Quix Streams application."""
    return peer_venv(state_dir / "peers" / "venv", PEER_PACKAGES, PEER_CONSTRAINTS / "quix.txt")


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


def compare_producers(settings, file: str, repeat: int) -> None:
    bootstrap = settings.kafka.bootstrap_servers
    rides = sum(1 for _ in read_rides(file))
    peers = peer_python(settings.state_dir)
    ours = [sys.executable, "-m", "producers.produce", "--source", file, "--topic", "{topic}", "--quiet"]
    commands = {
        "ours, avro": [*ours, "--format", "avro"],
        "ours, json": [*ours, "--format", "json"],
        "course's pattern (json)": [peers, str(PEER_APPS / "course_producer.py"), file, "{topic}", bootstrap],
    }
    variants = {name: partial(timed_run, command, bootstrap, rides) for name, command in commands.items()}
    runs = interleaved_runs(variants, repeat)
    title = f"Producers: {rides:,} rides of {file}, each run a command from start to exit, best of {repeat}"
    print_rates(title, runs, "course's pattern (json)", "vs course")


def compare_windows(settings, file: str, repeat: int, copies: int) -> None:
    folder = settings.state_dir / "peers" / "data"
    once = peer_windows.batch_counts(peer_windows.pickup_ordered(file, folder, 1))
    quix = peer_python(settings.state_dir)
    flink = peer_windows.flink_python(settings.state_dir)
    jar = peer_windows.flink_connector(settings.state_dir)
    for size in dict.fromkeys((1, copies)):
        data = peer_windows.prepared_input(settings, file, folder, size, once)
        engines = {
            "ours (vendor_counts)": partial(peer_windows.run_ours, settings, data),
            "ours on the job server": partial(peer_windows.run_ours, settings, data, on_server=True),
            "quix streams": partial(peer_windows.run_quix, quix, settings, data),
            "pyflink sql": partial(peer_windows.run_flink, flink, jar, settings, data),
        }
        seconds: dict[str, list[float]] = {name: [] for name in engines}
        variants = {
            name: partial(peer_windows.checked_rate, name, data, run, seconds[name]) for name, run in engines.items()
        }
        try:
            runs = interleaved_runs(variants, repeat)
        finally:
            delete_topic(settings.kafka.bootstrap_servers, data.topic)
        title = (
            f"Windowed counts: {data.rides:,} rides ({size}x the file, in pickup order), 10-minute tumbling windows "
            f"per vendor, {len(data.expected):,} groups each equal to the batch count; each run a command from start "
            f"to exit, best of {repeat}"
        )
        print_rates(title, runs, "ours (vendor_counts)", "vs ours")
        print("wall time, best run: " + ", ".join(f"{name} {min(took):.1f} s" for name, took in seconds.items()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", default=str(GREEN_FILE))
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--copies", type=int, default=10, help="the larger input of the windowed counts")
    parser.add_argument("--only", choices=("producers", "windows"))
    options = parser.parse_args(argv)

    settings = load_settings()
    if options.only in (None, "producers"):
        compare_producers(settings, options.file, options.repeat)
    if options.only in (None, "windows"):
        compare_windows(settings, options.file, options.repeat, options.copies)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
