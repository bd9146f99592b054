"""A real Kafka Connect worker (distributed mode, from Maven Central's connect-runtime), started as `CONNECT=1
make up` starts it, with the file connectors that ship with Kafka: a source streaming the lines of the real
green CSV file into a topic, which a job then decodes as the seed's CSV format, and a sink writing a topic to
a file. Connectors are created through the REST API from a declaration, idempotently."""

from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
import sys
from decimal import Decimal
from itertools import islice

import pytest
import requests
from confluent_kafka import Producer

from cluster.connectors import (
    apply_connectors,
    connector_statuses,
    delete_connector,
    load_connectors,
)
from cluster.topic_snapshot import read_all
from pipeline_config.settings import load_settings
from stack import lifecycle
from tests.conftest import GREEN_FILE
from tests.jobs.cluster import run_job
from tests.paths import REPO_ROOT
from tests.waiting import wait_for

pytestmark = pytest.mark.stack

ROWS = 2000
SOURCE = "org.apache.kafka.connect.file.FileStreamSourceConnector"
SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"


@pytest.fixture(scope="module")
def connect(local_stack):
    settings = load_settings(env={**os.environ, "CONNECT": "1"})
    started = lifecycle.up(settings, say=lambda line: None, only=("kafka-connect",))
    yield settings
    if started:
        lifecycle.down(settings, say=lambda line: None, only=("kafka-connect",))


@pytest.fixture()
def connectors(connect):
    """Connectors a test creates are deleted after it."""
    made: dict[str, None] = {}

    def create(declared: dict[str, dict[str, str]]) -> list[str]:
        made.update(dict.fromkeys(declared))
        return apply_connectors(connect.connect.url, declared)

    yield create
    for name in made:
        delete_connector(connect.connect.url, name)


def _running(connect, name: str) -> bool:
    status = {s.name: s for s in connector_statuses(connect.connect.url)}.get(name)
    return status is not None and status.state == "RUNNING" and status.tasks == ("RUNNING",)


def test_a_file_source_streams_csv_lines_that_a_job_decodes_to_the_files_rides(
    local_stack, connect, connectors, topic_factory, tmp_path
):
    lines_file = tmp_path / "green.csv"
    with gzip.open(GREEN_FILE, "rt", newline="") as source:
        lines = [line.rstrip("\r\n") for line in islice(source, ROWS + 1)]  # the header and ROWS rides
    lines_file.write_text("\n".join(lines) + "\n")
    topic = topic_factory(prefix="green_lines")
    name = f"source-{topic}"

    assert connectors(
        {
            name: {
                "connector.class": SOURCE,
                "file": str(lines_file),
                "topic": topic,
                "tasks.max": "1",
                "batch.size": "200000",
            }
        }
    ) == [f"created {name}"]
    wait_for(lambda name=name: _running(connect, name), f"{name} RUNNING")
    streamed = wait_for(
        lambda: (m := read_all(local_stack.kafka.bootstrap_servers, topic)) and len(m) >= len(lines) and m,
        f"{len(lines)} lines in {topic}",
    )
    assert sorted(m.value().decode() for m in streamed) == sorted(lines)

    output, dead = topic_factory(prefix="lines_out"), topic_factory(prefix="lines_dlq")
    run_job(
        local_stack,
        "rides_all",
        tmp_path / "checkpoints",
        "--input-topics",
        topic,
        "--output-topic",
        output,
        "--top-topic",
        topic_factory(prefix="lines_top"),
        "--dead-letter-topic",
        dead,
        "--output-format",
        "json",
    )
    rides = [json.loads(m.value()) for m in read_all(local_stack.kafka.bootstrap_servers, output)]  # JSON, as asked
    (letter,) = [json.loads(m.value()) for m in read_all(local_stack.kafka.bootstrap_servers, dead)]
    assert "VendorID" in letter["reason"]  # the header line: its first field is not a number

    # the same rows read independently with the csv module: count, revenue and zones agree
    rows = list(csv.DictReader(lines))
    assert len(rides) == ROWS == len(rows)
    assert sum(Decimal(str(r["total_amount"])) for r in rides) == sum(Decimal(r["total_amount"]) for r in rows)
    assert sorted(r["PULocationID"] for r in rides) == sorted(int(r["PULocationID"]) for r in rows)
    assert {r["ride_type"] for r in rides} == {"green"}


def test_a_file_sink_writes_every_message_of_a_topic_to_a_file(
    local_stack, connect, connectors, topic_factory, tmp_path
):
    topic, out = topic_factory(prefix="sink_in"), tmp_path / "out" / "zone_top.jsonl"
    sent = [json.dumps({"window_start": f"2020-10-01T{h:02d}:00:00Z", "rank": 1, "rides": h}) for h in range(24)] * 20
    producer = Producer({"bootstrap.servers": local_stack.kafka.bootstrap_servers})
    for value in sent:
        producer.produce(topic, value=value.encode())
    assert producer.flush(30) == 0

    name = f"sink-{topic}"
    connectors({name: {"connector.class": SINK, "file": str(out), "topics": topic, "tasks.max": "1"}})
    wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= len(sent), f"{len(sent)} lines in {out}")
    assert sorted(out.read_text().splitlines()) == sorted(sent)
    assert _running(connect, name)


def test_the_declared_connectors_apply_idempotently_and_show_in_make_status(connect, connectors, tmp_path):
    declared = load_connectors()
    assert set(declared) == {"green-csv-lines", "zone-top-file"}
    assert all(config["file"].startswith(str(REPO_ROOT)) for config in declared.values())
    # the declaration with its files moved into tmp_path, so that the test leaves the repository alone
    for config in declared.values():
        config["file"] = str(tmp_path / os.path.basename(config["file"]))
    first, again = connectors(declared), connectors(declared)
    assert all(line.split()[0] in ("created", "updated") for line in first)
    assert again == [f"unchanged {name}" for name in declared]
    for name in declared:
        wait_for(lambda name=name: _running(connect, name), f"{name} RUNNING")

    status = subprocess.run(
        [sys.executable, "-m", "stack", "status"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "CONNECT": "1"},
        timeout=120,
    )
    assert "kafka-connect" in status.stdout and "http://127.0.0.1:8083" in status.stdout
    for name in declared:
        assert any(
            line.split()[:3] == [name, "source" if "csv" in name else "sink", "RUNNING"]
            for line in status.stdout.splitlines()
        ), status.stdout

    # the web console shows them too
    shown = requests.get(f"{connect.console.url}/api/connectors", timeout=30).json()
    assert shown["running"] and {
        c["name"]: (c["state"], c["tasks"]) for c in shown["connectors"] if c["name"] in declared
    } == {name: ("RUNNING", ["RUNNING"]) for name in declared}
