"""The KRaft cluster id and the arguments that format a node's storage with it.

Kafka's own `Uuid.randomUuid()` never hands out an id whose base64 text starts with '-': the storage tool
would read such a value as an option ("argument --cluster-id/-t: expected one argument"). We draw ids the
same way, and also pass the id as `--cluster-id=<id>`, so that no id, even one made elsewhere, can be taken
for an option.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from pathlib import Path


def new_cluster_id(random_uuid: Callable[[], uuid.UUID] = uuid.uuid4) -> str:
    """A base64 UUID of 22 characters, as `kafka-storage random-uuid` prints, never starting with '-'."""
    while True:
        cluster_id = base64.urlsafe_b64encode(random_uuid().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def storage_format_args(cluster_id: str, config_path: Path) -> list[str]:
    """`kafka-storage format` arguments; each value joined to its option so that none reads as an option."""
    return ["format", f"--cluster-id={cluster_id}", f"--config={config_path}"]
