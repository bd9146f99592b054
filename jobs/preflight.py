"""Checks a job makes before it starts Spark: Kafka answers at the configured address, its input topics exist
there, no record its checkpoints have yet to read was deleted, and the results database (when it is among the
sinks) answers and has the job's tables, created or extended here. A job that skipped them would start, then wait
for ever on a wrong address or a misspelt topic, or skip or fail on deleted records without naming them."""

from __future__ import annotations

import sys

from confluent_kafka import KafkaException

from cluster.clients import admin_client
from jobs.data_loss import lost_offsets
from jobs.settings import JobSettings
from pipeline_config.errors import CannotRunError
from results.database import (
    ResultsDatabaseError,
    ResultsDatabaseUnreachableError,
    address,
    connect,
    migrate,
)
from results.tables import TableSpec, tables_of_job


class PreflightError(CannotRunError):
    """The job cannot run with these settings; the message names the setting to fix."""


def check_inputs(settings: JobSettings, timeout_s: float = 10) -> None:
    try:
        metadata = admin_client(settings.bootstrap_servers).list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise PreflightError(
            f"cannot reach Kafka at {settings.bootstrap_servers} ({exc.args[0].str()}): check bootstrap_servers "
            f"(conf/stack.yaml, KAFKA_BOOTSTRAP_SERVERS or --bootstrap-servers); is the stack up? (make up)"
        ) from None
    missing = [topic for topic in settings.input_topic_names() if topic not in metadata.topics]
    if missing:
        raise PreflightError(
            f"input topic(s) {', '.join(missing)} do not exist on {settings.bootstrap_servers}: check "
            f"conf/jobs.yaml [{settings.name}] (or --input-topics), or declare them in conf/topics.yaml and run "
            f"`make topics`"
        )


def check_data_loss(settings: JobSettings) -> None:
    """Refuse to skip records Kafka deleted before the job read them, unless the loss is accepted (then say so)."""
    checkpoints = settings.local_checkpoint_dir()
    if checkpoints is None or not checkpoints.is_dir():
        return  # a fresh job, or checkpoints on a filesystem other than the driver's: Spark's own check applies
    lost = lost_offsets(admin_client(settings.bootstrap_servers), checkpoints)
    if not lost:
        return
    summary = "; ".join(map(str, lost))
    if not settings.accept_data_loss:
        raise PreflightError(
            f"records are gone from Kafka that the job never read: {summary}. They were deleted by retention or "
            f"delete_records. Start with --accept-data-loss (accept_data_loss in conf/jobs.yaml) to skip them, or "
            f"point --checkpoint-root elsewhere to start over"
        )
    skipped = sum(loss.count for loss in lost)
    print(f"warning: accepting data loss, {skipped:,} records skipped: {summary}", file=sys.stderr, flush=True)


def check_results_database(settings: JobSettings, tables: list[TableSpec] | None = None) -> None:
    """The results database answers and holds the job's tables (conf/results.yaml, or those given), created or given
    their new columns now, before any query could write to them."""
    tables = tables_of_job(settings.name) if tables is None else tables
    if not settings.writes_to("postgres") or not tables:
        return
    try:
        with connect(settings.results_database) as connection:
            changes = migrate(connection, settings.results_schema, tables)
    except (ResultsDatabaseUnreachableError, ResultsDatabaseError) as exc:
        raise PreflightError(str(exc)) from None
    if changes:
        print(f"results database {address(settings.results_database)}: {'; '.join(changes)}", flush=True)


def preflight(settings: JobSettings) -> None:
    """Every check a job makes before Spark starts; the first that fails raises PreflightError."""
    check_inputs(settings)
    check_data_loss(settings)
    check_results_database(settings)
