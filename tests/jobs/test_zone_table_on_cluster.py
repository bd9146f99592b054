"""The zone table as a compacted topic: loaded from the lookup file once (idempotently), and followed by a
running job, which uses a zone renamed mid-run from its next micro-batch on, without a restart."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from datetime import datetime, timedelta

import pytest
from confluent_kafka import Producer

from cluster.table_topics import csv_rows, latest_values, load_table
from producers.generator import GeneratorSettings, RideGenerator
from rides.serialization import to_json
from tests.jobs.cluster import read_until, start_job
from tests.jobs.results_tables import table_rows
from tests.paths import ZONE_LOOKUP
from tests.waiting import wait_for

pytestmark = pytest.mark.stack

JFK = 132


def _send_rides(bootstrap: str, topic: str, first: int, count: int) -> None:
    """`count` valid rides picked up at JFK between 00:10 and 00:50 on 2020-10-01, ids from `first` on."""
    rides = RideGenerator(GeneratorSettings(seed=first, late_share=0, out_of_order_share=0)).rides(count)
    producer = Producer({"bootstrap.servers": bootstrap})
    for number, ride in enumerate(rides, start=first):
        pickup = datetime(2020, 10, 1, 0, 10) + timedelta(minutes=number % 40)
        ride = {
            **ride,
            "ride_id": f"zone-table-{number}",
            "PULocationID": JFK,
            "pickup_datetime": pickup,
            "dropoff_datetime": pickup + timedelta(minutes=20),
        }
        producer.produce(topic, key=ride["ride_id"].encode(), value=to_json(ride))
    assert producer.flush(30) == 0


def test_the_zone_table_topic_holds_the_lookup_once_and_a_renamed_zone_reaches_a_running_job(
    local_stack, topic_factory, tmp_path, results_schema
):
    bootstrap = local_stack.kafka.bootstrap_servers
    # make up loaded the declared table; loading it again sends nothing
    assert len(latest_values(bootstrap, "taxi_zones")) == 265
    rows = csv_rows(ZONE_LOOKUP, "LocationID")
    assert load_table(bootstrap, "taxi_zones", rows, "LocationID") == 0

    zones_topic, rides_topic = topic_factory(partitions=1, prefix="zones"), topic_factory(prefix="zone_rides")
    assert load_table(bootstrap, zones_topic, rows, "LocationID") == 265
    job = start_job(
        local_stack,
        "zone_popularity",
        tmp_path / "checkpoints",
        *("--input-topics", rides_topic, "--zones-topic", zones_topic, "--trigger", "2 seconds"),
        *("--results-schema", results_schema),
        sinks="postgres",
    )
    read_until(job, "[zone_counts] started (id")  # its tables exist from here on
    threading.Thread(target=lambda: [None for _ in job.stdout], daemon=True).start()  # keep its pipe drained

    def jfk_row():
        found = table_rows(local_stack, results_schema, f"SELECT * FROM zone_popularity WHERE pu_location_id = {JFK}")
        return found[0] if found else None

    try:
        _send_rides(bootstrap, rides_topic, first=0, count=5)
        before = wait_for(lambda: (row := jfk_row()) and row["rides"] == 5 and row, "the first rides counted", 240)
        assert (before["borough"], before["zone"]) == ("Queens", "JFK Airport")

        jfk = next(row for row in rows if row["LocationID"] == JFK)
        assert load_table(bootstrap, zones_topic, [{**jfk, "Zone": "JFK International"}], "LocationID") == 1
        _send_rides(bootstrap, rides_topic, first=5, count=5)
        after = wait_for(lambda: (row := jfk_row()) and row["rides"] == 10 and row, "the later rides counted", 240)
        assert (after["borough"], after["zone"]) == ("Queens", "JFK International")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGKILL)
        job.wait(30)
