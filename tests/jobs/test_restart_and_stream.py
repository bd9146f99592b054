"""A job killed mid-stream resumes from its checkpoint to the same final output; `make stream` shows results."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest

from producers import produce
from rides.tlc import read_rides
from tests.conftest import GREEN_FILE
from tests.jobs.batch_answers import is_valid_ride
from tests.jobs.cluster import latest_per_key, read_until, run_job, start_job
from tests.jobs.results_tables import table_rows
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.stack


def test_a_job_killed_mid_stream_resumes_to_the_same_final_output(local_stack, topic_factory, tmp_path):
    source = topic_factory(prefix="restart_in")
    assert produce.main(["--source", str(GREEN_FILE), "--topic", source, "--limit", "40000", "--quiet"]) == 0
    uninterrupted, resumed = topic_factory(prefix="restart_a"), topic_factory(prefix="restart_b")
    # Several micro-batches of 10,000 records, so that late rows are dropped by the same batch boundaries.
    common = ["--input-topics", source, "--max-offsets-per-trigger", "10000"]
    run_job(local_stack, "vendor_counts", tmp_path / "a", *common, "--output-topic", uninterrupted)

    job = start_job(
        local_stack, "vendor_counts", tmp_path / "b", *common, "--output-topic", resumed, "--trigger", "1 second"
    )
    try:  # kill it for real (SIGKILL, driver and JVM) once it is past its first batch
        read_until(job, "[vendor_counts_sliding] batch 1:")
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(30)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    for proc in psutil.process_iter(["cmdline"]):  # the Python driver is in the same process group: gone too
        assert str(tmp_path / "b") not in " ".join(proc.info["cmdline"] or [])

    log = run_job(local_stack, "vendor_counts", tmp_path / "b", *common, "--output-topic", resumed)
    assert "[vendor_counts_sliding] batch 0:" not in log  # it resumed from the checkpoint, not from scratch
    assert latest_per_key(local_stack, resumed) == latest_per_key(local_stack, uninterrupted)


@pytest.mark.parametrize("job_server", ["1", "0"], ids=["on-the-job-server", "spark-submit"])
def test_make_stream_shows_ride_counts_per_window_and_stops_by_itself(local_stack, job_server):
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "stack", "stream", "--duration", "60"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "JOB_SERVER": job_server},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    where = "on the job server" if job_server == "1" else f"on {local_stack.spark.master_url}"
    assert f"Starting the jobs (vendor_counts) {where} ..." in out
    assert "Rides per vendor, " in out and "window_start" in out
    # the replayed rides are good ones: only those the jobs' validation refuses may end up as dead letters
    # (a job that did not know the producer's schema id would send them all there)
    dead = [int(m) for m in re.findall(r"\[vendor_counts_dead_letters\] batch \d+: .* (\d+) out", out)]
    refused = sum(1 for ride in read_rides(GREEN_FILE) if not is_valid_ride(ride))
    assert sum(dead) <= refused, out[-2000:]
    # The producer starts with the jobs, and the jobs read from the topic's end at the command. The first batch that
    # has rides shows its table. With spark-submit that is the first micro-batch: the rides sent while Spark started
    # are in it. On the job server the queries may start before the first ride and idle meanwhile.
    batches = re.findall(r"\[vendor_counts_tumbling\] batch (\d+): (\d+) rows in", out)
    counted = [int(batch) for batch, rows in batches if int(rows) > 0]
    assert counted, out[-3000:]
    assert f"(batch {counted[0]}, latest" in out
    if job_server == "0":
        assert counted[0] == 0, batches
    assert "60 s are up: stopping." in out and "producer stopped." in out and "jobs stopped." in out
    assert time.monotonic() - began < 200

    # It filled the results tables while it ran, and a pull query (make query NAME=vendor_share) answers.
    written = table_rows(
        local_stack,
        "results",
        "SELECT table_name, sum(rows) AS rows FROM committed_batches "
        "WHERE committed_at > now() - interval '5 minutes' GROUP BY table_name",
    )
    assert {row["table_name"] for row in written if row["rows"] > 0} == {"vendor_counts"}  # make stream's one job
    answer = subprocess.run(
        [sys.executable, "-m", "results", "run", "vendor_share", "--param", "limit=5"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.splitlines()[0].split() == ["window_start", "vendor_id", "rides", "share_pct"]
    assert answer.stdout.rstrip().endswith("(5 rows)"), answer.stdout


def test_make_stream_stops_when_its_producer_fails_and_exits_with_its_status(local_stack, tmp_path):
    missing = tmp_path / "green_tripdata_2020-10.csv.gz"
    result = subprocess.run(
        [sys.executable, "-m", "stack", "stream", "--duration", "120", "--source", str(missing)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    said = result.stdout + result.stderr
    assert result.returncode == 2, said[-3000:]
    assert f"no such file: {missing}" in said and "the producer failed (exit 2" in said
    assert "jobs stopped." in said and "120 s are up" not in said
