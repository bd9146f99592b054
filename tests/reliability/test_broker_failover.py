"""Broker failover on the three-node cluster (replication factor 3, min.insync.replicas 2): rides produced
while the leader of a partition is killed (SIGKILL) and later restarted.

With acks=all and idempotence (conf/clients.yaml's defaults) the test demands the full promise: every ride the
producer was told was delivered is in the topic exactly once, in send order per key. With acks=1 or acks=0 it
measures what the same failure costs: rides acknowledged (or, with acks=0, handed to the socket) but gone,
and duplicates from retries; the figures go to RELIABILITY.md.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict

import pytest
from confluent_kafka.admin import NewTopic

from cluster.clients import admin_client
from cluster.topic_snapshot import read_all
from producers.generator import GeneratorSettings, RideGenerator
from stack import lifecycle
from tests.paths import REPO_ROOT
from tests.quick_prometheus import firing, query, quick_prometheus
from tests.waiting import wait_for

pytestmark = [pytest.mark.stack, pytest.mark.stack_lifecycle]

RIDES, RATE, SEED = 20_000, 2_000, 11  # ten seconds of traffic
GENERATOR = ["--source", "generator", "--seed", str(SEED), "--late-share", "0", "--out-of-order-share", "0"]


def _replicated_topic(cluster) -> str:
    admin = admin_client(cluster.kafka.bootstrap_servers)
    name = f"failover_{int(time.time() * 1000)}"
    config = {"min.insync.replicas": "2", "retention.ms": "-1", "unclean.leader.election.enable": "false"}
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=3, config=config)])[name].result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        topic = admin.list_topics(topic=name, timeout=10).topics[name]
        if all(len(p.isrs) == 3 for p in topic.partitions.values()):
            return name
        time.sleep(0.2)
    raise AssertionError(f"{name} did not get three in-sync replicas")


def _leader_of(cluster, topic: str, partition: int = 0) -> int:
    metadata = admin_client(cluster.kafka.bootstrap_servers).list_topics(topic=topic, timeout=10)
    return metadata.topics[topic].partitions[partition].leader


def _kill_and_restart_leader(cluster, topic: str, killed: list, after_s: float = 3, down_s: float = 4) -> None:
    time.sleep(after_s)
    node = lifecycle.select_services(cluster, (f"kafka-{_leader_of(cluster, topic)}",))[0]
    proc = node.pid_file.alive()
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    killed.append(node.name)
    time.sleep(down_s)
    lifecycle.up(cluster, say=lambda line: None, only=(node.name,))


def _produce_through_a_leader_loss(cluster, topic: str, acks: str) -> tuple[int, str]:
    """Runs the project's producer while the leader of partition 0 is killed and restarted; (delivered, output)."""
    idempotence = "--idempotence" if acks == "all" else "--no-idempotence"
    producer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "producers.produce",
            *GENERATOR,
            "--limit",
            str(RIDES),
            "--rate",
            str(RATE),
            "--format",
            "json",
            "--key-field",
            "PULocationID",
            "--topic",
            topic,
            "--acks",
            acks,
            idempotence,
            "--bootstrap-servers",
            cluster.kafka.bootstrap_servers,
            "--quiet",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    killed: list[str] = []
    chaos = threading.Thread(target=_kill_and_restart_leader, args=(cluster, topic, killed))
    chaos.start()
    out = producer.communicate(timeout=300)[0]
    chaos.join(120)
    assert killed, "no broker was killed"
    delivered = re.search(r"done: ([\d,]+) of ([\d,]+) messages delivered", out)
    assert delivered, out[-2000:]
    return int(delivered.group(1).replace(",", "")), out


def _send_order() -> dict[str, int]:
    rides = RideGenerator(GeneratorSettings(seed=SEED, late_share=0, out_of_order_share=0)).rides(RIDES)
    return {ride["ride_id"]: number for number, ride in enumerate(rides)}


