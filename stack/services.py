"""The services of the local stack: how each one is prepared, started and asked whether it is healthy.

Kafka nodes run the official kafka_2.13 jars in KRaft mode; the registry is Apicurio's Quarkus distribution
with its Confluent-compatible API; the Spark master and workers are pyspark's own `spark-class` daemons.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from stack.credentials import (
    ADMIN_ROLE,
    CONSOLE_ROLE,
    MECHANISM,
    ClientLogin,
    client_auth,
    librdkafka_auth,
    plain_jaas_config,
    secrets_dir,
    stack_credentials,
    write_client_files,
)
from stack.kafka_storage import new_cluster_id, storage_format_args
from stack.processes import PidFile
from stack.settings import REPO_ROOT, StackSettings
from stack.tls import tls_material

JVM_DIR = REPO_ROOT / "stack" / "jvm"


class StackError(Exception):
    """The stack cannot be started or used as asked; the message says why and what to do."""


def find_java(minimum_major: int = 17) -> str:
    """The java executable (JAVA_HOME first), refusing one older than the project needs."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise StackError(
            f"Java {minimum_major}+ is needed and none was found: install a JDK "
            f"(Debian: apt-get install openjdk-17-jdk-headless) or set JAVA_HOME"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):
        major = int(match.group(2))
    if major < minimum_major:
        raise StackError(f"{java} is Java {major}; Kafka 4 and Spark 4 need Java {minimum_major} or newer")
    return java


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir() or not any(path.iterdir()):
        raise StackError(f"{what} not found in {path}: run `make jars` first (it resolves them from Maven Central)")
    return path


def quiet_kafka_admin(bootstrap: str, auth: dict[str, str] | None = None):
    """An AdminClient that does not spray connection-refused lines while a broker is starting. `auth` defaults
    to the caller's own credentials from its environment (none on the unsecured stack)."""
    from confluent_kafka.admin import AdminClient

    auth = client_auth() if auth is None else auth
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, "socket.timeout.ms": 3000, **auth})


def stack_admin_auth(settings: StackSettings) -> dict[str, str]:
    """What the stack's own admin operations (health, topics, users, ACLs) connect with: on the secured stack the
    admin over SASL/PLAIN (see KafkaNode._listener_properties)."""
    if not settings.kafka.secure:
        return {}
    ca_pem = stack_ca_pem(settings)
    login = ClientLogin(stack_credentials(settings)[ADMIN_ROLE], str(ca_pem) if ca_pem else None,
                        "SASL_SSL" if ca_pem else "SASL_PLAINTEXT")
    return librdkafka_auth(login, mechanism="PLAIN")


def stack_ca_pem(settings: StackSettings) -> Path | None:
    """The CA certificate clients of the secured stack trust, or None when it runs without TLS (KAFKA_TLS=0)."""
    return tls_material(settings).ca_pem if settings.kafka.tls else None


