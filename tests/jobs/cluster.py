"""Running a job on the standalone cluster to the end of its input, and reading its output back."""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

from cluster.clients import registry_client
from cluster.job_server import BUSY_EXIT
from cluster.topic_snapshot import read_all
from pipeline_config.settings import StackSettings
from producers import produce
from rides.messages import MessageDecoder
from stack.run_on_server import free_for_a_job, server_status
from stack.submit import submit_command, submit_environment
from tests.paths import REPO_ROOT


def run_job_unchecked(
    settings: StackSettings,
    job: str,
    checkpoint_root,
    *args: str,
    timeout: float = 600,
    sinks: str = "kafka",
    env: dict | None = None,
) -> tuple[int, str, str]:
    """jobs/<job>.py with the available-now trigger: (exit code, stdout, stderr).

    The job runs on the stack's job server when one is up and free (`python -m stack run`, as `make stream` runs
    its jobs: a warm application, seconds instead of a JVM's start for each of the suite's jobs), and otherwise with
    spark-submit, as it does when the job needs an environment of its own (a driver of its own reads it). On the
    server the job's two streams come back as one, on stdout."""
    flags = ["--trigger", "available-now", "--sinks", sinks, "--checkpoint-root", str(checkpoint_root), *args]
    if env is None and settings.runs_job_server and free_for_a_job(server_status(settings)):
        command = [sys.executable, "-m", "stack", "run", job, *flags]
        result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
        if result.returncode != BUSY_EXIT:
            return result.returncode, result.stdout, result.stderr
    command = submit_command(settings, str(REPO_ROOT / "jobs" / f"{job}.py"), flags)
    result = subprocess.run(
        command, env={**submit_environment(settings), **(env or {})}, capture_output=True, text=True, timeout=timeout
    )
    return result.returncode, result.stdout, result.stderr


def run_job(
    settings: StackSettings, job: str, checkpoint_root, *args: str, timeout: float = 600, sinks: str = "kafka"
) -> str:
    """The job run to the end of its input, which must succeed; returns the driver's output."""
    code, out, err = run_job_unchecked(settings, job, checkpoint_root, *args, timeout=timeout, sinks=sinks)
    assert code == 0, f"{job} failed:\n{out[-3000:]}\n{err[-5000:]}"
    return out


def start_job(
    settings: StackSettings,
    job: str,
    checkpoint_root,
    *args: str,
    sinks: str = "kafka",
    env: dict | None = None,
    with_errors: bool = False,
) -> subprocess.Popen:
    """spark-submit jobs/<job>.py in the background, in a process group of its own (so that a test can kill
    the driver and its JVM together), its output readable line by line from .stdout (with its error output
    too when `with_errors`)."""
    command = submit_command(
        settings,
        str(REPO_ROOT / "jobs" / f"{job}.py"),
        ["--sinks", sinks, "--checkpoint-root", str(checkpoint_root), *args],
    )
    return subprocess.Popen(
        command,
        env={**submit_environment(settings), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if with_errors else subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def collect_output(job: subprocess.Popen) -> list[str]:
    """The job's output lines, filled as they come by a thread of their own (a pipe left unread would stop the
    driver once full)."""
    lines: list[str] = []
    output = job.stdout
    assert output is not None, "start_job pipes the job's output"
    threading.Thread(target=lambda: lines.extend(output), daemon=True).start()
    return lines


def read_until(job: subprocess.Popen, text: str) -> list[str]:
    """The job's output lines up to and including the first that contains `text`."""
    lines = []
    for line in job.stdout:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"the job ended (exit {job.wait()}) before printing {text!r}:\n{''.join(lines[-30:])}")


def read_decoded(settings: StackSettings, topic: str) -> list[tuple[str | None, object]]:
    """(key as text, decoded value) of every message of the topic in partition and offset order; values in
    any format, as a consumer reads them (Avro by its schema id through the registry, JSON)."""
    decode = MessageDecoder("auto", registry_client(settings.registry.url))
    messages = sorted(read_all(settings.kafka.bootstrap_servers, topic), key=lambda m: (m.partition(), m.offset()))
    return [(m.key().decode() if m.key() is not None else None, decode(m.value())) for m in messages]


def latest_per_key(settings: StackSettings, topic: str, minimum: int = 1) -> dict[Any, Any]:
    """The output as a downstream reader sees it: the last value of each key."""
    latest = dict(read_decoded(settings, topic))
    assert len(latest) >= minimum, f"only {len(latest)} keys in {topic}"
    return latest


def produce_generated(topic: str, seed: int, rides: int, *extra: str) -> None:
    """The generator's rides in time order (no late or out-of-order share), produced to the topic."""
    arguments = ["--source", "generator", "--limit", str(rides), "--seed", str(seed), "--topic", topic, "--quiet"]
    assert produce.main([*arguments, "--late-share", "0", "--out-of-order-share", "0", *extra]) == 0
