"""The windowed count as a Quix Streams user writes it: rides per vendor in 10-minute tumbling windows of pickup
time (grace 30 minutes, like our job's watermark), from the start of the topic to its end, leaving out the rides
our jobs' validation refuses. Prints one JSON line
per window and vendor: {"window_start": epoch ms, "VendorID": ..., "rides": n}.

  python quix_window_counts.py TOPIC BOOTSTRAP RIDES

Quix Streams windows are per message key, so the rides are re-keyed by vendor (group_by, through a repartition
topic, as its documentation shows). `current()` emits each window's count as it changes; the last one per window
is the answer. The run stops once it has emitted one output per valid ride (RIDES), or after 30 s without a
message.
"""

from __future__ import annotations

import json
import sys
import tempfile
import uuid
from datetime import datetime, timedelta

from quixstreams import Application


def pickup_ms(value, headers, timestamp, timestamp_type) -> int:
    return int(datetime.fromisoformat(value["pickup_datetime"].replace("Z", "+00:00")).timestamp() * 1000)


def is_valid(ride: dict) -> bool:
    """The jobs' validation (jobs/decode.py) of the fields a count depends on; the ISO-8601 texts compare in order."""
    zones = all(ride[field] is None or 1 <= ride[field] <= 265 for field in ("PULocationID", "DOLocationID"))
    ordered = ride["dropoff_datetime"] is None or ride["dropoff_datetime"] >= ride["pickup_datetime"]
    passengers = ride["passenger_count"] is None or ride["passenger_count"] >= 0
    return zones and ordered and passengers and ride["pickup_datetime"] >= "2009-01-01"


def main() -> None:
    topic_name, bootstrap, rides = sys.argv[1], sys.argv[2], int(sys.argv[3])
    app = Application(
        broker_address=bootstrap,
        consumer_group=f"quix-peer-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=tempfile.mkdtemp(prefix="quix-state-"),
        loglevel="WARNING",
    )
    source = app.topic(topic_name, value_deserializer="json", timestamp_extractor=pickup_ms)
    sdf = app.dataframe(source).filter(is_valid)
    sdf = sdf.group_by(lambda ride: str(ride["VendorID"]), name="vendor")  # a ride without a vendor counts as "None"
    sdf = sdf.tumbling_window(timedelta(minutes=10), grace_ms=timedelta(minutes=30)).count().current()
    outputs = app.run(count=rides, timeout=30, metadata=True)
    latest = {(row["_key"], row["start"]): row["value"] for row in outputs}
    for (vendor, start), count in sorted(latest.items()):
        print(json.dumps({"window_start": start, "VendorID": vendor, "rides": count}))


if __name__ == "__main__":
    main()