@dataclass
class Service:
    """One daemon of the stack. Subclasses say how to start it and how to tell it is healthy."""

    name: str
    settings: StackSettings

    # --- where things live -------------------------------------------------------------------------
    @property
    def pid_file(self) -> PidFile:
        return PidFile(self.settings.run_dir / f"{self.name}.pid")

    @property
    def log_path(self) -> Path:
        return self.settings.log_dir / f"{self.name}.log"

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir / self.name

    # --- what subclasses provide -------------------------------------------------------------------
    @property
    def ports(self) -> list[int]:
        raise NotImplementedError

    @property
    def address(self) -> str:
        raise NotImplementedError

    @property
    def web_ui(self) -> str:
        return "-"

    def prepare(self) -> None:
        """One-off work before the first start (formatting storage, writing config files)."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def health(self) -> str | None:
        """None when healthy, otherwise what is still missing."""
        raise NotImplementedError


# ------------------------------------------------------------------------------------------------------
# Kafka
# ------------------------------------------------------------------------------------------------------


@dataclass
class KafkaNode(Service):
    """A KRaft node that is both broker and controller; with three of them the quorum survives one loss."""

    node_id: int = 1

    @property
    def kafka(self):
        return self.settings.kafka

    @property
    def ports(self) -> list[int]:
        return [self.kafka.broker_port(self.node_id), self.kafka.controller_port(self.node_id)]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.kafka.broker_port(self.node_id)}"

    @property
    def data_dir(self) -> Path:
        # A secured cluster keeps data of its own: its users and ACLs live in its metadata log.
        return self.settings.data_dir / (f"{self.name}-secure" if self.kafka.secure else self.name)

    @property
    def config_path(self) -> Path:
        return self.data_dir / "server.properties"

    def _listener_properties(self, broker_port: int, controller_port: int) -> dict[str, str]:
        host = self.settings.bind_host
        if not self.kafka.secure:
            return {
                "listeners": f"PLAINTEXT://{host}:{broker_port},CONTROLLER://{host}:{controller_port}",
                "advertised.listeners": f"PLAINTEXT://{host}:{broker_port}",
                "controller.listener.names": "CONTROLLER",
                "inter.broker.listener.name": "PLAINTEXT",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            }
        admin_login = plain_jaas_config(stack_credentials(self.settings)[ADMIN_ROLE])
        return {
            # Clients log in with SCRAM-SHA-512 (users created by `make up` from conf/security.yaml). Brokers,
            # controllers and the stack's own admin tools log in as the admin with SASL/PLAIN, whose only user is
            # set here: SCRAM users live in the metadata log, which controllers must load before they can check
            # any (KIP-554). docker-compose.secure.yml sets up the same.
            "listeners": f"CLIENT://{host}:{broker_port},CONTROLLER://{host}:{controller_port}",
            "advertised.listeners": f"CLIENT://{host}:{broker_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "CLIENT",
            **self._tls_properties(),
            "sasl.enabled.mechanisms": f"{MECHANISM},PLAIN",
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.client.plain.sasl.jaas.config": admin_login,
            "listener.name.client.scram-sha-512.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": admin_login,
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin",
            "allow.everyone.if.no.acl.found": "false",
        }

    def _tls_properties(self) -> dict[str, str]:
        """Clients and brokers over TLS with the stack's own CA (stack/tls.py); the controller port, which clients
        never reach, is not encrypted. Without TLS (KAFKA_TLS=0) the logins go over SASL_PLAINTEXT."""
        if not self.kafka.tls:
            return {"listener.security.protocol.map": "CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"}
        tls = tls_material(self.settings, find_java())
        return {
            "listener.security.protocol.map": "CLIENT:SASL_SSL,CONTROLLER:SASL_PLAINTEXT",
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(tls.keystore),
            "ssl.keystore.password": tls.password,
            "ssl.key.password": tls.password,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(tls.ca_pem),
        }

    def server_properties(self) -> dict[str, str]:
        kafka = self.kafka
        host = self.settings.bind_host
        voters = ",".join(
            f"{n}@{host}:{kafka.controller_port(n)}" for n in range(1, kafka.brokers + 1)
        )
        rf, min_isr = kafka.replication_factor, kafka.min_insync_replicas
        broker_port, controller_port = kafka.broker_port(self.node_id), kafka.controller_port(self.node_id)
        return {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": voters,
            **self._listener_properties(broker_port, controller_port),
            "log.dirs": str(self.data_dir / "log"),
            "num.partitions": str(kafka.num_partitions),
            "default.replication.factor": str(rf),
            "min.insync.replicas": str(min_isr),
            "offsets.topic.replication.factor": str(rf),
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": str(min_isr),
            "share.coordinator.state.topic.replication.factor": str(rf),
            "share.coordinator.state.topic.min.isr": str(min_isr),
            # A consumer group of one starts at once instead of waiting 3 s for more members.
            "group.initial.rebalance.delay.ms": "0",
        }

    def _cluster_file(self) -> Path:
        return self.settings.data_dir / ("kafka-cluster-secure.json" if self.kafka.secure else "kafka-cluster.json")

    def _cluster_id(self) -> str:
        """One cluster id for all nodes, created on first start; refuses a state folder of another size."""
        path = self._cluster_file()
        if path.exists():
            cluster = json.loads(path.read_text())
            if cluster["brokers"] != self.kafka.brokers:
                raise StackError(
                    f"the Kafka data in {self.settings.data_dir} belongs to a {cluster['brokers']}-broker cluster "
                    f"but {self.kafka.brokers} were asked for: run `make clean` first, or give the other cluster "
                    f"its own state folder with STACK_HOME=..."
                )
            return cluster["cluster_id"]
        cluster_id = new_cluster_id()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"cluster_id": cluster_id, "brokers": self.kafka.brokers}))
        return cluster_id

    def _java(self, main_class: str, *args: str, heap: str | None = None) -> list[str]:
        return kafka_jvm(self.settings, "kafka", main_class, *args, heap=heap)

    def prepare(self) -> None:
        cluster_id = self._cluster_id()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.touch(mode=0o600)  # holds the admin's password in the secured mode
        self.config_path.write_text(
            "# Written by `python -m stack` from conf/stack.yaml on every start; edit that file instead.\n"
            + "".join(f"{key}={value}\n" for key, value in self.server_properties().items())
        )
        if (self.data_dir / "log" / "meta.properties").exists():
            return
        result = subprocess.run(
            self._java("kafka.tools.StorageTool", *storage_format_args(cluster_id, self.config_path)),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            problem = result.stdout[-2000:] + result.stderr[-2000:]
            raise StackError(f"formatting the storage of {self.name} failed:\n{problem}")

    def command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.config_path), heap=self.kafka.heap)

    def health(self) -> str | None:
        try:
            metadata = quiet_kafka_admin(self.address, stack_admin_auth(self.settings)).list_topics(timeout=3)
        except Exception as exc:  # KafkaException while the broker is still starting
            return f"no metadata from {self.address} ({exc})"
        if self.node_id not in metadata.brokers:
            return f"broker {self.node_id} is not yet registered"
        missing = set(range(1, self.kafka.brokers + 1)) - set(metadata.brokers)
        if missing:
            return f"brokers {sorted(missing)} not yet in the cluster metadata"
        return None


def kafka_jvm(settings: StackSettings, jars: str, main_class: str, *args: str, heap: str | None = None) -> list[str]:
    """A java command line for one of Kafka's main classes, with the jars `make jars` put in lib/<jars>."""
    classpath = str(_require_dir(settings.lib_dir / jars, f"The {jars} jars")) + "/*"
    command = [find_java(), "-cp", classpath]
    if heap:
        command += [f"-Xmx{heap}", "-Xms128m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"]
    return [
        *command,
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={JVM_DIR / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={settings.log_dir}",
        main_class,
        *args,
    ]


# ------------------------------------------------------------------------------------------------------
# Kafka Connect
# ------------------------------------------------------------------------------------------------------


@dataclass
class KafkaConnect(Service):
    """A Kafka Connect worker in distributed mode (CONNECT=1): its connectors, offsets and status live in Kafka
    topics, and it is driven through its REST API (stack/connectors.py applies conf/connectors.yaml)."""

    @property
    def ports(self) -> list[int]:
        return [self.settings.connect.port]

    @property
    def address(self) -> str:
        return self.settings.connect.url

    @property
    def web_ui(self) -> str:
        return f"{self.settings.connect.url}/connectors?expand=status"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "connect-distributed.properties"

    def worker_properties(self) -> dict[str, str]:
        connect, rf = self.settings.connect, str(self.settings.kafka.replication_factor)
        return {
            "bootstrap.servers": self.settings.kafka.bootstrap_servers,
            "group.id": connect.group_id,
            # Lines of text in, lines of text out: what the file connectors carry.
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter",
            "config.storage.topic": f"{connect.group_id}-configs",
            "offset.storage.topic": f"{connect.group_id}-offsets",
            "status.storage.topic": f"{connect.group_id}-status",
            "config.storage.replication.factor": rf,
            "offset.storage.replication.factor": rf,
            "status.storage.replication.factor": rf,
            "offset.flush.interval.ms": "2000",
            "listeners": f"http://{self.settings.bind_host}:{connect.port}",
            "rest.advertised.host.name": self.settings.bind_host,
            "rest.advertised.port": str(connect.port),
        }

    def prepare(self) -> None:
        if self.settings.kafka.secure:
            raise StackError("Kafka Connect is not set up for the secured mode (SECURE=1); start it without CONNECT=1")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            "# Written by `python -m stack` from conf/stack.yaml on every start; edit that file instead.\n"
            + "".join(f"{key}={value}\n" for key, value in self.worker_properties().items())
        )

    def command(self) -> list[str]:
        return kafka_jvm(self.settings, "kafka-connect", "org.apache.kafka.connect.cli.ConnectDistributed",
                         str(self.config_path), heap=self.settings.connect.heap)

    def health(self) -> str | None:
        try:
            response = requests.get(f"{self.settings.connect.url}/connectors", timeout=3)
        except requests.RequestException as exc:
            return f"no answer from the REST API ({exc.__class__.__name__})"
        return None if response.ok else f"REST API answers {response.status_code}"


