"""The taxi zones as a table read from their compacted topic (conf/tables.yaml): a job joins each micro-batch with
the latest row of every zone, so that a zone renamed or added while it runs is used from its next micro-batch on
(the role of a Kafka Streams GlobalKTable). The topic is read again only when its end offsets moved."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyspark.sql.functions as F
from confluent_kafka import Consumer, TopicPartition
from pyspark.sql import DataFrame, SparkSession

from jobs.io import kafka_options
from jobs.settings import JobSettings
from pipeline_config.credentials import client_auth

ZONE_SCHEMA = "LocationID int, Borough string, Zone string"


def latest_zone_rows(records_df: DataFrame) -> DataFrame:
    """The latest record of each key (the highest offset; a tombstone removes the zone), as the zone lookup's
    columns: LocationID, borough, zone."""
    latest = records_df.groupBy("key").agg(F.max_by("value", "offset").alias("value"))
    parsed = latest.filter(F.col("value").isNotNull()).select(
        F.from_json(F.col("value").cast("string"), ZONE_SCHEMA).alias("zone")
    )
    return parsed.select(
        F.col("zone.LocationID").alias("LocationID"),
        F.trim("zone.Borough").alias("borough"),
        F.trim("zone.Zone").alias("zone"),
    ).filter(F.col("LocationID").isNotNull())


@dataclass
class LatestZones:
    """The zone table of a job, refreshed from the topic when it changed."""

    spark: SparkSession
    settings: JobSettings
    topic: str
    _ends: tuple[int, ...] | None = None
    _table: DataFrame | None = field(default=None, repr=False)
    _consumer: Consumer | None = field(default=None, repr=False)

    def current(self) -> DataFrame:
        ends = self._end_offsets()
        if self._table is None or ends != self._ends:
            records_df = (
                self.spark.read.format("kafka")
                .options(**kafka_options(self.settings))
                .option("subscribe", self.topic)
                .option("startingOffsets", "earliest")
                .option("endingOffsets", "latest")
                .load()
            )
            table = latest_zone_rows(records_df).cache()
            table.count()  # read now, once, not by every query that joins with it
            if self._table is not None:
                self._table.unpersist()
            self._table, self._ends = table, ends
        return self._table

    def _end_offsets(self) -> tuple[int, ...]:
        """The topic's end offsets (cheap: one metadata request per partition), to tell whether it changed."""
        if self._consumer is None:
            self._consumer = Consumer(
                {
                    "bootstrap.servers": self.settings.bootstrap_servers,
                    "group.id": "zone-table-offsets",  # never joins or commits: it only asks for offsets
                    **client_auth(),
                }
            )
        partitions = self._consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
        return tuple(
            self._consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=10)[1]
            for partition in sorted(partitions)
        )
