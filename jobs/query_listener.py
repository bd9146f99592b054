"""A streaming query listener whose progress events reach Python as one JSON string, not field by field.

PySpark's StreamingQueryListener turns each Java progress event into Python with a Py4J call per field, per
source, per state operator and per map entry (every map iterator's end a Java exception converted on the way):
some 125 ms of driver time per event, in the driver's JVM and Python at once, and once for every listener. A job
has two listeners and a query reports after every micro-batch, so on two cores that time was taken from the
micro-batches themselves. Here the event's progress crosses as its own JSON (one call) and is read with
`StreamingQueryProgress.fromJson`, the form Spark Connect builds its events from: 1.5 ms, the same object.

PySpark offers no public hook for the conversion; the one kept here is its listener's Java bridge, with only the
progress event's conversion changed (tests/jobs/test_query_listener.py holds it to PySpark's own).
"""

from __future__ import annotations

import json

from py4j.java_gateway import JavaObject
from pyspark import SparkContext
from pyspark.sql.streaming import StreamingQueryListener
from pyspark.sql.streaming.listener import JStreamingQueryListener, QueryProgressEvent, StreamingQueryProgress


def progress_event_of(jevent: JavaObject) -> QueryProgressEvent:
    return QueryProgressEvent(StreamingQueryProgress.fromJson(json.loads(jevent.progress().json())))


class _JsonProgressBridge(JStreamingQueryListener):
    def onQueryProgress(self, jevent: JavaObject) -> None:
        self.pylistener.onQueryProgress(progress_event_of(jevent))


class JsonProgressListener(StreamingQueryListener):
    """A StreamingQueryListener (register it with spark.streams.addListener) whose onQueryProgress gets the event
    read from JSON; the other events are PySpark's own."""

    @property
    def _jlistener(self) -> JavaObject:
        if not hasattr(self, "_json_bridge"):
            jvm = SparkContext._jvm
            assert jvm is not None, "a SparkContext must be running"
            self._json_bridge = jvm.PythonStreamingQueryListenerWrapper(_JsonProgressBridge(self))
        return self._json_bridge
