"""spark-submit against the local standalone cluster with the connector jars and conf/spark-defaults.conf."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

from stack.services import StackError, spark_home
from stack.settings import CONF_DIR, REPO_ROOT, StackSettings

SPARK_DEFAULTS = CONF_DIR / "spark-defaults.conf"


def connector_jars(settings: StackSettings) -> list[Path]:
    jars = sorted((settings.lib_dir / "spark-connectors").glob("*.jar"))
    if not jars:
        raise StackError(f"no connector jars in {settings.lib_dir / 'spark-connectors'}: run `make jars`")
    return jars


def submit_environment(settings: StackSettings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "SPARK_HOME": str(spark_home()),
            "SPARK_LOCAL_IP": settings.bind_host,
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            # The driver imports the project's packages (jobs, producers, stack) from the repository.
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        }
    )
    return env


def submit_command(
    settings: StackSettings,
    application: str,
    application_args: Sequence[str] = (),
    conf: dict[str, str] | None = None,
    master: str | None = None,
) -> list[str]:
    command = [
        str(spark_home() / "bin" / "spark-submit"),
        "--properties-file", str(SPARK_DEFAULTS),
        "--master", master or settings.spark.master_url,
        "--jars", ",".join(str(jar) for jar in connector_jars(settings)),
        # Executors run on this machine too and import the same packages (pandas UDFs, state functions).
        "--conf", f"spark.executorEnv.PYTHONPATH={REPO_ROOT}",
        "--driver-java-options", f"-Dlog4j2.configurationFile=file:{CONF_DIR / 'log4j2-driver.properties'}",
    ]
    for key, value in (conf or {}).items():
        command += ["--conf", f"{key}={value}"]
    return [*command, application, *application_args]
