"""The Spark side of benchmarks/jobs_throughput.py and benchmarks/jobs_latency.py: one application on the
cluster that runs each job's main query over the same input topic and prints what it measured.

  throughput: for a bare Kafka-to-Kafka pass-through and for each job (the job's own queries, from its
              declaration, with conf/jobs.yaml's windows and settings), an available-now run over the whole input,
              timed from start to end; prints `RESULT {"query": ..., "rows": ..., "seconds": ...}`.
  latency:    one query (pass-through or the rides_all merge) with the default or the real-time trigger,
              running until stopped, from the end of the input topic.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from pyspark.sql import SparkSession

from jobs.avro_output import registered_value_schema
from jobs.catalog import JOBS
from jobs.decode import good_rides
from jobs.io import (
    kafka_sink_options,
    read_kafka,
    read_rides,
)
from jobs.job import Job
from jobs.preflight import check_results_database
from jobs.rides_all import to_ride_records
from jobs.settings import JobSettings
from pipeline_config.settings import CONF_DIR, read_yaml


def _settings(bootstrap: str, registry: str, checkpoint_root: str, name: str, input_format: str) -> JobSettings:
    # The jobs' own Kafka producer settings (conf/jobs.yaml), for the pass-through and the jobs' queries alike.
    producer = (read_yaml(CONF_DIR / "jobs.yaml").get("defaults") or {}).get("kafka_producer") or {}
    return JobSettings(
        name=name,
        checkpoint_root=checkpoint_root,
        trigger="available-now",
        input_format=input_format,
        dead_letter_topic="unused",
        bootstrap_servers=bootstrap,
        registry_url=registry,
        kafka_producer=producer,
    )


def _to_kafka(
    df, settings: JobSettings, topic: str, query: str, output_mode: str, trigger: dict, options: dict | None = None
):
    return (
        df.writeStream.queryName(query)
        .outputMode(output_mode)
        .format("kafka")
        .options(**kafka_sink_options(settings, trigger))
        .option("topic", topic)
        .option("checkpointLocation", settings.checkpoint(query))
        .options(**(options or {}))
        .trigger(**trigger)
        .start()
    )


# How each latency run triggers its query: (trigger, writer options, output mode or None for the query's own).
LATENCY_TRIGGERS = {
    # Spark's default: the next micro-batch starts as soon as the previous one ends
    "default": ({"processingTime": "0 seconds"}, {}, None),
    # the same, with the offset and commit logs written in the background (stateless Kafka-sink queries only)
    "async-progress": (
        {"processingTime": "0 seconds"},
        {"asyncProgressTrackingEnabled": "true", "asyncProgressTrackingCheckpointIntervalMs": "1000"},
        None,
    ),
    # real-time mode with Spark's default batch duration (a checkpoint interval, not a latency target)
    "realtime": ({"realTime": "5 minutes"}, {}, "update"),
}


# The jobs timed, each run as declared (jobs/catalog.py) with conf/jobs.yaml's values: (label, job, overrides).
BENCHMARKED_JOBS: tuple[tuple[str, str, dict[str, object]], ...] = (
    ("rides_all (Avro out, the default)", "rides_all", {}),
    ("rides_all (JSON out)", "rides_all", {"output_format": "json"}),
    ("rides_all, to Kafka and PostgreSQL (rides table)", "rides_all", {"sinks": ("kafka", "postgres")}),
    ("vendor_counts", "vendor_counts", {}),
    ("vendor_counts, to Kafka and PostgreSQL", "vendor_counts", {"sinks": ("kafka", "postgres")}),
    ("zone_popularity", "zone_popularity", {}),
    ("ride_sessions", "ride_sessions", {}),
)


def job_settings(job: Job, settings: JobSettings, source: str, sink: str, run: int, overrides: dict) -> JobSettings:
    """The job's settings from conf/jobs.yaml, reading `source`, every topic it writes being `sink`, to the end of
    the input (available-now), checkpoints of the run's own, nothing printed."""
    # Every topic the job writes is the sink; the zone table's topic is an input and stays as conf says.
    topics = {
        name: sink for name in job.settings_class.model_fields if name.endswith("_topic") and name != "zones_topic"
    }
    return job.load_settings(
        {
            **topics,
            "input_topics": [source],
            "progress_topic": None,
            "trigger": "available-now",
            "sinks": ("kafka",),
            "results_schema": f"bench_run_{run}",  # fresh tables per run (dropped at the end of the benchmark)
            "starting_offsets": "earliest",
            "input_format": settings.input_format,
            "checkpoint_root": f"{settings.checkpoint_root}/run-{run}",
            "bootstrap_servers": settings.bootstrap_servers,
            "registry_url": settings.registry_url,
            **overrides,
        }
    )


