"""A producer registers a new compatible version of the ride schema while a job runs: the job meets the new
writer schema id, looks it up in the registry, starts its queries again from their checkpoints and counts those
rides too. Nobody restarts it, and no ride goes to the dead-letter topic for an unknown schema id."""

from __future__ import annotations

import json
import os
import signal

import pytest

from cluster.clients import registry_client
from cluster.topic_snapshot import read_all
from producers.generator import GeneratorSettings, RideGenerator
from rides.events import RIDE_EVENT_SCHEMA, schema_text
from tests.jobs.batch_answers import is_valid_ride
from tests.jobs.cluster import collect_output, produce_generated, start_job
from tests.jobs.results_tables import table_rows
from tests.waiting import wait_for

pytestmark = pytest.mark.stack

BEFORE, AFTER = 300, 200  # rides sent with the schema the job knows, then with the version registered meanwhile


def _generated(seed: int, rides: int) -> list[dict]:
    return list(RideGenerator(GeneratorSettings(seed=seed, late_share=0, out_of_order_share=0)).rides(rides))


def _next_version(tmp_path):
    """The ride schema with one more optional field: BACKWARD compatible, so the registry takes it."""
    schema = json.loads(schema_text(RIDE_EVENT_SCHEMA))
    schema["fields"].append({"name": "dispatch_note", "type": ["null", "string"], "default": None})
    path = tmp_path / "ride_event_next.avsc"
    path.write_text(json.dumps(schema))
    return path


def test_a_schema_registered_while_a_job_runs_is_looked_up_and_its_rides_counted(
    local_stack, topic_factory, tmp_path, results_schema
):
    topic = topic_factory(prefix="live_schema", partitions=2)
    dead = topic_factory(prefix="live_schema_dead", partitions=1)
    produce_generated(topic, 41, BEFORE)
    first, then = _generated(41, BEFORE), _generated(43, AFTER)  # then: the same minutes, none behind the watermark
    counted = "SELECT coalesce(sum(rides), 0) AS rides FROM vendor_counts WHERE window_kind = 'tumbling'"

    def rides_counted() -> int:
        try:
            return int(table_rows(local_stack, results_schema, counted)[0]["rides"])
        except Exception:  # the job has not created its table yet
            return -1

    job = start_job(
        local_stack,
        "vendor_counts",
        tmp_path,
        *("--input-topics", topic, "--dead-letter-topic", dead, "--results-schema", results_schema),
        *("--trigger", "2 seconds"),
        sinks="postgres",
    )
    lines = collect_output(job)
    try:
        valid_before = sum(map(is_valid_ride, first))
        wait_for(lambda: rides_counted() == valid_before, "the rides sent before the new version", 240)

        subject = registry_client(local_stack.registry.url)
        known_ids = {subject.get_version(f"{topic}-value", v).schema_id for v in subject.get_versions(f"{topic}-value")}
        produce_generated(topic, 43, AFTER, "--schema", str(_next_version(tmp_path)))
        (new_id,) = {
            subject.get_version(f"{topic}-value", v).schema_id for v in subject.get_versions(f"{topic}-value")
        } - known_ids

        valid_total = valid_before + sum(map(is_valid_ride, then))
        wait_for(lambda: rides_counted() == valid_total, "the rides of the version registered meanwhile", 240)
        assert job.poll() is None, "the job runs on"
    finally:
        os.killpg(job.pid, signal.SIGTERM)
        job.wait(60)

    output = "".join(lines)
    assert f"writer schema id {new_id} registered since the start: found in the registry" in output, output[-3000:]
    assert "starting the queries again from their checkpoints" in output
    letters = [json.loads(message.value()) for message in read_all(local_stack.kafka.bootstrap_servers, dead)]
    assert not [letter for letter in letters if "schema id" in letter["reason"]]
    # Every invalid ride is a dead letter (the topic is at-least-once: a batch read again may repeat one).
    assert len({letter["source"] for letter in letters}) == sum(not is_valid_ride(ride) for ride in first + then)
