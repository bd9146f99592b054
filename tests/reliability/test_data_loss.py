"""Records deleted before a job read them are never skipped in silence. A job whose checkpoint is at offset 200
of a partition whose log Kafka has since cut at 300 (delete_records, as retention does) refuses to start, naming
topic, partition, the offsets lost and the flag that accepts the loss; with the flag it says how many it skips,
and its output holds exactly the rides that were left."""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition

from cluster.clients import admin_client
from producers import produce
from tests.jobs.cluster import latest_per_key, run_job, run_job_unchecked

pytestmark = pytest.mark.stack


def _produce(topic: str, seed: int, count: int = 200) -> None:
    assert (
        produce.main(
            [
                "--source",
                "generator",
                "--limit",
                str(count),
                "--seed",
                str(seed),
                "--format",
                "json",
                "--late-share",
                "0",
                "--out-of-order-share",
                "0",
                "--topic",
                topic,
                "--quiet",
            ]
        )
        == 0
    )


def test_a_job_refuses_to_skip_deleted_records_unless_told_and_then_counts_them(local_stack, topic_factory, tmp_path):
    bootstrap = local_stack.kafka.bootstrap_servers
    topic, output = topic_factory(partitions=1, prefix="data_loss"), topic_factory(prefix="data_loss_out")
    checkpoints = tmp_path / "checkpoints"
    args = ("--input-topics", topic, "--output-topic", output)
    _produce(topic, seed=1)
    run_job(local_stack, "vendor_counts", checkpoints, *args)  # checkpointed at offset 200

    _produce(topic, seed=2)
    admin = admin_client(bootstrap)
    (future,) = admin.delete_records([TopicPartition(topic, 0, 300)]).values()
    assert future.result(30).low_watermark == 300

    code, out, err = run_job_unchecked(local_stack, "vendor_counts", checkpoints, *args)
    said = out + err  # spark-submit's Python driver: what the job prints may come on either stream
    assert code == 2, said[-3000:]
    assert f"{topic} partition 0: offsets 200..299 (100 records) were deleted before query vendor_counts_" in said
    assert "--accept-data-loss" in said and "started (id" not in said  # refused before any query started

    code, out, err = run_job_unchecked(local_stack, "vendor_counts", checkpoints, *args, "--accept-data-loss")
    assert code == 0, err[-3000:]
    assert "warning: accepting data loss, 300 records skipped" in out + err  # 100 for each of the three queries
    expected_rides = 200 + 100  # the first run's and the 100 left after the cut
    tumbling = [v for k, v in latest_per_key(local_stack, output).items() if k.startswith("tumbling|")]
    assert sum(value["rides"] for value in tumbling) == expected_rides
