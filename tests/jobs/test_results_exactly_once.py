"""The results database gets each micro-batch exactly once, whatever crashes: the driver SIGKILLed inside the
database transaction or right after its commit (before Spark's checkpoint), the database stopped mid-run, or
not there at all when the job starts."""

from __future__ import annotations

import contextlib
import os
import signal
from collections import Counter

import pytest

from jobs.crash_points import CRASH_POINT_VARIABLE
from results.writes import AFTER_COMMIT, BEFORE_COMMIT
from stack import lifecycle
from tests.jobs.batch_answers import expected_vendor_counts, is_valid_ride
from tests.jobs.cluster import read_until, run_job, run_job_unchecked, start_job
from tests.jobs.results_tables import table_rows, vendor_counts_table

pytestmark = pytest.mark.stack

# Two micro-batches over the green file's 95,120 rides: batch 0 committed for sure when batch 1 crashes.
SMALL_BATCHES = ("--max-offsets-per-trigger", "50000")


@pytest.mark.parametrize("point", [BEFORE_COMMIT, AFTER_COMMIT])
def test_a_driver_killed_around_the_database_commit_leaves_every_ride_once_after_the_restart(
    local_stack, green_topic, green_rides, tmp_path, results_schema, point
):
    args = ("--input-topics", green_topic, "--results-schema", results_schema, *SMALL_BATCHES)
    crash = {CRASH_POINT_VARIABLE: f"{point}:rides_all_merge:1"}
    code, out, err = run_job_unchecked(
        local_stack, "rides_all", tmp_path / "checkpoints", *args, sinks="postgres", env=crash
    )
    assert code == -signal.SIGKILL, (code, out[-2000:], err[-2000:])
    assert f"crash point {point} of rides_all_merge batch 1" in out + err
    committed = table_rows(
        local_stack, results_schema, "SELECT batch_id FROM committed_batches WHERE table_name = 'rides'"
    )
    # Inside the transaction: batch 1 never committed. After the commit: it did, and Spark does not know.
    assert sorted(row["batch_id"] for row in committed) == ([0] if point == BEFORE_COMMIT else [0, 1])

    log = run_job(local_stack, "rides_all", tmp_path / "checkpoints", *args, sinks="postgres")
    # Spark ran batch 1 again from its checkpoint; after the commit the database already had it.
    replayed = "rides_all_merge batch 1 was already in rides: not written again" in log
    assert replayed == (point == AFTER_COMMIT), log[-3000:]

    rides = Counter(row["ride_id"] for row in table_rows(local_stack, results_schema, "SELECT ride_id FROM rides"))
    assert set(rides) == {ride["ride_id"] for ride in green_rides if is_valid_ride(ride)}
    assert max(rides.values()) == 1
    batches = table_rows(
        local_stack, results_schema, "SELECT batch_id, rows FROM committed_batches WHERE table_name = 'rides'"
    )
    assert sorted(row["batch_id"] for row in batches) == [0, 1]  # each batch recorded once
    assert sum(row["rows"] for row in batches) == len(rides)  # and the replay of batch 1 inserted nothing


def test_results_database_stopped_mid_run_fails_the_job_naming_it_and_a_restart_converges(
    local_stack, green_topic, green_rides, tmp_path, results_schema
):
    # Five batches; a watermark far behind, so that no ride arrives too late in the file's disorder and the table
    # must end equal to the batch answer whatever the batches.
    args = (
        *("--input-topics", green_topic, "--results-schema", results_schema),
        *("--max-offsets-per-trigger", "20000", "--watermark", "6000 days"),
    )
    job = start_job(local_stack, "vendor_counts", tmp_path / "checkpoints", *args, sinks="postgres", env={})
    try:
        read_until(job, "[vendor_counts_tumbling] batch 1:")
        lifecycle.down(local_stack, say=lambda line: None, only=("postgres",))
        said = job.stdout.read()  # to the end: the job stops itself once a query failed
        assert job.wait(120) == 1, said[-3000:]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGKILL)
        lifecycle.up(local_stack, say=lambda line: None, only=("postgres",))
    assert "the results database pipeline@127.0.0.1:5432/pipeline failed while vendor_counts_" in said, said[-3000:]

    run_job(local_stack, "vendor_counts", tmp_path / "checkpoints", *args, sinks="postgres")
    table = vendor_counts_table(local_stack, results_schema)
    assert table == expected_vendor_counts(green_rides)


def test_a_job_whose_results_database_is_unreachable_is_refused_before_any_query_starts(
    local_stack, green_topic, tmp_path
):
    code, out, err = run_job_unchecked(
        local_stack,
        "vendor_counts",
        tmp_path / "checkpoints",
        "--input-topics",
        green_topic,
        "--results-database",
        "postgresql://pipeline@127.0.0.1:1/pipeline",
        sinks="kafka,postgres",
    )
    said = out + err
    assert code == 2, said[-3000:]
    assert "error: the results database pipeline@127.0.0.1:1/pipeline cannot be reached" in said, said[-3000:]
    assert "Traceback" not in said and "started (id" not in said
