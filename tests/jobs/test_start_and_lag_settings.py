"""Where a job starts (earliest, latest, offsets per partition, a time) and the offsets it reports to its consumer
groups, read from the settings and from Spark's progress: what is accepted, what is refused and why."""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition

from jobs.group_offsets import processed_offsets
from jobs.job_settings import VendorCountsSettings
from jobs.settings import load_job_settings
from pipeline_config.settings import SettingsError


def _settings(**overrides) -> VendorCountsSettings:
    return load_job_settings(VendorCountsSettings, "vendor_counts", overrides)


def test_a_job_starts_at_earliest_latest_or_offsets_per_partition():
    assert _settings().kafka_start() == {"startingOffsets": "earliest"}
    assert _settings(starting_offsets="latest").kafka_start() == {"startingOffsets": "latest"}
    offsets = '{"rides_green": {"0": 42, "1": -2}}'
    assert _settings(starting_offsets=offsets).kafka_start() == {"startingOffsets": offsets}


@pytest.mark.parametrize(
    "offsets", ["yesterday", "{}", '{"rides_green": {"zero": 4}}', '{"rides_green": {"0": -3}}', '["rides_green"]']
)
def test_other_starting_offsets_are_refused_with_the_forms_accepted(offsets):
    with pytest.raises(SettingsError, match=r"starting_offsets.*must be earliest, latest or offsets per partition"):
        _settings(starting_offsets=offsets)


def test_a_starting_time_is_given_to_spark_in_epoch_milliseconds_and_wins():
    start = _settings(starting_offsets="latest", starting_timestamp="2020-10-01T06:00:00Z").kafka_start()
    assert start == {"startingTimestamp": "1601532000000", "startingOffsetsByTimestampStrategy": "latest"}
    assert _settings(starting_timestamp="2020-10-01T06:00:00").kafka_start()["startingTimestamp"] == "1601532000000"
    assert _settings(starting_timestamp="1601532000000").kafka_start()["startingTimestamp"] == "1601532000000"
    with pytest.raises(SettingsError, match=r"starting_timestamp.*must be an ISO-8601 time"):
        _settings(starting_timestamp="at dawn")


def test_the_offsets_a_batch_read_up_to_are_those_of_kafka_sources_only():
    end = '{"rides_green": {"0": 120, "1": 95}, "rides_fhv": {"0": 7}}'
    assert list(processed_offsets(end)) == [
        TopicPartition("rides_green", 0, 120),
        TopicPartition("rides_green", 1, 95),
        TopicPartition("rides_fhv", 0, 7),
    ]
    for other in (None, "42", "not json", '{"logOffset": 3}', '{"t": {"0": "x"}}'):
        assert list(processed_offsets(other)) == []


def test_a_batch_is_read_in_at_least_min_partitions_tasks_and_zero_is_refused():
    assert _settings().min_partitions is None  # one task per Kafka partition, Spark's default
    assert _settings(min_partitions=4).min_partitions == 4
    with pytest.raises(SettingsError, match="min_partitions"):
        _settings(min_partitions=0)
