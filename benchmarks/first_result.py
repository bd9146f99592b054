"""How long a user waits for the first result (not part of make test; needs the stack: make up).

  .venv/bin/python -m benchmarks.first_result [--duration 60]

1. A job over the real green file already in a topic (vendor_counts, its default trigger, results to the
   terminal), started with spark-submit and then on the job server (python -m stack run): seconds from the command
   to the queries started and to each query's first micro-batch done, with that batch's own duration from Spark's
   progress.
2. `make stream` (python -m stack stream --duration N) on the running stack, its output timestamped, on the job
   server and without it (JOB_SERVER=0: spark-submit): seconds to the queries started, to the first windowed table
   on screen, and the rides the tables counted in the whole run.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.side_by_side import delete_topic, ride_topic
from pipeline_config.settings import load_settings
from stack.submit import submit_command, submit_environment

REPO_ROOT = Path(__file__).resolve().parent.parent
GREEN_FILE = REPO_ROOT.parent / "shared" / "data" / "green_tripdata_2020-10.csv.gz"
TABLE_TITLE = re.compile(r"^Rides per vendor, (\w+) windows .* \(batch \d+")
BATCH_DONE = re.compile(r"^\[(\w+)\] batch (\d+): (\d+) rows in ([\d.]+)s")


def timestamped_lines(command: list[str], env: dict | None, until, timeout_s: float) -> list[tuple[float, str]]:
    """(seconds since the start, line) of the command's output until `until(lines)` holds or it ends."""
    started = time.monotonic()
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    lines: list[tuple[float, str]] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append((time.monotonic() - started, line.rstrip("\n")))
            if until(lines) or time.monotonic() - started > timeout_s:
                break
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(120)
    return lines


def first(lines: list[tuple[float, str]], pattern: re.Pattern | str) -> float | None:
    for at, line in lines:
        if pattern.search(line) if isinstance(pattern, re.Pattern) else pattern in line:
            return at
    return None


def make_stream(duration: float, on_server: bool) -> None:
    env = {**os.environ, "JOB_SERVER": "1" if on_server else "0"}
    lines = timestamped_lines(
        [sys.executable, "-m", "stack", "stream", "--duration", str(duration)], env, lambda _: False, duration + 240
    )
    started, table = first(lines, "] started (id"), first(lines, TABLE_TITLE)
    tables = sum(1 for _, line in lines if TABLE_TITLE.search(line))
    rides_in = sum(int(m.group(3)) for _, line in lines if (m := BATCH_DONE.search(line)) and "tumbling" in line)
    where = "on the job server" if on_server else "spark-submit (JOB_SERVER=0)"
    print(f"\nmake stream --duration {duration:g}, on the running stack, {where}:")
    print(f"  queries started          {started:6.1f} s" if started else "  queries never started")
    print(f"  first windowed table     {table:6.1f} s" if table else "  no windowed table printed")
    print(f"  tables printed {tables}; rides read by the tumbling query in the run: {rides_in:,}")


def job_start(settings, on_server: bool) -> None:
    bootstrap = settings.kafka.bootstrap_servers
    topic = ride_topic(bootstrap, "bench_first")
    try:
        produce = ["-m", "producers.produce", "--source", str(GREEN_FILE), "--topic", topic, "--quiet"]
        subprocess.run([sys.executable, *produce], cwd=REPO_ROOT, check=True)
        queries = ("vendor_counts_sliding", "vendor_counts_tumbling")
        with tempfile.TemporaryDirectory(prefix="bench-first-") as checkpoints:
            arguments = ["--input-topics", topic, "--sinks", "terminal", "--checkpoint-root", checkpoints]
            arguments += ["--lag-group-prefix", "bench-first-"]
            if on_server:
                command = [sys.executable, "-m", "stack", "run", "vendor_counts", *arguments]
            else:
                command = submit_command(settings, str(REPO_ROOT / "jobs" / "vendor_counts.py"), arguments)

            def all_first_batches(lines) -> bool:
                return all(any(f"[{query}] batch 0:" in line for _, line in lines) for query in queries)

            lines = timestamped_lines(command, submit_environment(settings), all_first_batches, 600)
        how = "on the job server (python -m stack run)" if on_server else "with spark-submit"
        print(f"\nvendor_counts {how} over {topic} (the green file, 95,120 rides), default trigger:")
        print(f"  queries started          {first(lines, '] started (id') or float('nan'):6.1f} s")
        for query in queries:
            done = next(((at, m) for at, line in lines if (m := BATCH_DONE.search(line)) and m.group(1) == query), None)
            if done:
                at, match = done
                print(f"  {query} batch 0 done at {at:6.1f} s ({match.group(3)} rows in {match.group(4)} s)")
    finally:
        delete_topic(bootstrap, topic)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60)
    options = parser.parse_args(argv)
    settings = load_settings()
    for on_server in (False, True):
        job_start(settings, on_server)
    for on_server in (False, True):
        make_stream(options.duration, on_server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
