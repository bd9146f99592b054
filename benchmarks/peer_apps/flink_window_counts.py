"""The windowed count as the course's PyFlink module writes it: a Kafka source table with a watermark on the
pickup time (30 minutes, like our job's), a `TUMBLE` of 10 minutes, `GROUP BY window_start, VendorID`, on a local
mini-cluster, from the start of the topic to its end (a bounded scan: the windows close when the input ends).
Rides fail the same validation as in our jobs (jobs/decode.py) and are left out. Prints one JSON line per window
and vendor: {"window_start": epoch ms, "VendorID": ..., "rides": n}.

  python flink_window_counts.py TOPIC BOOTSTRAP CONNECTOR_JAR
"""

from __future__ import annotations

import calendar
import json
import sys
import uuid

from pyflink.table import EnvironmentSettings, TableEnvironment

SOURCE = """
CREATE TABLE rides (
    VendorID INT,
    pickup_datetime STRING,
    dropoff_datetime STRING,
    PULocationID INT,
    DOLocationID INT,
    passenger_count INT,
    pickup AS TO_TIMESTAMP(SUBSTRING(pickup_datetime, 1, 19), 'yyyy-MM-dd''T''HH:mm:ss'),
    dropoff AS TO_TIMESTAMP(SUBSTRING(dropoff_datetime, 1, 19), 'yyyy-MM-dd''T''HH:mm:ss'),
    WATERMARK FOR pickup AS pickup - INTERVAL '30' MINUTE
) WITH (
    'connector' = 'kafka',
    'topic' = '{topic}',
    'properties.bootstrap.servers' = '{bootstrap}',
    'properties.group.id' = '{group}',
    'scan.startup.mode' = 'earliest-offset',
    'scan.bounded.mode' = 'latest-offset',
    'format' = 'json'
)
"""

VALID = """
CREATE VIEW valid_rides AS SELECT * FROM rides
WHERE (PULocationID IS NULL OR PULocationID BETWEEN 1 AND 265)
  AND (DOLocationID IS NULL OR DOLocationID BETWEEN 1 AND 265)
  AND (dropoff IS NULL OR dropoff >= pickup)
  AND (passenger_count IS NULL OR passenger_count >= 0)
  AND pickup >= TIMESTAMP '2009-01-01 00:00:00'
"""

COUNTS = """
SELECT window_start, VendorID, COUNT(*) AS rides
FROM TABLE(TUMBLE(TABLE valid_rides, DESCRIPTOR(pickup), INTERVAL '10' MINUTE))
GROUP BY window_start, window_end, VendorID
"""


def main() -> None:
    topic, bootstrap, jar = sys.argv[1], sys.argv[2], sys.argv[3]
    tables = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = tables.get_config()
    config.set("pipeline.jars", f"file://{jar}")
    config.set("parallelism.default", "1")  # one Kafka partition, two cores
    config.set("table.local-time-zone", "UTC")
    tables.execute_sql(SOURCE.format(topic=topic, bootstrap=bootstrap, group=f"flink-peer-{uuid.uuid4().hex[:8]}"))
    tables.execute_sql(VALID)
    with tables.execute_sql(COUNTS).collect() as rows:
        for start, vendor, rides in rows:
            window_ms = calendar.timegm(start.timetuple()) * 1000
            print(json.dumps({"window_start": window_ms, "VendorID": vendor, "rides": rides}))


if __name__ == "__main__":
    main()
