"""Rides that arrive behind the watermark are counted as rides and kept. Spark's numRowsDroppedByWatermark counts
rows after partial aggregation (one per window and vendor in a batch), so the progress lines under-reported late
rides by the group size and the rides were gone. 40 rides sent four hours late, in a micro-batch of their own
boundaries, are each counted once per windowed query, and land byte for byte in the late-rides topic with the
query, batch and watermark; the results equal the batch computation over the rides that were on time."""

from __future__ import annotations

import json
import re

import pytest
from confluent_kafka import Producer

from cluster.topic_snapshot import read_all
from producers.generator import GeneratorSettings, RideGenerator
from rides.serialization import to_json
from tests.jobs.batch_answers import expected_vendor_counts, vendor_count_mismatches
from tests.jobs.cluster import latest_per_key, run_job

pytestmark = pytest.mark.stack
LATE = 40


def test_late_rides_are_counted_as_rides_and_kept_for_recovery(local_stack, topic_factory, tmp_path):
    rides = list(
        RideGenerator(GeneratorSettings(seed=7, rides_per_minute=2, late_share=0, out_of_order_share=0)).rides(800)
    )
    late = [{**ride, "ride_id": f"late-{number}"} for number, ride in enumerate(rides[100 : 100 + LATE])]
    sent = rides[:600] + late + rides[600:]  # the late ones are some four hours behind the rides before them
    topic = topic_factory(partitions=1, prefix="late_in")
    output, late_topic = topic_factory(prefix="late_out"), topic_factory(partitions=1, prefix="late_kept")
    producer = Producer({"bootstrap.servers": local_stack.kafka.bootstrap_servers})
    values = {}
    for ride in sent:
        values[ride["ride_id"]] = to_json(ride)
        producer.produce(topic, values[ride["ride_id"]], key=ride["ride_id"])
    assert producer.flush(30) == 0

    log = run_job(
        local_stack,
        "vendor_counts",
        tmp_path / "checkpoints",
        "--input-topics",
        topic,
        "--output-topic",
        output,
        "--late-topic",
        late_topic,
        "--max-offsets-per-trigger",
        "200",
    )

    for query in ("vendor_counts_sliding", "vendor_counts_tumbling"):
        counted = re.findall(rf"\[{query}\] batch (\d+): (\d+) rides arrived behind the watermark", log)
        assert counted == [("3", str(LATE))], (query, log[-3000:])
        # Spark's own figure, per window and vendor, is smaller than the rides it stands for
        spark_rows = int(re.search(rf"\[{query}\] batch 3: .*?, (\d+) late rows dropped", log).group(1))
        assert 0 < spark_rows < LATE
        print(f"\n{query}: {LATE} rides sent late, {counted[0][1]} counted as rides; Spark's count {spark_rows} rows")

    kept = read_all(local_stack.kafka.bootstrap_servers, late_topic)
    by_query: dict[str, list] = {}
    for message in kept:
        headers = {key: value.decode() for key, value in message.headers()}
        by_query.setdefault(headers["late.query"], []).append(message)
        assert headers["late.batch"] == "3" and headers["late.watermark"].startswith("2020-10-01T")
        assert message.value() == values[message.key().decode()]  # the ride as it was sent: re-sendable
    assert {query: sorted(m.key().decode() for m in messages) for query, messages in by_query.items()} == {
        query: sorted(ride["ride_id"] for ride in late) for query in ("vendor_counts_sliding", "vendor_counts_tumbling")
    }

    # the web console's queries panel shows the same figure, from the jobs' progress topic
    progress = [
        json.loads(m.value())
        for m in read_all(local_stack.kafka.bootstrap_servers, "spark_query_progress")
        if m.key() and m.key().decode().endswith(":late")
    ]
    assert {(e["query"], e["late_rides"]) for e in progress if e.get("batch") == 3} >= {
        ("vendor_counts_sliding", LATE),
        ("vendor_counts_tumbling", LATE),
    }

    on_time = rides  # every ride but the late copies
    streamed = latest_per_key(local_stack, output)
    expected = expected_vendor_counts(on_time)
    assert set(streamed) == set(expected) and not vendor_count_mismatches(streamed, expected)
