"""Each job's settings (its section of conf/jobs.yaml), apart from its Spark code so that the console and
`python -m jobs` can read a job's topics without loading pyspark."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from jobs.settings import Duration, JobSettings, first_existing_location

ZONE_LOOKUP_HINT = "`make data` downloads the taxi zone lookup"


class VendorCountsSettings(JobSettings):
    input_topics: list[str]
    output_topic: str
    sliding_window: Duration
    sliding_slide: Duration
    tumbling_window: Duration
    watermark: Duration
    # Which window queries run (each its own query, state and checkpoint); "tumbling" alone on the command line.
    window_kinds: list[Literal["sliding", "tumbling"]] = Field(["sliding", "tumbling"], min_length=1)

    @field_validator("window_kinds", mode="before")
    @classmethod
    def _kinds(cls, value: object) -> object:
        return [kind.strip() for kind in value.split(",") if kind.strip()] if isinstance(value, str) else value


class ZonePopularitySettings(JobSettings):
    input_topics: list[str]
    output_topic: str
    top_topic: str
    window: Duration
    watermark: Duration
    top_n: int
    zone_lookup: list[str]  # files or Hadoop filesystem URIs; the first that is there is read
    # The zone table's compacted topic (conf/tables.yaml), read again when it changes; null: the zone_lookup file.
    zones_topic: str | None = None

    def zone_lookup_path(self) -> str:
        return first_existing_location(self.zone_lookup, ZONE_LOOKUP_HINT)

    def input_topic_names(self) -> list[str]:
        return [*self.input_topics, *([self.zones_topic] if self.zones_topic else [])]


class RidesAllSettings(JobSettings):
    input_topics: list[str]
    output_topic: str
    top_topic: str
    output_format: Literal["avro", "json"] = "avro"
    window: Duration
    watermark: Duration


class RideLifecycleSettings(JobSettings):
    started_topic: str
    ended_topic: str
    output_topic: str
    max_ride_duration: Duration
    watermark: Duration

    def input_topic_names(self) -> list[str]:
        return [self.started_topic, self.ended_topic]


class RideSessionsSettings(JobSettings):
    input_topics: list[str]
    output_topic: str
    gap: Duration
    watermark: Duration
    min_rides: int
