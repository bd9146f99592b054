"""Streaming jobs on the cluster: throughput against a bare pass-through, and end-to-end latency, in one run.

  .venv/bin/python -m benchmarks.jobs_benchmark [--copies 3] [--repeat 3] [--rate 200] [--latency-seconds 40]

Throughput: the real green file is produced --copies times into one topic; one Spark application on the
standalone cluster runs, over that same topic, a Kafka-to-Kafka pass-through (the ceiling for this machine)
and each job as declared (jobs/catalog.py: all its queries, with conf/jobs.yaml's windows and settings) to the
end of the input (available-now), --repeat times, interleaved; each one's best run counts (runs of a few seconds on two shared cores vary by 10-30%), and the rows per second are
printed side by side with their ratio to the pass-through, with every run's time.

Latency: generated rides are produced as JSON at --rate per second into a topic stamped with the broker's append
time (the jobs decode with their default, --input-format auto, as they would in production), after one
second of warm-up rides that are not measured; a query (the pass-through, then the rides_all merge) writes them to a topic also stamped with append time, and
the latency of each ride is the difference of the two stamps: p50 and p99, with Spark's default trigger,
the default trigger with asynchronous progress tracking, and the real-time trigger. Topics the run creates are
deleted at its end. Needs the stack (make up).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import NewTopic
from psycopg import sql

from cluster.clients import admin_client
from cluster.topic_snapshot import read_all
from pipeline_config.credentials import pgpass_path
from pipeline_config.settings import load_settings
from producers import produce
from results.database import connect
from stack.submit import submit_command, submit_environment

# The benchmarks run from a checkout, beside the shared real data (read in place, never copied).
REPO_ROOT = Path(__file__).resolve().parent.parent
GREEN_FILE = REPO_ROOT.parent / "shared" / "data" / "green_tripdata_2020-10.csv.gz"
APPEND_TIME = {"message.timestamp.type": "LogAppendTime", "retention.ms": "-1"}


CREATED_TOPICS: list[str] = []  # deleted when the run ends


def _topic(admin, prefix: str, config: dict) -> str:
    name = f"bench_{prefix}_{uuid.uuid4().hex[:6]}"
    admin.create_topics([NewTopic(name, num_partitions=3, config=config)])[name].result(30)
    CREATED_TOPICS.append(name)
    time.sleep(1)
    return name


def _delete_created_topics(admin) -> None:
    if CREATED_TOPICS:
        for future in admin.delete_topics(CREATED_TOPICS).values():
            future.result(30)


def _app(settings, mode: str, *args: str, background: bool = False):
    command = submit_command(
        settings,
        str(REPO_ROOT / "benchmarks" / "jobs_app.py"),
        [
            mode,
            "--bootstrap",
            settings.kafka.bootstrap_servers,
            "--registry",
            settings.registry.url,
            "--checkpoints",
            tempfile.mkdtemp(prefix="bench-checkpoints-"),
            *args,
        ],
        conf={"spark.cores.max": "4"},
    )  # real-time mode holds a task slot per source partition for the whole batch
    if background:
        return subprocess.Popen(
            command, env=submit_environment(settings), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
    result = subprocess.run(command, env=submit_environment(settings), capture_output=True, text=True)
    if result.returncode != 0:
        # spark-submit hands the Python driver's stderr on as its own stdout: both, to see the error
        raise SystemExit(f"benchmark application failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
    return [json.loads(line[7:]) for line in result.stdout.splitlines() if line.startswith("RESULT ")]


def throughput(settings, admin, copies: int, input_format: str, repeat: int) -> list[dict]:
    """Each query's best run of `repeat` (runs interleaved), with all its run times."""
    source = _topic(admin, "in", {"retention.ms": "-1"})
    sink = _topic(admin, "out", {"retention.ms": "3600000"})
    for _ in range(copies):
        assert produce.main(["--source", str(GREEN_FILE), "--topic", source, "--quiet"]) == 0
    runs = _app(
        settings,
        "throughput",
        "--source",
        source,
        "--sink",
        sink,
        "--rows",
        str(95_120 * copies),
        "--input-format",
        input_format,
        "--rounds",
        str(repeat),
    )
    by_query: dict[str, list[float]] = {}
    for run in runs:
        by_query.setdefault(run["query"], []).append(run["seconds"])
    return [
        {"query": query, "rows": runs[0]["rows"], "seconds": min(times), "runs": times}
        for query, times in by_query.items()
    ]


