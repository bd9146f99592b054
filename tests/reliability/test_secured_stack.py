"""The secured mode (SECURE=1 make up): SASL/SCRAM logins over TLS and ACLs from conf/security.yaml. The broker
speaks TLS with a certificate of the stack's own CA; an unauthenticated client and a wrong password are refused, a role without the ACL is refused by name, the whole pipeline
(producer, a Spark job on the cluster, consumer) runs with each role's own credentials, and no password appears
in any log line or output."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

from stack import lifecycle
from stack.credentials import ROLES, secrets_dir, stack_credentials
from stack.settings import REPO_ROOT, load_settings
from stack.tls import tls_dir
from tests.jobs.cluster import run_job_unchecked

pytestmark = [pytest.mark.stack, pytest.mark.stack_lifecycle]


@pytest.fixture(scope="module")
def secured(local_stack, tmp_path_factory):
    """A secured Kafka (state of its own) in place of the stack's Kafka; registry and Spark stay as they are."""
    state = tmp_path_factory.mktemp("secured")
    (state / "lib").symlink_to(local_stack.lib_dir)
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
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def _connection_errors(config: dict) -> list[KafkaError]:
    errors: list[KafkaError] = []
    producer = Producer({**config, "error_cb": errors.append, "log_level": 0})
    with pytest.raises(KafkaException):
        producer.list_topics(timeout=8)
    producer.poll(1)  # serves the error callbacks
    return errors


def test_a_client_without_a_login_is_refused(secured):
    _connection_errors({"bootstrap.servers": secured.kafka.bootstrap_servers})


def test_clients_talk_tls_to_a_broker_whose_certificate_the_stacks_ca_signed(secured):
    host, port = secured.kafka.bootstrap_servers.split(",")[0].split(":")
    trusting = ssl.create_default_context(cafile=str(tls_dir(secured) / "ca.pem"))
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with trusting.wrap_socket(raw, server_hostname=host) as tls:  # checks the chain and the name 127.0.0.1
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            assert dict(item[0] for item in tls.getpeercert()["subject"])["commonName"] == "kafka"
    with pytest.raises(ssl.SSLCertVerificationError):  # a client that does not trust the stack's CA
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            ssl.create_default_context().wrap_socket(raw, server_hostname=host)


def test_a_wrong_password_is_refused_as_an_authentication_failure_without_echoing_it(secured):
    errors = _connection_errors({
        "bootstrap.servers": secured.kafka.bootstrap_servers, "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(tls_dir(secured) / "ca.pem"),
        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "producer", "sasl.password": "not-the-password-42",
    })
    assert any(error.code() == KafkaError._AUTHENTICATION for error in errors), errors
    assert not any("not-the-password-42" in error.str() for error in errors)


def test_each_role_may_touch_only_its_own_topics(secured):
    as_consumer = _run(["producers.produce", "--source", "generator", "--limit", "5", "--format", "json",
                        "--topic", "rides_green"], _as(secured, "consumer"))
    # the consumer role may see rides_green (it reads it) but not write to it: every send is refused
    assert as_consumer.returncode == 1
    assert "done: 0 of 5 messages delivered" in as_consumer.stderr
    assert "Topic authorization failed" in as_consumer.stderr, as_consumer.stderr
    as_nobody = _run(["producers.produce", "--source", "generator", "--limit", "5", "--format", "json",
                      "--topic", "zone_top"], _as(secured, "producer"))
    assert as_nobody.returncode == 2  # a topic the role cannot even see is refused before anything is sent
    assert "zone_top: not authorized" in as_nobody.stderr, as_nobody.stderr

    as_producer = _run(["producers.consume", "rides_green", "--idle-timeout", "10"], _as(secured, "producer"))
    assert as_producer.returncode == 2  # may see the topic (it writes it), may not join a group to read it
    assert "refused this consumer as user producer" in as_producer.stderr
    assert "Group authorization failed" in as_producer.stderr, as_producer.stderr

    wrong_group = _run(["producers.consume", "rides_green", "--group", "not-granted", "--idle-timeout", "10"],
                       _as(secured, "consumer"))
    assert wrong_group.returncode == 2 and "Group authorization failed" in wrong_group.stderr, wrong_group.stderr


def test_the_pipeline_runs_with_each_roles_credentials_and_no_log_holds_a_password(secured, monkeypatch, tmp_path):
    produced = _run(["producers.produce", "--source", "generator", "--seed", "99", "--limit", "500",
                     "--format", "avro", "--topic", "rides_green"], _as(secured, "producer"))
    assert produced.returncode == 0, produced.stderr[-3000:]

    monkeypatch.setenv("KAFKA_CREDENTIALS_FILE", str(secrets_dir(secured) / "spark.env"))
    code, job_out, job_err = run_job_unchecked(secured, "rides_all", tmp_path / "checkpoints",
                                               "--input-topics", "rides_green")
    assert code == 0, (job_out + job_err)[-5000:]
    monkeypatch.delenv("KAFKA_CREDENTIALS_FILE")

    consumed = _run(["producers.consume", "rides_all", "--group", "ride-secured-test", "--output", "jsonl",
                     "--idle-timeout", "8"], _as(secured, "consumer"))
    assert consumed.returncode == 0, consumed.stderr[-3000:]
    from producers.generator import GeneratorSettings, RideGenerator

    sent = {ride["ride_id"] for ride in RideGenerator(GeneratorSettings(seed=99)).rides(500)}
    merged = {json.loads(line)["value"]["ride_id"] for line in consumed.stdout.splitlines()}
    assert sent <= merged  # every ride went producer -> rides_green -> Spark -> rides_all -> consumer

    passwords = [credential.password for credential in stack_credentials(secured).values()]
    assert len(passwords) == len(ROLES)
    texts = {"producer output": produced.stdout + produced.stderr, "job output": job_out + job_err,
             "consumer output": consumed.stderr}
    for log in [*secured.log_dir.glob("*"), *local_stack_logs()]:
        if log.is_file():
            texts[str(log)] = log.read_text(errors="replace")
    assert any(where.endswith("kafka-1.log") for where in texts) and any(where.endswith("stderr") for where in texts)
    leaks = [(where, role) for where, text in texts.items() for role, password in zip(ROLES, passwords)
             if password in text]
    assert not leaks, leaks


def local_stack_logs():
    """The Spark master's and workers' logs and the executors' stderr of every application of the stack."""
    main = load_settings()
    yield from main.log_dir.glob("spark-*.log")
    yield from main.data_dir.glob("spark-worker-*/app-*/*/std*")
