"""Defaults of the producer and consumer from conf/clients.yaml, validated into frozen objects."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline_config.settings import (
    CONF_DIR,
    SettingsError,
    describe_validation_error,
    read_yaml,
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProducerDefaults(_Frozen):
    topic: str
    format: Literal["avro", "json"] = "avro"
    key_field: str = "ride_id"
    acks: Literal["0", "1", "all"] = "all"
    enable_idempotence: bool = True
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    linger_ms: int = Field(20, ge=0)
    batch_size: int = Field(262144, ge=1)
    flush_timeout_s: float = Field(60, gt=0)
    dead_letter_topic: str = "rides_dead_letter"
    dead_letter_original_max_bytes: int = Field(16384, ge=0)
    metrics_port: int = Field(0, ge=-1, le=65535)
    started_topic: str = "ride_started"
    ended_topic: str = "ride_ended"


class ConsumerDefaults(_Frozen):
    group_id: str = "ride-console"
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    session_timeout_ms: int = Field(10_000, ge=1_000)
    auto_commit_interval_ms: int = Field(1_000, ge=1)
    dead_letter_topic: str = "rides_dead_letter"
    dead_letter_original_max_bytes: int = Field(16384, ge=0)
    dead_letter_timeout_s: float = Field(30, gt=0)


class ClientDefaults(_Frozen):
    producer: ProducerDefaults
    consumer: ConsumerDefaults = ConsumerDefaults()


def load_client_defaults(path: Path = CONF_DIR / "clients.yaml") -> ClientDefaults:
    raw = read_yaml(path)
    producer = raw.get("producer")
    if isinstance(producer, dict) and "acks" in producer:
        producer["acks"] = str(producer["acks"])  # YAML reads `acks: 1` as a number
    try:
        return ClientDefaults.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(str(path), exc)) from None