# ------------------------------------------------------------------------------------------------------
# Schema registry
# ------------------------------------------------------------------------------------------------------


@dataclass
class SchemaRegistry(Service):
    """Apicurio Registry 3 with its schemas in an H2 file database, so they survive a restart."""

    @property
    def ports(self) -> list[int]:
        return [self.settings.registry.port]

    @property
    def address(self) -> str:
        return self.settings.registry.url

    @property
    def web_ui(self) -> str:
        return f"http://127.0.0.1:{self.settings.registry.port}/apis/ccompat/v7/subjects"

    def _runner_jar(self) -> Path:
        home = _require_dir(self.settings.lib_dir / "apicurio", "The Apicurio Registry distribution")
        jars = sorted(home.glob("apicurio-registry-app-*-runner.jar"))
        if not jars:
            raise StackError(f"no apicurio-registry-app-*-runner.jar in {home}: run `make jars`")
        return jars[-1]

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        registry = self.settings.registry
        return [
            find_java(),
            f"-Xmx{registry.heap}",
            "-XX:+UseSerialGC",
            f"-Dquarkus.http.host={self.settings.bind_host}",
            f"-Dquarkus.http.port={registry.port}",
            # File-backed H2 instead of the default in-memory database: schemas survive `make down`/`make up`.
            f"-Dapicurio.datasource.url=jdbc:h2:file:{self.data_dir / 'registry'}",
            "-Dapicurio.datasource.jdbc.initial-size=2",
            "-Dapicurio.datasource.jdbc.min-size=2",
            "-Dapicurio.datasource.jdbc.max-size=10",
            "-jar",
            str(self._runner_jar()),
        ]

    def health(self) -> str | None:
        try:
            response = requests.get(f"{self.address}/subjects", timeout=3)
        except requests.RequestException as exc:
            return f"no answer from {self.address} ({exc.__class__.__name__})"
        if response.status_code != 200:
            return f"{self.address}/subjects answered HTTP {response.status_code}"
        return None


