"""The job server (jobs/job_server.py, which `make up` starts): jobs run on its warm application through
`python -m stack run` give the same answers as the batch computation, one after another in one application; a
client that stops stops its job and frees the server; a second job meanwhile, an unknown job and bad flags are
refused with the reason; a changed job package restarts the server with the new code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from cluster import job_server as protocol
from cluster.spark_master import master_state
from tests.jobs.batch_answers import expected_vendor_counts, vendor_count_mismatches
from tests.jobs.cluster import latest_per_key, read_until
from tests.jobs.results_tables import vendor_counts_table
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.stack


def stack_run(*arguments: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m stack run ...` as a user types it: (exit status, output)."""
    return subprocess.run(
        [sys.executable, "-m", "stack", "run", *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_on_server(*arguments: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "stack", "run", *arguments],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def server_status(settings) -> dict:
    return protocol.status(settings.job_server.address)


def idle_server(settings, timeout_s: float = 180) -> dict:
    """The server's status once it runs nothing (its warm-up after a start included)."""
    deadline = time.monotonic() + timeout_s
    status = server_status(settings)
    while status["job"] is not None and time.monotonic() < deadline:
        time.sleep(1)
        status = server_status(settings)
    assert status["job"] is None, status
    return status


def applications(settings) -> tuple[int, list[str]]:
    """(applications the master has seen end, names of those running)."""
    state = master_state(settings)
    return len(state.get("completedapps", [])), sorted(app["name"] for app in state.get("activeapps", []))


def pools_of_queries(ui: str, app_id: str) -> dict[str, set[str]]:
    """The fair scheduler's pools each streaming query's stages ran in, from the application's REST API (a query's
    stages are described by its name on their first line)."""
    response = requests.get(f"{ui}/api/v1/applications/{app_id}/stages", timeout=30)
    response.raise_for_status()
    stages = response.json()
    pools: dict[str, set[str]] = {}
    for stage in stages:
        query = (stage.get("description") or "").split("\n")[0]
        if query.startswith("vendor_counts_"):
            pools.setdefault(query, set()).add(stage["schedulingPool"])
    return pools


def test_jobs_on_the_job_server_equal_the_batch_computation_in_one_application(
    local_stack, green_topic, green_rides, topic_factory, tmp_path, results_schema
):
    before = idle_server(local_stack)
    apps_before = applications(local_stack)
    expected = expected_vendor_counts(green_rides)
    for run, sinks in (("first", "kafka,postgres"), ("second", "kafka")):
        output = topic_factory(prefix=f"out_server_{run}")
        done = stack_run(
            "vendor_counts",
            *("--input-topics", green_topic, "--output-topic", output, "--trigger", "available-now"),
            *("--sinks", sinks, "--results-schema", results_schema, "--checkpoint-root", str(tmp_path / run)),
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        # Its progress lines and its terminal come back to the client, not into the server's log.
        assert "[vendor_counts_tumbling] batch 0: 95120 rows in" in done.stdout, done.stdout[-3000:]
        streamed = latest_per_key(local_stack, output)
        assert set(streamed) == set(expected)
        assert not vendor_count_mismatches(streamed, expected)
    assert vendor_counts_table(local_stack, results_schema) == expected  # the first run's, in the database
    # Both ran in the server's application: no application of their own started or ended on the cluster.
    assert server_status(local_stack)["app_id"] == before["app_id"]
    assert applications(local_stack) == apps_before
    # The dead-letter query's tasks wait in a pool of their own while the result queries' run (conf/fair-scheduler.xml).
    pools = pools_of_queries(before["ui"], before["app_id"])
    assert pools["vendor_counts_dead_letters"] == {"dead_letters"}, pools
    assert pools["vendor_counts_tumbling"] == pools["vendor_counts_sliding"] == {"default"}, pools


def test_a_client_that_stops_stops_its_job_and_others_are_refused_meanwhile(
    local_stack, green_topic, topic_factory, tmp_path
):
    idle_server(local_stack)
    output = topic_factory(prefix="out_server_stop")
    job = start_on_server(
        "vendor_counts",
        *("--input-topics", green_topic, "--output-topic", output, "--window-kinds", "tumbling"),
        *("--sinks", "kafka", "--checkpoint-root", str(tmp_path / "stopped")),
    )
    try:
        read_until(job, "[vendor_counts_tumbling] batch 0:")
        assert server_status(local_stack)["job"] == "vendor_counts"

        busy = stack_run("zone_popularity", "--trigger", "available-now", timeout=60)
        assert busy.returncode == protocol.BUSY_EXIT
        assert "running vendor_counts; one job runs at a time" in busy.stdout

        job.send_signal(signal.SIGINT)
        assert job.wait(90) == 0
    finally:
        if job.poll() is None:
            job.kill()
    # Stopped between micro-batches, and nothing of it is left on the server.
    assert server_status(local_stack)["job"] is None
    assert "Traceback" not in job.stdout.read()

    unknown = stack_run("no_such_job", timeout=60)
    assert unknown.returncode == 2 and "no job named 'no_such_job'" in unknown.stdout
    refused = stack_run("vendor_counts", "--window-kinds", "hourly", timeout=120)
    assert refused.returncode == 2
    assert "window_kinds" in refused.stdout + refused.stderr, refused.stdout[-2000:]


def test_a_changed_job_package_restarts_the_server_with_the_new_code(local_stack):
    before = idle_server(local_stack)
    shipped = REPO_ROOT / "jobs" / "warm_up.py"
    os.utime(shipped)  # a change of a shipped file, as an edit makes
    done = stack_run("vendor_counts", "--help", timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "The job package changed since the job server started: restarting it" in done.stdout
    assert "--window-kinds" in done.stdout  # the job's help, printed on the restarted server
    after = server_status(local_stack)
    assert after["app_id"] != before["app_id"] and after["package"] != before["package"]
