"""The producer and consumer against the real stack: whole-file round trips, groups, resume, evolution,
partitioning, dead letters and clear failures."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import pytest
from confluent_kafka import Consumer, TopicPartition

from cluster.clients import admin_client, registry_client
from producers import produce
from rides.events import RIDE_EVENT_SCHEMA, SCHEMA_DIR
from rides.serialization import AvroWireDeserializer
from rides.tlc import read_rides
from tests.conftest import GREEN_FILE
from tests.kafka_helpers import read_topic
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.stack

V1 = SCHEMA_DIR / "evolution" / "ride_event_v1.avsc"
V3 = SCHEMA_DIR / "evolution" / "ride_event_v3_breaking.avsc"


def _utc(event: dict) -> dict:
    return {k: v.replace(tzinfo=UTC) if isinstance(v, datetime) else v for k, v in event.items()}


def _from_json(record: dict) -> dict:
    return {
        k: datetime.fromisoformat(v.replace("Z", "+00:00")) if k in ("pickup_datetime", "dropoff_datetime") and v else v
        for k, v in record.items()
    }


def _cli(module: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def green_by_id():
    return {event["ride_id"]: _utc(event) for event in read_rides(GREEN_FILE)}


def test_whole_green_file_as_avro_is_consumed_back_identical(local_stack, fresh_topic, green_by_id):
    assert produce.main(["--source", str(GREEN_FILE), "--topic", fresh_topic, "--format", "avro", "--quiet"]) == 0

    messages = read_topic(local_stack.kafka.bootstrap_servers, fresh_topic, expected=len(green_by_id))
    assert len(messages) == 95_120
    deserialize = AvroWireDeserializer(registry_client(local_stack.registry.url))
    received = {}
    for message in messages:
        event = deserialize(message.value())
        assert deserialize(message.key()) == event["ride_id"]  # key field ride_id, Avro-encoded
        assert message.timestamp()[1] == int(event["pickup_datetime"].timestamp() * 1000)  # event time
        received[event["ride_id"]] = event
    assert received == green_by_id


def test_whole_green_file_as_json_is_consumed_back_identical(local_stack, fresh_topic, green_by_id):
    assert produce.main(["--source", str(GREEN_FILE), "--topic", fresh_topic, "--format", "json", "--quiet"]) == 0

    messages = read_topic(local_stack.kafka.bootstrap_servers, fresh_topic, expected=len(green_by_id))
    received = {}
    for message in messages:
        event = _from_json(json.loads(message.value()))
        assert message.key().decode() == event["ride_id"]
        received[event["ride_id"]] = event
    assert len(messages) == 95_120
    assert received == green_by_id


def _murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2, written out independently of librdkafka for this test."""
    seed, m, r = 0x9747B28C, 0x5BD1E995, 24
    length = len(data)
    h = (seed ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length % 4
    base = length - tail
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def test_murmur2_reference_matches_the_java_clients_published_values():
    # Values from Apache Kafka's UtilsTest.testMurmur2.
    assert _murmur2(b"21") == -973932308
    assert _murmur2(b"foobar") == -790332482
    assert _murmur2(b"a-little-bit-long-string") == -985981536
    assert _murmur2(b"a-little-bit-longer-string") == -1486304829
    assert _murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == -58897971
    assert _murmur2(b"abc") == 479470107


def test_keyed_messages_land_on_the_partition_murmur2_predicts(local_stack, topic_factory):
    topic = topic_factory(partitions=5)
    assert (
        produce.main(
            [
                "--source",
                "generator",
                "--limit",
                "2000",
                "--topic",
                topic,
                "--format",
                "json",
                "--key-field",
                "PULocationID",
                "--quiet",
            ]
        )
        == 0
    )
    messages = read_topic(local_stack.kafka.bootstrap_servers, topic, expected=2000)
    assert len(messages) == 2000
    for message in messages:
        expected = (_murmur2(message.key()) & 0x7FFFFFFF) % 5
        assert message.partition() == expected, message.key()
    assert len({m.partition() for m in messages}) == 5


def _group_members(bootstrap: str, group: str) -> list:
    admin = admin_client(bootstrap)
    description = admin.describe_consumer_groups([group])[group].result(10)
    return [member for member in description.members if member.assignment.topic_partitions]


def test_two_consumers_of_one_group_split_the_partitions(local_stack, topic_factory):
    bootstrap = local_stack.kafka.bootstrap_servers
    topic = topic_factory(partitions=4)
    group = f"split-{uuid.uuid4().hex[:6]}"
    command = [
        sys.executable,
        "-m",
        "producers.consume",
        topic,
        "--group",
        group,
        "--output",
        "jsonl",
        "--idle-timeout",
        "15",
    ]
    consumers = [
        subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(_group_members(bootstrap, group)) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(_group_members(bootstrap, group)) == 2, "both consumers should hold partitions"
        assert (
            produce.main(["--source", "generator", "--limit", "400", "--topic", topic, "--format", "json", "--quiet"])
            == 0
        )
        outputs = [c.communicate(timeout=90)[0] for c in consumers]
    finally:
        for c in consumers:
            c.kill()
    records = [[json.loads(line) for line in out.splitlines()] for out in outputs]
    partitions = [{r["partition"] for r in recs} for recs in records]
    assert partitions[0] and partitions[1] and not partitions[0] & partitions[1]
    assert partitions[0] | partitions[1] == {0, 1, 2, 3}
    offsets = [(r["partition"], r["offset"]) for recs in records for r in recs]
    assert len(offsets) == len(set(offsets)) == 400


def test_a_restarted_consumer_resumes_from_its_committed_offsets(local_stack, fresh_topic):
    assert (
        produce.main(["--source", "generator", "--limit", "100", "--topic", fresh_topic, "--format", "json", "--quiet"])
        == 0
    )
    group = f"resume-{uuid.uuid4().hex[:6]}"
    first = _cli("producers.consume", fresh_topic, "--group", group, "--max", "40", "--output", "jsonl")
    second = _cli("producers.consume", fresh_topic, "--group", group, "--output", "jsonl", "--idle-timeout", "5")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    seen_first = {(r["partition"], r["offset"]) for r in map(json.loads, first.stdout.splitlines())}
    seen_second = {(r["partition"], r["offset"]) for r in map(json.loads, second.stdout.splitlines())}
    assert len(seen_first) == 40 and len(seen_second) == 60
    assert not seen_first & seen_second

    lags = _cli("stack", "topics").stdout
    group_lines = [line.split() for line in lags.splitlines() if line.startswith(group)]
    # GROUP TOPIC PARTITION COMMITTED END LAG BEHIND: lag 0 everywhere, in records and in time
    assert group_lines and all(fields[5:] == ["0", "0s"] for fields in group_lines)


def test_consumer_prints_partition_offset_key_timestamp_and_decoded_avro(local_stack, fresh_topic):
    assert produce.main(["--source", str(GREEN_FILE), "--limit", "3", "--topic", fresh_topic, "--quiet"]) == 0
    result = _cli("producers.consume", fresh_topic, "--group", "print-test", "--max", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    first_ride = min(lines, key=lambda line: line.split()[3])
    assert first_ride.startswith(f"{fresh_topic} p") and " @0 " in first_ride
    assert "2020-10-01T00:31:19.000+00:00" in first_ride and '"trip_distance": 0.79' in first_ride


def test_schema_evolution_end_to_end_through_the_registry(local_stack, fresh_topic):
    bootstrap = local_stack.kafka.bootstrap_servers
    assert (
        produce.main(["--source", "generator", "--limit", "10", "--topic", fresh_topic, "--schema", str(V1), "--quiet"])
        == 0
    )
    assert (
        produce.main(["--source", "generator", "--limit", "10", "--seed", "9", "--topic", fresh_topic, "--quiet"]) == 0
    )  # v2, the current schema
    client = registry_client(local_stack.registry.url)
    assert client.get_versions(f"{fresh_topic}-value") == [1, 2]

    messages = read_topic(bootstrap, fresh_topic, expected=20)
    as_v1 = [AvroWireDeserializer(client, V1)(m.value()) for m in messages]
    as_v2 = [AvroWireDeserializer(client, RIDE_EVENT_SCHEMA)(m.value()) for m in messages]
    assert all("wheelchair_accessible" not in event for event in as_v1)  # v1 reader reads v2 data
    assert all(event["wheelchair_accessible"] is None for event in as_v2)  # v2 reader reads v1 data (default)
    assert len({m.value()[1:5] for m in messages}) == 2  # two writer schema ids in the wire format

    refused = _cli(
        "producers.produce", "--source", "generator", "--limit", "5", "--topic", fresh_topic, "--schema", str(V3)
    )
    assert refused.returncode == 2
    assert "refused ride_event_v3_breaking.avsc" in refused.stderr
    assert "BACKWARD compatibility rule" in refused.stderr and "driver_license" in refused.stderr
    assert len(read_topic(bootstrap, fresh_topic, expected=21, timeout_s=5)) == 20  # nothing was sent
    assert client.get_versions(f"{fresh_topic}-value") == [1, 2]


def test_subject_compatibility_from_conf_is_applied(local_stack):
    client = registry_client(local_stack.registry.url)
    assert client.get_compatibility("rides_all-value") == "FULL_TRANSITIVE"
    assert client.get_compatibility("rides_green-value") == "BACKWARD"


def test_unreadable_rows_go_to_the_dead_letter_topic_with_line_and_reason(local_stack, topic_factory, tmp_path):
    topic, dead = topic_factory(), topic_factory(partitions=1)
    path = tmp_path / "green_bad.csv"
    header = "VendorID,lpep_pickup_datetime,lpep_dropoff_datetime,store_and_fwd_flag,RatecodeID,PULocationID,DOLocationID,passenger_count,trip_distance,fare_amount,extra,mta_tax,tip_amount,tolls_amount,ehail_fee,improvement_surcharge,total_amount,payment_type,trip_type,congestion_surcharge"
    path.write_text(
        header + "\n"
        "2,2020-10-01 00:31:19,2020-10-01 00:34:55,N,1,7,7,1,.79,5,0.5,0.5,1.58,0,,0.3,7.88,1,1,0\n"
        "2,yesterday,2020-10-01 00:34:55,N,1,7,7,1,.79,5,0.5,0.5,1.58,0,,0.3,7.88,1,1,0\n"
        "2,2020-10-01 00:41:19,2020-10-01 00:44:55,N,1,7,7,1,.79,5,0.5,0.5,1.58,0,,0.3,7.88,1,1,0\n"
    )
    result = _cli("producers.produce", "--source", str(path), "--topic", topic, "--dead-letter-topic", dead)
    assert result.returncode == 0, result.stderr
    assert "1 unreadable rows sent to" in result.stderr

    bootstrap = local_stack.kafka.bootstrap_servers
    assert len(read_topic(bootstrap, topic, expected=2)) == 2
    (letter,) = read_topic(bootstrap, dead, expected=1)
    record = json.loads(letter.value())
    assert record["reason"] == "pickup_datetime 'yesterday' is not a timestamp (expected YYYY-MM-DD HH:MM:SS)"
    assert record["source"] == f"{path}:3" and record["stage"] == "producer"
    assert record["original"].startswith("2,yesterday,")
    assert dict(letter.headers())["dlq.reason"].decode() == record["reason"]


def test_undecodable_messages_are_reported_and_dead_lettered_by_the_consumer(local_stack, topic_factory):
    from confluent_kafka import Producer

    topic, dead = topic_factory(), topic_factory(partitions=1)
    producer = Producer({"bootstrap.servers": local_stack.kafka.bootstrap_servers})
    producer.produce(topic, value=b"\x00\x00\x00\x7f\xffgarbage")  # wire format, unknown schema id
    producer.produce(topic, value=b'{"ride_id": "ok"}')
    assert producer.flush(10) == 0
    result = _cli(
        "producers.consume",
        topic,
        "--group",
        f"dlq-{uuid.uuid4().hex[:6]}",
        "--max",
        "2",
        "--output",
        "jsonl",
        "--dead-letter-topic",
        dead,
    )
    assert result.returncode == 0
    assert [json.loads(line)["value"] for line in result.stdout.splitlines()] == [{"ride_id": "ok"}]
    assert "unknown schema id 2147483647" in result.stderr or "unknown schema id" in result.stderr
    (letter,) = read_topic(local_stack.kafka.bootstrap_servers, dead, expected=1)
    record = json.loads(letter.value())
    assert record["stage"] == "consumer" and "unknown schema id" in record["reason"]
    assert record["source"].startswith(f"{topic}/")


def test_unreachable_broker_and_registry_fail_with_one_clear_message():
    broker = _cli("producers.produce", "--source", "generator", "--limit", "5", "--bootstrap-servers", "127.0.0.1:1")
    assert broker.returncode == 2
    assert broker.stderr.strip().splitlines()[-1].startswith("error: cannot reach Kafka at 127.0.0.1:1")

    registry = _cli(
        "producers.produce", "--source", "generator", "--limit", "5", "--registry-url", "http://127.0.0.1:1"
    )
    assert registry.returncode == 2
    assert "error: cannot reach the schema registry" in registry.stderr

    consumer = _cli("producers.consume", "rides_green", "--bootstrap-servers", "127.0.0.1:1", "--max", "1")
    assert consumer.returncode == 2 and "cannot reach Kafka at 127.0.0.1:1" in consumer.stderr


def test_missing_file_and_unknown_layout_fail_before_sending(tmp_path):
    missing = _cli("producers.produce", "--source", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "error: no such file" in missing.stderr
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b\n1,2\n")
    unknown = _cli("producers.produce", "--source", str(odd))
    assert unknown.returncode == 2 and "unknown layout. Found columns: a, b" in unknown.stderr


def test_producer_summary_counts_what_was_delivered(local_stack, fresh_topic):
    result = _cli(
        "producers.produce", "--source", "generator", "--limit", "250", "--topic", fresh_topic, "--rate", "500"
    )
    assert result.returncode == 0
    assert f"done: 250 of 250 messages delivered to {fresh_topic} as avro" in result.stderr


def test_the_producer_refuses_to_send_rides_that_the_topics_time_retention_would_delete(local_stack, tmp_path):
    """The Kafka timestamp is the ride's event time: a topic with Kafka's default retention (7 days) deletes rides
    of 2020 as they arrive. The producer says so, naming the setting, before it sends anything."""
    from confluent_kafka.admin import NewTopic

    from tests.kafka_helpers import delete_topic

    bootstrap = local_stack.kafka.bootstrap_servers
    topic = f"seven_days_{uuid.uuid4().hex[:8]}"
    admin = admin_client(bootstrap)
    admin.create_topics([NewTopic(topic, 1, config={"retention.ms": "604800000"})])[topic].result(30)
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "producers.produce",
                "--source",
                str(GREEN_FILE),
                "--topic",
                topic,
                "--format",
                "json",
                "--quiet",
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2, result.stderr[-2000:]
        assert f"{topic} keeps records for 7 days (retention.ms=604800000)" in result.stderr
        assert "retention.ms=-1" in result.stderr and "0 sent before" in result.stderr
        _low, high = Consumer({"bootstrap.servers": bootstrap, "group.id": "x"}).get_watermark_offsets(
            TopicPartition(topic, 0), timeout=10
        )
        assert high == 0  # nothing was sent
    finally:
        delete_topic(bootstrap, topic)