def _pass_through(spark: SparkSession, settings: JobSettings, source: str, sink: str, run: int) -> None:
    df = read_kafka(spark, settings, [source]).select("key", "value")
    _to_kafka(df, settings, sink, f"bench_{run}", "append", {"availableNow": True}).awaitTermination()


def _whole_job(spark: SparkSession, settings: JobSettings, source: str, sink: str, run: int, label: str) -> None:
    _, name, overrides = next(entry for entry in BENCHMARKED_JOBS if entry[0] == label)
    job = JOBS[name]
    run_settings = job_settings(job, settings, source, sink, run, overrides)
    check_results_database(run_settings)  # the tables, as the job's own start makes them (not timed apart)
    for query in job.start_queries(spark, run_settings):
        query.awaitTermination()


def throughput(spark, settings, source: str, sink: str, rows: int, rounds: int) -> None:
    # The first pass-through warms the JVM and the Kafka clients up; then every query once per round, so that
    # a slow spell of the machine falls on one run of each rather than on all runs of one.
    labels = [label for label, _, _ in BENCHMARKED_JOBS]
    order = ["pass-through", *[label for _ in range(rounds) for label in ["pass-through", *labels]]]
    for run, label in enumerate(order):
        began = time.perf_counter()
        if label == "pass-through":
            _pass_through(spark, settings, source, sink, run)
        else:
            _whole_job(spark, settings, source, sink, run, label)
        seconds = time.perf_counter() - began
        if run > 0:
            print("RESULT " + json.dumps({"query": label, "rows": rows, "seconds": seconds}), flush=True)


def latency_query(spark: SparkSession, settings: JobSettings, source: str, sink: str, query: str):
    """(DataFrame to write, output mode) of a latency run: the pass-through, or the rides_all job's merge."""
    if query == "pass-through":
        return read_kafka(spark, settings, [source]).select("key", "value"), "append"
    rides_df = good_rides(read_rides(spark, settings, [source]))
    return to_ride_records(rides_df, registered_value_schema(settings.registry_url, sink)), "append"


def latency(spark, settings, source: str, sink: str, query: str, trigger: str, seconds: float) -> None:
    settings = settings.model_copy(update={"starting_offsets": "latest"})
    df, mode = latency_query(spark, settings, source, sink, query)
    kind, options, trigger_mode = LATENCY_TRIGGERS[trigger]
    running = _to_kafka(df, settings, sink, "bench_latency", trigger_mode or mode, kind, options)
    print("RESULT " + json.dumps({"started": True}), flush=True)
    running.awaitTermination(seconds)
    running.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("throughput", "latency"))
    parser.add_argument("--source", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--query", default="pass-through")
    parser.add_argument("--trigger", choices=tuple(LATENCY_TRIGGERS), default="default")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--checkpoints", required=True)
    parser.add_argument("--input-format", default="auto", choices=("auto", "avro", "json"))
    options = parser.parse_args(argv)
    spark = (
        SparkSession.builder.appName(f"bench-{options.mode}").config("spark.sql.session.timeZone", "UTC").getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    settings = _settings(options.bootstrap, options.registry, options.checkpoints, "bench", options.input_format)
    if options.mode == "throughput":
        throughput(spark, settings, options.source, options.sink, options.rows, options.rounds)
    else:
        latency(spark, settings, options.source, options.sink, options.query, options.trigger, options.seconds)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
