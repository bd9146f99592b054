"""Producer throughput on the real green file, side by side with the ceiling, in one run.

  .venv/bin/python -m benchmarks.producer_throughput [--file PATH] [--repeat 3]

Measures rides per second into one fresh topic (3 partitions) for:
  ceiling   the bare confluent-kafka loop producing pre-serialized Avro bytes of the same rides
  json      our producer (python -m producers.produce --format json) reading the file
  avro      our producer (--format avro, Confluent wire format through the registry) reading the file
All three use the same producer settings (conf/clients.yaml: acks=all, idempotence, lz4, linger). Each is
run --repeat times; the best run counts. Needs the stack (make up).
"""

from __future__ import annotations

import argparse
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from cluster.clients import QUIET_CLIENT_LOG, admin_client, registry_client
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


def ours(topic: str, fmt: str, path: str, rows: int) -> float:
    started = time.perf_counter()
    assert produce.main(["--source", path, "--topic", topic, "--format", fmt, "--quiet"]) == 0
    return rows / (time.perf_counter() - started)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", default=str(GREEN_FILE))
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args(argv)

    settings = load_settings()
    bootstrap = settings.kafka.bootstrap_servers
    topic = f"bench_producer_{uuid.uuid4().hex[:8]}"
    admin = admin_client(bootstrap)
    # Size-based retention, as the ride topics: the rides' Kafka timestamps are of 2020 (the producer refuses a topic
    # whose time retention would delete them on arrival).
    config = {"retention.ms": "-1", "retention.bytes": "1073741824"}
    admin.create_topics([NewTopic(topic, num_partitions=3, config=config)])[topic].result(30)
    time.sleep(1)
    try:
        events = list(read_rides(options.file))
        key_serializer, value_serializer = avro_serializers(registry_client(settings.registry.url), topic)
        payloads = [(key_serializer(e["ride_id"]), value_serializer(e)) for e in events]
        mean_size = sum(len(v) for _, v in payloads) / len(payloads)
        results = {
            "ceiling (pre-serialized)": max(ceiling(bootstrap, topic, payloads) for _ in range(options.repeat)),
            "ours, json": max(ours(topic, "json", options.file, len(events)) for _ in range(options.repeat)),
            "ours, avro": max(ours(topic, "avro", options.file, len(events)) for _ in range(options.repeat)),
        }
    finally:
        admin.delete_topics([topic])[topic].result(30)

    top = results["ceiling (pre-serialized)"]
    print(
        f"\n{len(events):,} rides from {options.file}, Avro value {mean_size:.0f} bytes on average, best of {options.repeat}"
    )
    print(f"{'':<26} {'rides/s':>10} {'of ceiling':>11}")
    for name, rate in results.items():
        print(f"{name:<26} {rate:>10,.0f} {rate / top:>10.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
