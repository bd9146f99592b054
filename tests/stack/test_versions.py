"""One Spark version across pyspark, the connector jars and the image; every JVM version in one place."""

from __future__ import annotations

import re
import tomllib

import pyspark

from pipeline_config.settings import load_settings, read_env_file
from tests.paths import REPO_ROOT

VERSIONS = read_env_file(REPO_ROOT / "conf" / "versions.env")


def test_installed_pyspark_is_the_pinned_spark_version():
    assert pyspark.__version__ == VERSIONS["SPARK_VERSION"]
    constraints = (REPO_ROOT / "constraints.txt").read_text()
    assert f"pyspark=={VERSIONS['SPARK_VERSION']}\n" in constraints


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[\w.]+", line), f"not pinned: {line}"
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_every_python_dependency_is_pinned_exactly():
    """Each distribution pyproject.toml names (runtime and every extra) has its exact version in constraints.txt,
    so `make venv` installs the same everywhere."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *(d for extra in project["optional-dependencies"].values() for d in extra)]
    names = {re.match(r"[A-Za-z0-9_.\-]+", d).group(0).lower().replace("_", "-") for d in wanted}
    names.discard(project["name"])
    pins = _pins()
    assert not names - pins.keys(), f"not in constraints.txt: {sorted(names - pins.keys())}"


def test_poms_take_versions_from_properties_not_literals():
    for pom in (REPO_ROOT / "stack" / "jvm").glob("*.pom.xml"):
        for version in re.findall(r"<version>([^<]+)</version>", pom.read_text()):
            assert version == "1" or version.startswith("${"), f"{pom.name} pins {version} outside versions.env"


def test_resolved_connector_jars_are_for_the_pinned_spark_and_scala():
    lib = load_settings(env={}).lib_dir / "spark-connectors"
    names = sorted(path.name for path in lib.glob("*.jar"))
    suffix = f"_{VERSIONS['SCALA_BINARY_VERSION']}-{VERSIONS['SPARK_VERSION']}.jar"
    assert f"spark-sql-kafka-0-10{suffix}" in names
    assert f"spark-avro{suffix}" in names
    assert not [n for n in names if n.startswith(("scala-library", "hadoop-client", "slf4j"))], names