# ------------------------------------------------------------------------------------------------------
# Spark standalone cluster
# ------------------------------------------------------------------------------------------------------


def spark_environment(settings: StackSettings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "SPARK_HOME": str(spark_home()),
            "SPARK_LOCAL_IP": settings.bind_host,  # binds RPC and web UI to loopback only
            "SPARK_DAEMON_MEMORY": settings.spark.daemon_memory,
            "SPARK_LOG_DIR": str(settings.log_dir),
            # Executors launched by the workers run Python UDFs and foreachBatch with the project's venv.
            "PYSPARK_PYTHON": sys.executable,
        }
    )
    return env


def master_state(settings: StackSettings) -> dict:
    response = requests.get(f"http://{settings.spark.ui_host}:{settings.spark.master_ui_port}/json/", timeout=3)
    response.raise_for_status()
    return response.json()


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
            "--host", self.settings.bind_host,
            "--port", str(spark.master_port),
            "--webui-port", str(spark.master_ui_port),
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

    def command(self) -> list[str]:
        spark = self.settings.spark
        return [
            str(spark_home() / "bin" / "spark-class"),
            "org.apache.spark.deploy.worker.Worker",
            spark.master_url,
            "--host", self.settings.bind_host,
            "--webui-port", str(self.ui_port),
            "--cores", str(spark.worker_cores),
            "--memory", spark.worker_memory,
            "--work-dir", str(self.data_dir),
        ]

    def environment(self) -> dict[str, str]:
        env = spark_environment(self.settings)
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


