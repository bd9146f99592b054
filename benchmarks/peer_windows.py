"""Windowed counts against the peers: our vendor_counts job, a Quix Streams application and a PyFlink SQL job count
rides per vendor in 10-minute tumbling windows of pickup time, over the same topic, to the end of the input.

The input is the real green file in pickup order (rides arrive as they happen: the file itself is not in time
order, and a month-long jump back would make every event-time engine drop half of it as late), once and --copies
times (each ride repeated in place), produced as JSON into a one-partition topic: Quix Streams keeps stream time
per partition, and rides of several partitions read at different paces would be late for it. Each engine runs as
its user runs it, as a command timed from its start to its exit (interpreter, JVM, start-up, the whole input):
  ours     spark-submit jobs/vendor_counts.py --window-kinds tumbling --trigger available-now --min-partitions 4
           --input-format json, on the cluster, its results to a topic of its own (and its bad records to the
           dead-letter topic: a second query over the same input, which the peers do not have). Every engine is
           told that its input is JSON (Quix's value_deserializer, Flink's 'format'); the jobs' default, `auto`,
           would also try each record as Avro and as the seed's CSV lines
  ours on the job server   the same job through `python -m stack run`, on the stack's warm application (jobs/
           job_server.py): no JVM, executors or code to start, as a user who keeps the stack up runs a job
  quix     benchmarks/peer_apps/quix_window_counts.py (its packages in .stack/peers/venv)
  pyflink  benchmarks/peer_apps/flink_window_counts.py, a local mini-cluster with the Kafka SQL connector from
           Maven Central (.stack/peers/flink-venv, .stack/peers/jars)
Every engine's counts must equal the batch count of the same rides (the jobs' validation applied, as each engine
does), or its run does not count.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from benchmarks.side_by_side import PEER_CONSTRAINTS, delete_topic, peer_venv, ride_topic
from cluster.topic_snapshot import read_all
from pipeline_config.settings import StackSettings
from rides.tlc import read_rides
from stack.submit import submit_command, submit_environment
from tests.jobs.batch_answers import is_valid_ride

REPO_ROOT = Path(__file__).resolve().parent.parent
PEER_APPS = Path(__file__).resolve().parent / "peer_apps"
# apache-flink 2.2.1 with the Kafka SQL connector built for Flink 2.2 (5.0.0-2.2 is on Maven Central).
FLINK_PACKAGE = "apache-flink==2.2.1"
FLINK_CONNECTOR = "org.apache.flink:flink-sql-connector-kafka:5.0.0-2.2"
WINDOW_MS = 10 * 60 * 1000
# Our job reads the one-partition topic in this many tasks (Spark's minPartitions), one per core the worker offers:
# a Spark user's first tuning for a topic of fewer partitions than cores.
MIN_PARTITIONS = 4

Counts = dict[tuple[int, str], int]


@dataclass(frozen=True)
class Input:
    """A sorted copy of the file, the topic it was produced into, and what every engine must count."""

    path: Path
    topic: str
    rides: int
    expected: Counts


def pickup_ordered(source: str, folder: Path, copies: int) -> Path:
    """The file's rows sorted by pickup time, each repeated `copies` times in place, as a CSV of the same name
    (its month is in the name: the producer checks it) in a folder of its own."""
    header = pacsv.open_csv(source).schema.names
    table = pacsv.read_csv(
        source, convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()))
    )
    order = np.argsort(table.column("lpep_pickup_datetime").to_numpy(zero_copy_only=False), kind="stable")
    target = folder / f"x{copies}" / Path(source).name.removesuffix(".gz")
    target.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(table.take(np.repeat(order, copies)), target, pacsv.WriteOptions(quoting_style="none"))
    return target


def batch_counts(path: Path) -> Counts:
    """Valid rides per (10-minute window start, VendorID), computed from the file's rows in Python."""
    counts: Counter[tuple[int, str]] = Counter()
    for ride in read_rides(str(path)):
        if is_valid_ride(ride):
            pickup_ms = int(ride["pickup_datetime"].replace(tzinfo=UTC).timestamp() * 1000)
            counts[(pickup_ms - pickup_ms % WINDOW_MS, _vendor(ride["VendorID"]))] += 1
    return dict(counts)


def _vendor(value: object) -> str:
    return "null" if value in (None, "None", "null") else str(value)


def prepared_input(settings: StackSettings, source: str, folder: Path, copies: int, once: Counts) -> Input:
    path = pickup_ordered(source, folder, copies)
    topic = ride_topic(settings.kafka.bootstrap_servers, f"bench_windows_x{copies}", partitions=1)
    arguments = ["--source", str(path), "--topic", topic, "--format", "json", "--quiet"]
    subprocess.run([sys.executable, "-m", "producers.produce", *arguments], cwd=REPO_ROOT, check=True)
    expected = {key: rides * copies for key, rides in once.items()}
    return Input(path, topic, sum(expected.values()), expected)


