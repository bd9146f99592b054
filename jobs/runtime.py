"""What every job's main() does around its queries: the SparkSession, progress lines per micro-batch
(input rows, late rows and the late rides they were, dead letters), and waiting until the queries end or Ctrl-C."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from pyspark.logger import PySparkLogger
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from cluster.clients import command_line_logging
from jobs import hosting
from jobs.group_offsets import ConsumerGroupOffsets
from jobs.late_rides import LateRideAuditor
from jobs.progress_topic import ProgressPublisher
from jobs.query_listener import JsonProgressListener
from jobs.writer_schemas import BOOK, newer_schema_ids
from pipeline_config.errors import CannotRunError, PipelineError, report
from pipeline_config.metrics_targets import register, unregister
from pipeline_config.settings import load_settings

log = logging.getLogger("jobs")
POLL_INTERVAL_S = 0.1  # how soon a job notices that its queries ended (a job on the job server waits no longer)


def spark_session(app_name: str) -> SparkSession:
    """The session of a job submitted with spark-submit (master, jars and defaults come from there), or on the job
    server a new session of its warm application."""
    host = hosting.current()
    if host is not None:
        return host.new_session()
    spark = SparkSession.builder.appName(app_name).config("spark.sql.session.timeZone", "UTC").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


class ProgressReporter(JsonProgressListener):
    """One line per micro-batch and query: what came in, what was dropped behind the watermark, what went
    out. Late rows are counted by Spark's stateful operators (numRowsDroppedByWatermark). With a publisher,
    every progress, idle and end event also goes to the progress topic for the web console."""

    def __init__(self, publisher: ProgressPublisher | None = None, auditor: LateRideAuditor | None = None):
        self.publisher = publisher
        self.auditor = auditor
        self._names: dict[str, str] = {}

    def onQueryStarted(self, event):
        self._names[str(event.id)] = event.name
        print(f"[{event.name}] started (id {event.id})", flush=True)

    def onQueryProgress(self, event):
        progress = event.progress
        rows_in = progress.numInputRows
        if self.publisher:
            self.publisher.publish(
                "progress", str(progress.id), progress.name, input_rows=rows_in, progress=json.loads(progress.json)
            )
        if rows_in == 0 and not progress.stateOperators:
            return
        dropped = sum(op.numRowsDroppedByWatermark for op in progress.stateOperators)
        state_rows = sum(op.numRowsTotal for op in progress.stateOperators)
        output = progress.sink.numOutputRows if progress.sink is not None else -1
        watermark = progress.eventTime.get("watermark", "-") if progress.eventTime else "-"
        # Spark counts late rows after partial aggregation (one per window and group): not rides. The auditor
        # counts the rides themselves and says so on a line of its own.
        late = f"{dropped} late rows dropped" + (
            " (rides counted below)" if dropped and self.auditor and progress.name in self.auditor.queries else ""
        )
        print(
            f"[{progress.name}] batch {progress.batchId}: {rows_in} rows in"
            f" {progress.batchDuration / 1000:.1f}s, {late},"
            f" {state_rows} rows of state, {output if output >= 0 else '?'} out, watermark {watermark}",
            flush=True,
        )
        if self.auditor is not None:
            self.auditor.offer(progress)
        if os.environ.get("JOBS_DEBUG_DURATIONS"):
            print(f"[{progress.name}] durations {dict(progress.durationMs)}", flush=True)

    def onQueryIdle(self, event):
        if self.publisher:
            self.publisher.publish("idle", str(event.id), self._names.get(str(event.id), str(event.id)))

    def onQueryTerminated(self, event):
        if self.publisher:
            self.publisher.publish(
                "terminated",
                str(event.id),
                self._names.get(str(event.id), str(event.id)),
                error=event.exception.splitlines()[0] if event.exception else None,
            )
        if event.exception:
            print(f"query {event.id} failed: {event.exception.splitlines()[0]}", file=sys.stderr, flush=True)


def run_until_done(
    spark: SparkSession,
    queries: list[StreamingQuery],
    auditor: LateRideAuditor | None,
    restart: Callable[[set[int]], list[StreamingQuery]],
) -> int:
    """Wait until every query has ended (available-now), one has failed, or Ctrl-C/SIGTERM, then stop them
    cleanly, and let the late-ride audits of the last batches finish. Queries that failed on writer schema ids
    registered after they started are stopped and handed to `restart` with the ids, which starts them again.

    Returns 0 when every query ended without an exception.
    """
    stopping = _stop_requests()
    looked_up: set[int] = set()
    restart_failed = False
    while True:
        # A query that failed stops the job (exit 1): half a job running on would look alive while a result stays
        # behind; stopped, its supervisor (or a person) restarts it and it resumes from its checkpoints.
        while not stopping and any(query.isActive for query in queries) and not _any_failed(queries):
            time.sleep(POLL_INTERVAL_S)
        newer = set() if stopping else _newer_schema_ids(queries) - looked_up
        if not newer:
            break
        for query in queries:
            _stop_between_batches(query)
        looked_up |= newer
        try:
            queries = restart(newer)
        except CannotRunError as exc:  # the registry did not answer, or a query was refused on the way back
            print(f"error: {exc}", file=sys.stderr)
            queries, restart_failed = [], True
            break
    for query in queries:
        _stop_between_batches(query)
    failed = [query for query in queries if query.exception() is not None]
    for query in failed:
        print(f"query {query.name} failed: {query.exception()}", file=sys.stderr)
    if auditor is not None:
        auditor.drain()
    _end_session(spark)
    return 1 if failed or restart_failed else 0


class _HostStop:
    """Truthy once the job server's client asked its job to stop (the list of signals' stand-in)."""

    def __init__(self, host: hosting.Host):
        self.host = host

    def __bool__(self) -> bool:
        return self.host.stop_requested.is_set()


def _stop_requests() -> list[bool] | _HostStop:
    """What says the job is to stop: SIGINT/SIGTERM under spark-submit, its client on the job server."""
    host = hosting.current()
    if host is not None:
        return _HostStop(host)
    stopping: list[bool] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.append(True))
    return stopping


def _end_session(spark: SparkSession) -> None:
    """Stop the application at the job's end, unless it is the job server's, which goes on to the next job."""
    if hosting.current() is None:
        spark.stop()


def _newer_schema_ids(queries: list[StreamingQuery]) -> set[int]:
    """The writer schema ids the failed queries met, when each failed on such an id (and on nothing else)."""
    failures = [str(query.exception()) for query in queries if not query.isActive and query.exception() is not None]
    found = [newer_schema_ids(failure) for failure in failures]
    return set().union(*found) if found and all(found) else set()


def _any_failed(queries: list[StreamingQuery]) -> bool:
    return any(not query.isActive and query.exception() is not None for query in queries)


def _stop_between_batches(query: StreamingQuery, patience_s: float = 30) -> None:
    """Let a running micro-batch finish before stopping, so that no batch is interrupted half-written."""
    deadline = time.monotonic() + patience_s
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.2)
    if query.isActive:
        query.stop()


def driver_logging() -> None:
    """Logging of a job's driver: INFO lines to stderr, without py4j's and PySpark's chatter."""
    command_line_logging()
    logging.getLogger("py4j").setLevel(logging.WARNING)  # one line per call between Python and the JVM otherwise
    # PySpark logs each analysis error with its JVM stack as JSON; the job reports the error itself, in one line.
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)


