"""The Spark side of benchmarks/jobs_throughput.py and benchmarks/jobs_latency.py: one application on the
cluster that runs each job's main query over the same input topic and prints what it measured.

  throughput: for a bare Kafka-to-Kafka pass-through and for each job, an available-now run over the whole
              input, timed from start to end; prints `RESULT {"query": ..., "rows": ..., "seconds": ...}`.
  latency:    one query (pass-through or the rides_all merge) with the default or the real-time trigger,
              running until stopped, from the end of the input topic.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import pyspark.sql.functions as F
from pyspark.sql import SparkSession

from jobs.avro_output import registered_value_schema
from jobs.decode import good_rides
from jobs.io import (
    kafka_sink_options,
    read_kafka,
    read_rides,
    to_kafka_record,
    window_key,
)
from jobs.ride_sessions import route_sessions
from jobs.rides_all import to_ride_records
from jobs.settings import JobSettings
from jobs.vendor_counts import to_vendor_count_records, windowed_vendor_counts
from jobs.zone_popularity import zone_counts
from pipeline_config.settings import CONF_DIR, read_yaml


def _settings(bootstrap: str, registry: str, checkpoint_root: str, name: str, input_format: str) -> JobSettings:
    # The jobs' own Kafka producer settings (conf/jobs.yaml), for the pass-through and the jobs' queries alike.
    producer = (read_yaml(CONF_DIR / "jobs.yaml").get("defaults") or {}).get("kafka_producer") or {}
    return JobSettings(name=name, checkpoint_root=checkpoint_root, trigger="available-now", input_format=input_format,
                       dead_letter_topic="unused", bootstrap_servers=bootstrap, registry_url=registry,
                       kafka_producer=producer)


def _to_kafka(df, settings: JobSettings, topic: str, query: str, output_mode: str, trigger: dict,
              options: dict | None = None):
    return (
        df.writeStream.queryName(query).outputMode(output_mode).format("kafka")
        .options(**kafka_sink_options(settings, trigger)).option("topic", topic)
        .option("checkpointLocation", settings.checkpoint(query)).options(**(options or {}))
        .trigger(**trigger).start()
    )


# How each latency run triggers its query: (trigger, writer options, output mode or None for the query's own).
LATENCY_TRIGGERS = {
    # Spark's default: the next micro-batch starts as soon as the previous one ends
    "default": ({"processingTime": "0 seconds"}, {}, None),
    # the same, with the offset and commit logs written in the background (stateless Kafka-sink queries only)
    "async-progress": ({"processingTime": "0 seconds"},
                       {"asyncProgressTrackingEnabled": "true", "asyncProgressTrackingCheckpointIntervalMs": "1000"},
                       None),
    # real-time mode with Spark's default batch duration (a checkpoint interval, not a latency target)
    "realtime": ({"realTime": "5 minutes"}, {}, "update"),
}


def queries(spark: SparkSession, settings: JobSettings, source: str, sink: str):
    """name -> (DataFrame to write, output mode). Each is the job's main query over the same input."""
    def rides():
        return good_rides(read_rides(spark, settings, [source]))

    return {
        "pass-through": lambda: (read_kafka(spark, settings, [source]).select("key", "value"), "append"),
        # as the job writes it by default: Avro under the schema id registered for the sink topic
        "rides_all (merge)": lambda: (to_ride_records(rides(), registered_value_schema(settings.registry_url, sink)),
                                      "append"),
        "rides_all (merge, JSON)": lambda: (to_ride_records(rides()), "append"),
        "vendor_counts (sliding)": lambda: (
            to_vendor_count_records(windowed_vendor_counts(rides(), "10 minutes", "5 minutes", "30 minutes", "sliding")),
            "update",
        ),
        "zone_popularity (counts)": lambda: (
            to_kafka_record(zone_counts(rides(), "1 hour", "30 minutes"),
                            window_key(F.col("window_start"), F.col("PULocationID"))),
            "update",
        ),
        "ride_sessions": lambda: (
            to_kafka_record(route_sessions(rides(), "5 minutes", "30 minutes"),
                            window_key(F.col("session_start"), F.col("PULocationID"), F.col("DOLocationID"))),
            "append",
        ),
    }


def throughput(spark, settings, source: str, sink: str, rows: int, rounds: int) -> None:
    plan = queries(spark, settings, source, sink)
    # The first pass-through warms the JVM and the Kafka clients up; then every query once per round, so that
    # a slow spell of the machine falls on one run of each rather than on all runs of one.
    order = ["pass-through", *[name for _ in range(rounds) for name in plan]]
    for run, name in enumerate(order):
        df, mode = plan[name]()
        began = time.perf_counter()
        _to_kafka(df, settings, sink, f"bench_{run}", mode, {"availableNow": True}).awaitTermination()
        seconds = time.perf_counter() - began
        if run > 0:
            print("RESULT " + json.dumps({"query": name, "rows": rows, "seconds": seconds}), flush=True)


def latency(spark, settings, source: str, sink: str, query: str, trigger: str, seconds: float) -> None:
    settings = settings.model_copy(update={"starting_offsets": "latest"})
    df, mode = queries(spark, settings, source, sink)[query]()
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
    spark = SparkSession.builder.appName(f"bench-{options.mode}").config("spark.sql.session.timeZone", "UTC").getOrCreate()
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
