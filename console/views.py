"""What each panel of the console shows, read from the running stack on request: topics and their partitions,
consumer groups and lag, a topic's last messages decoded, schema subjects and their diffs, Spark applications,
Kafka Connect connectors."""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import requests
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from kafka.errors import KafkaError as KafkaPythonError

from cluster.clients import admin_client, registry_client
from cluster.connectors import connector_statuses
from cluster.groups import group_lags
from cluster.log_dirs import topic_sizes
from cluster.spark_master import master_state
from cluster.topics import describe_topics
from pipeline_config.settings import SettingsError, StackSettings
from rides.messages import MessageDecoder
from rides.serialization import subject_compatibility

TIMEOUT_S = 10


class KafkaView:
    def __init__(self, settings: StackSettings, auth: dict[str, str]):
        self.settings = settings
        self.bootstrap = settings.kafka.bootstrap_servers
        self.auth = auth
        self.admin = admin_client(self.bootstrap, auth)

    def _probe(self) -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": "pipeline-console",
                "log_level": 0,
                "enable.auto.commit": False,
                **self.auth,
            }
        )

    def topics(self) -> list[dict]:
        """Every topic with partitions (leader, replicas, in-sync replicas, start and end offsets), replication,
        the configs set on it, its message count and its size on the brokers' disks (DescribeLogDirs)."""
        metadata = self.admin.list_topics(timeout=TIMEOUT_S).topics
        rows = [row for row in describe_topics(self.admin) if row["topic"] in metadata]  # none deleted meanwhile
        sizes = _sizes(self.bootstrap, self.auth)
        probe = self._probe()
        try:
            for row in rows:
                partitions: list[dict[str, Any]] = []
                for number, partition in sorted(metadata[row["topic"]].partitions.items()):
                    low, high = probe.get_watermark_offsets(TopicPartition(row["topic"], number), timeout=TIMEOUT_S)
                    partitions.append(
                        {
                            "partition": number,
                            "leader": partition.leader,
                            "replicas": partition.replicas,
                            "isr": partition.isrs,
                            "start_offset": low,
                            "end_offset": high,
                        }
                    )
                row["partition_detail"] = partitions
                row["messages"] = sum(p["end_offset"] - p["start_offset"] for p in partitions)
                row["size_bytes"] = sizes.get(row["topic"])
        finally:
            probe.close()
        return rows

    def groups(self) -> list[dict]:
        return [{**asdict(row), "lag": row.lag} for row in group_lags(self.admin, self.bootstrap, self.auth)]

    def messages(self, topic: str, limit: int, decoder: MessageDecoder) -> list[dict]:
        """The last `limit` messages of the topic (newest first), keys and values decoded: Avro through the
        registry, JSON, or text; what cannot be decoded is shown as such, never hidden."""
        probe = self._probe()
        try:
            partitions = probe.list_topics(topic, timeout=TIMEOUT_S).topics[topic].partitions
            ends, assignment = {}, []
            for number in partitions:
                low, high = probe.get_watermark_offsets(TopicPartition(topic, number), timeout=TIMEOUT_S)
                if high > low:
                    ends[number] = high
                    assignment.append(TopicPartition(topic, number, max(low, high - limit)))
            if not assignment:
                return []
            probe.assign(assignment)
            messages: list[Message] = []
            done: set[int] = set()
            while len(done) < len(ends):
                batch = probe.consume(1000, timeout=TIMEOUT_S)
                if not batch:
                    break
                for message in batch:
                    partition, offset = message.partition(), message.offset()
                    if message.error() is None and partition is not None and offset is not None:
                        messages.append(message)
                        if offset + 1 >= ends[partition]:
                            done.add(partition)
        finally:
            probe.close()
        newest = sorted(messages, key=lambda m: m.timestamp()[1], reverse=True)[:limit]
        return [_decoded(message, decoder) for message in newest]


def _decoded(message, decoder: MessageDecoder) -> dict:
    row = {
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp": datetime.fromtimestamp(message.timestamp()[1] / 1000, UTC).isoformat(),
    }
    try:
        row["key"] = _jsonable(decoder.decode_key(message.key()))
        row["value"] = _jsonable(decoder(message.value()))
    except Exception as exc:  # a message the decoders refuse is shown with the reason, not dropped
        row["key"] = message.key().decode(errors="replace") if message.key() else None
        row["value"] = None
        row["error"] = str(exc)
    row["headers"] = {key: (value or b"").decode(errors="replace") for key, value in (message.headers() or [])}
    return row


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


class RegistryView:
    def __init__(self, registry_url: str):
        self.client = registry_client(registry_url)

    def subjects(self) -> list[dict]:
        rows = []
        for subject in sorted(self.client.get_subjects()):
            versions = self.client.get_versions(subject)
            rows.append(
                {
                    "subject": subject,
                    "versions": versions,
                    "compatibility": subject_compatibility(self.client, subject),
                    "latest_id": self.client.get_version(subject, versions[-1]).schema_id,
                }
            )
        return rows

    def schema(self, subject: str, version: int) -> str:
        text = self.client.get_version(subject, version).schema.schema_str or "{}"
        return json.dumps(json.loads(text), indent=2, sort_keys=False)

    def diff(self, subject: str, old: int, new: int) -> str:
        """A unified diff of two versions, pretty-printed so that a new field is a block of + lines."""
        return (
            "".join(
                difflib.unified_diff(
                    self.schema(subject, old).splitlines(keepends=True),
                    self.schema(subject, new).splitlines(keepends=True),
                    fromfile=f"{subject} v{old}",
                    tofile=f"{subject} v{new}",
                )
            )
            or "(identical)"
        )


def spark_applications(settings: StackSettings) -> dict:
    try:
        state = master_state(settings)
    except (requests.RequestException, ValueError) as exc:
        return {"error": f"the Spark master does not answer ({exc.__class__.__name__})", "workers": [], "apps": []}
    return {
        "workers": [
            {
                "id": w["id"],
                "state": w["state"],
                "cores": w["cores"],
                "cores_used": w["coresused"],
                "memory_mb": w["memory"],
                "memory_used_mb": w["memoryused"],
            }
            for w in state.get("workers", [])
        ],
        "apps": [
            {"id": a["id"], "name": a["name"], "state": a["state"], "cores": a["cores"], "started": a["starttime"]}
            for a in state.get("activeapps", [])
        ],
    }


def connectors(settings: StackSettings) -> dict:
    """The connectors and their tasks when a Connect worker answers (CONNECT=1 make up starts one)."""
    try:
        statuses = connector_statuses(settings.connect.url)
    except SettingsError:  # no worker answers
        return {"running": False, "connectors": []}
    except requests.RequestException as exc:
        return {"running": True, "error": str(exc), "connectors": []}
    return {"running": True, "connectors": [asdict(status) for status in statuses]}


def kafka_error(exc: Exception) -> str:
    return exc.args[0].str() if isinstance(exc, KafkaException) else str(exc)


def _sizes(bootstrap: str, auth: dict[str, str]) -> dict[str, int]:
    try:
        return topic_sizes(bootstrap, auth, timeout_s=TIMEOUT_S)
    except KafkaPythonError:  # sizes are a detail of the topics panel: without them, the rest still shows
        return {}