def test_acks_all_with_idempotence_loses_nothing_and_duplicates_nothing_through_a_leader_kill(three_broker_cluster):
    topic = _replicated_topic(three_broker_cluster)
    delivered, out = _produce_through_a_leader_loss(three_broker_cluster, topic, "all")
    assert delivered == RIDES, out[-2000:]

    send_order = _send_order()
    messages = read_all(three_broker_cluster.kafka.bootstrap_servers, topic)
    ride_ids = [json.loads(m.value())["ride_id"] for m in messages]
    assert len(ride_ids) == len(set(ride_ids)) == RIDES  # exactly once
    assert set(ride_ids) == set(send_order)

    per_key = defaultdict(list)  # send positions of each key's rides, in offset order
    for message in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        per_key[message.key()].append(send_order[json.loads(message.value())["ride_id"]])
    assert all(positions == sorted(positions) for positions in per_key.values())


@pytest.mark.parametrize("acks", ["1", "0"])
def test_what_acks_1_and_acks_0_cost_when_the_leader_dies(three_broker_cluster, acks):
    topic = _replicated_topic(three_broker_cluster)
    delivered, _out = _produce_through_a_leader_loss(three_broker_cluster, topic, acks)

    ride_ids = [json.loads(m.value())["ride_id"] for m in read_all(three_broker_cluster.kafka.bootstrap_servers, topic)]
    present = set(ride_ids)
    assert present <= set(_send_order())  # nothing in the topic that was not sent
    lost = delivered - len(present)
    print(
        f"\nacks={acks}: {RIDES} sent, {delivered} reported delivered, {len(present)} in the topic, "
        f"{max(lost, 0)} acknowledged but lost, {len(ride_ids) - len(present)} duplicates"
    )


@pytest.fixture(scope="module")
def spark_beside_the_cluster(three_broker_cluster, local_stack):
    """The stack's registry and Spark, started again beside the three-node Kafka (they need none of its ports)."""
    lifecycle.up(local_stack, say=lambda line: None, only=("schema-registry", "spark"))
    return local_stack


def _chase_the_leader(cluster, topic: str, kills: int, killed: list, stop: threading.Event, gap_s: float = 4) -> None:
    """As Kafka's replication tests do: kill the leader of partition 0, assert that leadership really moved to
    another broker, bring the killed one back, wait until it is in sync again, and do it again."""
    admin = admin_client(cluster.kafka.bootstrap_servers)
    for _ in range(kills):
        if stop.wait(gap_s):
            return
        leader = _leader_of(cluster, topic)
        node = lifecycle.select_services(cluster, (f"kafka-{leader}",))[0]
        proc = node.pid_file.alive()
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                now = admin.list_topics(topic=topic, timeout=5).topics[topic].partitions[0].leader
            except Exception:
                now = -1
            if now not in (-1, leader):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"leadership of {topic}/0 did not move away from broker {leader} in 60 s")
        killed.append((leader, now))
        lifecycle.up(cluster, say=lambda line: None, only=(node.name,))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # the restarted broker catches up before the next kill
            partitions = admin.list_topics(topic=topic, timeout=5).topics[topic].partitions.values()
            if all(len(p.isrs) == 3 for p in partitions):
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"broker {leader} did not rejoin the in-sync replicas of {topic} in 90 s")


