"""Topics declared in conf/topics.yaml, applied to a running cluster idempotently.

Creates what is missing, grows partition counts, sets declared configs that differ, and refuses to shrink a
topic (Kafka cannot) with a message that names it. Running it twice changes nothing the second time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline_config.credentials import client_auth
from pipeline_config.errors import CannotRunError
from pipeline_config.settings import (
    CONF_DIR,
    SettingsError,
    describe_validation_error,
    read_yaml,
)

ADMIN_TIMEOUT_S = 30


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TopicSpec(_Frozen):
    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")
    partitions: int = Field(ge=1)
    replication_factor: int | None = Field(None, ge=1)  # None: the cluster's default.replication.factor
    config: dict[str, str] = Field(default_factory=dict)


class _TopicOverrides(_Frozen):
    partitions: int | None = Field(None, ge=1)
    replication_factor: int | None = Field(None, ge=1)
    config: dict[str, str] = Field(default_factory=dict)


class _Defaults(_Frozen):
    partitions: int = Field(3, ge=1)
    config: dict[str, str] = Field(default_factory=dict)


class _TopicsFile(_Frozen):
    defaults: _Defaults = _Defaults()
    topics: dict[str, _TopicOverrides | None]


def _stringify(config: dict | None) -> dict[str, str]:
    return {str(key): str(value) for key, value in (config or {}).items()}


def load_topic_specs(path: Path = CONF_DIR / "topics.yaml") -> list[TopicSpec]:
    # Top-level keys starting with x- hold YAML anchors for reuse, as in compose files.
    raw = {key: value for key, value in read_yaml(path).items() if not str(key).startswith("x-")}
    # Kafka configs are strings; YAML may have read a number or a bool.
    raw.setdefault("defaults", {})
    if isinstance(raw["defaults"], dict) and "config" in raw["defaults"]:
        raw["defaults"]["config"] = _stringify(raw["defaults"]["config"])
    for overrides in (raw.get("topics") or {}).values():
        if isinstance(overrides, dict) and "config" in overrides:
            overrides["config"] = _stringify(overrides["config"])
    try:
        declared = _TopicsFile.model_validate(raw)
        specs = []
        for name, overrides in declared.topics.items():
            overrides = overrides or _TopicOverrides()
            specs.append(
                TopicSpec(
                    name=name,
                    partitions=overrides.partitions or declared.defaults.partitions,
                    replication_factor=overrides.replication_factor,
                    config={**declared.defaults.config, **overrides.config},
                )
            )
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(str(path), exc)) from None
    return specs


class TopicError(CannotRunError):
    """A declared topic could not be brought to its declared state."""


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    grown: list[str] = field(default_factory=list)
    reconfigured: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.grown or self.reconfigured)

    def summary(self) -> str:
        parts = []
        for label, names in (
            ("created", self.created),
            ("partitions added", self.grown),
            ("configs set", self.reconfigured),
            ("unchanged", self.unchanged),
        ):
            if names:
                parts.append(f"{label}: {', '.join(names)}")
        return "; ".join(parts) or "no topics declared"


def _wait(futures: dict) -> dict[str, Exception]:
    errors = {}
    for key, future in futures.items():
        try:
            future.result(timeout=ADMIN_TIMEOUT_S)
        except Exception as exc:
            errors[str(key)] = exc
    return errors


def _already_exists(error: Exception) -> bool:
    """Created meanwhile (by a retry of our own request, or by another client): the topic is there."""
    return isinstance(error, KafkaException) and error.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS


def _current_configs(admin: AdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    if not names:
        return {}
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    result = {}
    for resource, future in admin.describe_configs(resources).items():
        entries = future.result(timeout=ADMIN_TIMEOUT_S)
        result[resource.name] = {key: entry.value for key, entry in entries.items()}
    return result


def apply_topics(admin: AdminClient, specs: list[TopicSpec]) -> ApplyReport:
    report = ApplyReport()
    existing = admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics

    missing = [spec for spec in specs if spec.name not in existing]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(
                    spec.name,
                    num_partitions=spec.partitions,
                    replication_factor=spec.replication_factor or -1,
                    config=spec.config,
                )
                for spec in missing
            ],
            operation_timeout=ADMIN_TIMEOUT_S,
            # A fresh cluster's controller may take seconds over its first topics; the client's default
            # (socket.timeout.ms, 3 s here) would time out and retry a request that had in fact succeeded.
            request_timeout=ADMIN_TIMEOUT_S,
        )
        errors = {name: error for name, error in _wait(futures).items() if not _already_exists(error)}
        for spec in missing:
            if spec.name in errors:
                report.refused.append(f"{spec.name}: could not be created: {errors[spec.name]}")
            else:
                report.created.append(spec.name)

    present = [spec for spec in specs if spec.name in existing]
    to_grow = {}
    for spec in present:
        current = len(existing[spec.name].partitions)
        if spec.partitions < current:
            report.refused.append(
                f"{spec.name}: declared with {spec.partitions} partitions but has {current}; Kafka cannot remove "
                f"partitions (keys would move). Declare {current} or more, or delete and recreate the topic."
            )
        elif spec.partitions > current:
            to_grow[spec.name] = spec.partitions
    if to_grow:
        errors = _wait(admin.create_partitions([NewPartitions(name, count) for name, count in to_grow.items()]))
        for name in to_grow:
            if name in errors:
                report.refused.append(f"{name}: partitions could not be added: {errors[name]}")
            else:
                report.grown.append(name)

    current_configs = _current_configs(admin, [spec.name for spec in present])
    for spec in present:
        differing = {key: value for key, value in spec.config.items() if current_configs[spec.name].get(key) != value}
        if not differing:
            if spec.name not in report.grown:
                report.unchanged.append(spec.name)
            continue
        resource = ConfigResource(
            ConfigResource.Type.TOPIC,
            spec.name,
            incremental_configs=[
                ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET) for key, value in differing.items()
            ],
        )
        errors = _wait(admin.incremental_alter_configs([resource]))
        if errors:
            report.refused.append(f"{spec.name}: configs {sorted(differing)} refused: {next(iter(errors.values()))}")
        else:
            report.reconfigured.append(f"{spec.name} ({', '.join(f'{k}={v}' for k, v in differing.items())})")

    _wait_until_visible(admin, report.created + list(to_grow))
    if report.refused:
        raise TopicError("\n".join(["some topics could not be brought to their declared state:", *report.refused]))
    return report


def _wait_until_visible(admin: AdminClient, names: list[str]) -> None:
    """Creation returns once the controller commits; brokers learn of it a moment later. Wait for every
    partition to have a leader so that a producer started right after `make up` finds the topic."""
    if not names:
        return
    deadline = time.monotonic() + ADMIN_TIMEOUT_S
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics
        if all(
            name in topics
            and topics[name].error is None
            and all(p.leader >= 0 for p in topics[name].partitions.values())
            for name in names
        ):
            return
        time.sleep(0.2)
    raise TopicError(f"topics {names} were created but have no partition leaders after {ADMIN_TIMEOUT_S}s")


def describe_topics(admin: AdminClient, bootstrap: str | None = None, auth: dict | None = None) -> list[dict]:
    """Name, partitions, replication factor and non-default configs of every non-internal topic, and with
    `bootstrap` the number of messages each holds."""
    metadata = admin.list_topics(timeout=ADMIN_TIMEOUT_S)
    names = sorted(name for name in metadata.topics if not name.startswith("__"))
    if not names:
        return []
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    configs = {}
    try:
        for resource, future in admin.describe_configs(resources).items():
            entries = future.result(timeout=ADMIN_TIMEOUT_S)
            configs[resource.name] = {
                key: entry.value
                for key, entry in entries.items()
                if entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
            }
    except KafkaException:
        pass
    rows = []
    for name in names:
        partitions = metadata.topics[name].partitions
        replicas = {len(p.replicas) for p in partitions.values()}
        rows.append(
            {
                "topic": name,
                "partitions": len(partitions),
                "replication_factor": max(replicas) if replicas else 0,
                "config": configs.get(name, {}),
                "messages": message_count(bootstrap, name, partitions, auth) if bootstrap else None,
            }
        )
    return rows


def message_count(bootstrap: str, topic: str, partitions, auth: dict | None = None) -> int:
    """End minus start offset over all partitions: what the topic holds now (after retention)."""
    from confluent_kafka import Consumer, TopicPartition

    probe = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "stack-size-probe",
            "log_level": 0,
            **(client_auth() if auth is None else auth),
        }
    )
    try:
        total = 0
        for partition in partitions:
            low, high = probe.get_watermark_offsets(TopicPartition(topic, partition), timeout=ADMIN_TIMEOUT_S)
            total += high - low
        return total
    finally:
        probe.close()
