"""The Spark standalone master and workers: pyspark's own `spark-class` daemons."""

from __future__ import annotations

import os
import sysconfig
import venv
from dataclasses import dataclass
from pathlib import Path

import requests

from cluster.spark_master import master_state
from pipeline_config.settings import CONF_DIR, StackSettings
from stack.service import Service, spark_home


def spark_environment(settings: StackSettings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "SPARK_HOME": str(spark_home()),
            "SPARK_LOCAL_IP": settings.bind_host,  # binds RPC and web UI to loopback only
            "SPARK_DAEMON_MEMORY": settings.spark.daemon_memory,
            "SPARK_LOG_DIR": str(settings.log_dir),
            # Spark's own Prometheus endpoints on the master's and workers' web UIs.
            "SPARK_DAEMON_JAVA_OPTS": f"-Dspark.metrics.conf={CONF_DIR / 'spark-metrics.properties'}"
            f" -Dspark.worker.timeout={settings.spark.worker_timeout_s}",
        }
    )
    return env


def ensure_executor_python(settings: StackSettings) -> Path:
    """The interpreter the local workers' executors run: a virtual environment that sees this environment's
    libraries (pyspark, pandas, fastavro...) through a .pth line, but not the project's packages, whose editable
    install is itself a .pth file and .pth files are read in site folders only. So executors import the jobs
    from the job package that spark-submit ships, exactly as on a cluster that never saw this checkout."""
    python = Path(settings.executor_python)
    if python.exists():
        return python
    home = python.parent.parent
    venv.EnvBuilder(with_pip=False, clear=True).create(home)
    libraries = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    site_packages = Path(sysconfig.get_paths(vars={"base": str(home), "platbase": str(home)})["purelib"])
    (site_packages / "pipeline-runtime-libraries.pth").write_text("\n".join(libraries) + "\n")
    return python


@dataclass
class SparkMaster(Service):
    @property
    def ports(self) -> list[int]:
        return [self.settings.spark.master_port, self.settings.spark.master_ui_port]

    @property
    def address(self) -> str:
        return self.settings.spark.master_url

    @property
    def web_ui(self) -> str:
        return f"http://127.0.0.1:{self.settings.spark.master_ui_port}"

    def command(self) -> list[str]:
        spark = self.settings.spark
        return [
            str(spark_home() / "bin" / "spark-class"),
            "org.apache.spark.deploy.master.Master",
            "--host",
            self.settings.bind_host,
            "--port",
            str(spark.master_port),
            "--webui-port",
            str(spark.master_ui_port),
        ]

    def environment(self) -> dict[str, str]:
        return spark_environment(self.settings)

    def health(self) -> str | None:
        try:
            state = master_state(self.settings)
        except (requests.RequestException, ValueError) as exc:
            return f"no answer from the master's web UI ({exc.__class__.__name__})"
        if state.get("status") != "ALIVE":
            return f"master status is {state.get('status')}"
        return None


@dataclass
class SparkWorker(Service):
    worker_id: int = 1

    @property
    def ui_port(self) -> int:
        return self.settings.spark.worker_ui_ports[self.worker_id - 1]

    @property
    def ports(self) -> list[int]:
        return [self.ui_port]

    @property
    def address(self) -> str:
        return f"{self.settings.spark.worker_cores} cores, {self.settings.spark.worker_memory}"

    @property
    def web_ui(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.spark.executor_python is None:
            ensure_executor_python(self.settings)

    @property
    def working_dir(self) -> Path:
        return self.data_dir  # not the checkout: nothing of the project's source is within an executor's reach

    def command(self) -> list[str]:
        spark = self.settings.spark
        return [
            str(spark_home() / "bin" / "spark-class"),
            "org.apache.spark.deploy.worker.Worker",
            spark.master_url,
            "--host",
            self.settings.bind_host,
            "--webui-port",
            str(self.ui_port),
            "--cores",
            str(spark.worker_cores),
            "--memory",
            spark.worker_memory,
            "--work-dir",
            str(self.data_dir),
        ]

    def environment(self) -> dict[str, str]:
        env = spark_environment(self.settings)
        env.pop("PYTHONPATH", None)  # the executors' code comes from the job package only
        # Finished applications' folders (jars, logs) are removed after a day instead of piling up.
        env["SPARK_WORKER_OPTS"] = "-Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.appDataTtl=86400"
        return env

    def health(self) -> str | None:
        try:
            workers = master_state(self.settings).get("workers", [])
        except (requests.RequestException, ValueError) as exc:
            return f"the master does not answer ({exc.__class__.__name__})"
        for worker in workers:
            if worker.get("state") == "ALIVE" and worker.get("webuiaddress", "").endswith(f":{self.ui_port}"):
                return None
        return "not registered with the master as ALIVE"
