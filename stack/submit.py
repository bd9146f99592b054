"""spark-submit against the cluster (the local stack's, or SPARK_MASTER) with the connector jars,
conf/spark-defaults.conf and the job package.

The driver runs here (client mode) with this environment's Python and the installed packages. The executors get
the jobs' code only from the job package (`--py-files`, see stack/job_package.py) and run the interpreter of
`spark.pyspark.python`: on the local stack one that has the project's libraries but cannot see its source, as an
executor on another host could not.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline_config.credentials import pgpass_path
from pipeline_config.errors import CannotRunError
from pipeline_config.settings import CONF_DIR, StackSettings
from stack.job_package import current_package
from stack.service import StackError, spark_home

SPARK_DEFAULTS = CONF_DIR / "spark-defaults.conf"


def connector_jars(settings: StackSettings) -> list[Path]:
    jars = sorted((settings.lib_dir / "spark-connectors").glob("*.jar"))
    if not jars:
        raise StackError(f"no connector jars in {settings.lib_dir / 'spark-connectors'}: run `make jars`")
    return jars


def job_application(job: str) -> str:
    """The file spark-submit runs for a job named like its module (`vendor_counts`), or a path given as is."""
    if job.endswith(".py"):
        return job
    spec = importlib.util.find_spec(f"jobs.{job}")
    if spec is None or spec.origin is None:
        raise CannotRunError(f"no job named {job!r}: `python -m jobs` lists them (stream_sql runs SQL files)")
    return spec.origin


def spark_default(key: str) -> str | None:
    """A property of conf/spark-defaults.conf (as Spark reads it: a key, whitespace, the value, per line)."""
    for line in SPARK_DEFAULTS.read_text().splitlines():
        parts = line.split(None, 1)
        if parts and parts[0] == key:
            return parts[1].strip() if len(parts) > 1 else ""
    return None


def driver_java_options(conf: dict[str, str] | None) -> str:
    """spark.driver.extraJavaOptions (from `conf`, else conf/spark-defaults.conf) with the drivers' log4j
    configuration added: --driver-java-options would otherwise replace the defaults' JVM flags."""
    key = "spark.driver.extraJavaOptions"
    flags = (conf or {}).get(key, spark_default(key) or "")
    return f"{flags} -Dlog4j2.configurationFile=file:{CONF_DIR / 'log4j2-driver.properties'}".strip()


def submit_environment(settings: StackSettings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "SPARK_HOME": str(spark_home()),
            "SPARK_LOCAL_IP": settings.bind_host,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            # The driver loads the same stack settings as the caller, wherever it runs from.
            "STACK_HOME": str(settings.state_dir),
            "PIPELINE_CONF_DIR": str(CONF_DIR),
        }
    )
    # The results database's logins, in libpq's own password file (unless the caller points at another).
    env.setdefault("PGPASSFILE", str(pgpass_path(settings)))
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
        "--properties-file",
        str(SPARK_DEFAULTS),
        "--master",
        master or settings.spark.master_url,
        "--jars",
        ",".join(str(jar) for jar in connector_jars(settings)),
        "--py-files",
        str(current_package(settings.job_package)),
        "--conf",
        f"spark.pyspark.python={settings.executor_python}",
        "--conf",
        f"spark.pyspark.driver.python={sys.executable}",
        "--conf",
        f"spark.metrics.conf={CONF_DIR / 'spark-metrics.properties'}",
        "--conf",
        f"spark.scheduler.allocation.file={CONF_DIR / 'fair-scheduler.xml'}",
        "--driver-java-options",
        driver_java_options(conf),
    ]
    for key, value in (conf or {}).items():
        if key != "spark.driver.extraJavaOptions":
            command += ["--conf", f"{key}={value}"]
    return [*command, application, *application_args]