def start_job(app_name: str, publisher: ProgressPublisher | None = None) -> tuple[SparkSession, LateRideAuditor]:
    driver_logging()
    spark = spark_session(app_name)
    auditor = LateRideAuditor(spark, publisher)
    spark.streams.addListener(ProgressReporter(publisher, auditor))
    return spark, auditor


def refuse(problem: PipelineError) -> int:
    """A job that cannot start says why (no traceback) and exits with the error's status (2: refused)."""
    return report(problem)


class QueryRefused(CannotRunError):
    """Spark refused to start a query (an unknown column, an operation a stream does not support); the message
    says which and why."""


def start_and_run(app_name: str, jobs) -> int:
    """Start a session, the queries of each (settings, start_queries) pair on it, and wait for them."""
    first = jobs[0][0]
    publisher = (
        ProgressPublisher(first.bootstrap_servers, first.progress_topic, app_name) if first.progress_topic else None
    )
    spark, auditor = start_job(app_name, publisher)
    if first.lag_group_prefix:
        spark.streams.addListener(ConsumerGroupOffsets(first.bootstrap_servers, first.lag_group_prefix))
    scraped = register_driver(spark, app_name)

    def start_all() -> list[StreamingQuery]:
        return [query for settings, start_queries in jobs for query in start_queries(spark, settings)]

    def learn_and_start_again(schema_ids: set[int]) -> list[StreamingQuery]:
        for schema_id in sorted(schema_ids):
            found = BOOK.learn(first.registry_url, schema_id)
            print(f"[{app_name}] writer schema id {schema_id} registered since the start: {found}", flush=True)
        print(f"[{app_name}] starting the queries again from their checkpoints", flush=True)
        return start_all()

    try:
        try:
            queries = start_all()
        except CannotRunError as exc:  # the registry, a schema refused, a query Spark refused, a missing file
            _end_session(spark)
            return refuse(exc)
        return run_until_done(spark, queries, auditor, learn_and_start_again)
    finally:
        unregister(scraped)
        if publisher:
            publisher.close()


def register_driver(spark: SparkSession, app_name: str) -> Path | None:
    """The driver's web UI as a target of the stack's Prometheus while the job runs (Spark's own metrics: its
    streaming queries' rates and latency, its executors'); nothing when the stack runs no Prometheus here."""
    ui = spark.sparkContext.uiWebUrl
    if not ui or hosting.current() is not None:  # the job server registers its application once
        return None
    labels = {"application": app_name, "app_id": spark.sparkContext.applicationId}
    return register(load_settings(), "drivers", urlparse(ui).netloc, labels)
