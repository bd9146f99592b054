"""Typed, validated settings of the local stack: conf/stack.yaml, conf/versions.env and the environment.

Environment overrides: BROKERS, WORKERS, STACK_HOME, KAFKA_BOOTSTRAP_SERVERS, SCHEMA_REGISTRY_URL, and
PIPELINE_CONF_DIR for a conf folder other than the one installed with the package. Relative paths in the settings
(the state folder, data files, checkpoints) start at the folder that holds conf/ (see `resolve`).

Loaded once into frozen objects and passed down; a bad key is refused at start-up with its name.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline_config.errors import CannotRunError


def _conf_dir() -> Path:
    """PIPELINE_CONF_DIR, else the conf/ folder installed with the package (package data `pipeline_config.conf`:
    the checkout's conf/ itself in an editable install), else ./conf. Never raises: a module that only imports
    the settings (a job's code on an executor) does not need the files; reading a missing one names its path."""
    if os.environ.get("PIPELINE_CONF_DIR"):
        return Path(os.environ["PIPELINE_CONF_DIR"]).resolve()
    spec = importlib.util.find_spec("pipeline_config.conf")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
    return Path("conf").resolve()


CONF_DIR = _conf_dir()


def resolve(path: Path | str) -> Path:
    """A path of the settings made absolute. Relative ones start at the folder that holds conf/ (the checkout), or
    at the working directory when conf/ is the copy installed inside the package."""
    path = Path(path)
    if path.is_absolute():
        return path
    base = Path.cwd() if CONF_DIR.parent.name == "pipeline_config" else CONF_DIR.parent
    return (base / path).resolve()


class SettingsError(CannotRunError):
    """A configuration file or variable is missing or wrong; the message names it."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Frozen):
    brokers: int = Field(1, ge=1, le=3)
    first_port: int = Field(9092, ge=1024, le=65000)
    heap: str = Field("512m", pattern=r"^\d+[mg]$")
    num_partitions: int = Field(3, ge=1)
    # Set from KAFKA_BOOTSTRAP_SERVERS where clients reach Kafka elsewhere (inside compose: kafka:29092).
    bootstrap: str | None = None
    # SECURE=1: SASL/SCRAM authentication and ACLs (conf/security.yaml), with Kafka data of its own.
    secure: bool = False
    # With `secure`: clients reach the brokers over TLS. KAFKA_TLS=0 (the Docker stack's init service) for logins
    # over SASL_PLAINTEXT.
    tls: bool = True

    def broker_port(self, node_id: int) -> int:
        return self.first_port + 2 * (node_id - 1)

    def controller_port(self, node_id: int) -> int:
        return self.broker_port(node_id) + 1

    @property
    def bootstrap_servers(self) -> str:
        if self.bootstrap:
            return self.bootstrap
        return ",".join(f"127.0.0.1:{self.broker_port(n)}" for n in range(1, self.brokers + 1))

    @property
    def replication_factor(self) -> int:
        return min(self.brokers, 3)

    @property
    def min_insync_replicas(self) -> int:
        return 2 if self.replication_factor >= 3 else 1


class RegistrySettings(_Frozen):
    port: int = 8081
    heap: str = Field("256m", pattern=r"^\d+[mg]$")
    compatibility: str = Field(
        "BACKWARD",
        pattern=r"^(NONE|BACKWARD|FORWARD|FULL)(_TRANSITIVE)?$",
    )
    # Set from SCHEMA_REGISTRY_URL where clients reach the registry elsewhere.
    url_override: str | None = None
    # Where the Confluent-compatible API sits: under Apicurio's /apis/ccompat/v7; at the root on Redpanda.
    path: str = "/apis/ccompat/v7"

    @property
    def url(self) -> str:
        """Base URL of the Confluent-compatible API, as confluent-kafka's SchemaRegistryClient wants it."""
        return self.url_override or f"http://127.0.0.1:{self.port}{self.path}"


class ConnectSettings(_Frozen):
    enabled: bool = False  # CONNECT=1 starts the worker with the stack
    port: int = 8083  # its REST API
    heap: str = Field("384m", pattern=r"^\d+[mg]$")
    group_id: str = "pipeline-connect"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class ConsoleSettings(_Frozen):
    enabled: bool = True  # make up starts the web console (python -m console)
    port: int = 8088
    # Host headers the console answers (a DNS-rebinding page sends its own name and is refused); "*" for any.
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
    max_result_rows: int = Field(500, ge=1, le=10000)  # rows a results query returns at most
    result_timeout_s: float = Field(5, gt=0)  # its statement timeout

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# The results database's roles: jobs write as the first, pull queries and the console read as the second.
WRITER_ROLE = "pipeline"
READER_ROLE = "pipeline_reader"
METRICS_ROLE = "pipeline_metrics"  # the PostgreSQL exporter's login: PostgreSQL's pg_monitor role, nothing more


class PrometheusSettings(_Frozen):
    enabled: bool = True  # make up starts a Prometheus server scraping every service; PROMETHEUS=0 leaves it out
    port: int = 9090
    scrape_interval_s: int = Field(15, ge=1, le=300)  # also how often its alert rules are evaluated
    retention: str = Field("2d", pattern=r"^\d+[hdw]$")  # of the samples kept
    binary: str = "prometheus"  # Debian's package: /usr/bin/prometheus
    kafka_metrics_port: int = 9404  # the JMX exporter of broker n listens on this + n - 1
    connect_metrics_port: int = 9410  # the Connect worker's JMX exporter
    postgres_exporter_port: int = 9187  # the results database's exporter (Debian's prometheus-postgres-exporter)
    postgres_exporter_binary: str = "prometheus-postgres-exporter"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kafka_exporter_port(self, node_id: int) -> int:
        return self.kafka_metrics_port + node_id - 1


class PostgresSettings(_Frozen):
    enabled: bool = True  # make up starts the results database (PostgreSQL)
    host: str = "127.0.0.1"  # where clients reach it; POSTGRES_HOST=postgres inside compose
    port: int = 5432
    database: str = "pipeline"  # the results database; its tables are declared in conf/results.yaml
    shared_buffers: str = Field("64MB", pattern=r"^\d+[kMG]B$")
    max_connections: int = Field(40, ge=10)
    # The server refuses to run as root: started by root (as in CI), it runs as this unprivileged user.
    os_user: str = "postgres"
    # Where initdb and postgres are; unset: on the PATH, else the newest /usr/lib/postgresql/<version>/bin.
    bin_dir: str | None = None
    # Set from RESULTS_DATABASE_URL where the results database is elsewhere (a libpq URL; password in PGPASSFILE).
    url_override: str | None = None

    @property
    def url(self) -> str:
        """Where jobs write results, as the writer role (its password comes from PGPASSFILE, never the URL)."""
        return self.url_override or f"postgresql://{WRITER_ROLE}@{self.host}:{self.port}/{self.database}"

    @property
    def reader_url(self) -> str:
        """Where pull queries read results, as the read-only role."""
        if self.url_override:
            return self.url_override
        return f"postgresql://{READER_ROLE}@{self.host}:{self.port}/{self.database}"


class SparkSettings(_Frozen):
    master_port: int = 7077
    master_ui_port: int = 8080
    workers: int = Field(1, ge=1)
    worker_ui_ports: tuple[int, ...] = (8082, 8084)
    worker_cores: int = Field(2, ge=1)
    worker_memory: str = Field("2g", pattern=r"^\d+[mg]$")
    daemon_memory: str = Field("256m", pattern=r"^\d+[mg]$")
    # How long the master waits for a worker's heartbeat before it counts the worker lost and gives its
    # applications' cores to other workers (Spark's spark.worker.timeout, 60 s by default).
    worker_timeout_s: int = Field(20, ge=4)
    ui_host: str = "127.0.0.1"  # where the master's web UI answers; SPARK_UI_HOST=spark-master inside compose
    # A cluster other than the local stack's (SPARK_MASTER): spark://host:7077, k8s://https://..., yarn.
    master: str | None = None
    # The Python the executors run (spark.pyspark.python). Unset: on the local stack, an interpreter of its own
    # with the project's libraries but not its code (as on another host); the code comes in the job package.
    executor_python: str | None = None

    @model_validator(mode="after")
    def _enough_ui_ports(self) -> SparkSettings:
        if self.workers > len(self.worker_ui_ports):
            raise ValueError(
                f"spark.workers is {self.workers} but spark.worker_ui_ports lists only "
                f"{len(self.worker_ui_ports)} ports; add one per worker"
            )
        return self

    @property
    def master_url(self) -> str:
        return self.master or f"spark://127.0.0.1:{self.master_port}"


class JobServerSettings(_Frozen):
    # make up starts the job server (jobs/job_server.py), a Spark application that stays up and runs jobs one after
    # another without a JVM start each; JOB_SERVER=0 leaves it out. Not on the secured stack, where each job logs
    # in to Kafka with a role of its own.
    enabled: bool = True
    port: int = 7078

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


class StackSettings(_Frozen):
    # STACK_BROKER=redpanda: the compose profile with Redpanda (Kafka API and schema registry) in place of
    # Kafka and Apicurio; Docker only.
    broker: Literal["kafka", "redpanda"] = "kafka"
    state_dir: Path = Path(".stack")
    bind_host: str = "127.0.0.1"
    startup_timeout_s: float = Field(150, gt=0)
    kafka: KafkaSettings = KafkaSettings()
    registry: RegistrySettings = RegistrySettings()
    connect: ConnectSettings = ConnectSettings()
    console: ConsoleSettings = ConsoleSettings()
    postgres: PostgresSettings = PostgresSettings()
    prometheus: PrometheusSettings = PrometheusSettings()
    spark: SparkSettings = SparkSettings()
    job_server: JobServerSettings = JobServerSettings()
    versions: Mapping[str, str] = Field(default_factory=dict)

    @property
    def lib_dir(self) -> Path:
        return self.state_dir / "lib"

    @property
    def runs_job_server(self) -> bool:
        """Whether this stack has a job server: not when turned off, nor on the secured stack."""
        return self.job_server.enabled and not self.kafka.secure

    @property
    def job_package(self) -> Path:
        """The zip of the jobs' code that spark-submit ships to the executors (stack/job_package.py)."""
        return self.state_dir / "job-package" / "pipeline-jobs.zip"

    @property
    def executor_python(self) -> str:
        return self.spark.executor_python or str(self.state_dir / "spark" / "executor-python" / "bin" / "python")

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, comments and blank lines ignored (the format make, shells and compose share)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise SettingsError(f"{path}:{number}: expected KEY=VALUE, found {raw!r}")
        values[key.strip()] = value.strip()
    return values


def read_yaml(path: Path) -> dict:
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise SettingsError(f"{path} is missing") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise SettingsError(f"{path} must hold a mapping at the top level, found {type(loaded).__name__}")
    return loaded


def section(raw: dict, key: str, source: Path | str) -> dict:
    """raw[key] as a mapping (created empty when absent); a section of another type is a settings error that
    names the file and the key, not a TypeError further on."""
    value = raw.setdefault(key, {})
    if value is None:
        value = raw[key] = {}
    if not isinstance(value, dict):
        raise SettingsError(
            f"{source} is invalid:\n  {key}: must be a mapping of settings, found {type(value).__name__} {value!r}"[
                :300
            ]
        )
    return value


def _int_from_env(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"environment variable {name} must be a whole number, got {raw!r}") from None


def describe_validation_error(source: str, exc: ValidationError) -> str:
    lines = [f"{source} is invalid:"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"  {key}: {error['msg']}")
    return "\n".join(lines)


def load_settings(
    conf_dir: Path = CONF_DIR,
    env: Mapping[str, str] | None = None,
) -> StackSettings:
    """Read conf/stack.yaml and conf/versions.env, apply environment overrides, validate."""
    env = os.environ if env is None else env
    source = conf_dir / "stack.yaml"
    raw = read_yaml(source)
    raw["versions"] = read_env_file(conf_dir / "versions.env")
    for key in ("kafka", "spark", "registry", "connect", "postgres"):
        section(raw, key, source)

    brokers = _int_from_env(env, "BROKERS")
    if brokers is not None:
        raw.setdefault("kafka", {})["brokers"] = brokers
    workers = _int_from_env(env, "WORKERS")
    if workers is not None:
        raw.setdefault("spark", {})["workers"] = workers
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        raw.setdefault("kafka", {})["bootstrap"] = env["KAFKA_BOOTSTRAP_SERVERS"]
    if env.get("SCHEMA_REGISTRY_URL"):
        raw.setdefault("registry", {})["url_override"] = env["SCHEMA_REGISTRY_URL"]
    if env.get("POSTGRES_HOST"):
        raw.setdefault("postgres", {})["host"] = env["POSTGRES_HOST"]
    if env.get("RESULTS_DATABASE_URL"):
        raw.setdefault("postgres", {})["url_override"] = env["RESULTS_DATABASE_URL"]
    if env.get("SPARK_UI_HOST"):
        raw.setdefault("spark", {})["ui_host"] = env["SPARK_UI_HOST"]
    if env.get("SPARK_MASTER"):
        raw.setdefault("spark", {})["master"] = env["SPARK_MASTER"]
    if env.get("SPARK_EXECUTOR_PYTHON"):
        raw.setdefault("spark", {})["executor_python"] = env["SPARK_EXECUTOR_PYTHON"]
    if env.get("STACK_BROKER"):
        raw["broker"] = env["STACK_BROKER"]
        if env["STACK_BROKER"] == "redpanda":
            raw.setdefault("registry", {})["path"] = ""
    if env.get("POSTGRES", "").lower() in ("0", "false", "no"):
        raw.setdefault("postgres", {})["enabled"] = False
    if env.get("PROMETHEUS", "").lower() in ("0", "false", "no"):
        raw.setdefault("prometheus", {})["enabled"] = False
    if env.get("JOB_SERVER", "").lower() in ("0", "false", "no"):
        raw.setdefault("job_server", {})["enabled"] = False
    if env.get("CONNECT", "").lower() in ("1", "true", "yes"):
        raw.setdefault("connect", {})["enabled"] = True
    if env.get("SECURE", "").lower() in ("1", "true", "yes"):
        raw.setdefault("kafka", {})["secure"] = True
    if env.get("KAFKA_TLS", "").lower() in ("0", "false", "no"):
        raw.setdefault("kafka", {})["tls"] = False
    if env.get("STACK_HOME"):
        raw["state_dir"] = env["STACK_HOME"]

    try:
        settings = StackSettings.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(str(conf_dir / "stack.yaml"), exc)) from None

    state_dir = settings.state_dir
    if not state_dir.is_absolute():
        state_dir = resolve(state_dir)
    return settings.model_copy(update={"state_dir": state_dir})