def test_jobs_on_the_cluster_keep_going_through_leader_kills_and_lose_no_ride(
    spark_beside_the_cluster, three_broker_cluster, tmp_path
):
    """vendor_counts and rides_all run on Spark while a producer sends (acks=all, idempotent) and the leader of
    the input is killed three times in a row. The jobs recover by themselves; rides_all holds every ride and
    vendor_counts ends equal to the batch computation over the same rides (a watermark of a day, so that no
    ride becomes late because one partition stalled while its leader moved)."""
    from tests.jobs.batch_answers import expected_vendor_counts, vendor_count_mismatches
    from tests.jobs.cluster import collect_output, latest_per_key, start_job

    cluster, stack = three_broker_cluster, spark_beside_the_cluster
    bootstrap = cluster.kafka.bootstrap_servers
    rides_in = _replicated_topic(cluster)
    counts, merged, leaders, dead, late = (_replicated_topic(cluster) for _ in range(5))
    common = [
        "--bootstrap-servers",
        bootstrap,
        "--input-topics",
        rides_in,
        "--dead-letter-topic",
        dead,
        "--late-topic",
        late,
        "--trigger",
        "2 seconds",
    ]
    jobs = [
        start_job(
            stack,
            "vendor_counts",
            tmp_path / "checkpoints",
            *common,
            "--output-topic",
            counts,
            "--watermark",
            "1 day",
            with_errors=True,
        ),
        start_job(
            stack,
            "rides_all",
            tmp_path / "checkpoints",
            *common,
            "--output-topic",
            merged,
            "--top-topic",
            leaders,
            "--output-format",
            "json",
            with_errors=True,
        ),
    ]
    outputs = [collect_output(job) for job in jobs]
    rides = 12_000
    killed: list = []
    stop = threading.Event()
    chaos = threading.Thread(target=_chase_the_leader, args=(cluster, rides_in, 3, killed, stop))
    try:
        time.sleep(20)  # the jobs' first batches
        chaos.start()
        produced = subprocess.run(
            [
                sys.executable,
                "-m",
                "producers.produce",
                *GENERATOR,
                "--limit",
                str(rides),
                "--rate",
                "500",
                "--format",
                "json",
                "--topic",
                rides_in,
                "--acks",
                "all",
                "--bootstrap-servers",
                bootstrap,
                "--quiet",
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        chaos.join(300)
        assert produced.returncode == 0 and f"done: {rides:,} of {rides:,} messages delivered" in produced.stderr, (
            produced.stderr[-2000:]
        )
        assert len(killed) == 3 and all(before != after for before, after in killed), killed

        sent = {json.loads(m.value())["ride_id"] for m in read_all(bootstrap, rides_in)}
        assert len(sent) == rides  # acks=all with idempotence through three leader kills: nothing lost

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # the jobs catch up by themselves
            merged_ids = [json.loads(m.value())["ride_id"] for m in read_all(bootstrap, merged)]
            if set(merged_ids) >= sent:
                break
            for job, output in zip(jobs, outputs, strict=True):
                assert job.poll() is None, "a job died:\n" + "\n".join(output[-60:])
            time.sleep(5)
        assert set(merged_ids) == sent, f"{len(sent - set(merged_ids))} rides missing from rides_all"
        time.sleep(10)  # vendor_counts' last batch
    finally:
        stop.set()
        for job in jobs:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGTERM)
        for job in jobs:
            try:
                job.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(job.pid, signal.SIGKILL)
    settings_on_cluster = stack.model_copy(update={"kafka": cluster.kafka})
    streamed = latest_per_key(settings_on_cluster, counts)
    generated = list(RideGenerator(GeneratorSettings(seed=SEED, late_share=0, out_of_order_share=0)).rides(rides))
    expected = expected_vendor_counts(generated)
    assert set(streamed) == set(expected) and not vendor_count_mismatches(streamed, expected)
    duplicates = len(merged_ids) - len(set(merged_ids))
    print(
        f"\nleader kills {killed}: {rides} rides, all in rides_all ({duplicates} duplicates from retried writes), "
        f"vendor counts equal to the batch computation"
    )


def test_a_broker_down_fires_service_down_and_under_replicated_partitions_until_it_is_back(
    three_broker_cluster, tmp_path
):
    """The alert rules on the brokers' own JMX exporters, with durations scaled down (tests/quick_prometheus.py)."""
    cluster = three_broker_cluster
    _replicated_topic(cluster)  # three partitions with a replica on every broker
    with quick_prometheus(cluster, tmp_path) as prometheus:
        wait_for(lambda: query(prometheus, 'count(up{job="kafka"} == 1) == 3'), "three brokers scraped", 60)
        assert not firing(prometheus, "UnderReplicatedPartitions")
        node = lifecycle.select_services(cluster, ("kafka-3",))[0]
        proc = node.pid_file.alive()
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        try:
            down = wait_for(lambda: firing(prometheus, "ServiceDown", job="kafka", broker="3"), "ServiceDown", 60)
            under = wait_for(lambda: firing(prometheus, "UnderReplicatedPartitions"), "UnderReplicated", 90)
        finally:
            lifecycle.up(cluster, say=lambda line: None, only=(node.name,))
        assert down[0]["labels"]["severity"] == "critical"
        assert float(under[0]["value"]) >= 3, "at least the test topic's three partitions lack a replica"
        wait_for(lambda: not firing(prometheus, "UnderReplicatedPartitions"), "the alert to clear", 120)
        assert not firing(prometheus, "ServiceDown", job="kafka")
