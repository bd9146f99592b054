"""The schema registry down: producers and jobs that need it fail at start with a message naming it, and
nothing is sent half-way; a producer that registered its schema before the registry died goes on with the
schema id it has, and every ride it sent is in the topic; a consumer meeting an unknown schema id stops before
that message instead of dead-lettering a good ride, and resumes there once the registry is back."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from cluster.topic_snapshot import read_all
from stack import lifecycle
from tests.jobs.cluster import run_job_unchecked
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.stack


@pytest.fixture()
def registry(local_stack):
    """The stack's registry service; whatever a test does to it, it runs again afterwards."""
    service = lifecycle.select_services(local_stack, ("schema-registry",))[0]
    yield service
    lifecycle.up(local_stack, say=lambda line: None, only=("schema-registry",))


def _kill(service) -> None:
    proc = service.pid_file.alive()
    assert proc is not None, "the registry is not running"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


def _produce(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "producers.produce", "--source", "generator", "--format", "avro", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def test_with_the_registry_down_a_producer_stops_at_start_naming_it_and_sends_nothing(
    local_stack, registry, fresh_topic
):
    _kill(registry)
    producer = _produce("--limit", "100", "--topic", fresh_topic, "--quiet")
    out, _ = producer.communicate(timeout=120)
    assert producer.returncode == 2, out
    assert "cannot reach the schema registry" in out and local_stack.registry.url in out and "Traceback" not in out
    assert read_all(local_stack.kafka.bootstrap_servers, fresh_topic) == []


def test_a_producer_keeps_its_schema_id_when_the_registry_dies_and_loses_nothing(local_stack, registry, fresh_topic):
    producer = _produce("--limit", "3000", "--rate", "500", "--topic", fresh_topic)
    try:
        for line in producer.stdout:  # progress lines start once the schema is registered and sending began
            if "delivered" in line or "sent" in line:
                break
        _kill(registry)
        out = producer.communicate(timeout=120)[0]
    finally:
        if producer.poll() is None:
            producer.kill()
    assert producer.returncode == 0, out
    messages = read_all(local_stack.kafka.bootstrap_servers, fresh_topic)
    assert len(messages) == 3000 and len({m.key() for m in messages}) == 3000

    # a consumer that has never seen the schema id stops at the first message, commits nothing, says why
    group = f"registry-down-{fresh_topic}"
    consume = [
        sys.executable,
        "-m",
        "producers.consume",
        fresh_topic,
        "--group",
        group,
        "--output",
        "jsonl",
        "--idle-timeout",
        "5",
    ]
    stopped = subprocess.run(consume, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert stopped.returncode == 2 and "cannot reach the schema registry" in stopped.stderr, stopped.stderr
    assert "stopped there" in stopped.stderr and stopped.stdout == ""
    dead_letters = read_all(local_stack.kafka.bootstrap_servers, "rides_dead_letter")
    assert not [m for m in dead_letters if m.key() and m.key().decode().startswith(f"{fresh_topic}/")]

    lifecycle.up(local_stack, say=lambda line: None, only=("schema-registry",))
    resumed = subprocess.run(consume, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert len(resumed.stdout.splitlines()) == 3000  # every ride, none dead-lettered


def test_a_job_started_with_the_registry_down_says_so_and_exits(local_stack, registry, tmp_path):
    _kill(registry)
    began = time.monotonic()
    code, out, err = run_job_unchecked(local_stack, "rides_all", tmp_path / "checkpoints")
    said = out + err  # spark-submit hands the Python driver's stderr on as its own stdout
    assert code == 2, said[-3000:]
    assert f"cannot reach the schema registry at {local_stack.registry.url}" in said
    assert "Traceback" not in said
    assert time.monotonic() - began < 120