# ------------------------------------------------------------------------------------------------------
# Web console
# ------------------------------------------------------------------------------------------------------


@dataclass
class WebConsole(Service):
    """The project's web console (python -m console, FastAPI under uvicorn): it reads Kafka, the registry,
    the Spark master and Kafka Connect, so it starts last."""

    @property
    def ports(self) -> list[int]:
        return [self.settings.console.port]

    @property
    def address(self) -> str:
        return self.settings.console.url

    @property
    def web_ui(self) -> str:
        return self.settings.console.url

    def command(self) -> list[str]:
        return [sys.executable, "-m", "console"]

    def prepare(self) -> None:
        if self.settings.kafka.secure:  # its own read-only login; the user and its ACLs come from conf/security.yaml
            credentials = stack_credentials(self.settings, (CONSOLE_ROLE,))
            write_client_files(self.settings, credentials, stack_ca_pem(self.settings))

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
        # The console loads the stack's settings itself: the same ones this stack was started with.
        settings = self.settings
        env.update({"STACK_HOME": str(settings.state_dir), "BROKERS": str(settings.kafka.brokers),
                    "WORKERS": str(settings.spark.workers), "CONNECT": "1" if settings.connect.enabled else "0",
                    "SECURE": "1" if settings.kafka.secure else "0", "KAFKA_TLS": "1" if settings.kafka.tls else "0"})
        if settings.kafka.secure:
            env["KAFKA_CREDENTIALS_FILE"] = str(secrets_dir(settings) / f"{CONSOLE_ROLE}.env")
        return env

    def health(self) -> str | None:
        try:
            response = requests.get(f"{self.settings.console.url}/api/health", timeout=3)
        except requests.RequestException as exc:
            return f"no answer ({exc.__class__.__name__})"
        return None if response.ok else f"answers {response.status_code}"


def build_services(settings: StackSettings) -> list[Service]:
    """Every service of the stack, in start order."""
    services: list[Service] = [
        KafkaNode(name=f"kafka-{n}", settings=settings, node_id=n) for n in range(1, settings.kafka.brokers + 1)
    ]
    services.append(SchemaRegistry(name="schema-registry", settings=settings))
    services.append(SparkMaster(name="spark-master", settings=settings))
    services += [
        SparkWorker(name=f"spark-worker-{n}", settings=settings, worker_id=n)
        for n in range(1, settings.spark.workers + 1)
    ]
    if settings.connect.enabled:
        services.append(KafkaConnect(name="kafka-connect", settings=settings))
    if settings.console.enabled:
        services.append(WebConsole(name="console", settings=settings))
    return services

