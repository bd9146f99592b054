"""Broker failover on the three-node cluster (replication factor 3, min.insync.replicas 2): rides produced
while the leader of a partition is killed (SIGKILL) and later restarted.

With acks=all and idempotence (conf/clients.yaml's defaults) the test demands the full promise: every ride the
producer was told was delivered is in the topic exactly once, in send order per key. With acks=1 or acks=0 it
measures what the same failure costs: rides acknowledged (or, with acks=0, handed to the socket) but gone,
and duplicates from retries; the figures go to RELIABILITY.md.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict

import pytest
from confluent_kafka.admin import NewTopic

from producers.generator import GeneratorSettings, RideGenerator
from stack import lifecycle
from stack.services import quiet_kafka_admin
from stack.settings import REPO_ROOT
from stack.topic_snapshot import read_all

pytestmark = [pytest.mark.stack, pytest.mark.stack_lifecycle]

RIDES, RATE, SEED = 20_000, 2_000, 11  # ten seconds of traffic
GENERATOR = ["--source", "generator", "--seed", str(SEED), "--late-share", "0", "--out-of-order-share", "0"]


def _replicated_topic(cluster) -> str:
    admin = quiet_kafka_admin(cluster.kafka.bootstrap_servers)
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
    metadata = quiet_kafka_admin(cluster.kafka.bootstrap_servers).list_topics(topic=topic, timeout=10)
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
        [sys.executable, "-m", "producers.produce", *GENERATOR, "--limit", str(RIDES), "--rate", str(RATE),
         "--format", "json", "--key-field", "PULocationID", "--topic", topic, "--acks", acks, idempotence,
         "--bootstrap-servers", cluster.kafka.bootstrap_servers, "--quiet"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
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
    delivered, out = _produce_through_a_leader_loss(three_broker_cluster, topic, acks)

    ride_ids = [json.loads(m.value())["ride_id"] for m in read_all(three_broker_cluster.kafka.bootstrap_servers, topic)]
    present = set(ride_ids)
    assert present <= set(_send_order())  # nothing in the topic that was not sent
    lost = delivered - len(present)
    print(f"\nacks={acks}: {RIDES} sent, {delivered} reported delivered, {len(present)} in the topic, "
          f"{max(lost, 0)} acknowledged but lost, {len(ride_ids) - len(present)} duplicates")
