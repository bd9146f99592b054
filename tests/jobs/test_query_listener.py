"""The jobs' listeners get each progress event read from its JSON (jobs/query_listener.py): the same progress, field
for field, as PySpark's own listener builds over Py4J, for a stateful query with a watermark."""

from __future__ import annotations

import json
import time

import pyspark.sql.functions as F
from pyspark.sql.streaming import StreamingQueryListener

from jobs.query_listener import JsonProgressListener


class Collecting:
    def __init__(self):
        self.progress = []

    def onQueryStarted(self, event):
        pass

    def onQueryProgress(self, event):
        self.progress.append(event.progress)

    def onQueryIdle(self, event):
        pass

    def onQueryTerminated(self, event):
        pass


class FromJson(Collecting, JsonProgressListener):
    pass


class PySparks(Collecting, StreamingQueryListener):
    pass


def offsets(text: str):
    """A source's offsets as JSON text: PySpark writes a missing one (a first batch's start) as "None", JSON as
    "null"; the jobs read either as no offsets."""
    return None if text in ("None", "null") else json.loads(text)


def fields(progress) -> dict:
    """What the jobs' listeners read of a progress (jobs/runtime.py, jobs/group_offsets.py, jobs/late_rides.py)."""
    return {
        "id": progress.id,
        "name": progress.name,
        "batchId": progress.batchId,
        "batchDuration": progress.batchDuration,
        "numInputRows": progress.numInputRows,
        "durationMs": dict(progress.durationMs),
        "eventTime": dict(progress.eventTime),
        "state": [(op.numRowsTotal, op.numRowsDroppedByWatermark) for op in progress.stateOperators],
        "sources": [(offsets(s.startOffset), offsets(s.endOffset)) for s in progress.sources],
        "output": progress.sink.numOutputRows,
        "json": json.loads(progress.json),
    }


def test_a_progress_read_from_json_equals_pysparks_own(spark):
    ours, theirs = FromJson(), PySparks()
    for listener in (ours, theirs):
        spark.streams.addListener(listener)
    try:
        counts = (
            spark.readStream.format("rate")
            .option("rowsPerSecond", 50)
            .load()
            .withWatermark("timestamp", "1 second")
            .groupBy(F.window("timestamp", "1 second"))
            .count()
        )
        query = counts.writeStream.format("memory").queryName("listener_check").outputMode("update").start()
        deadline = time.monotonic() + 120
        while len(ours.progress) < 3 or len(theirs.progress) < len(ours.progress):
            assert time.monotonic() < deadline, (len(ours.progress), len(theirs.progress))
            time.sleep(0.2)
        query.stop()
    finally:
        for listener in (ours, theirs):
            spark.streams.removeListener(listener)
    compared = min(len(ours.progress), len(theirs.progress))
    assert [fields(p) for p in ours.progress[:compared]] == [fields(p) for p in theirs.progress[:compared]]
    assert any(fields(p)["state"] and fields(p)["numInputRows"] for p in ours.progress[:compared])
