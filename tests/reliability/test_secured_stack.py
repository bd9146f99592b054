"""The secured mode (SECURE=1 make up): SASL/SCRAM logins over TLS and ACLs from conf/security.yaml. The broker
speaks TLS with a certificate of the stack's own CA; an unauthenticated client and a wrong password are refused
with exactly that failure (not any exception, which a stopped broker would also raise), a role without the ACL is
refused by name, conf/security.yaml is the whole truth (a user or ACL it no longer names is removed), secret files
are private however they were left, the whole pipeline (producer, a Spark job on the cluster, consumer) runs with
each role's own credentials, and no secret appears in any log line or output."""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import subprocess
import sys

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

from cluster.clients import admin_client
from pipeline_config.credentials import secrets_dir, stack_credentials, stack_secrets
from pipeline_config.settings import load_settings
from stack import lifecycle
from stack.security import (
    RolePermissions,
    SecuritySpec,
    apply_security,
    declared_roles,
    load_security_spec,
)
from stack.service import stack_admin_auth
from stack.tls import tls_dir
from tests.jobs.cluster import run_job_unchecked
from tests.paths import REPO_ROOT
from tests.waiting import wait_for

pytestmark = [pytest.mark.stack, pytest.mark.stack_lifecycle]


@pytest.fixture(scope="module")
def secured(local_stack, tmp_path_factory):
    """A secured Kafka (state of its own) in place of the stack's Kafka; registry and Spark stay as they are."""
    state = tmp_path_factory.mktemp("secured")
    (state / "lib").symlink_to(local_stack.lib_dir)
    # The stack's Spark workers run their executors with the interpreter under its state folder.
    (state / "spark").symlink_to(local_stack.state_dir / "spark")
    settings = load_settings(env={**os.environ, "STACK_HOME": str(state), "SECURE": "1"})
    lifecycle.down(local_stack, say=lambda line: None, only=("kafka",))
    try:
        lifecycle.up(settings, say=lambda line: None, only=("kafka",))
        yield settings
    finally:
        lifecycle.down(settings, say=lambda line: None)
        lifecycle.up(local_stack, say=lambda line: None, only=("kafka",))


def _as(settings, role: str) -> dict[str, str]:
    return {**os.environ, "KAFKA_CREDENTIALS_FILE": str(secrets_dir(settings) / f"{role}.env")}


