"""docker-compose.yml checked without Docker: what can be known from the file itself."""

from __future__ import annotations

import re

import pytest
import yaml

from stack.settings import REPO_ROOT, load_settings, read_env_file

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
VERSIONS = read_env_file(REPO_ROOT / "conf" / "versions.env")
ONE_SHOT = {"init"}


def _resolve(value: str) -> str:
    """${VAR:-default} as compose resolves it with --env-file conf/versions.env."""
    return re.sub(
        r"\$\{(\w+):-([^}]*)\}", lambda m: VERSIONS.get(m.group(1), m.group(2)), value
    )


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
            expected = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert condition == {"condition": expected}, f"{name} -> {dependency}"
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
    }
    for name, port in expected.items():
        assert port in _host_ports(SERVICES[name]), f"{name} does not publish {port}"
    assert set(_host_ports(SERVICES["spark-master"])) == {settings.spark.master_port, settings.spark.master_ui_port}
    published = [port for service in SERVICES.values() for port in _host_ports(service)]
    assert len(published) == len(set(published)), "two services publish the same host port"
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


@pytest.mark.parametrize("profile, services", [("jupyter", {"jupyter"}), ("cluster", {"kafka-2", "kafka-3"})])
def test_optional_services_sit_behind_profiles(profile, services):
    assert {name for name, s in SERVICES.items() if profile in s.get("profiles", [])} == services
