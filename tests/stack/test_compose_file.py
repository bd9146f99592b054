"""docker-compose.yml checked without Docker: what can be known from the file itself."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from pipeline_config.settings import load_settings, read_env_file
from tests.paths import REPO_ROOT

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
VERSIONS = read_env_file(REPO_ROOT / "conf" / "versions.env")
ONE_SHOT = {"init"}
BROKER_SERVICES = {"kafka", "schema-registry", "redpanda"}


def _resolve(value: str) -> str:
    """${VAR:-default} as compose resolves it with --env-file conf/versions.env."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: VERSIONS.get(m.group(1), m.group(2)), value)


def _host_ports(service: dict) -> dict[int, str]:
    ports = {}
    for mapping in service.get("ports", []):
        host_ip, host_port, _container_port = mapping.split(":")
        ports[int(host_port)] = host_ip
    return ports


def test_every_image_tag_is_pinned_and_matches_conf_versions():
    for name, service in SERVICES.items():
        image = _resolve(service["image"])
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: image {image!r} is not pinned"
        assert "${" not in image, f"{name}: {image!r} uses a variable without a default"
    assert _resolve(SERVICES["kafka"]["image"]) == VERSIONS["KAFKA_IMAGE"]
    assert _resolve(SERVICES["postgres"]["image"]) == VERSIONS["POSTGRES_IMAGE"]
    assert VERSIONS["KAFKA_IMAGE"].endswith(":" + VERSIONS["KAFKA_VERSION"])
    assert VERSIONS["APICURIO_IMAGE"].endswith(":" + VERSIONS["APICURIO_VERSION"])
    assert VERSIONS["SPARK_BASE_IMAGE"].split(":")[1].startswith(VERSIONS["SPARK_VERSION"] + "-")


def test_spark_services_are_built_from_spark_dockerfile_on_the_pinned_spark():
    for name in ("spark-master", "spark-worker-1", "spark-worker-2", "init", "jupyter"):
        build = SERVICES[name]["build"]
        assert build["dockerfile"] == "spark/Dockerfile"
        assert _resolve(build["args"]["SPARK_BASE_IMAGE"]) == VERSIONS["SPARK_BASE_IMAGE"]
        assert _resolve(build["args"]["SPARK_VERSION"]) == VERSIONS["SPARK_VERSION"]
    dockerfile = (REPO_ROOT / "spark" / "Dockerfile").read_text()
    assert "spark-connectors.pom.xml" in dockerfile and "/opt/spark/jars/" in dockerfile


