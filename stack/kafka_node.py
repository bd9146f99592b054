"""A Kafka node in KRaft mode (broker and controller in one process), from the official kafka_2.13 jars."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cluster.clients import admin_client
from pipeline_config.credentials import (
    ADMIN_ROLE,
    MECHANISM,
    plain_jaas_config,
    stack_credentials,
)
from pipeline_config.settings import CONF_DIR, StackSettings
from stack.kafka_storage import new_cluster_id, storage_format_args
from stack.service import (
    JVM_DIR,
    Service,
    StackError,
    find_java,
    require_dir,
    stack_admin_auth,
)
from stack.tls import tls_material

JMX_EXPORTER_JAR = "jmx_prometheus_javaagent.jar"  # as `make jars` copies it, without its version


@dataclass
class KafkaNode(Service):
    """A KRaft node that is both broker and controller; with three of them the quorum survives one loss."""

    node_id: int = 1

    @property
    def kafka(self):
        return self.settings.kafka

    @property
    def ports(self) -> list[int]:
        ports = [self.kafka.broker_port(self.node_id), self.kafka.controller_port(self.node_id)]
        if self.settings.prometheus.enabled:
            ports.append(self.settings.prometheus.kafka_exporter_port(self.node_id))
        return ports

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
            "listener.name.client.scram-sha-512.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
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
        voters = ",".join(f"{n}@{host}:{kafka.controller_port(n)}" for n in range(1, kafka.brokers + 1))
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
        metrics = (self.settings.prometheus.kafka_exporter_port(self.node_id), "kafka-jmx.yml")
        return kafka_jvm(
            self.settings, "kafka", "kafka.Kafka", str(self.config_path), heap=self.kafka.heap, metrics=metrics
        )

    def health(self) -> str | None:
        try:
            metadata = admin_client(self.address, stack_admin_auth(self.settings)).list_topics(timeout=3)
        except Exception as exc:  # KafkaException while the broker is still starting
            return f"no metadata from {self.address} ({exc})"
        if self.node_id not in metadata.brokers:
            return f"broker {self.node_id} is not yet registered"
        missing = set(range(1, self.kafka.brokers + 1)) - set(metadata.brokers)
        if missing:
            return f"brokers {sorted(missing)} not yet in the cluster metadata"
        return None


def kafka_jvm(
    settings: StackSettings,
    jars: str,
    main_class: str,
    *args: str,
    heap: str | None = None,
    metrics: tuple[int, str] | None = None,
    log_config: str = "log4j2.properties",
) -> list[str]:
    """A java command line for one of Kafka's main classes, with the jars `make jars` put in lib/<jars>; with
    `metrics` (port, rules file of conf/prometheus/), the Prometheus JMX exporter agent serving /metrics there."""
    classpath = str(require_dir(settings.lib_dir / jars, f"The {jars} jars")) + "/*"
    command = [find_java(), "-cp", classpath]
    if heap:
        command += [f"-Xmx{heap}", "-Xms128m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"]
    if metrics is not None and settings.prometheus.enabled:
        port, rules = metrics
        agent = require_dir(settings.lib_dir / "jmx-exporter", "The Prometheus JMX exporter") / JMX_EXPORTER_JAR
        command.append(f"-javaagent:{agent}={settings.bind_host}:{port}:{CONF_DIR / 'prometheus' / rules}")
    return [
        *command,
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={JVM_DIR / log_config}",
        f"-Dkafka.logs.dir={settings.log_dir}",
        main_class,
        *args,
    ]
