"""Would Kafka keep a ride sent to this topic? Its Kafka timestamp is the ride's event time (pickup), and a topic
with time retention deletes a record whose timestamp is older than `retention.ms` as soon as it arrives: the
producer would report every ride delivered and a job would then read none, with no word from anyone. A broker
also refuses records older than `message.timestamp.before.max.ms`. Both are read from the topic's configs before
anything is sent, and each ride is checked against them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

FOREVER = -1


@dataclass(frozen=True)
class TopicTimeLimits:
    topic: str
    retention_ms: int = FOREVER
    before_max_ms: int = FOREVER  # the broker refuses a record whose timestamp is older than this
    log_append_time: bool = False  # the broker stamps records itself: event times do not matter

    def oldest_kept_ms(self, now_ms: int) -> int:
        """The oldest timestamp a record may have to stay in the topic: a cheap check per record (the reason is
        worked out only for a record that fails it)."""
        limits = [limit for limit in (self.retention_ms, self.before_max_ms) if limit != FOREVER]
        if self.log_append_time or not limits:
            return -(2**63)
        return now_ms - min(limits)

    def problem(self, timestamp_ms: int, now_ms: int | None = None) -> str | None:
        """Why a record of this timestamp would not stay in the topic, naming the setting to change; or None."""
        if self.log_append_time or not timestamp_ms:
            return None
        age_ms = (now_ms if now_ms is not None else int(time.time() * 1000)) - timestamp_ms
        when = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")
        if self.retention_ms != FOREVER and age_ms > self.retention_ms:
            return (
                f"{self.topic} keeps records for {_days(self.retention_ms)} (retention.ms={self.retention_ms}) "
                f"but the rides are stamped with their event time ({when}, {_days(age_ms)} ago): Kafka would delete "
                f"them as they arrive. Give the topic size-based retention (retention.ms=-1 and retention.bytes, as "
                f"the ride topics in conf/topics.yaml; `make topics` applies it)"
            )
        if self.before_max_ms != FOREVER and age_ms > self.before_max_ms:
            return (
                f"{self.topic} refuses records older than {_days(self.before_max_ms)} "
                f"(message.timestamp.before.max.ms={self.before_max_ms}) and the rides are stamped with their event "
                f"time ({when}): raise that setting on the topic"
            )
        return None


def _days(millis: int) -> str:
    days = millis / 86_400_000
    return f"{days:,.0f} days" if days >= 2 else f"{millis / 3_600_000:,.1f} hours"


def topic_time_limits(admin: AdminClient, topic: str, timeout_s: float = 10) -> TopicTimeLimits:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([resource], request_timeout=timeout_s)[resource].result(timeout_s)

    def number(name: str) -> int:
        entry = configs.get(name)
        return int(entry.value) if entry is not None and entry.value not in (None, "") else FOREVER

    timestamp_type = configs.get("message.timestamp.type")
    before_max = number("message.timestamp.before.max.ms")
    return TopicTimeLimits(
        topic=topic,
        retention_ms=number("retention.ms"),
        before_max_ms=FOREVER if before_max >= 2**63 - 1 else before_max,
        log_append_time=timestamp_type is not None and timestamp_type.value == "LogAppendTime",
    )