def latency(settings, admin, query: str, trigger: str, rate: float, seconds: float) -> dict:
    source, sink = _topic(admin, "lat_in", APPEND_TIME), _topic(admin, "lat_out", APPEND_TIME)
    app = _app(
        settings,
        "latency",
        "--source",
        source,
        "--sink",
        sink,
        "--query",
        query,
        "--trigger",
        trigger,
        "--seconds",
        str(seconds + 50),
        "--input-format",
        "auto",
        background=True,
    )
    for line in app.stdout:
        if line.startswith("RESULT "):
            break
    # Not what a steady stream sees, so not measured: the query's first batches (plan compilation), then the
    # first rides through it (the sink's first metadata fetch, code paths run for the first time), which take
    # up to 0.4 s in real-time mode against 1-2 ms after. One second of warm-up rides goes first.
    time.sleep(10)
    assert (
        produce.main(
            [
                "--source",
                "generator",
                "--seed",
                "1",
                "--rate",
                str(rate),
                "--limit",
                str(int(rate)),
                "--format",
                "json",
                "--topic",
                source,
                "--quiet",
                "--linger-ms",
                "0",
            ]
        )
        == 0
    )
    time.sleep(5)
    warm_up = {m.key() for m in read_all(settings.kafka.bootstrap_servers, source)}
    assert (
        produce.main(
            [
                "--source",
                "generator",
                "--rate",
                str(rate),
                "--limit",
                str(int(rate * seconds)),
                "--format",
                "json",
                "--topic",
                source,
                "--quiet",
                "--linger-ms",
                "0",
            ]
        )
        == 0
    )
    time.sleep(8)
    app.terminate()
    app.wait(60)
    sent = {
        m.key(): m.timestamp()[1] for m in read_all(settings.kafka.bootstrap_servers, source) if m.key() not in warm_up
    }
    latencies = [
        m.timestamp()[1] - sent[m.key()] for m in read_all(settings.kafka.bootstrap_servers, sink) if m.key() in sent
    ]
    if len(latencies) < 2:
        return {"query": query, "trigger": trigger, "rides": len(latencies)}
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "query": query,
        "trigger": trigger,
        "rides": len(latencies),
        "of": len(sent),
        "p50_ms": cuts[49],
        "p99_ms": cuts[98],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=3, help="how many times the green file is produced")
    parser.add_argument("--rate", type=float, default=200, help="rides per second for the latency runs")
    parser.add_argument("--latency-seconds", type=float, default=40)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        choices=range(1, 11),
        metavar="1..10",
        help="throughput runs of each query; the best counts",
    )
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument(
        "--input-format",
        default="auto",
        choices=("auto", "avro"),
        help="how the jobs decode the (Avro) input in the throughput runs",
    )
    options = parser.parse_args(argv)
    settings = load_settings()
    admin = admin_client(settings.kafka.bootstrap_servers)
    try:
        admin.list_topics(timeout=10)
    except KafkaException:
        print(
            f"error: Kafka does not answer at {settings.kafka.bootstrap_servers}; the benchmark needs the stack "
            "(make up)",
            file=sys.stderr,
        )
        return 2
    try:
        report(settings, admin, options)
    finally:
        _delete_created_topics(admin)
        _drop_benchmark_schemas(settings)
    return 0


def _drop_benchmark_schemas(settings) -> None:
    """The results tables the runs that write PostgreSQL made, one schema per run (jobs_app.job_settings)."""
    os.environ.setdefault("PGPASSFILE", str(pgpass_path(settings)))
    with connect(settings.postgres.url, autocommit=True) as connection:
        schemas = connection.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench_run_%'").fetchall()
        for (schema,) in schemas:
            connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def report(settings, admin, options) -> None:
    if not options.skip_throughput:
        results = throughput(settings, admin, options.copies, options.input_format, options.repeat)
        ceiling = next(r for r in results if r["query"] == "pass-through")
        ceiling_rate = ceiling["rows"] / ceiling["seconds"]
        print(
            f"\nThroughput, {results[0]['rows']:,} rides ({options.copies} x the green file), available-now, "
            f"one application, input format {options.input_format}, best of {options.repeat} runs"
        )
        print(f"{'job':<50} {'seconds':>8} {'rows/s':>10} {'of pass-through':>16}   all runs (s)")
        for r in results:
            rate = r["rows"] / r["seconds"]
            runs = " ".join(f"{seconds:.1f}" for seconds in r["runs"])
            print(f"{r['query']:<50} {r['seconds']:>8.1f} {rate:>10,.0f} {rate / ceiling_rate:>15.2f}x   {runs}")

    if not options.skip_latency:
        print(
            f"\nEnd-to-end latency at {options.rate:g} rides/s for {options.latency_seconds:g} s "
            f"(broker append time in, broker append time out)"
        )
        print(f"{'query':<22} {'trigger':<15} {'rides':>12} {'p50 ms':>8} {'p99 ms':>8}")
        for query in ("pass-through", "rides_all (merge)"):
            for trigger in ("default", "async-progress", "realtime"):
                r = latency(settings, admin, query, trigger, options.rate, options.latency_seconds)
                if "p50_ms" in r:
                    print(
                        f"{query:<22} {trigger:<15} {r['rides']:>6}/{r['of']:<5} {r['p50_ms']:>8.0f} {r['p99_ms']:>8.0f}"
                    )
                else:
                    print(f"{query:<22} {trigger:<15} {r['rides']:>12} {'-':>8} {'-':>8}  (no output)")


if __name__ == "__main__":
    sys.exit(main())
