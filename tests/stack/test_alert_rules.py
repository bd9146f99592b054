"""The alert rules of conf/prometheus/alerts.yml under Prometheus's own rule engine (promtool test rules): each
fires on the series that mean trouble, after its `for`, and stays quiet on healthy ones. The live stack's
Prometheus loads the same file (tests/stack/test_prometheus.py), and they fire live on real trouble
(tests/stack/test_alerts_live.py, tests/reliability/test_broker_failover.py)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from pipeline_config.settings import load_settings
from stack.prometheus import ALERT_RULES, scrape_configuration

PROMTOOL = shutil.which("promtool")


def _promtool(*args: str) -> subprocess.CompletedProcess:
    if PROMTOOL is None:
        pytest.fail("promtool is needed (Debian: apt-get install prometheus; .ci/run installs it)")
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


def _alert(name: str, at: str, labels: dict | None = None, summary: str = "") -> dict:
    """`name` firing at `at` with these labels and summary; without labels, not firing."""
    expected = [{"exp_labels": labels, "exp_annotations": {"summary": summary}}] if labels else []
    return {"eval_time": at, "alertname": name, "exp_alerts": expected}


DEAD_LETTERS = "dead letters arriving in {}: make replay-dead-letters ARGS=--dry-run says why"


CASES = {
    "tests": [
        {
            "interval": "1m",
            "input_series": [
                # A job falling further behind for ten minutes, another caught up.
                {"series": 'pipeline_consumer_group_lag{group="spark-job-vendor_counts_tumbling",topic="rides_green"}',
                 "values": "0 100 200 300 400 500 600 700 800 900 1000 1100"},
                {"series": 'pipeline_consumer_group_lag{group="spark-job-zone_popularity",topic="rides_green"}',
                 "values": "0x11"},
                # A console consumer's group lagging does not page anybody.
                {"series": 'pipeline_consumer_group_lag{group="dashboards",topic="rides_green"}',
                 "values": "0 100 200 300 400 500 600 700 800 900 1000 1100"},
                {"series": 'pipeline_streaming_query_failed{query="vendor_counts_sliding",application="vendor_counts"}',
                 "values": "0 0 1 1 1 1 1 1 1 1 1 1"},
                {"series": 'pipeline_streaming_query_silent{query="rides_all",application="rides_all"}',
                 "values": "0 0 0 1 1 1 1 1 1 1 1 1"},
                {"series": 'kafka_server_replicamanager_underreplicatedpartitions{job="kafka",broker="2"}',
                 "values": "0 0 0 0 0 4 4 4 4 4 4 4"},
                {"series": 'up{job="kafka",instance="127.0.0.1:9406"}', "values": "1 1 1 1 1 1 0 0 0 0 0 0"},
                {"series": 'up{job="spark-driver",instance="127.0.0.1:4040"}', "values": "1 0 0 0 0 0 0 0 0 0 0 0"},
                {"series": 'pg_up{job="postgres",instance="127.0.0.1:9187"}', "values": "1 1 0 0 0 1 1 1 1 1 1 1"},
            ],
            "alert_rule_test": [
                _alert("JobLagGrowing", "4m"),  # not yet 5 minutes
                _alert(
                    "JobLagGrowing",
                    "10m",
                    {"severity": "warning", "group": "spark-job-vendor_counts_tumbling"},
                    "spark-job-vendor_counts_tumbling is 1000 records behind and falling further behind",
                ),
                _alert("StreamingQueryFailed", "1m"),
                _alert(
                    "StreamingQueryFailed",
                    "2m",
                    {"severity": "critical", "query": "vendor_counts_sliding", "application": "vendor_counts"},
                    "streaming query vendor_counts_sliding (vendor_counts) ended with an error",
                ),
                _alert("StreamingQuerySilent", "3m"),  # for 1m
                _alert(
                    "StreamingQuerySilent",
                    "4m",
                    {"severity": "critical", "query": "rides_all", "application": "rides_all"},
                    "streaming query rides_all (rides_all) stopped reporting",
                ),
                _alert("UnderReplicatedPartitions", "5m"),
                _alert(
                    "UnderReplicatedPartitions",
                    "7m",
                    {"severity": "critical"},
                    "4 partitions have fewer in-sync replicas than replicas: a broker is down or slow",
                ),
                _alert("ServiceDown", "6m"),
                # A driver that ended is no service down.
                _alert(
                    "ServiceDown",
                    "8m",
                    {"severity": "critical", "job": "kafka", "instance": "127.0.0.1:9406"},
                    "kafka at 127.0.0.1:9406 does not answer Prometheus",
                ),
                _alert("ResultsDatabaseDown", "2m"),  # for 1m
                _alert(
                    "ResultsDatabaseDown",
                    "4m",
                    {"severity": "critical", "job": "postgres", "instance": "127.0.0.1:9187"},
                    "the results database does not answer its exporter at 127.0.0.1:9187",
                ),
                _alert("ResultsDatabaseDown", "6m"),  # back
            ],
        },
        {
            "interval": "1m",
            # Dead letters arrive at minute 8 into a topic counted for a while; the rides' traffic is no alert.
            "input_series": [
                {"series": 'kafka_server_brokertopicmetrics_messagesin_total{topic="rides_dead_letter",job="kafka"}',
                 "values": "3x7 5x10"},
                {"series": 'kafka_server_brokertopicmetrics_messagesin_total{topic="rides_green",job="kafka"}',
                 "values": "0+100x17"},
            ],
            "alert_rule_test": [
                _alert("DeadLettersArriving", "7m"),
                _alert("DeadLettersArriving", "9m", {"severity": "warning", "topic": "rides_dead_letter"},
                       DEAD_LETTERS.format("rides_dead_letter")),
                _alert("DeadLettersArriving", "14m"),  # quiet again five minutes after the last one
            ],
        },
        {
            "interval": "1m",
            # A dead-letter topic whose first records arrive: its counter is new, there is no earlier value.
            "input_series": [
                {"series": 'kafka_server_brokertopicmetrics_messagesin_total{topic="mine_dead_letter",job="kafka"}',
                 "values": "_ _ 1 1 1"},
            ],
            "alert_rule_test": [
                _alert("DeadLettersArriving", "2m", {"severity": "warning", "topic": "mine_dead_letter"},
                       DEAD_LETTERS.format("mine_dead_letter")),
            ],
        },
    ]
}  # fmt: skip


def test_each_alert_fires_on_trouble_after_its_delay_and_not_otherwise(tmp_path):
    cases = tmp_path / "alerts_test.yml"
    cases.write_text(yaml.safe_dump({"rule_files": [str(ALERT_RULES)], "evaluation_interval": "1m", **CASES}))
    result = _promtool("test", "rules", str(cases))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("brokers", ["1", "3"])
def test_the_generated_configuration_and_the_rules_are_valid_for_prometheus(tmp_path, brokers):
    settings = load_settings(env={**os.environ, "STACK_HOME": str(tmp_path), "BROKERS": brokers, "WORKERS": "2"})
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_configuration(settings)))
    result = _promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 rules found" in result.stdout
