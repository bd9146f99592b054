"""Producer throughput on the real green file, side by side with the ceiling, in one run.

  .venv/bin/python -m benchmarks.producer_throughput [--file PATH] [--repeat 3]

Measures rides per second into one fresh topic (3 partitions) for:
  ceiling              the bare confluent-kafka loop producing pre-serialized Avro bytes of the same rides
  ours, json / avro    our producer (python -m producers.produce) reading the file: the bulk path (pyarrow columns,
                       encoded in columns), as users run it
  row by row           the same with --row-by-row: the per-row path (csv module, fastavro / json.dumps per ride)
All use the same producer settings (conf/clients.yaml: acks=all, idempotence, lz4, linger). The runs are
interleaved (each round runs every variant once) so that the machine's drift touches all alike; the best round of
each counts, and every run is printed. Needs the stack (make up).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from confluent_kafka import Producer

from benchmarks.side_by_side import delete_topic, interleaved_runs, print_rates, ride_topic
from cluster.clients import QUIET_CLIENT_LOG, registry_client
from pipeline_config.client_defaults import load_client_defaults
from pipeline_config.settings import load_settings
from producers import produce
from rides.serialization import avro_serializers
from rides.tlc import read_rides

# The benchmarks run from a checkout, beside the shared real data (read in place, never copied).
REPO_ROOT = Path(__file__).resolve().parent.parent
GREEN_FILE = REPO_ROOT.parent / "shared" / "data" / "green_tripdata_2020-10.csv.gz"


def ceiling(bootstrap: str, topic: str, payloads: list[tuple[bytes, bytes]]) -> float:
    defaults = load_client_defaults().producer
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": defaults.acks,
            "enable.idempotence": defaults.enable_idempotence,
            "compression.type": defaults.compression,
            "linger.ms": defaults.linger_ms,
            "batch.size": defaults.batch_size,
            "partitioner": "murmur2_random",
            "queue.buffering.max.messages": 500_000,
            "logger": QUIET_CLIENT_LOG,
        }
    )
    started = time.perf_counter()
    for key, value in payloads:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0
    return len(payloads) / (time.perf_counter() - started)


def ours(topic: str, fmt: str, path: str, rows: int, *extra: str) -> float:
    started = time.perf_counter()
    assert produce.main(["--source", path, "--topic", topic, "--format", fmt, "--quiet", *extra]) == 0
    return rows / (time.perf_counter() - started)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", default=str(GREEN_FILE))
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args(argv)

    settings = load_settings()
    bootstrap = settings.kafka.bootstrap_servers
    topic = ride_topic(bootstrap, "bench_producer")
    try:
        events = list(read_rides(options.file))
        key_serializer, value_serializer = avro_serializers(registry_client(settings.registry.url), topic)
        payloads = [(key_serializer(e["ride_id"]), value_serializer(e)) for e in events]
        mean_size = sum(len(v) for _, v in payloads) / len(payloads)
        variants = {
            "ceiling (pre-serialized)": lambda: ceiling(bootstrap, topic, payloads),
            "ours, json": lambda: ours(topic, "json", options.file, len(events)),
            "ours, avro": lambda: ours(topic, "avro", options.file, len(events)),
            "ours, json, row by row": lambda: ours(topic, "json", options.file, len(events), "--row-by-row"),
            "ours, avro, row by row": lambda: ours(topic, "avro", options.file, len(events), "--row-by-row"),
        }
        runs = interleaved_runs(variants, options.repeat)
    finally:
        delete_topic(bootstrap, topic)
    title = f"{len(events):,} rides from {options.file}, Avro value {mean_size:.0f} bytes on average, best of {options.repeat}"
    print_rates(title, runs, "ceiling (pre-serialized)", "of ceiling")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
