"""Where a query's results go, chosen by the job's `sinks` setting: its Kafka topic, its table in the results
database (exactly once, results/writes.py), and the driver's terminal. One foreachBatch handler writes a
micro-batch to all of them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg
import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame

from jobs.crash_points import crash_if_asked
from jobs.io import write_kafka_batch
from jobs.settings import JobSettings
from results.database import ResultsDatabaseError, ResultsDatabaseUnreachableError, address, connect
from results.pull import format_table
from results.tables import TableSpec, declared_tables, sql_name
from results.writes import BatchWrite, write_batch

log = logging.getLogger("jobs")

# Rows as PostgreSQL's COPY (FORMAT csv) reads them: timestamps in UTC with their offset, quotes doubled, a null
# as an empty field and an empty string as "", no whitespace trimmed (Spark's CSV writer trims by default).
CSV_OPTIONS = {
    "timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "escape": '"',
    "nullValue": "",
    "emptyValue": '""',
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
}
WRITE_ATTEMPTS = 5  # a database that restarts or fails over has this many tries, RETRY_PAUSE_S apart
RETRY_PAUSE_S = 3.0


def identity(df: DataFrame) -> DataFrame:
    return df


@dataclass(frozen=True)
class ResultSinks:
    """Where one query's results go, and in what shape."""

    title: str  # heading of the terminal output
    topic: str
    to_record: Callable[[DataFrame], DataFrame]  # the Kafka record (key, value) of the enriched batch
    # its table: a name in conf/results.yaml, a table made for the query (SQL over streams), or None
    table: str | TableSpec | None
    order_by: list[Column | str]  # of the rows printed
    enrich: Callable[[DataFrame], DataFrame] = identity  # what every sink sees (a join with the zones, a filter)
    to_rows: Callable[[DataFrame], DataFrame] = identity  # the table's rows of the enriched batch
    printed: bool = True  # to the terminal when it is among the sinks


def csv_lines(rows_df: DataFrame, table: TableSpec) -> DataFrame:
    """The table's columns (matched by their snake-case names) as one CSV line per row, made on the executors."""
    by_sql_name = {sql_name(column): column for column in rows_df.columns}
    missing = [column for column in table.column_names if column not in by_sql_name]
    if missing:
        raise ResultsDatabaseError(
            f"table {table.name} of {table.declared_in} has column(s) {', '.join(missing)} that the result lacks; "
            f"the result's columns are {', '.join(sorted(by_sql_name))}"
        )
    row = F.struct(*[F.col(by_sql_name[column]).alias(column) for column in table.column_names])
    return rows_df.select(F.to_csv(row, CSV_OPTIONS).alias("line"))


@dataclass
class TableWriter:
    """Writes a query's micro-batches to its table, each exactly once, reconnecting when the database went away."""

    settings: JobSettings
    table: TableSpec
    query: str
    _connection: psycopg.Connection | None = field(default=None, repr=False)
    _query_id: str | None = None

    def write(self, rows_df: DataFrame, batch_id: int) -> BatchWrite:
        query_id = self._query_id or self._find_query_id(rows_df)
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                return write_batch(
                    self._connect(),
                    self.settings.results_schema,
                    self.table,
                    query_id,
                    self.query,
                    batch_id,
                    self._lines(rows_df),
                    reached=lambda point: crash_if_asked(point, self.query, batch_id),
                )
            except (psycopg.OperationalError, ResultsDatabaseUnreachableError) as exc:
                self._close()
                reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else exc.__class__.__name__
                if attempt == WRITE_ATTEMPTS:
                    raise ResultsDatabaseError(
                        f"the results database {address(self.settings.results_database)} failed while "
                        f"{self.query} wrote batch {batch_id} to {self.table.name}, {WRITE_ATTEMPTS} times: {reason}. "
                        f"Nothing of the batch was kept; restart the job when the database is back, it resumes there"
                    ) from None
                log.warning("%s batch %s: results database failed (%s); retrying", self.query, batch_id, reason)
                time.sleep(RETRY_PAUSE_S)
        raise AssertionError("unreachable")

    def _lines(self, rows_df: DataFrame) -> Iterator[str]:
        for row in csv_lines(rows_df, self.table).toLocalIterator(prefetchPartitions=True):
            yield row.line

    def _find_query_id(self, batch_df: DataFrame) -> str:
        """The id Spark keeps in the query's checkpoint (the same after a restart, new with a fresh checkpoint),
        which Spark sets on the thread that runs the micro-batch."""
        query_id = batch_df.sparkSession.sparkContext.getLocalProperty("sql.streaming.queryId")
        if not query_id:
            raise ResultsDatabaseError(f"{self.query}: Spark did not say which streaming query runs this batch")
        self._query_id = query_id
        return query_id

    def _connect(self) -> psycopg.Connection:
        if self._connection is None or self._connection.closed:
            self._connection = connect(self.settings.results_database)
        return self._connection

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None


def result_handler(settings: JobSettings, query: str, sinks: ResultSinks) -> Callable[[DataFrame, int], None]:
    """The foreachBatch handler of the query: enrich the batch once, then each sink the settings choose."""
    writer = None
    if settings.writes_to("postgres") and sinks.table is not None:
        table = declared_tables()[sinks.table] if isinstance(sinks.table, str) else sinks.table
        writer = TableWriter(settings, table, query)

    def handle(batch_df: DataFrame, batch_id: int) -> None:
        enriched_df = sinks.enrich(batch_df).persist()
        try:
            if settings.writes_to("kafka"):
                write_kafka_batch(sinks.to_record(enriched_df), settings, sinks.topic)
            if writer is not None:
                written = writer.write(sinks.to_rows(enriched_df), batch_id)
                if written.replayed:
                    log.warning("%s batch %s was already in %s: not written again", query, batch_id, written.table)
                    # The batch still runs in full, into nothing: its state stores commit it, which Spark checks
                    # before the next batch (STATE_STORE_COMMIT_VALIDATION_FAILED otherwise).
                    enriched_df.write.format("noop").mode("overwrite").save()
            if settings.writes_to("terminal") and sinks.printed:
                _print_batch(settings, sinks, enriched_df, batch_id)
        finally:
            enriched_df.unpersist()

    return handle


def _print_batch(settings: JobSettings, sinks: ResultSinks, enriched_df: DataFrame, batch_id: int) -> None:
    printed_df = sinks.to_rows(enriched_df)
    rows = printed_df.orderBy(*sinks.order_by).limit(settings.printed_rows).collect()
    if rows:
        print(f"\n{sinks.title} (batch {batch_id}, latest {len(rows)} updated rows)", flush=True)
        print(format_table(printed_df.columns, [tuple(row) for row in rows]), flush=True)
