"""A Spark worker lost mid-job: with two workers, one is killed (worker and executor JVMs, SIGKILL) while a
windowed job runs; the job goes on on the other worker and its final output equals that of a run that lost
nothing (same micro-batches, so the same late rows are dropped at the same batch boundaries)."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from pipeline_config.settings import load_settings
from producers import produce
from stack import lifecycle
from stack.processes import stop
from tests.conftest import GREEN_FILE
from tests.jobs.cluster import latest_per_key, read_until, run_job, start_job

pytestmark = pytest.mark.stack


@pytest.fixture()
def second_worker(local_stack):
    """spark-worker-2 of the same stack (as `WORKERS=2 make up` starts it); whatever is left of it is stopped."""
    two_workers = load_settings(env={**os.environ, "WORKERS": "2"})
    worker = lifecycle.select_services(two_workers, ("spark-worker-2",))[0]
    lifecycle.up(two_workers, say=lambda line: None, only=("spark-worker-2",))
    yield worker
    stop(worker.pid_file)


def _kill_tree(pid: int) -> list[int]:
    root = psutil.Process(pid)
    victims = [root, *root.children(recursive=True)]
    for proc in victims:
        proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(victims, timeout=30)
    return [proc.pid for proc in victims]


def test_a_job_survives_the_loss_of_a_worker_and_its_output_is_complete(local_stack, topic_factory, tmp_path, request):
    source, output = topic_factory(prefix="worker_loss_in"), topic_factory(prefix="worker_loss_out")
    reference = topic_factory(prefix="worker_loss_ref")
    # 60,000 rides in four micro-batches: the worker dies after the second, and two are left for the survivor
    assert produce.main(["--source", str(GREEN_FILE), "--topic", source, "--limit", "60000", "--quiet"]) == 0
    common = ["--input-topics", source, "--max-offsets-per-trigger", "15000"]
    run_job(local_stack, "vendor_counts", tmp_path / "reference", *common, "--output-topic", reference)

    second_worker = request.getfixturevalue("second_worker")  # started now: the job spreads over both workers
    job = start_job(
        local_stack,
        "vendor_counts",
        tmp_path / "checkpoints",
        *common,
        "--output-topic",
        output,
        "--trigger",
        "available-now",
    )
    try:
        read_until(job, "[vendor_counts_sliding] batch 1:")
        worker_proc = second_worker.pid_file.alive()
        assert worker_proc is not None and worker_proc.children(recursive=True), (
            "the second worker runs no executor of the job: the test would prove nothing"
        )
        killed = _kill_tree(worker_proc.pid)
        assert len(killed) >= 2  # the worker and at least one executor JVM

        rest = job.stdout.read()
        assert job.wait(600) == 0, rest[-3000:]
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)

    assert latest_per_key(local_stack, output) == latest_per_key(local_stack, reference)
