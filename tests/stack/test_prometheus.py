"""The stack's Prometheus, for real: every service it runs is a target and up, with its own metrics (the brokers'
JMX exporter, the registry, Spark's master and worker, the console's lags and queries); a job's driver and a
producer are scraped while they run and forgotten afterwards; and a record dead-lettered makes the
DeadLettersArriving alert fire, as Prometheus's API and the web console's operations panel show."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
import requests
from confluent_kafka import Consumer, TopicPartition

from pipeline_config.metrics_targets import targets_dir
from tests.jobs.cluster import produce_generated, start_job
from tests.kafka_helpers import create_topic, delete_topic
from tests.paths import REPO_ROOT
from tests.waiting import wait_for

pytestmark = pytest.mark.stack


def _api(settings, path: str, **params) -> dict:
    answer = requests.get(f"{settings.prometheus.url}/api/v1/{path}", params=params, timeout=10)
    assert answer.ok, answer.text
    return answer.json()["data"]


def _query(settings, expression: str) -> list[dict]:
    return _api(settings, "query", query=expression)["result"]


def _targets(settings) -> list[dict]:
    return _api(settings, "targets", state="active")["activeTargets"]


def test_every_service_is_scraped_with_its_own_metrics(local_stack, fresh_topic):
    expected = {
        "prometheus",
        "kafka",
        "schema-registry",
        "spark-master",
        "spark-applications",
        "spark-worker",
        "console",
        "postgres",
    }

    def all_up():
        targets = _targets(local_stack)
        static = [t for t in targets if t["labels"]["job"] in expected]
        return {t["labels"]["job"] for t in static} == expected and all(t["health"] == "up" for t in static)

    wait_for(all_up, "every service's target to be up", timeout_s=60)
    brokers = _query(local_stack, 'kafka_server_replicamanager_underreplicatedpartitions{job="kafka"}')
    assert len(brokers) == local_stack.kafka.brokers and all(b["value"][1] == "0" for b in brokers)
    workers = _query(local_stack, "metrics_master_aliveWorkers_Value")
    assert [w["value"][1] for w in workers] == [str(local_stack.spark.workers)]
    assert _query(local_stack, 'metrics_worker_coresFree_Value{job="spark-worker"}')
    assert _query(local_stack, 'jvm_memory_used_bytes{job="schema-registry"}')
    connected = 'pg_up{job="postgres"} == 1'  # the exporter reaches the database (a test may just have restarted it)
    wait_for(lambda: _query(local_stack, connected), "the exporter to reach the results database", timeout_s=60)
    database = local_stack.postgres.database
    assert _query(local_stack, f'pg_stat_database_xact_commit{{job="postgres", datname="{database}"}}')

    # The console exports each consumer group's lag: a group that committed 3 of 10 records is 7 behind.
    produce_generated(fresh_topic, 3, 10)
    group = f"lagging-{uuid.uuid4().hex[:6]}"
    consumer = Consumer({"bootstrap.servers": local_stack.kafka.bootstrap_servers, "group.id": group})
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(fresh_topic, p), timeout=10)[1] for p in range(3)}
        committed = {p: min(end, 1) for p, end in ends.items()}
        consumer.commit(offsets=[TopicPartition(fresh_topic, p, o) for p, o in committed.items()], asynchronous=False)
    finally:
        consumer.close()
    behind = sum(ends.values()) - sum(committed.values())
    lag = wait_for(
        lambda: _query(local_stack, f'pipeline_consumer_group_lag{{job="console", group="{group}"}}'),
        "the console to export the group's lag",
        timeout_s=120,
    )
    assert lag[0]["metric"]["topic"] == fresh_topic and lag[0]["value"][1] == str(behind)


def test_a_job_s_driver_and_a_producer_are_scraped_while_they_run(local_stack, topic_factory, tmp_path):
    topic = topic_factory(prefix="scraped_rides")
    producing = subprocess.Popen(
        [sys.executable, "-m", "producers.produce", "--source", "generator", "--limit", "4000", "--rate", "40",
         "--topic", topic, "--quiet"],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    job = start_job(local_stack, "vendor_counts", tmp_path, "--input-topics", topic, "--trigger", "2 seconds")
    try:

        def scraped(kind: str) -> list[dict]:
            return [t for t in _targets(local_stack) if t["labels"]["job"] == kind and t["health"] == "up"]

        def scraped_driver() -> list[dict]:
            return [t for t in scraped("spark-driver") if t["labels"]["application"] == "vendor_counts"]

        assert wait_for(lambda: scraped("producer"), "the producer to be scraped", timeout_s=60)
        delivered = wait_for(
            lambda: _query(local_stack, 'producer_records_delivered_total{job="producer"} > 0'), "deliveries counted"
        )
        assert delivered[0]["metric"]["topic"] == topic
        assert wait_for(scraped_driver, "the job's driver to be scraped", timeout_s=180)
        assert wait_for(lambda: scraped("spark-executors"), "the executors to be scraped", timeout_s=60)
        # Spark's own streaming metrics of each query (spark.sql.streaming.metricsEnabled).
        rates = wait_for(
            lambda: _query(local_stack, '{job="spark-driver", __name__=~".*vendor_counts_tumbling_inputRate.*"}'),
            "the tumbling query's input rate",
            timeout_s=120,
        )
        assert rates
    finally:
        job.terminate()
        job.wait(60)
        producing.terminate()  # it stops sending, flushes and ends cleanly
        producing.wait(120)
    drivers = [json.loads(path.read_text()) for path in targets_dir(local_stack, "drivers").glob("*.json")]
    # The job server's driver stays a target while it runs (it registers once for all its jobs).
    applications = {group["labels"]["application"] for groups in drivers for group in groups}
    assert applications <= {"job-server"}, "a job that ended is no target"
    assert not list(targets_dir(local_stack, "producers").glob("*.json")), "nor a producer that ended"


def test_a_dead_letter_fires_the_dead_letters_alert(local_stack, topic_factory):
    bootstrap = local_stack.kafka.bootstrap_servers
    rides = topic_factory(partitions=1, prefix="rides_alerting")
    dead_letters = f"alert{uuid.uuid4().hex[:8]}_dead_letter"
    create_topic(bootstrap, 1, name=dead_letters)
    try:
        subprocess.run(
            [sys.executable, "-m", "producers.produce", "--source", "generator", "--limit", "3", "--format", "json",
             "--topic", rides, "--quiet"],
            cwd=REPO_ROOT, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        subprocess.run(  # JSON rides read as Avro only: dead letters
            [sys.executable, "-m", "producers.consume", rides, "--format", "avro", "--idle-timeout", "3",
             "--dead-letter-topic", dead_letters],
            cwd=REPO_ROOT, check=True, capture_output=True, timeout=120,
        )  # fmt: skip

        def firing():
            alerts = _api(local_stack, "alerts")["alerts"]
            return [
                a
                for a in alerts
                if a["labels"]["alertname"] == "DeadLettersArriving"
                and a["labels"].get("topic") == dead_letters
                and a["state"] == "firing"
            ]

        alert = wait_for(firing, "DeadLettersArriving to fire for the new dead letters", timeout_s=90)
        assert dead_letters in alert[0]["annotations"]["summary"]

        console = local_stack.console.url
        shown = requests.get(f"{console}/api/alerts", timeout=30).json()
        assert any(a["alert"] == "DeadLettersArriving" and a["labels"]["topic"] == dead_letters for a in shown)
        produce_generated(rides, 7, 20)  # more rides into a topic Prometheus has already counted: a rate to draw

        def drawn():
            series = requests.get(f"{console}/api/operations/charts/throughput", timeout=30).json()["series"]
            return any(line["name"] == rides and max(line["y"]) > 0 for line in series)

        wait_for(drawn, "the console's throughput chart to draw the rides topic", timeout_s=60)
    finally:
        delete_topic(bootstrap, dead_letters)
