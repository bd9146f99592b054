"""`python -m stack`: the commands behind `make up`, `make down`, `make status`, `make logs`, `make clean`
and `make topics`.

Without a Docker engine the stack runs as local processes (Kafka in KRaft mode, Apicurio Registry, a Spark
standalone master and workers); with one, docker-compose.yml runs instead. STACK_MODE=local|docker forces
either.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from cluster.clients import admin_client
from cluster.connectors import apply_connectors, connector_statuses, load_connectors
from cluster.groups import group_lags
from cluster.topics import apply_topics, describe_topics, load_topic_specs
from pipeline_config.errors import EXIT_INTERRUPTED, PipelineError, report
from pipeline_config.settings import load_settings
from stack import compose, job_package, lifecycle, submit
from stack.kafka_node import kafka_jvm
from stack.processes import tail
from stack.service import StackError, stack_admin_auth
from stack.services import build_services


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser("up", help="start every service and wait until all answer (BROKERS=3, WORKERS=2 to scale)")
    up.add_argument("only", nargs="*", metavar="SERVICE", help="start only these, e.g. kafka or spark-master")
    commands.add_parser("down", help="stop what `up` started, by its own PIDs; data is kept")
    commands.add_parser("status", help="each service, its PID, address, web UI, health and memory")
    logs = commands.add_parser("logs", help="show a service's log (all services' last lines without a name)")
    logs.add_argument("service", nargs="?", help="e.g. kafka-1, schema-registry, spark-master, spark-worker-1")
    logs.add_argument("-n", "--lines", type=int, default=60, help="how many lines (default 60)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines, as tail -f")
    commands.add_parser("clean", help="remove data, logs and PID files (the stack must be down)")
    commands.add_parser(
        "init",
        help="apply conf/topics.yaml, the tables of conf/tables.yaml, the registry's default compatibility and the "
        "results database's roles to a running stack",
    )
    topics = commands.add_parser(
        "topics", help="list topics (partitions, replication, messages, configs) and consumer group lag"
    )
    topics.add_argument("--apply", action="store_true", help="first create or update the topics of conf/topics.yaml")
    connectors = commands.add_parser(
        "connectors",
        help="create or update the Kafka Connect connectors of conf/connectors.yaml, and show their status",
    )
    connectors.add_argument("--status", action="store_true", help="only show their status")
    submit = commands.add_parser(
        "submit",
        help="spark-submit an application to the standalone master with the Kafka and Avro connector jars",
    )
    submit.add_argument("application", help="a job's name (vendor_counts, stream_sql...) or a .py file")
    submit.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the application")
    submit.add_argument("--print", action="store_true", help="print the spark-submit command instead of running it")
    run = commands.add_parser(
        "run",
        help="run a job on the stack's job server (a warm Spark application): no JVM to start, same flags as submit",
    )
    run.add_argument("application", help="a job's name (vendor_counts, pipeline, stream_sql...)")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the job")
    commands.add_parser(
        "consumer-groups",
        add_help=False,
        help="Kafka's own kafka-consumer-groups tool against the stack (--list, --describe --group spark-job-...)",
    )
    commands.add_parser("package", help="build the job package that submit ships to the executors")
    commands.add_parser(
        "stream", add_help=False, help="run the pipeline: jobs on the cluster, a producer, live results (stream --help)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # `stream` and `consumer-groups` have options of their own; everything after the word goes to them.
    args, extra = _parser().parse_known_args(argv)
    if args.command in ("stream", "consumer-groups"):
        args.args = [*getattr(args, "args", []), *extra]
    elif extra:
        _parser().error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        settings = load_settings()
        mode = compose.choose_mode()
        if mode == "docker" and args.command in ("up", "down", "status", "logs", "clean", "submit"):
            return _docker(args, settings)
        if settings.broker == "redpanda" and args.command == "up":
            raise StackError(
                "Redpanda runs on Docker only (its compose profile): no Docker engine answers here, "
                "and Redpanda is not on the package registries the local stack is built from"
            )
        return _local(args, settings)
    except PipelineError as exc:  # settings and topics refused: 2; a service that failed: 1
        return report(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _docker(args: argparse.Namespace, settings) -> int:
    print("A Docker engine answers: running docker-compose.yml (STACK_MODE=local runs local processes instead).")
    if args.command == "up":
        return compose.compose(settings, "up", "--detach", "--build", "--wait", "--wait-timeout", "300")
    if args.command == "down":
        return compose.compose(settings, "down")
    if args.command == "clean":
        return compose.compose(settings, "down", "--volumes")
    if args.command == "status":
        return compose.compose(settings, "ps")
    if args.command == "stream":
        from stack import stream

        return stream.run(settings, args.args)
    if args.command == "submit":
        # The driver runs inside the cluster's network, where executors can reach it; the repository is
        # mounted at /opt/pipeline and the connector jars are already on the image's classpath.
        return compose.compose(
            settings,
            "exec",
            "spark-master",
            "/opt/spark/bin/spark-submit",
            "--properties-file",
            "/opt/pipeline/conf/spark-defaults.conf",
            "--master",
            "spark://spark-master:7077",
            "--conf",
            "spark.driver.host=spark-master",
            "--conf",
            "spark.driver.bindAddress=0.0.0.0",
            args.application if args.application.endswith(".py") else f"/opt/pipeline/jobs/{args.application}.py",
            *args.args,
        )
    follow = ["--follow"] if args.follow else []
    return compose.compose(settings, "logs", f"--tail={args.lines}", *follow, *([args.service] if args.service else []))


def _local(args: argparse.Namespace, settings) -> int:
    if args.command == "up":
        began = time.monotonic()
        print(f"Starting the local stack (state in {settings.state_dir}):")
        started = lifecycle.up(settings, only=tuple(args.only))
        verb = "started" if started else "was already running"
        print(f"The stack {verb}; ready in {time.monotonic() - began:.1f}s.\n")
        _print_status(settings)
        return 0
    if args.command == "down":
        lifecycle.down(settings)
        return 0
    if args.command == "status":
        rows = _print_status(settings)
        return 0 if all(row.health == "healthy" for row in rows) else 3
    if args.command == "logs":
        return _logs(settings, args)
    if args.command == "clean":
        lifecycle.clean(settings)
        return 0
    if args.command == "init":
        lifecycle.initialize(settings, results_database=True)  # the compose stack's init: its postgres service
        return 0
    if args.command == "topics":
        auth = stack_admin_auth(settings)
        admin = admin_client(settings.kafka.bootstrap_servers, auth)
        if args.apply:
            print(f"topics: {apply_topics(admin, load_topic_specs()).summary()}")
        _print_topics(admin, settings.kafka.bootstrap_servers, auth)
        return 0
    if args.command == "connectors":
        if not args.status:
            for line in apply_connectors(settings.connect.url, load_connectors()):
                print(f"  {line}")
        return 0 if _print_connectors(settings) else 3
    if args.command == "stream":
        from stack import stream

        return stream.run(settings, args.args)
    if args.command == "package":
        print(f"job package: {job_package.build(settings.job_package)}")
        return 0
    if args.command == "consumer-groups":
        return subprocess.call(consumer_groups_command(settings, args.args))
    if args.command == "run":  # `python -m stack run` goes straight to stack.run_on_server (stack/__main__.py)
        from stack.run_on_server import run_on_server

        return run_on_server(settings, args.application, args.args)
    if args.command == "submit":
        command = submit.submit_command(settings, submit.job_application(args.application), args.args)
        if args.print:
            print(" ".join(command))
            return 0
        return subprocess.call(command, env=submit.submit_environment(settings))
    raise AssertionError(args.command)


def _print_status(settings) -> list:
    rows = lifecycle.status(settings)
    header = f"{'SERVICE':<18} {'PID':>7} {'MEM MiB':>8}  {'ADDRESS':<38} {'WEB UI':<52} HEALTH"
    print(header)
    for row in rows:
        pid = str(row.pid) if row.pid else "-"
        memory = f"{row.rss_mib:.0f}" if row.rss_mib is not None else "-"
        print(f"{row.name:<18} {pid:>7} {memory:>8}  {row.address:<38} {row.web_ui:<52} {row.health}")
    if any(row.name == "kafka-connect" and row.health == "healthy" for row in rows):
        print()
        _print_connectors(settings)
    return rows


def _print_connectors(settings) -> bool:
    """The connectors and their tasks; True when every one runs."""
    statuses = connector_statuses(settings.connect.url)
    print(f"{'CONNECTOR':<24} {'TYPE':<7} {'STATE':<10} TASKS")
    for status in statuses:
        print(f"{status.name:<24} {status.kind:<7} {status.state:<10} {', '.join(status.tasks) or '-'}")
        if status.trace:
            print(f"  first failed task: {status.trace.splitlines()[0]}")
    if not statuses:
        print("(none: `make connectors` creates those of conf/connectors.yaml)")
    return all(s.state == "RUNNING" and all(t == "RUNNING" for t in s.tasks) for s in statuses)


def _print_topics(admin, bootstrap: str, auth: dict) -> None:
    rows = describe_topics(admin, bootstrap, auth)
    print(f"{'TOPIC':<28} {'PARTITIONS':>10} {'RF':>3} {'MESSAGES':>10}  CONFIG")
    for row in rows:
        config = ", ".join(f"{k}={v}" for k, v in sorted(row["config"].items()))
        print(
            f"{row['topic']:<28} {row['partitions']:>10} {row['replication_factor']:>3} {row['messages']:>10}  {config}"
        )
    lags = group_lags(admin, bootstrap, auth)
    print(
        f"\n{'CONSUMER GROUP':<32} {'TOPIC':<28} {'PARTITION':>9} {'COMMITTED':>10} {'END':>10} {'LAG':>8} "
        f"{'BEHIND':>9}"
    )
    for lag in lags:
        committed = "-" if lag.committed is None else str(lag.committed)
        behind = "-" if lag.behind_s is None else f"{lag.behind_s:.0f}s"
        print(
            f"{lag.group:<32} {lag.topic:<28} {lag.partition:>9} {committed:>10} {lag.end:>10} {lag.lag:>8} {behind:>9}"
        )
    if not lags:
        print("(no consumer group has committed offsets yet)")


def consumer_groups_command(settings, arguments: list[str]) -> list[str]:
    """Kafka's ConsumerGroupCommand (what kafka-consumer-groups.sh runs), from the brokers' own jars."""
    return kafka_jvm(
        settings,
        "kafka",
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        "--bootstrap-server",
        settings.kafka.bootstrap_servers,
        *arguments,
        log_config="log4j2-tools.properties",
    )


def _logs(settings, args) -> int:
    services = {service.name: service for service in build_services(settings)}
    if args.service is None:
        for name, service in services.items():
            print(f"==> {name} ({service.log_path}) <==\n{tail(service.log_path, min(args.lines, 15))}\n")
        return 0
    if args.service not in services:
        print(f"error: no service {args.service!r}; known: {', '.join(services)}", file=sys.stderr)
        return 2
    path = services[args.service].log_path
    if args.follow:
        return subprocess.call(["tail", "-n", str(args.lines), "-F", str(path)])
    print(tail(path, args.lines))
    return 0
