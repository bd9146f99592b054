"""Settings: defaults, environment overrides, and bad values refused with the key named."""

from __future__ import annotations

import shutil

import pytest

from pipeline_config.settings import (
    CONF_DIR,
    SettingsError,
    load_settings,
    read_env_file,
)


@pytest.fixture()
def conf_copy(tmp_path):
    target = tmp_path / "conf"
    shutil.copytree(CONF_DIR, target)
    return target


def test_defaults_give_one_broker_and_the_ports_users_know():
    settings = load_settings(env={})
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert (settings.kafka.replication_factor, settings.kafka.min_insync_replicas) == (1, 1)
    assert settings.registry.url == "http://127.0.0.1:8081/apis/ccompat/v7"
    assert settings.spark.master_url == "spark://127.0.0.1:7077"
    assert settings.state_dir.is_absolute()


def test_three_brokers_give_replication_three_and_min_insync_two():
    settings = load_settings(env={"BROKERS": "3"})
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"
    assert [settings.kafka.controller_port(n) for n in (1, 2, 3)] == [9093, 9095, 9097]
    assert (settings.kafka.replication_factor, settings.kafka.min_insync_replicas) == (3, 2)


def test_environment_overrides_bootstrap_and_registry_for_clients_elsewhere():
    settings = load_settings(env={"KAFKA_BOOTSTRAP_SERVERS": "kafka:29092", "SCHEMA_REGISTRY_URL": "http://r:8080"})
    assert settings.kafka.bootstrap_servers == "kafka:29092"
    assert settings.registry.url == "http://r:8080"


def test_non_numeric_brokers_variable_is_refused_by_name():
    with pytest.raises(SettingsError, match="BROKERS must be a whole number"):
        load_settings(env={"BROKERS": "three"})


def test_more_workers_than_ui_ports_is_refused_with_the_keys_named():
    with pytest.raises(SettingsError, match=r"spark\.workers is 3 but spark\.worker_ui_ports lists only 2"):
        load_settings(env={"WORKERS": "3"})


def test_unknown_key_is_refused_with_its_path(conf_copy):
    text = (conf_copy / "stack.yaml").read_text().replace("  heap: 256m", "  heap: 256m\n  colour: blue")
    (conf_copy / "stack.yaml").write_text(text)
    with pytest.raises(SettingsError, match=r"registry\.colour: Extra inputs are not permitted"):
        load_settings(conf_copy, env={})


def test_wrong_type_is_refused_with_its_path(conf_copy):
    text = (conf_copy / "stack.yaml").read_text().replace("master_port: 7077", "master_port: seven")
    (conf_copy / "stack.yaml").write_text(text)
    with pytest.raises(SettingsError, match=r"spark\.master_port: Input should be a valid integer"):
        load_settings(conf_copy, env={})


@pytest.mark.parametrize("section", ["kafka", "spark", "registry", "connect"])
def test_a_section_of_the_wrong_type_is_refused_naming_file_and_key_even_with_an_override(conf_copy, section):
    with open(conf_copy / "stack.yaml", "a") as handle:
        handle.write(f'\n{section}: "x"\n')  # YAML lets a later key replace the earlier section
    with pytest.raises(SettingsError, match=rf"stack\.yaml is invalid:\n  {section}: must be a mapping of settings"):
        load_settings(conf_copy, env={"BROKERS": "3", "WORKERS": "2", "SECURE": "1"})


def test_malformed_yaml_is_refused_with_the_file_named(conf_copy):
    (conf_copy / "stack.yaml").write_text("kafka: [unclosed\n")
    with pytest.raises(SettingsError, match=r"stack\.yaml is not valid YAML"):
        load_settings(conf_copy, env={})


def test_bad_line_in_versions_env_is_refused_with_its_line(tmp_path):
    path = tmp_path / "versions.env"
    path.write_text("# comment\nSPARK_VERSION=4.2.0\nnot a pair\n")
    with pytest.raises(SettingsError, match=r"versions\.env:3: expected KEY=VALUE"):
        read_env_file(path)


@pytest.mark.parametrize(
    ("env", "job_server_runs"),
    [({}, True), ({"JOB_SERVER": "0"}, False), ({"SECURE": "1"}, False)],
    ids=["default", "JOB_SERVER=0", "secured stack"],
)
def test_the_job_server_starts_with_the_stack_unless_left_out_or_secured(env, job_server_runs):
    from stack.services import build_services

    names = [service.name for service in build_services(load_settings(env=env))]
    assert ("job-server" in names) is job_server_runs
    if job_server_runs:  # after the cluster it runs on
        assert names.index("job-server") > max(i for i, name in enumerate(names) if name.startswith("spark-"))
