"""SQL over streams: one file holding `CREATE STREAM|TABLE <name> [WITH (...)] AS SELECT ...` runs on the
cluster as a streaming query whose result goes to the topic <name>.

Reads:   the streams and tables the query names, from conf/jobs.yaml [stream_sql]: a stream is one or more ride
         topics, decoded (any format) and validated, in the normalized ride model (rides/schemas/ride_event.avsc) with
         a watermark on pickup_datetime; a table is a static CSV (zones: the taxi zone lookup).
Writes:  where the job's sinks or the statement's WITH (SINKS = ...) say: the topic named by the statement
         (created when missing: compacted for a TABLE), one JSON record per result row keyed by the KEY columns;
         a results table of the same name (jobs/sql_result_table.py, created or extended at start), exactly once;
         the terminal. Bad records to `rides_dead_letter`.
State:   whatever the SELECT needs (windowed aggregations, deduplication), bounded by the streams' watermark.
Run:     python -m stack submit jobs/stream_sql.py queries/rides_per_zone_15m.sql
         (or: make sql QUERY=queries/rides_per_zone_15m.sql)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyspark.sql.functions as F
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery
from pyspark.sql.types import TimestampType

from cluster.clients import admin_client
from cluster.topics import TopicSpec, apply_topics
from jobs.decode import good_rides
from jobs.io import (
    read_rides,
    start_dead_letter_query,
    start_foreach_batch_query,
    to_kafka_record,
)
from jobs.job_settings import ZONE_LOOKUP_HINT
from jobs.preflight import check_results_database, preflight
from jobs.result_sinks import ResultSinks, result_handler
from jobs.runtime import QueryRefused, refuse, start_and_run
from jobs.settings import (
    Duration,
    JobSettings,
    add_common_arguments,
    first_existing_location,
    load_job_settings,
    overrides_from,
)
from jobs.sql_guard import QueryNotAllowed, check_is_query, check_reads_only
from jobs.sql_result_table import result_table
from jobs.sql_statement import Statement, StatementError, parse_statement
from jobs.zone_popularity import read_zones
from pipeline_config.errors import CannotRunError
from pipeline_config.settings import SettingsError


class StreamSqlSettings(JobSettings):
    streams: dict[str, list[str]]
    tables: dict[str, list[str]]  # files or Hadoop filesystem URIs; the first that is there is read
    watermark: Duration
    output_partitions: int
    output_topic: str | None = None  # default: the statement's name
    query_file: Path
    statement: Statement | None = None  # set once the file is read

    def input_topic_names(self) -> list[str]:
        used = self.statement.names_used if self.statement else ()
        return [topic for name in used for topic in self.streams.get(name, [])]

    @property
    def read_statement(self) -> Statement:
        """The statement, once the file is read (`with_statement`)."""
        if self.statement is None:
            raise StatementError(f"{self.query_file} has not been read yet")
        return self.statement

    def result_topic(self) -> str:
        return self.output_topic or self.read_statement.name


def record_key(df: DataFrame, columns: tuple[str, ...]) -> Column:
    """'2020-10-01T00:15:00Z|74' style keys from the KEY columns (timestamps in UTC ISO-8601); null without KEY."""
    if not columns:
        return F.lit(None).cast("string")
    missing = [column for column in columns if column not in df.columns]
    if missing:
        raise QueryRefused(
            f"KEY column(s) {', '.join(missing)} are not in the result (its columns: {', '.join(df.columns)})"
        )
    parts = [
        F.date_format(F.col(column), "yyyy-MM-dd'T'HH:mm:ss'Z'")
        if isinstance(df.schema[column].dataType, TimestampType)
        else F.coalesce(F.col(column).cast("string"), F.lit("null"))
        for column in columns
    ]
    return F.concat_ws("|", *parts)


def register_sources(spark: SparkSession, settings: StreamSqlSettings) -> tuple[dict[str, DataFrame], list]:
    """A temporary view per stream and table the statement names. Returns the views by name, and (name, decoded
    records, good and bad) of each stream, whose bad records the caller sends to the dead-letter topic."""
    views, decoded_streams = {}, []
    for name in settings.read_statement.names_used:
        if name in settings.tables:
            path = first_existing_location(settings.tables[name], ZONE_LOOKUP_HINT)
            views[name] = read_zones(spark, path).cache()
        else:
            decoded_df = read_rides(spark, settings, settings.streams[name])
            views[name] = good_rides(decoded_df).withWatermark("pickup_datetime", settings.watermark)
            decoded_streams.append((name, decoded_df))
        views[name].createOrReplaceTempView(name)
    return views, decoded_streams


def create_result_topic(settings: StreamSqlSettings) -> None:
    """The result topic, when missing: compacted for a TABLE. An existing topic is left as its owner made it."""
    statement = settings.read_statement
    admin = admin_client(settings.bootstrap_servers)
    if settings.result_topic() in admin.list_topics(timeout=10).topics:
        return
    spec = TopicSpec(
        name=settings.result_topic(),
        partitions=statement.partitions or settings.output_partitions,
        config={"cleanup.policy": statement.topic_cleanup_policy},
    )
    apply_topics(admin, [spec])


def start_queries(spark: SparkSession, settings: StreamSqlSettings) -> list[StreamingQuery]:
    statement = settings.read_statement
    origin = str(settings.query_file)
    # A file read as a table (csv.`path`, text.`path`, parquet.`path`) is no stream: Spark refuses it as unknown.
    spark.conf.set("spark.sql.runSQLOnFiles", "false")
    views, decoded_streams = register_sources(spark, settings)
    try:
        check_is_query(spark, statement.select, origin)  # before spark.sql, which runs a command at once
        result_df = spark.sql(statement.select)
        check_reads_only(result_df, views, origin)
    except AnalysisException as exc:
        raise QueryRefused(f"{origin}: {_first_line(exc)}") from None
    except QueryNotAllowed as exc:
        raise QueryRefused(str(exc)) from None
    if not result_df.isStreaming:
        raise QueryRefused(
            f"{settings.query_file}: the query reads no stream, only tables; name one of {', '.join(settings.streams)}"
        )
    key = record_key(result_df, statement.key_columns)
    table = None
    if settings.writes_to("postgres"):
        table = result_table(statement, result_df.schema, origin)
        check_results_database(settings, [table])  # created or extended before the query starts
    handler = result_handler(
        settings,
        statement.name,
        ResultSinks(
            title=f"{statement.kind} {statement.name}: {statement.description or statement.select[:80]}",
            topic=settings.result_topic(),
            to_record=lambda df: to_kafka_record(df, key),
            table=table,
            order_by=[F.col(column).desc() for column in (statement.key_columns or result_df.columns[:1])],
        ),
    )
    dead_letter_queries = [
        start_dead_letter_query(decoded_df, settings.model_copy(update={"name": f"{settings.name}_{name}"}))
        for name, decoded_df in decoded_streams
    ]
    try:
        result_query = start_foreach_batch_query(result_df, settings, statement.name, handler, statement.output_mode)
    except AnalysisException as exc:
        for query in dead_letter_queries:
            query.stop()
        hint = ""
        if statement.kind == "STREAM" and (exc.getCondition() or "").startswith("STREAMING_OUTPUT_MODE"):
            hint = (
                " (a STREAM writes each result row once, so its groups must close: group by "
                "window(pickup_datetime, ...), or make it a TABLE, whose rows are re-written as they change)"
            )
        raise QueryRefused(
            f"{settings.query_file}: as a {statement.kind} ({statement.output_mode} output): {_first_line(exc)}{hint}"
        ) from None
    return [*dead_letter_queries, result_query]


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def load_statement_settings(argv: list[str] | None) -> StreamSqlSettings:
    parser = argparse.ArgumentParser(
        prog="jobs/stream_sql.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("query_file", type=Path, help="the .sql file (see queries/)")
    add_common_arguments(parser)
    parser.add_argument(
        "--stream",
        action="append",
        default=[],
        metavar="NAME=TOPIC[,TOPIC]",
        help="point a stream name at other topics (repeatable)",
    )
    options = parser.parse_args(argv)
    if options.input_topics:
        raise SettingsError(
            "--input-topics does not apply to SQL queries: the query names its streams; "
            "use --stream NAME=TOPIC[,TOPIC] to point a stream at other topics"
        )
    overrides = overrides_from(options)
    streams = overrides.pop("stream")
    settings = load_job_settings(StreamSqlSettings, "stream_sql", overrides)
    for item in streams:
        name, _, topics = item.partition("=")
        if name not in settings.streams or not topics:
            raise SettingsError(
                f"--stream {item}: expected NAME=TOPIC[,TOPIC] with NAME one of {', '.join(settings.streams)}"
            )
        settings = settings.model_copy(update={"streams": {**settings.streams, name: topics.split(",")}})
    try:
        text = settings.query_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot read the query file {settings.query_file}: {exc.strerror}") from None
    statement = parse_statement(text, str(settings.query_file), [*settings.streams, *settings.tables])
    # Each statement has checkpoints of its own, so that several queries run side by side. Its SINKS win over
    # conf/jobs.yaml; --sinks on the command line over both.
    update: dict = {"statement": statement, "name": f"sql_{statement.name}"}
    if statement.sinks and "sinks" not in overrides:
        update["sinks"] = statement.sinks
    return settings.model_copy(update=update)


def check_result_topic(settings: StreamSqlSettings) -> None:
    """The result must not flow into what the query reads, nor into the dead letters."""
    result = settings.result_topic()
    if result in settings.input_topic_names():
        raise StatementError(
            f"{settings.query_file}: the result topic {result} is also an input of the query "
            f"(its own output would come back in); name the result otherwise (--output-topic)"
        )
    if result == settings.dead_letter_topic:
        raise StatementError(
            f"{settings.query_file}: the result topic {result} is the dead-letter topic; name the "
            f"result otherwise (--output-topic)"
        )


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_statement_settings(argv)
        check_result_topic(settings)
        preflight(settings)
        if settings.writes_to("kafka"):
            create_result_topic(settings)
    except CannotRunError as exc:  # settings, the statement, a missing input or result topic
        return refuse(exc)
    return start_and_run(settings.name, [(settings, start_queries)])


if __name__ == "__main__":
    sys.exit(main())
