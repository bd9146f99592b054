"""Rides that arrive behind a windowed query's watermark: counted, reported, and kept where they can be recovered.

Spark drops such rides at the query's stateful operator and counts them in `numRowsDroppedByWatermark`, but it
counts rows after partial aggregation (one per window and group in a batch), so its figure under-reports late
rides by the size of the groups, and the rides themselves are gone. For each windowed query the jobs register
here what it reads and its windows; when a micro-batch's progress says something was dropped, the driver reads
that batch's offsets again (the same records, the same decoder), picks the rides that fell in a window the batch's
watermark had already closed (exactly Spark's rule: window end <= watermark), prints how many, and sends them,
bytes unchanged, to the late-rides topic (conf/jobs.yaml `late_topic`) with the query, batch and watermark in
headers, from where they can be re-sent once the reason is understood. A batch that dropped nothing costs
nothing: the check runs only when Spark's own count is above zero.
"""

from __future__ import annotations

import queue
import sys
import threading
from dataclasses import dataclass
from datetime import datetime

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession

from jobs.decode import KAFKA_METADATA, REASON, decode_rides
from jobs.io import kafka_options, kafka_sink_options
from jobs.progress_topic import ProgressPublisher
from jobs.settings import JobSettings
from jobs.writer_schemas import BOOK


@dataclass(frozen=True)
class WindowedQuery:
    """What the auditor needs to know of a windowed aggregation query."""

    query: str
    settings: JobSettings
    topics: tuple[str, ...]
    window_length: str
    slide: str
    keeps: Column | None = None  # which good rides the query aggregates, when not all (say, those with a zone)


# The windowed queries of the running application, by name: each job's start_queries declares its own (watch).
WATCHED: dict[str, WindowedQuery] = {}


def watch(query: WindowedQuery) -> None:
    """Declare a windowed aggregation query whose late rides are to be counted and kept."""
    WATCHED[query.query] = query


class LateRideAuditor:
    """Checks the micro-batches whose progress reports rows dropped behind the watermark, on a thread of its own
    (a Spark job must not run inside the listener's callback)."""

    def __init__(
        self,
        spark: SparkSession,
        publisher: ProgressPublisher | None = None,
        queries: dict[str, WindowedQuery] = WATCHED,
    ):
        self.spark = spark
        self.publisher = publisher
        self.queries = queries
        self.totals: dict[str, int] = {}
        self._work: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="late-ride-auditor", daemon=True)
        self._thread.start()

    def offer(self, progress) -> None:
        """From the listener: a progress event; audited when Spark dropped rows of a registered query."""
        dropped = sum(op.numRowsDroppedByWatermark for op in progress.stateOperators)
        if dropped > 0 and progress.name in self.queries and progress.sources:
            self._work.put(progress)

    def drain(self, timeout_s: float = 120) -> None:
        """Wait until every offered batch is audited (before the session stops)."""
        done = threading.Event()
        self._work.put(done)
        done.wait(timeout_s)

    def _run(self) -> None:
        while True:
            item = self._work.get()
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                self.audit(item)
            except Exception as exc:
                print(
                    f"[{item.name}] batch {item.batchId}: late rides not counted ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0][:300]})",
                    file=sys.stderr,
                    flush=True,
                )

    def audit(self, progress) -> int:
        windowed = self.queries[progress.name]
        watermark = progress.eventTime.get("watermark")
        source = progress.sources[0]
        raw_df = read_offsets(self.spark, windowed, source.startOffset, source.endOffset)
        late_df = late_rides(raw_df, windowed, watermark)
        late_df = late_df.persist()
        try:
            count = late_df.count()
            if count:
                write_late_rides(late_df, windowed, progress.batchId, watermark)
        finally:
            late_df.unpersist()
        self.totals[progress.name] = self.totals.get(progress.name, 0) + count
        if self.publisher is not None:  # the web console shows the total beside Spark's count of rows
            self.publisher.publish(
                "late",
                str(progress.id),
                progress.name,
                key=f"{progress.id}:late",
                late_rides=self.totals[progress.name],
                batch=progress.batchId,
            )
        print(
            f"[{progress.name}] batch {progress.batchId}: {count} rides arrived behind the watermark {watermark} "
            f"in windows it had closed: left out of the results, sent to {windowed.settings.late_topic} "
            f"({self.totals[progress.name]} in all)",
            flush=True,
        )
        return count


def read_offsets(spark: SparkSession, windowed: WindowedQuery, start: str | None, end: str) -> DataFrame:
    """The records of one micro-batch, read again as a batch: its offsets as the progress gives them."""
    settings = windowed.settings
    return (
        spark.read.format("kafka")
        .options(**kafka_options(settings))
        .option("subscribe", ",".join(windowed.topics))
        .options(**({"startingOffsets": start} if start else settings.kafka_start()))
        .option("endingOffsets", end)
        .load()
    )


def late_rides(raw_df: DataFrame, windowed: WindowedQuery, watermark_iso: str) -> DataFrame:
    """The good rides of the records that fall in a window ending at or before the watermark: those Spark drops.
    One row per ride (a ride of a sliding window may be late for one of its windows only: it counts once)."""
    settings = windowed.settings
    writers = BOOK.writers(settings.registry_url, list(windowed.topics))  # what the queries learned too
    decoded_df = decode_rides(raw_df, writers, settings.input_format, settings.max_record_bytes)
    watermark = F.lit(datetime.fromisoformat(watermark_iso.replace("Z", "+00:00"))).cast("timestamp")
    windows = F.window("pickup_datetime", windowed.window_length, windowed.slide)
    aggregated = F.col(REASON).isNull() if windowed.keeps is None else F.col(REASON).isNull() & windowed.keeps
    return (
        decoded_df.filter(aggregated)
        .select("key", "value", *KAFKA_METADATA, "ride_id", windows.alias("window"))
        .filter(F.col("window.end") <= watermark)
        .dropDuplicates(["topic", "partition", "offset"])
        .drop("window")
    )


def write_late_rides(late_df: DataFrame, windowed: WindowedQuery, batch_id: int, watermark: str) -> None:
    source = F.concat_ws("/", "topic", F.col("partition").cast("string"), F.col("offset").cast("string"))
    headers = F.array(
        *[
            F.struct(F.lit(name).alias("key"), value.cast("binary").alias("value"))
            for name, value in (
                ("late.query", F.lit(windowed.query)),
                ("late.batch", F.lit(str(batch_id))),
                ("late.watermark", F.lit(watermark)),
                ("late.source", source),
            )
        ]
    )
    (
        late_df.select("key", "value", headers.alias("headers"))
        .write.format("kafka")
        .options(**kafka_sink_options(windowed.settings))
        .option("topic", windowed.settings.late_topic)
        .save()
    )
