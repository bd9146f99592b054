"""A job on the cluster started from a point in event time (a ride's Kafka timestamp is its pickup), and its lag
in Kafka's own terms: each query's consumer group holds the offsets its checkpoint says it processed, and the lag
Kafka's tools report is what arrived since."""

from __future__ import annotations

import subprocess
from datetime import UTC

import pytest

from cluster.clients import admin_client
from cluster.groups import group_lags
from cluster.topic_snapshot import read_all
from jobs.data_loss import checkpointed_positions
from producers.generator import GeneratorSettings, RideGenerator
from stack.cli import consumer_groups_command
from tests.jobs.batch_answers import is_valid_ride
from tests.jobs.cluster import produce_generated, run_job
from tests.jobs.results_tables import table_rows

pytestmark = pytest.mark.stack

RIDES, AFTER = 700, 250  # rides before the run (the job starts in their midst), and after it


def _lag_in_kafkas_tool(settings, group: str, topic: str) -> int:
    """The lag Kafka's own kafka-consumer-groups --describe reports for the group on the topic (LAG column)."""
    out = subprocess.run(
        consumer_groups_command(settings, ["--describe", "--group", group]),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return sum(int(line.split()[5]) for line in out.splitlines() if line.split()[1:2] == [topic])


def _pickup_ms(ride: dict) -> int:
    return int(ride["pickup_datetime"].replace(tzinfo=UTC).timestamp() * 1000)


def test_a_job_started_at_a_time_reads_from_there_and_its_lag_shows_as_consumer_groups(
    local_stack, topic_factory, tmp_path, results_schema
):
    topic = topic_factory(prefix="lag_rides", partitions=3)
    produce_generated(topic, 31, RIDES)
    rides = list(RideGenerator(GeneratorSettings(seed=31, late_share=0, out_of_order_share=0)).rides(RIDES))
    start_ms = sorted(map(_pickup_ms, rides))[RIDES // 2]

    run_job(
        local_stack,
        "vendor_counts",
        tmp_path,
        "--input-topics",
        topic,
        "--starting-timestamp",
        str(start_ms),
        "--results-schema",
        results_schema,
        sinks="postgres",
    )
    later = [ride for ride in rides if is_valid_ride(ride) and _pickup_ms(ride) >= start_ms]
    counted = table_rows(
        local_stack, results_schema, "SELECT sum(rides) AS rides FROM vendor_counts WHERE window_kind = 'tumbling'"
    )
    assert counted == [{"rides": len(later)}], "only the rides from the starting time on are counted"

    produce_generated(topic, 33, AFTER)
    admin = admin_client(local_stack.kafka.bootstrap_servers)
    lags = [lag for lag in group_lags(admin, local_stack.kafka.bootstrap_servers) if lag.topic == topic]
    groups = {lag.group for lag in lags}
    messages = sorted(read_all(local_stack.kafka.bootstrap_servers, topic), key=lambda m: m.offset())
    assert groups >= {"spark-job-vendor_counts_tumbling", "spark-job-vendor_counts_sliding"}
    for group in groups:
        query = group.removeprefix("spark-job-")
        processed = checkpointed_positions(tmp_path / "vendor_counts" / query)
        rows = [lag for lag in lags if lag.group == group]
        assert {(topic, lag.partition): lag.committed for lag in rows} == processed, group
        assert sum(lag.lag for lag in rows) == AFTER, f"{group}: the lag is what arrived after the run"
        assert _lag_in_kafkas_tool(local_stack, group, topic) == AFTER, f"{group}: kafka-consumer-groups says so too"
        for lag in rows:  # in time: from the first record not processed to the partition's last (pickup times)
            unprocessed = [
                m.timestamp()[1] for m in messages if m.partition() == lag.partition and m.offset() >= lag.committed
            ]
            assert lag.behind_s == ((unprocessed[-1] - unprocessed[0]) / 1000 if unprocessed else 0.0), group
