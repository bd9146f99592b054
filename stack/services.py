"""Every service of the local stack, in the order they start."""

from __future__ import annotations

from pipeline_config.settings import StackSettings
from stack.job_server import JobServer
from stack.kafka_connect import KafkaConnect
from stack.kafka_node import KafkaNode
from stack.postgres import PostgresServer
from stack.postgres_exporter import PostgresExporter
from stack.prometheus import PrometheusServer
from stack.schema_registry import SchemaRegistry
from stack.service import Service
from stack.spark_cluster import SparkMaster, SparkWorker
from stack.web_console import WebConsole


def build_services(settings: StackSettings) -> list[Service]:
    """Every service of the stack, in start order."""
    services: list[Service] = [
        KafkaNode(name=f"kafka-{n}", settings=settings, node_id=n) for n in range(1, settings.kafka.brokers + 1)
    ]
    services.append(SchemaRegistry(name="schema-registry", settings=settings))
    if settings.postgres.enabled:
        services.append(PostgresServer(name="postgres", settings=settings))
    services.append(SparkMaster(name="spark-master", settings=settings))
    services += [
        SparkWorker(name=f"spark-worker-{n}", settings=settings, worker_id=n)
        for n in range(1, settings.spark.workers + 1)
    ]
    if settings.runs_job_server:
        services.append(JobServer(name="job-server", settings=settings))
    if settings.connect.enabled:
        services.append(KafkaConnect(name="kafka-connect", settings=settings))
    if settings.console.enabled:
        services.append(WebConsole(name="console", settings=settings))
    if settings.prometheus.enabled and settings.postgres.enabled:
        services.append(PostgresExporter(name="postgres-exporter", settings=settings))
    if settings.prometheus.enabled:  # last: it scrapes everything above
        services.append(PrometheusServer(name="prometheus", settings=settings))
    return services
