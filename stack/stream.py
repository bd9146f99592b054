"""`make stream`: the pipeline at work. Starts the streaming jobs on the cluster, then a producer (the real
green file replayed at a chosen speed when it is there, otherwise the generator), shows the jobs' windowed
results as they arrive, and stops everything cleanly on Ctrl-C or after --duration seconds.

Each run starts from the end of the ride topic with checkpoints of its own, so what you see is this run's rides.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from cluster.topic_snapshot import end_offsets
from pipeline_config.client_defaults import load_client_defaults
from pipeline_config.settings import StackSettings
from stack.run_on_server import free_for_a_job, server_status
from stack.service import CHECKOUT_DIR, StackError
from stack.submit import job_application, submit_command, submit_environment

GREEN_CANDIDATES = (
    CHECKOUT_DIR.parent / "shared" / "data" / "green_tripdata_2020-10.csv.gz",
    CHECKOUT_DIR / "data" / "green_tripdata_2020-10.csv.gz",
)
JOBS_READY_TIMEOUT_S = 180
PRODUCER_EXIT_MARGIN_S = 15


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stack stream", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, help="stop by itself after this many seconds")
    parser.add_argument(
        "--speed",
        type=float,
        default=600.0,
        help="replay speed of the real file, times real time (default 600: an hour of rides in 6 s, so that the "
        "10-minute windows fill within seconds)",
    )
    parser.add_argument(
        "--replay-from",
        default="07:00",
        help="the replay starts at this time of the file's first day, when rides pick up (default 07:00); the "
        "rides before it are sent at once",
    )
    parser.add_argument("--rate", type=float, default=200.0, help="generator rides per second (without a file)")
    parser.add_argument("--source", type=Path, help="a TLC file to replay (default: the green October 2020 file)")
    parser.add_argument(
        "--jobs",
        default="vendor_counts",
        help="jobs to run in one application, comma-separated (e.g. vendor_counts,zone_popularity)",
    )
    parser.add_argument("--topic", default="rides_green")
    return parser


def _source(options) -> list[str]:
    path = options.source or next((p for p in GREEN_CANDIDATES if p.exists()), None)
    if path is not None:
        print(
            f"Replaying {path} at {options.speed:g}x real time from {options.replay_from} into {options.topic}.",
            flush=True,
        )
        return ["--source", str(path), "--replay-speed", str(options.speed), "--replay-from", options.replay_from]
    print(f"No TLC file found (make data fetches one): generating {options.rate:g} rides/s into {options.topic}.")
    return ["--source", "generator", "--rate", str(options.rate)]


def _relay(stream, ready: threading.Event, marker: str) -> None:
    """Copy the driver's output to the terminal, leaving out the JVM's warnings; note when the jobs run."""
    for line in stream:
        if marker in line:
            ready.set()
        if " WARN " in line or " INFO " in line or line.startswith(("\tat ", "WARNING:", "Using Spark's")):
            continue
        sys.stdout.write(line)
        sys.stdout.flush()


def starting_offsets(settings: StackSettings, topic: str) -> str:
    """The topic's end now, as the jobs' starting offsets: the jobs read every ride produced from this moment,
    those sent while they are still starting included, and none from before."""
    ends = end_offsets(settings.kafka.bootstrap_servers, topic)
    if not ends:
        raise StackError(
            f"no topic {topic} on {settings.kafka.bootstrap_servers}: `make topics` creates the pipeline's"
        )
    return json.dumps({topic: {str(partition): offset for partition, offset in sorted(ends.items())}})


def jobs_command(settings: StackSettings, arguments: list[str]) -> tuple[list[str], str]:
    """The command that runs the pipeline's jobs, and where: on the job server when it is up and free (a warm
    application: no JVM to start), else spark-submit of an application of their own."""
    status = server_status(settings) if settings.runs_job_server else None
    if free_for_a_job(status):
        # `python -m stack run` checks the server's code itself (and restarts it when the code changed).
        return [sys.executable, "-m", "stack", "run", "pipeline", *arguments], "on the job server"
    busy = f" (the job server runs {status['job']})" if status else ""
    command = submit_command(settings, job_application("pipeline"), arguments)
    return command, f"on {settings.spark.master_url}{busy}"


def run(settings: StackSettings, argv: list[str] | None = None) -> int:
    options = parser().parse_args(argv)
    checkpoints = settings.state_dir / "checkpoints" / f"stream-{time.strftime('%Y%m%d-%H%M%S')}"
    job_arguments = [
        *("--jobs", options.jobs, "--input-topics", options.topic),
        *("--starting-offsets", starting_offsets(settings, options.topic)),
        *("--checkpoint-root", str(checkpoints), "--trigger", "5 seconds"),
    ]
    job_command, where = jobs_command(settings, job_arguments)
    print(f"Starting the jobs ({options.jobs}) {where} ...", flush=True)
    jobs = subprocess.Popen(
        job_command,
        env=submit_environment(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    ready = threading.Event()
    relay = threading.Thread(target=_relay, args=(jobs.stdout, ready, "] started (id"), daemon=True)
    relay.start()
    producer = None
    interrupted = []
    previous = {sig: signal.signal(sig, lambda *_: interrupted.append(True)) for sig in (signal.SIGINT, signal.SIGTERM)}
    began = time.monotonic()
    try:
        # The producer starts at once: the jobs start from the offsets above, so the rides it sends while Spark
        # starts are in their first micro-batch rather than lost or waited for.
        producer = subprocess.Popen(
            [sys.executable, "-m", "producers.produce", *_source(options), "--topic", options.topic],
            start_new_session=True,
        )
        while not ready.wait(1):
            if jobs.poll() is not None:
                raise StackError("the jobs exited before they started; their output is above")
            if producer.poll() not in (None, 0):
                break  # said and handled below
            if interrupted or time.monotonic() - began > JOBS_READY_TIMEOUT_S:
                raise StackError("the jobs did not start in time" if not interrupted else "interrupted")
        if producer.poll() in (None, 0):
            print("Results appear below as windows fill up. Ctrl-C stops everything.", flush=True)
        deadline = began + options.duration if options.duration else None
        while not interrupted and jobs.poll() is None:
            if deadline and time.monotonic() > deadline:
                print(f"\n{options.duration:g} s are up: stopping.", flush=True)
                break
            if producer.poll() not in (None, 0):
                print(
                    f"\nthe producer failed (exit {producer.returncode}; its message is above): stopping.", flush=True
                )
                break
            time.sleep(0.5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        # The producer flushes what it has queued when interrupted: it gets its whole flush timeout, and more.
        producer_code = _stop(producer, "producer", signal.SIGINT, producer_grace_s())
        jobs_code = _stop(jobs, "jobs", signal.SIGTERM, 60)
        relay.join(timeout=5)
    return exit_status(jobs_code, producer_code)


def producer_grace_s() -> float:
    """How long the producer may take to stop: its flush timeout (conf/clients.yaml) and a margin to exit."""
    return load_client_defaults().producer.flush_timeout_s + PRODUCER_EXIT_MARGIN_S


def exit_status(jobs_code: int | None, producer_code: int | None) -> int:
    """0 when both ended well (the jobs stopped by our SIGTERM count as well); else the first failure's status.
    A process that had to be killed counts as a failure (1)."""
    for code, stopped_by_us in ((jobs_code, (-signal.SIGTERM, 143)), (producer_code, (-signal.SIGINT, 130))):
        if code is None or code == 0 or code in stopped_by_us:
            continue
        return code if code > 0 else 1
    return 0


def _python_driver(process: subprocess.Popen) -> int:
    """spark-submit runs a JVM that runs the Python driver: the driver is the one to ask to stop, so that it
    stops its queries before the JVM's shutdown hooks tear the SparkContext down under them."""
    try:
        for child in psutil.Process(process.pid).children(recursive=True):
            if "pipeline.py" in " ".join(child.cmdline()) and "python" in child.name():
                return child.pid
    except psutil.Error:
        pass
    return process.pid


def _stop(process: subprocess.Popen | None, name: str, sig: int, grace_s: float) -> int | None:
    """Ask the process to stop, wait up to grace_s, then kill it; its exit status (None: never started)."""
    if process is None:
        return None
    if process.poll() is not None:
        return process.returncode
    os.kill(_python_driver(process), sig)
    try:
        process.wait(grace_s)
        print(f"{name} stopped.", flush=True)
        return process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        print(f"{name} did not stop in {grace_s:g}s and was killed.", flush=True)
        return -signal.SIGKILL