def flink_python(state_dir: Path) -> str:
    return peer_venv(state_dir / "peers" / "flink-venv", (FLINK_PACKAGE,), PEER_CONSTRAINTS / "flink.txt")


def flink_connector(state_dir: Path) -> Path:
    """The connector jar, resolved from Maven Central by Maven (as `make jars` resolves ours)."""
    folder = state_dir / "peers" / "jars"
    _, artifact, version = FLINK_CONNECTOR.split(":")
    jar = folder / f"{artifact}-{version}.jar"
    if not jar.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mvn", "-q", "dependency:copy", f"-Dartifact={FLINK_CONNECTOR}", f"-DoutputDirectory={folder}"],
            check=True,
        )
    return jar


def _printed_counts(output: str) -> Counts:
    """The counts a peer printed, one JSON object per line. Other lines are its engine's log on stdout (PyFlink's JVM
    writes warnings there); they are left out, and a count they could hide would fail the check against the batch."""
    counts: Counts = {}
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        row = json.loads(line)
        counts[(int(row["window_start"]), _vendor(row["VendorID"]))] = int(row["rides"])
    return counts


def _timed(command: list[str], env: dict | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, env=env)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])}... failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return took, done.stdout


def run_quix(python: str, settings: StackSettings, data: Input) -> tuple[float, Counts]:
    app = str(PEER_APPS / "quix_window_counts.py")
    took, out = _timed([python, app, data.topic, settings.kafka.bootstrap_servers, str(data.rides)])
    return took, _printed_counts(out)


def run_flink(python: str, jar: Path, settings: StackSettings, data: Input) -> tuple[float, Counts]:
    app = str(PEER_APPS / "flink_window_counts.py")
    took, out = _timed([python, app, data.topic, settings.kafka.bootstrap_servers, str(jar)])
    return took, _printed_counts(out)


def run_ours(
    settings: StackSettings, data: Input, conf: dict[str, str] | None = None, on_server: bool = False
) -> tuple[float, Counts]:
    """Our vendor_counts job over the input to its end (Spark properties over conf/spark-defaults.conf in `conf`),
    with spark-submit or on the job server: its wall time from the command to its exit, and its counts."""
    bootstrap = settings.kafka.bootstrap_servers
    output = ride_topic(bootstrap, "bench_windows_out")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-windows-") as checkpoints:
            arguments = [
                *("--input-topics", data.topic, "--output-topic", output, "--window-kinds", "tumbling"),
                *("--trigger", "available-now", "--sinks", "kafka", "--checkpoint-root", checkpoints),
                *("--lag-group-prefix", "bench-windows-", "--min-partitions", str(MIN_PARTITIONS)),
                *("--input-format", "json"),  # as the peers are told
            ]
            if on_server:
                command = [sys.executable, "-m", "stack", "run", "vendor_counts", *arguments]
            else:
                command = submit_command(settings, str(REPO_ROOT / "jobs" / "vendor_counts.py"), arguments, conf=conf)
            took, _ = _timed(command, submit_environment(settings))
        counts: Counts = {}
        for message in sorted(read_all(bootstrap, output), key=lambda m: (m.partition(), m.offset())):
            row = json.loads(message.value())
            start = datetime.fromisoformat(row["window_start"].replace("Z", "+00:00"))
            counts[(int(start.timestamp() * 1000), _vendor(row["VendorID"]))] = int(row["rides"])
        return took, counts
    finally:
        delete_topic(bootstrap, output)


def checked(name: str, data: Input, counts: Counts) -> None:
    """The engine's counts equal the batch count, or the benchmark stops saying how they differ."""
    if counts != data.expected:
        wrong = {key for key in counts.keys() | data.expected.keys() if counts.get(key) != data.expected.get(key)}
        example = sorted(wrong)[:3]
        raise SystemExit(
            f"{name} counted {sum(counts.values()):,} rides in {len(counts):,} groups, the batch count "
            f"{data.rides:,} in {len(data.expected):,}: {len(wrong):,} groups differ, e.g. "
            + ", ".join(f"{key}: {counts.get(key)} vs {data.expected.get(key)}" for key in example)
        )


def checked_rate(name: str, data: Input, run: Callable[[], tuple[float, Counts]], seconds: list[float]) -> float:
    """Rides per second of one run whose counts are right; its wall time is kept in `seconds`."""
    took, counts = run()
    checked(name, data, counts)
    seconds.append(took)
    return data.rides / took
