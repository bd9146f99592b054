"""The alert rules fire on real trouble, made to happen: a job's driver killed while rides keep arriving (its lag
grows: JobLagGrowing; it stops reporting: StreamingQuerySilent) and a query that fails at run time
(StreamingQueryFailed); the results database stopped (ResultsDatabaseDown, through its exporter). Seen through a Prometheus API on the stack's targets and rules, with the rules' durations
scaled down (tests/quick_prometheus.py); the dead-letter alert fires on the stack's own Prometheus
(test_prometheus.py), and a broker down fires ServiceDown and UnderReplicatedPartitions on the three-broker
cluster (tests/reliability/test_broker_failover.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest

from cluster.clients import admin_client
from cluster.groups import group_lags
from stack import lifecycle
from tests.jobs.cluster import collect_output, produce_generated, run_job_unchecked, start_job
from tests.paths import REPO_ROOT
from tests.quick_prometheus import firing, query, quick_prometheus
from tests.waiting import wait_for

pytestmark = pytest.mark.stack


def _statement(folder, name: str, select: str):
    path = folder / f"{name}.sql"
    path.write_text(f"CREATE STREAM {name} WITH (KEY = 'ride_id') AS {select} FROM rides;\n")
    return path


def test_a_killed_job_and_a_failed_query_fire_their_alerts(local_stack, topic_factory, tmp_path):
    rides = topic_factory(prefix="alerting_rides", partitions=1)
    produce_generated(rides, 51, 50)
    tag = uuid.uuid4().hex[:8]
    copying, casting = f"alerting_copy_{tag}", f"alerting_cast_{tag}"
    stream = ("--stream", f"rides={rides}")

    with quick_prometheus(local_stack, tmp_path) as prometheus:
        job = start_job(
            local_stack,
            "stream_sql",
            tmp_path / "copy",
            str(_statement(tmp_path, copying, "SELECT ride_id, pickup_datetime")),
            *stream,
            *("--trigger", "2 seconds"),
            sinks="terminal",
        )
        lines = collect_output(job)
        try:
            wait_for(lambda: any(f"[{copying}] batch 0:" in line for line in lines), "the job's first batch", 180)
            # its consumer group holds the offsets of that batch (committed after the line above is printed): the
            # lag the alert watches is measured from them
            admin = admin_client(local_stack.kafka.bootstrap_servers)
            wait_for(
                lambda: any(
                    lag.group == f"spark-job-{copying}"
                    for lag in group_lags(admin, local_stack.kafka.bootstrap_servers, in_time=False)
                ),
                "the job's committed offsets",
                60,
            )
            # and the console has seen it run (its progress events are sent asynchronously: one still in the
            # driver's buffer dies with it, and a query never seen running cannot be seen to fall silent)
            wait_for(
                lambda: query(prometheus, f'pipeline_streaming_query_up{{query="{copying}"}} == 1'),
                "the console to see the job's query run",
                60,
            )
        finally:
            os.killpg(job.pid, signal.SIGKILL)  # the driver and its JVM, as a crash or the OOM killer would
            job.wait(30)
        arriving = subprocess.Popen(  # rides keep coming for the job that is gone
            [sys.executable, "-m", "producers.produce", "--source", "generator", "--seed", "52", "--rate", "20",
             "--limit", "2400", "--topic", rides, "--quiet"],
            cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            # A user's query that fails on the first ride: 'green' is no number (Spark's ANSI casts).
            code, out, err = run_job_unchecked(
                local_stack,
                "stream_sql",
                tmp_path / "cast",
                str(_statement(tmp_path, casting, "SELECT ride_id, CAST(ride_type AS INT) AS ride_type_number")),
                *stream,
                sinks="terminal",
            )
            assert code == 1 and "CAST_INVALID_INPUT" in out + err, (out + err)[-3000:]
            failed = wait_for(lambda: firing(prometheus, "StreamingQueryFailed", query=casting), "Failed", 60)
            lagging = wait_for(
                lambda: firing(prometheus, "JobLagGrowing", group=f"spark-job-{copying}"), "JobLagGrowing", 90
            )
            silent = wait_for(lambda: firing(prometheus, "StreamingQuerySilent", query=copying), "Silent", 120)
        finally:
            arriving.terminate()
            arriving.wait(60)

    assert failed[0]["labels"]["severity"] == "critical" and casting in failed[0]["annotations"]["summary"]
    assert float(lagging[0]["value"]) > 0 and copying in lagging[0]["annotations"]["summary"]
    assert silent[0]["labels"]["application"] == f"sql_{copying}"


def test_the_results_database_stopped_fires_its_alert_until_it_is_back(local_stack, tmp_path):
    with quick_prometheus(local_stack, tmp_path) as prometheus:
        wait_for(lambda: query(prometheus, 'pg_up{job="postgres"} == 1'), "the exporter to reach the database", 60)
        lifecycle.down(local_stack, say=lambda line: None, only=("postgres",))
        try:
            down = wait_for(lambda: firing(prometheus, "ResultsDatabaseDown"), "ResultsDatabaseDown", 60)
        finally:
            lifecycle.up(local_stack, say=lambda line: None, only=("postgres",))
        assert down[0]["labels"]["job"] == "postgres" and not firing(prometheus, "ServiceDown", job="postgres")
        wait_for(lambda: not firing(prometheus, "ResultsDatabaseDown"), "the alert to clear", 60)