def _run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def _connection_errors(config: dict, log_lines: list[str] | None = None) -> list[KafkaError]:
    """The errors a client meets connecting with `config` (and librdkafka's log lines, into log_lines)."""
    errors: list[KafkaError] = []
    handler = _Lines()
    logger = logging.getLogger(f"secured-test-{len(config)}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    producer = Producer({**config, "error_cb": errors.append, "logger": logger})
    with pytest.raises(KafkaException):
        producer.list_topics(timeout=8)
    producer.poll(1)  # serves the error callbacks and the log queue
    logger.removeHandler(handler)
    if log_lines is not None:
        log_lines.extend(handler.lines)
    return errors


def test_a_client_without_a_login_is_refused(secured):
    lines: list[str] = []
    _connection_errors({"bootstrap.servers": secured.kafka.bootstrap_servers}, lines)
    # The broker accepted the connection and hung up on the plaintext client during its first request: refused by
    # a running broker, which a stopped one (connection refused) would not do.
    assert any("Disconnected" in line and "in state APIVERSION_QUERY" in line for line in lines), lines[:5]
    assert not any("Connection refused" in line for line in lines), lines[:5]


def test_clients_talk_tls_to_a_broker_whose_certificate_the_stacks_ca_signed(secured):
    host, port = secured.kafka.bootstrap_servers.split(",")[0].split(":")
    trusting = ssl.create_default_context(cafile=str(tls_dir(secured) / "ca.pem"))
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        trusting.wrap_socket(raw, server_hostname=host) as tls,  # checks the chain and the name 127.0.0.1
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        certificate = tls.getpeercert()
        assert certificate is not None
        assert dict(item[0] for item in certificate["subject"])["commonName"] == "kafka"  # type: ignore[misc]
    with (
        pytest.raises(ssl.SSLCertVerificationError),  # a client that does not trust the stack's CA
        socket.create_connection((host, int(port)), timeout=10) as raw,
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname=host)


def test_a_wrong_password_is_refused_as_an_authentication_failure_without_echoing_it(secured):
    errors = _connection_errors(
        {
            "bootstrap.servers": secured.kafka.bootstrap_servers,
            "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(tls_dir(secured) / "ca.pem"),
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "producer",
            "sasl.password": "not-the-password-42",
        }
    )
    assert any(error.code() == KafkaError._AUTHENTICATION for error in errors), errors
    assert not any("not-the-password-42" in error.str() for error in errors)


def test_each_role_may_touch_only_its_own_topics(secured):
    as_consumer = _run(
        ["producers.produce", "--source", "generator", "--limit", "5", "--format", "json", "--topic", "rides_green"],
        _as(secured, "consumer"),
    )
    # the consumer role may see rides_green (it reads it) but not write to it: every send is refused
    assert as_consumer.returncode == 1
    assert "done: 0 of 5 messages delivered" in as_consumer.stderr
    assert "Topic authorization failed" in as_consumer.stderr, as_consumer.stderr
    as_nobody = _run(
        ["producers.produce", "--source", "generator", "--limit", "5", "--format", "json", "--topic", "zone_top"],
        _as(secured, "producer"),
    )
    assert as_nobody.returncode == 2  # a topic the role cannot even see is refused before anything is sent
    assert "zone_top: not authorized" in as_nobody.stderr, as_nobody.stderr

    as_producer = _run(["producers.consume", "rides_green", "--idle-timeout", "10"], _as(secured, "producer"))
    assert as_producer.returncode == 2  # may see the topic (it writes it), may not join a group to read it
    assert "refused this consumer as user producer" in as_producer.stderr
    assert "Group authorization failed" in as_producer.stderr, as_producer.stderr

    wrong_group = _run(
        ["producers.consume", "rides_green", "--group", "not-granted", "--idle-timeout", "10"], _as(secured, "consumer")
    )
    assert wrong_group.returncode == 2 and "Group authorization failed" in wrong_group.stderr, wrong_group.stderr


def test_the_pipeline_runs_with_each_roles_credentials_and_no_log_holds_a_password(secured, monkeypatch, tmp_path):
    produced = _run(
        [
            "producers.produce",
            "--source",
            "generator",
            "--seed",
            "99",
            "--limit",
            "500",
            "--format",
            "avro",
            "--topic",
            "rides_green",
        ],
        _as(secured, "producer"),
    )
    assert produced.returncode == 0, produced.stderr[-3000:]

    monkeypatch.setenv("KAFKA_CREDENTIALS_FILE", str(secrets_dir(secured) / "spark.env"))
    code, job_out, job_err = run_job_unchecked(
        secured, "rides_all", tmp_path / "checkpoints", "--input-topics", "rides_green"
    )
    assert code == 0, (job_out + job_err)[-5000:]
    monkeypatch.delenv("KAFKA_CREDENTIALS_FILE")

    consumed = _run(
        ["producers.consume", "rides_all", "--group", "ride-secured-test", "--output", "jsonl", "--idle-timeout", "8"],
        _as(secured, "consumer"),
    )
    assert consumed.returncode == 0, consumed.stderr[-3000:]
    from producers.generator import GeneratorSettings, RideGenerator

    sent = {ride["ride_id"] for ride in RideGenerator(GeneratorSettings(seed=99)).rides(500)}
    merged = {json.loads(line)["value"]["ride_id"] for line in consumed.stdout.splitlines()}
    assert sent <= merged  # every ride went producer -> rides_green -> Spark -> rides_all -> consumer

    secrets = stack_secrets(secured, roles=declared_roles(load_security_spec()))
    assert len(secrets) == len(declared_roles(load_security_spec())) + 3  # the roles', the TLS stores', the console's
    texts = {
        "producer output": produced.stdout + produced.stderr,
        "job output": job_out + job_err,
        "consumer output": consumed.stderr,
    }
    for log in [*secured.log_dir.glob("*"), *local_stack_logs()]:
        if log.is_file():
            texts[str(log)] = log.read_text(errors="replace")
    assert any(where.endswith("kafka-1.log") for where in texts) and any(where.endswith("stderr") for where in texts)
    leaks = [(where, name) for where, text in texts.items() for name, secret in secrets.items() if secret in text]
    assert not leaks, leaks


def local_stack_logs():
    """The Spark master's and workers' logs and the executors' stderr of every application of the stack."""
    main = load_settings()
    yield from main.log_dir.glob("spark-*.log")
    yield from main.data_dir.glob("spark-worker-*/app-*/*/std*")


def _acls_and_users(admin) -> tuple[set[tuple[str, str, str]], set[str]]:
    from stack.security import EVERY_ACL

    acls = admin.describe_acls(EVERY_ACL, request_timeout=30).result(30)
    users = admin.describe_user_scram_credentials(request_timeout=30).result(30)
    return {(b.principal, b.name, b.operation.name) for b in acls}, set(users)


def test_security_yaml_is_the_whole_truth_what_it_no_longer_names_is_removed(secured):
    admin = admin_client(secured.kafka.bootstrap_servers, stack_admin_auth(secured))
    spec = load_security_spec()
    credentials = stack_credentials(secured, declared_roles(spec))
    # SCRAM users reach the broker's metadata a moment after the secured Kafka starts: wait for them, bounded.
    acls, users = wait_for(
        lambda: (lambda found: found if {"producer", "consumer", "spark", "console"} <= found[1] else None)(
            _acls_and_users(admin)
        ),
        "the declared SCRAM users",
        timeout_s=60,
    )
    assert ("User:consumer", "rides_dead_letter", "WRITE") in acls

    # the consumer may no longer write dead letters, and the console role is gone
    narrowed = {role: permissions for role, permissions in spec.roles.items() if role != "console"}
    narrowed["consumer"] = RolePermissions(**{**spec.roles["consumer"].model_dump(), "write": []})
    try:
        report = apply_security(admin, credentials, SecuritySpec(roles=narrowed))
        acls, users = wait_for(
            lambda: (lambda found: found if "console" not in found[1] else None)(_acls_and_users(admin)),
            "the console user to be gone",
            timeout_s=60,
        )
        assert "console" not in users and not [acl for acl in acls if acl[0] == "User:console"]
        assert ("User:consumer", "rides_dead_letter", "WRITE") not in acls
        assert ("User:consumer", "rides_dead_letter", "READ") in acls  # what is still declared stays
        assert "removed" in report and "console" in report
        refused = _run(
            ["producers.consume", "rides_green", "--group", "ride-narrowed", "--idle-timeout", "5"],
            _as(secured, "consumer"),
        )
        assert refused.returncode == 2
        assert "the dead-letter topic rides_dead_letter" in refused.stderr and "not writable" in refused.stderr
    finally:
        apply_security(admin, credentials, spec)
    acls, users = wait_for(
        lambda: (lambda found: found if "console" in found[1] else None)(_acls_and_users(admin)),
        "the console user to be back",
        timeout_s=60,
    )
    assert ("User:consumer", "rides_dead_letter", "WRITE") in acls


def test_the_console_role_reads_but_never_writes(secured):
    as_console = _run(
        ["producers.produce", "--source", "generator", "--limit", "3", "--format", "json", "--topic", "rides_green"],
        _as(secured, "console"),
    )
    # With no WRITE anywhere it cannot even get a producer id: refused as a whole, one line, no traceback.
    assert as_console.returncode == 1 and "Traceback" not in as_console.stderr, as_console.stderr
    assert "Kafka refused this producer as user console" in as_console.stderr
    assert "Cluster authorization failed" in as_console.stderr and "done: 0 of" in as_console.stderr
    admin = admin_client(secured.kafka.bootstrap_servers, _login_of(secured, "console"))
    assert "rides_dead_letter" in admin.list_topics(timeout=30).topics  # it sees every topic


def _login_of(settings, role: str) -> dict:
    from pipeline_config.credentials import client_auth

    return client_auth({"KAFKA_CREDENTIALS_FILE": str(secrets_dir(settings) / f"{role}.env")})


def test_secret_files_and_folders_are_private_even_when_they_existed_looser(secured):
    folder = secrets_dir(secured)
    (folder / "credentials.env").chmod(0o644)
    folder.chmod(0o755)
    (tls_dir(secured) / "broker.p12").chmod(0o644)
    lifecycle.initialize(secured, say=lambda line: None, registry=False)  # what `make up` does on a running stack
    from stack.tls import tls_material

    tls_material(secured)
    assert folder.stat().st_mode & 0o777 == 0o700
    for path in [folder / "credentials.env", *folder.glob("*.env"), tls_dir(secured) / "broker.p12"]:
        assert path.stat().st_mode & 0o777 == 0o600, path
