"""Tables as compacted topics (conf/tables.yaml): a CSV file's rows sent as JSON records keyed by the table's key,
only those that differ from the topic's latest value of their key."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Producer

from cluster.topic_snapshot import read_all
from pipeline_config.credentials import client_auth
from pipeline_config.settings import CONF_DIR, SettingsError, read_yaml, resolve

TABLES_FILE = CONF_DIR / "tables.yaml"


@dataclass(frozen=True)
class TableLoad:
    topic: str
    source: Path | None  # the file read, or None when none of the declared files exists
    rows: int
    sent: int

    def summary(self) -> str:
        if self.source is None:
            return f"{self.topic}: no file to load (make data downloads it)"
        return f"{self.topic}: {self.sent} of {self.rows} rows sent ({self.rows - self.sent} up to date)"


def csv_rows(path: Path, key: str) -> list[dict]:
    """The file's rows with their values trimmed, the key column as an integer."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [{name: (value or "").strip() for name, value in row.items()} for row in csv.DictReader(handle)]
    for number, row in enumerate(rows, start=2):
        try:
            row[key] = int(row[key])
        except (KeyError, ValueError):
            raise SettingsError(f"{path}:{number}: {key} must be a whole number, found {row.get(key)!r}") from None
    return rows


def latest_values(bootstrap: str, topic: str, auth: dict[str, str] | None = None) -> dict[str, dict | None]:
    """The topic's latest value of each key (None for a tombstone)."""
    latest: dict[str, dict | None] = {}
    for message in read_all(bootstrap, topic, auth=auth):
        if message.key() is not None:
            value = message.value()
            latest[message.key().decode()] = json.loads(value) if value else None
    return latest


def load_table(bootstrap: str, topic: str, rows: list[dict], key: str, auth: dict[str, str] | None = None) -> int:
    """Send the rows whose value differs from the topic's latest of their key (as the caller's login, or `auth`);
    returns how many were sent."""
    latest = latest_values(bootstrap, topic, auth)
    changed = [row for row in rows if latest.get(str(row[key])) != row]
    if changed:
        login = client_auth() if auth is None else auth
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, **login})
        for row in changed:
            producer.produce(topic, key=str(row[key]).encode(), value=json.dumps(row).encode())
        if producer.flush(30) > 0:
            raise RuntimeError(f"{topic}: the table's records were not all delivered in 30 s")
    return len(changed)


def load_declared_tables(
    bootstrap: str, auth: dict[str, str] | None = None, path: Path = TABLES_FILE
) -> list[TableLoad]:
    loads = []
    for topic, declaration in read_yaml(path).items():
        if (
            not isinstance(declaration, dict)
            or not isinstance(declaration.get("files"), list)
            or "key" not in declaration
        ):
            raise SettingsError(f"{path} [{topic}]: needs `key` (a column) and `files` (a list of files to load from)")
        key, files = declaration["key"], [resolve(file) for file in declaration["files"]]
        source = next((file for file in files if file.exists()), None)
        if source is None:
            loads.append(TableLoad(topic, None, 0, 0))
            continue
        rows = csv_rows(source, key)
        loads.append(TableLoad(topic, source, len(rows), load_table(bootstrap, topic, rows, key, auth)))
    return loads
