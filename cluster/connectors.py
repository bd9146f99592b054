"""Kafka Connect connectors from conf/connectors.yaml, created or updated through the worker's REST API.

`PUT /connectors/<name>/config` creates a connector or replaces its configuration, so applying twice changes
nothing; the status of each connector and its tasks comes from `GET /connectors?expand=status`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import requests
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from pipeline_config.settings import (
    CONF_DIR,
    SettingsError,
    describe_validation_error,
    read_yaml,
    resolve,
)

TIMEOUT_S = 15


class _ConnectorsFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    connectors: dict[str, dict[str, str]]

    @field_validator("connectors", mode="before")
    @classmethod
    def _as_text(cls, value):  # Connect's configs are strings; YAML may have read `tasks.max: 1` as a number
        if not isinstance(value, dict):
            return value
        return {
            name: {k: str(v) for k, v in (config or {}).items()} if isinstance(config, dict) else config
            for name, config in value.items()
        }


def load_connectors(path: Path = CONF_DIR / "connectors.yaml") -> dict[str, dict[str, str]]:
    """Each connector's configuration, `file` made absolute against the repository root."""
    try:
        declared = _ConnectorsFile.model_validate(read_yaml(path)).connectors
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(str(path), exc)) from None
    for name, config in declared.items():
        if "connector.class" not in config:
            raise SettingsError(f"{path}: connector {name} has no connector.class")
        if "file" in config:
            config["file"] = str(resolve(config["file"]))
    return declared


def apply_connectors(connect_url: str, connectors: dict[str, dict[str, str]]) -> list[str]:
    """Create or update every connector; returns 'created x' / 'updated y' / 'unchanged z' lines."""
    existing = _get(f"{connect_url}/connectors")
    report = []
    for name, config in connectors.items():
        if "file" in config:  # a source waits for its file, a sink appends to it: its folder must exist
            Path(config["file"]).parent.mkdir(parents=True, exist_ok=True)
        if name in existing and _get(f"{connect_url}/connectors/{name}/config") == {**config, "name": name}:
            report.append(f"unchanged {name}")
            continue
        response = _settled(
            lambda name=name, config=config: requests.put(
                f"{connect_url}/connectors/{name}/config", json=config, timeout=TIMEOUT_S
            )
        )
        if not response.ok:
            raise SettingsError(f"Kafka Connect refused connector {name}: {response.status_code} {response.text}")
        report.append(f"{'updated' if name in existing else 'created'} {name}")
    return report


@dataclass(frozen=True)
class ConnectorStatus:
    name: str
    kind: str  # source or sink
    state: str  # RUNNING, PAUSED, FAILED, UNASSIGNED
    tasks: tuple[str, ...]
    trace: str | None  # the first failed task's error, if any


def connector_statuses(connect_url: str) -> list[ConnectorStatus]:
    rows = []
    for name, detail in sorted(_get(f"{connect_url}/connectors?expand=status").items()):
        status = detail["status"]
        tasks = status.get("tasks", [])
        trace = next((t.get("trace") for t in tasks if t.get("state") == "FAILED"), None)
        rows.append(
            ConnectorStatus(
                name, status.get("type", "?"), status["connector"]["state"], tuple(t["state"] for t in tasks), trace
            )
        )
    return rows


def delete_connector(connect_url: str, name: str) -> None:
    requests.delete(f"{connect_url}/connectors/{name}", timeout=TIMEOUT_S).raise_for_status()


def _settled(send, patience_s: float = 60) -> requests.Response:
    """A worker that has just started, or whose group is rebalancing, answers 409 or 500 for a while ("rebalance
    in progress", "request timed out" while it joins): the request is sent again until it is settled."""
    deadline = time.monotonic() + patience_s
    while True:
        response = send()
        if response.status_code not in (409, 500, 503) or time.monotonic() >= deadline:
            return response
        time.sleep(1)


def _get(url: str):
    try:
        response = _settled(lambda: requests.get(url, timeout=TIMEOUT_S))
    except requests.RequestException as exc:
        raise SettingsError(
            f"Kafka Connect does not answer at {url} ({exc.__class__.__name__}): start it with CONNECT=1 make up"
        ) from None
    response.raise_for_status()
    return response.json()
