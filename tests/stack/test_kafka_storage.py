"""The KRaft cluster id: one fresh `make up` in 64 used to fail because the random id began with '-', which
Kafka's storage tool read as an option. Ids are now drawn as Kafka draws them and passed joined to their option."""

from __future__ import annotations

import subprocess
import uuid

from stack.kafka_node import kafka_jvm
from stack.kafka_storage import new_cluster_id, storage_format_args


def _uuid_whose_id_starts_with_dash() -> uuid.UUID:
    # urlsafe base64 maps the first six bits 0b111110 to '-': a first byte of 0xF8..0xFB.
    return uuid.UUID(bytes=bytes([0xF8]) + bytes(15))


def test_a_random_uuid_whose_id_would_start_with_a_dash_is_drawn_again():
    draws = iter([_uuid_whose_id_starts_with_dash(), _uuid_whose_id_starts_with_dash(), uuid.UUID(int=7)])
    cluster_id = new_cluster_id(lambda: next(draws))
    assert not cluster_id.startswith("-") and len(cluster_id) == 22
    assert next(draws, None) is None  # both dashed ids were refused


def test_kafka_storage_tool_formats_a_node_with_an_id_that_starts_with_a_dash(stack_settings, tmp_path):
    """Even an id made elsewhere (a user's, or an old state folder's) cannot be read as an option."""
    cluster_id = "-" + new_cluster_id()[1:]
    log_dir = tmp_path / "log"
    config = tmp_path / "server.properties"
    config.write_text(
        "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:19093\n"
        "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093\ncontroller.listener.names=CONTROLLER\n"
        f"log.dirs={log_dir}\n"
    )
    command = kafka_jvm(stack_settings, "kafka", "kafka.tools.StorageTool", *storage_format_args(cluster_id, config))
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"cluster.id={cluster_id}" in (log_dir / "meta.properties").read_text()
