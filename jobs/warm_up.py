"""The job server's warm-up: before it takes its first job, it runs vendor_counts once over rides of its own, so that
the code every job runs (the Kafka source, decoding, validation, windowed state, the Kafka sink) is compiled and
loaded on the driver and the executors. Without it the first job after `make up` pays 10-15 s more for its first
micro-batch (BENCHMARKS.md, "The job server").

The rides are made up (a ride every few seconds through one day of October 2020, all valid) and sent as JSON to a
topic of the server's own, which is deleted afterwards along with the result topic.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from cluster.clients import admin_client
from rides.events import empty_event, make_ride_id
from rides.serialization import to_json

WARM_UP_RIDES = 30_000
FIRST_PICKUP = datetime(2020, 10, 1, tzinfo=UTC)


def made_up_rides(count: int = WARM_UP_RIDES) -> list[bytes]:
    """Valid green rides as the producer writes them in JSON, in pickup order."""
    rides = []
    for n in range(count):
        ride = empty_event("green")
        pickup = FIRST_PICKUP + timedelta(seconds=3 * n)
        ride.update(
            ride_id=make_ride_id("green", "job-server-warm-up", n),
            VendorID=1 + n % 2,
            pickup_datetime=pickup,
            dropoff_datetime=pickup + timedelta(minutes=5 + n % 20),
            passenger_count=1 + n % 4,
            trip_distance=0.5 + n % 90 / 10,
            PULocationID=1 + n % 265,
            DOLocationID=1 + (n * 7) % 265,
            total_amount=round(5 + n % 400 / 10, 2),
        )
        rides.append(to_json(ride))
    return rides


def warm_up(bootstrap: str, run_job: Callable[[list[str]], int]) -> int:
    """Run vendor_counts (through `run_job`, given its flags) over the made-up rides to their end; its status."""
    suffix = uuid.uuid4().hex[:8]
    rides_topic, results_topic = f"job_server_warm_up_{suffix}", f"job_server_warm_up_out_{suffix}"
    admin = admin_client(bootstrap)
    created = admin.create_topics([NewTopic(topic, num_partitions=1) for topic in (rides_topic, results_topic)])
    for future in created.values():
        future.result(30)
    try:
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
        for value in made_up_rides():
            producer.produce(rides_topic, value)
            producer.poll(0)
        producer.flush(30)
        with tempfile.TemporaryDirectory(prefix="job-server-warm-up-") as checkpoints:
            return run_job(
                [
                    *("--input-topics", rides_topic, "--output-topic", results_topic),
                    *("--trigger", "available-now", "--sinks", "kafka", "--checkpoint-root", checkpoints),
                    *("--lag-group-prefix", f"job-server-warm-up-{suffix}-"),
                ]
            )
    finally:
        for future in admin.delete_topics([rides_topic, results_topic]).values():
            future.result(30)
