"""Bring the local stack up, report on it, and take it down again."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass

import requests

from cluster.clients import admin_client
from cluster.table_topics import load_declared_tables
from cluster.topics import apply_topics, load_topic_specs
from pipeline_config.credentials import (
    pgpass_path,
    secrets_dir,
    stack_credentials,
    write_client_files,
)
from pipeline_config.settings import StackSettings
from stack.kafka_node import KafkaNode
from stack.postgres import PostgresServer
from stack.processes import describe_pid, listening_pid, rss_mib, spawn, stop, tail
from stack.schema_registry import SchemaRegistry
from stack.schemas import apply_subject_compatibility, load_subject_compatibility
from stack.security import apply_security, declared_roles, load_security_spec
from stack.service import Service, StackError, stack_admin_auth, stack_ca_pem
from stack.services import build_services

POLL_INTERVAL_S = 0.5


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    address: str
    web_ui: str
    health: str  # "healthy", "stopped" or what is wrong
    rss_mib: float | None


def _check_ports_free(service: Service) -> None:
    for port in service.ports:
        owner = listening_pid(port)
        if owner is not None:
            raise StackError(
                f"port {port} that {service.name} needs is taken by {describe_pid(owner)}. "
                f"Stop that process, or if it is a stack started from another folder, `make down` there."
            )


def _chosen(services: list[Service], names: tuple[str, ...]) -> list[Service]:
    """`kafka` names every Kafka node (kafka-1, kafka-2); `postgres`, the name of a service, names that one only
    (not postgres-exporter)."""
    exact = {s.name for s in services} & set(names)
    return [s for s in services if any(s.name == n or (n not in exact and s.name.startswith(f"{n}-")) for n in names)]


def select_services(settings: StackSettings, names: tuple[str, ...] = ()) -> list[Service]:
    """All services, or those whose name starts with one of `names` (`kafka` selects every Kafka node)."""
    services = build_services(settings)
    if not names:
        return services
    chosen = _chosen(services, names)
    if not chosen:
        known = ", ".join(s.name for s in services)
        raise StackError(f"no service matches {', '.join(names)}; known: {known} (or a prefix such as kafka, spark)")
    return chosen


def up(settings: StackSettings, say=print, only: tuple[str, ...] = ()) -> list[Service]:
    """Start whatever is not running, wait until every service answers, apply topics and registry config.

    `only` limits the start to some services (see select_services). Returns the services that this call
    started (empty when all were already running).
    """
    services = select_services(settings, only)
    for directory in (settings.data_dir, settings.log_dir, settings.run_dir):
        directory.mkdir(parents=True, exist_ok=True)

    started: list[Service] = []
    for service in services:
        proc = service.pid_file.alive()
        if proc is not None:
            say(f"  {service.name:<16} already running (pid {proc.pid})")
            continue
        _check_ports_free(service)
        service.prepare()
        pid = spawn(
            service.command(), service.log_path, service.pid_file, env=service.environment(), cwd=service.working_dir
        )
        say(f"  {service.name:<16} started (pid {pid}), log {service.log_path}")
        started.append(service)

    deadline = time.monotonic() + settings.startup_timeout_s
    for service in services:
        _wait_healthy(service, deadline, say)
        if isinstance(service, PostgresServer):  # its roles before the exporter, which logs in as one, is waited on
            initialize(settings, say, topics=False, registry=False, results_database=True)

    initialize(
        settings,
        say,
        topics=any(isinstance(s, KafkaNode) for s in services),
        registry=any(isinstance(s, SchemaRegistry) for s in services),
    )
    return started


def initialize(
    settings: StackSettings, say=print, topics: bool = True, registry: bool = True, results_database: bool = False
) -> None:
    """What a running stack needs once its services answer: the declared topics, the registry's default
    compatibility, the results database's roles. Shared by `up` and the compose stack's one-shot init service
    (`python -m stack init`)."""
    if topics:
        admin = admin_client(settings.kafka.bootstrap_servers, stack_admin_auth(settings))
        report = apply_topics(admin, load_topic_specs())
        say(f"  topics: {report.summary()}")
        for load in load_declared_tables(settings.kafka.bootstrap_servers, stack_admin_auth(settings)):
            say(f"  table {load.summary()}")
        if settings.kafka.secure:
            spec = load_security_spec()
            credentials = stack_credentials(settings, declared_roles(spec))
            say(f"  security: {apply_security(admin, credentials, spec)}")
            write_client_files(settings, credentials, stack_ca_pem(settings))
            say(f"  logins: {', '.join(credentials)} in {secrets_dir(settings)}/<role>.env (KAFKA_CREDENTIALS_FILE)")
    if registry:
        level = settings.registry.compatibility
        response = requests.put(f"{settings.registry.url}/config", json={"compatibility": level}, timeout=10)
        response.raise_for_status()
        changed = apply_subject_compatibility(settings.registry.url, load_subject_compatibility())
        say(f"  schema registry: global compatibility {level}; subjects set: {', '.join(changed) or 'none changed'}")
    if results_database and settings.postgres.enabled:
        done = PostgresServer(name="postgres", settings=settings).initialize()
        say(f"  results database: {done}; logins in {pgpass_path(settings)} (PGPASSFILE)")


def _wait_healthy(service: Service, deadline: float, say) -> None:
    started_waiting = time.monotonic()
    problem = service.health()
    while problem is not None:
        if service.pid_file.alive() is None:
            raise StackError(
                f"{service.name} exited during start-up. Last lines of {service.log_path}:\n{tail(service.log_path)}"
            )
        if time.monotonic() > deadline:
            raise StackError(
                f"{service.name} did not become healthy in time ({problem}). "
                f"Last lines of {service.log_path}:\n{tail(service.log_path)}"
            )
        time.sleep(POLL_INTERVAL_S)
        problem = service.health()
    say(f"  {service.name:<16} healthy after {time.monotonic() - started_waiting:.1f}s")


def down(settings: StackSettings, say=print, only: tuple[str, ...] = ()) -> int:
    """Stop every service this stack started (or those `only` selects), workers before the master, Kafka last.
    Keeps the data."""
    stopped = 0
    services = build_services_for_stop(settings)
    if only:
        services = _chosen(services, only)
    for service in reversed(services):
        if stop(service.pid_file, sig=service.stop_signal):
            say(f"  {service.name:<16} stopped")
            stopped += 1
    if not stopped:
        say("  nothing was running")
    return stopped


def build_services_for_stop(settings: StackSettings) -> list[Service]:
    """Every service that may have a PID file, whatever BROKERS or WORKERS say now."""
    known = {service.name: service for service in build_services(settings)}
    for pid_path in sorted(settings.run_dir.glob("*.pid")) if settings.run_dir.exists() else []:
        name = pid_path.stem
        if name not in known:
            known[name] = _orphan_service(name, settings)
    # Kafka nodes are stopped last (so consumers in Spark do not spin), workers before their master.
    return sorted(known.values(), key=lambda s: 0 if isinstance(s, KafkaNode) else 1)


def _orphan_service(name: str, settings: StackSettings) -> Service:
    """A service started under other settings (say BROKERS=3); only its PID file matters for stopping."""
    return Service(name=name, settings=settings)


def status(settings: StackSettings) -> list[ServiceStatus]:
    rows = []
    for service in build_services(settings):
        proc = service.pid_file.alive()
        if proc is None:
            health = "stopped"
        else:
            problem = service.health()
            health = "healthy" if problem is None else f"unhealthy: {problem}"
        rows.append(
            ServiceStatus(
                name=service.name,
                pid=proc.pid if proc else None,
                address=service.address,
                web_ui=service.web_ui,
                health=health,
                rss_mib=rss_mib(proc) if proc else None,
            )
        )
    return rows


def clean(settings: StackSettings, say=print) -> None:
    """Remove data, logs and PID files (keeps the resolved jars). Refuses while something runs."""
    running = [row.name for row in status(settings) if row.pid is not None]
    if running:
        raise StackError(f"still running: {', '.join(running)}; run `make down` first")
    for directory in (settings.data_dir, settings.log_dir, settings.run_dir):
        if directory.exists():
            shutil.rmtree(directory)
            say(f"  removed {directory}")