def test_every_long_running_service_has_a_healthcheck_and_waits_for_healthy_dependencies():
    for name, service in SERVICES.items():
        if name in ONE_SHOT:
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name, service in SERVICES.items():
        for dependency, condition in service.get("depends_on", {}).items():
            expected: dict[str, object] = {
                "condition": "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            }
            if dependency in BROKER_SERVICES and name == "init":  # one profile's broker runs, the other's not
                expected["required"] = False
            assert condition == expected, f"{name} -> {dependency}"
            assert dependency in SERVICES


def test_host_ports_are_the_local_stacks_and_bound_to_loopback():
    settings = load_settings(env={})
    expected = {
        "kafka": settings.kafka.broker_port(1),
        "kafka-2": settings.kafka.broker_port(2),
        "kafka-3": settings.kafka.broker_port(3),
        "schema-registry": settings.registry.port,
        "spark-worker-1": settings.spark.worker_ui_ports[0],
        "spark-worker-2": settings.spark.worker_ui_ports[1],
        "console": settings.console.port,
        "postgres": settings.postgres.port,
    }
    for name, port in expected.items():
        assert port in _host_ports(SERVICES[name]), f"{name} does not publish {port}"
    assert set(_host_ports(SERVICES["spark-master"])) == {settings.spark.master_port, settings.spark.master_ui_port}
    for broker in ("kafka", "redpanda"):  # the two profiles never run together; within each, no port twice
        running = [
            s
            for s in SERVICES.values()
            if set(s.get("profiles", [broker])) & {broker, "cluster", "jupyter"}
            and not (broker == "redpanda" and "cluster" in s.get("profiles", []))
        ]
        published = [port for service in running for port in _host_ports(service)]
        assert len(published) == len(set(published)), f"two services publish the same host port ({broker})"
    for name, service in SERVICES.items():
        assert set(_host_ports(service).values()) <= {"127.0.0.1"}, f"{name} publishes beyond loopback"


def test_kafka_has_an_internal_and_a_host_listener_and_runs_kraft():
    env = {**COMPOSE["x-kafka-env"], **SERVICES["kafka"]["environment"]}
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert advertised["INTERNAL"] == "kafka:29092"
    assert advertised["HOST"] == "127.0.0.1:9092"
    assert "controller" in env["KAFKA_PROCESS_ROLES"]
    assert "ZOOKEEPER" not in " ".join(env).upper()


def test_topics_come_from_conf_through_the_same_init_code_as_the_local_stack():
    init = SERVICES["init"]
    assert init["command"] == ["python3", "-m", "stack", "init"]
    assert "./conf:/opt/pipeline/conf:ro" in init["volumes"]
    assert init["restart"] == "no"


@pytest.mark.parametrize(
    "profile, services",
    [
        ("jupyter", {"jupyter"}),
        ("cluster", {"kafka-2", "kafka-3"}),
        ("kafka", {"kafka", "schema-registry"}),
        ("redpanda", {"redpanda"}),
    ],
)
def test_optional_services_sit_behind_profiles(profile, services):
    assert {name for name, s in SERVICES.items() if profile in s.get("profiles", [])} == services


SECURE = yaml.safe_load((REPO_ROOT / "docker-compose.secure.yml").read_text())


def test_the_secure_override_puts_every_listener_behind_sasl_with_acls():
    env = SECURE["services"]["kafka"]["environment"]
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(protocols) == {"CONTROLLER", "INTERNAL", "HOST"} and set(protocols.values()) == {"SASL_PLAINTEXT"}
    assert "StandardAuthorizer" in env["KAFKA_AUTHORIZER_CLASS_NAME"]
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert set(SECURE["services"]) - set(SERVICES) == set()  # it only overrides services that exist


def test_the_secure_override_holds_no_password_only_required_variables():
    text = (REPO_ROOT / "docker-compose.secure.yml").read_text()
    passwords = re.findall(r'password="([^"]*)"', text) + re.findall(r"_PASSWORD: (.+)", text)
    # every role's Kafka password, and the console's own login (CONSOLE_PASSWORD)
    assert passwords and all(re.fullmatch(r"\$\{(KAFKA_[A-Z]+|CONSOLE)_PASSWORD:\?[^}]+\}", p) for p in passwords), (
        passwords
    )
    init_env = SECURE["services"]["init"]["environment"]
    assert init_env["SECURE"] == "1" and init_env["KAFKA_TLS"] == "0"  # the Docker listeners have no TLS
    from stack.security import declared_roles, load_security_spec

    assert {key for key in init_env if key.endswith("_PASSWORD")} == {
        f"KAFKA_{role.upper()}_PASSWORD" for role in declared_roles(load_security_spec())
    }
    for name in ("spark-master", "spark-worker-1", "spark-worker-2"):
        assert SECURE["services"][name]["environment"]["KAFKA_SASL_USERNAME"] == "spark"
    console = SECURE["services"]["console"]["environment"]
    assert console["KAFKA_SASL_USERNAME"] == "console" and "CONSOLE_PASSWORD" in console  # read-only, own login


def test_secure_make_up_on_docker_adds_the_override_and_hands_it_the_passwords(tmp_path):
    from stack.compose import compose_environment, compose_files

    settings = load_settings(env={"SECURE": "1", "STACK_HOME": str(tmp_path)})
    assert compose_files(settings)[-1].endswith("docker-compose.secure.yml")
    env = compose_environment(settings)
    stored = read_env_file(tmp_path / "secrets" / "credentials.env")
    roles = [f"KAFKA_{role}_PASSWORD" for role in ("ADMIN", "PRODUCER", "CONSUMER", "SPARK")]
    assert all(env[key] == stored[key] and len(stored[key]) >= 24 for key in roles)
    login = read_env_file(tmp_path / "secrets" / "producer.env")
    assert login["KAFKA_SASL_USERNAME"] == "producer" and login["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert oct((tmp_path / "secrets" / "credentials.env").stat().st_mode & 0o777) == "0o600"
    plain = load_settings(env={"STACK_HOME": str(tmp_path)})
    assert compose_files(plain)[-1].endswith("docker-compose.yml")


def test_the_redpanda_profile_answers_to_kafkas_names_and_ports_so_the_pipeline_is_unchanged():
    redpanda = SERVICES["redpanda"]
    assert set(redpanda["networks"]["default"]["aliases"]) == {"kafka", "schema-registry"}
    flags = dict(arg.split("=", 1) for arg in redpanda["command"][2:])
    assert flags["--advertise-kafka-addr"] == "internal://kafka:29092,external://127.0.0.1:9092"
    assert flags["--schema-registry-addr"].endswith(":8080")
    assert _host_ports(redpanda) == {9092: "127.0.0.1", 8081: "127.0.0.1"}
    assert _resolve(redpanda["image"]) == VERSIONS["REDPANDA_IMAGE"] and VERSIONS["REDPANDA_IMAGE"].count(":v") == 1
    # every service reaches the registry through one variable: Apicurio's path, or Redpanda's root
    for name in ("spark-master", "init"):
        assert (
            SERVICES[name]["environment"]["SCHEMA_REGISTRY_URL"]
            == "http://schema-registry:8080${SCHEMA_REGISTRY_PATH-/apis/ccompat/v7}"
        )


def test_stack_broker_redpanda_picks_its_profile_and_the_registrys_root_path(tmp_path):
    from stack.compose import compose_environment

    redpanda = load_settings(env={"STACK_BROKER": "redpanda", "STACK_HOME": str(tmp_path)})
    env = compose_environment(redpanda)
    assert "redpanda" in env["COMPOSE_PROFILES"].split(",") and "kafka" not in env["COMPOSE_PROFILES"].split(",")
    assert env["SCHEMA_REGISTRY_PATH"] == "" and redpanda.registry.url == "http://127.0.0.1:8081"
    kafka = compose_environment(load_settings(env={"STACK_HOME": str(tmp_path)}))
    assert kafka["COMPOSE_PROFILES"].split(",") == ["kafka"] and "SCHEMA_REGISTRY_PATH" not in kafka


def test_the_init_service_logs_in_as_the_docker_listeners_expect_without_tls(tmp_path):
    from stack.kafka_node import KafkaNode
    from stack.service import stack_admin_auth

    settings = load_settings(env={"SECURE": "1", "KAFKA_TLS": "0", "STACK_HOME": str(tmp_path)})
    auth = stack_admin_auth(settings)
    assert auth["security.protocol"] == "SASL_PLAINTEXT" and "ssl.ca.location" not in auth
    properties = KafkaNode(name="kafka-1", settings=settings).server_properties()
    assert properties["listener.security.protocol.map"] == "CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
    assert not any(key.startswith("ssl.") for key in properties)
    assert not (tmp_path / "secrets" / "tls").exists()  # no key store made for a stack that does not use it


def test_the_spark_image_installs_the_runtime_and_console_but_no_test_tools():
    dockerfile = (REPO_ROOT / "spark" / "Dockerfile").read_text()
    spark_stage = dockerfile.split("AS spark")[1].split("AS jupyter")[0]
    arguments = re.search(r"requirements_of\.py /opt/pipeline/pyproject\.toml ([^>]+)>", spark_stage).group(1).split()
    listed = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "spark" / "requirements_of.py"),
            str(REPO_ROOT / "pyproject.toml"),
            *arguments,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    names = {re.match(r"[A-Za-z0-9_.\-]+", line).group(0).lower() for line in listed}
    assert {"confluent-kafka", "fastavro", "pydantic", "fastapi"} <= names
    assert not names & {"pytest", "pytest-timeout", "chispa", "selenium", "ruff", "mypy", "pyspark"}
    assert "[dev]" not in dockerfile and "[tests]" not in dockerfile


def _listening_port(name: str, port: int) -> bool:
    """Whether the compose service listens on the port inside its network (its command, environment or image)."""
    service = SERVICES[name]
    text = yaml.safe_dump({key: service.get(key) for key in ("command", "environment", "healthcheck", "ports")})
    return str(port) in text


def test_prometheus_on_compose_scrapes_the_services_by_name_with_the_local_stacks_code_and_rules(tmp_path):
    from stack.compose import compose_environment
    from stack.prometheus import COMPOSE_RULE_FILE, compose_configuration_path

    prometheus = SERVICES["prometheus"]
    assert _resolve(prometheus["image"]) == VERSIONS["PROMETHEUS_IMAGE"]
    assert "./conf/prometheus/alerts.yml:" + COMPOSE_RULE_FILE + ":ro" in prometheus["volumes"]
    settings = load_settings(env={"STACK_HOME": str(tmp_path), "BROKERS": "3"})
    compose_environment(settings)  # what `make up` runs first on Docker: it writes the configuration
    written = compose_configuration_path(settings)
    mounted = [volume for volume in prometheus["volumes"] if volume.endswith(":/etc/prometheus/prometheus.yml:ro")]
    assert mounted == [f"./.stack/compose/{written.name}:/etc/prometheus/prometheus.yml:ro"]
    configuration = yaml.safe_load(written.read_text())
    assert configuration["rule_files"] == [COMPOSE_RULE_FILE]
    jobs = {job["job_name"]: job for job in configuration["scrape_configs"]}
    assert {"kafka", "schema-registry", "spark-master", "spark-worker", "console"} <= set(jobs)
    for job in configuration["scrape_configs"]:
        for target in (target for group in job["static_configs"] for target in group["targets"]):
            host, port = target.rsplit(":", 1)
            if job["job_name"] == "prometheus":
                continue
            assert host in SERVICES, f"{job['job_name']} scrapes {host}, not a compose service"
            assert _listening_port(host, int(port)), f"{host} does not listen on {port}"
    brokers = [group["labels"]["broker"] for group in jobs["kafka"]["static_configs"]]
    assert brokers == ["1", "2", "3"], "one kafka job, each broker a labelled target (Prometheus refuses two jobs)"


def test_compose_brokers_and_spark_daemons_carry_the_local_stacks_metrics_settings():
    from stack.kafka_node import JMX_EXPORTER_JAR

    jar, listen = COMPOSE["x-kafka-env"]["KAFKA_OPTS"].removeprefix("-javaagent:").split("=")
    port, rules = listen.split(":")
    assert jar == f"/opt/jmx-exporter/{JMX_EXPORTER_JAR}" and port == "9404"  # the jar `make jars` copies
    assert rules.startswith("/opt/pipeline-conf/prometheus/")
    assert (REPO_ROOT / "conf" / "prometheus" / rules.rsplit("/", 1)[1]).is_file()
    for broker in ("kafka", "kafka-2", "kafka-3"):
        volumes = SERVICES[broker]["volumes"]
        assert "./.stack/lib/jmx-exporter:/opt/jmx-exporter:ro" in volumes, broker
        assert "./conf/prometheus:/opt/pipeline-conf/prometheus:ro" in volumes, broker
    daemon_options = dict(
        option.removeprefix("-D").split("=", 1)
        for option in COMPOSE["x-spark"]["environment"]["SPARK_DAEMON_JAVA_OPTS"].split()
    )
    assert (REPO_ROOT / daemon_options["spark.metrics.conf"].removeprefix("/opt/pipeline/")).is_file()
    # the master counts a silent worker lost as soon as the local stack's does
    assert int(daemon_options["spark.worker.timeout"]) == load_settings(env={}).spark.worker_timeout_s
    assert all("./:/opt/pipeline" in SERVICES[name]["volumes"] for name in ("spark-master", "spark-worker-1"))
