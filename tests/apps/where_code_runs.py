"""A PySpark application for the packaging test: on the cluster's executors, import the jobs' code and report
where it came from, which Python ran it and from which folder.

Run: python -m stack submit tests/apps/where_code_runs.py
"""

import json
import sys

from pyspark.sql import SparkSession


def _where(_rows):
    import os

    report: dict[str, object] = {"python": sys.executable, "cwd": os.getcwd()}
    try:
        import jobs.vendor_counts
        from rides.events import RIDE_EVENT_SCHEMA, required_fields

        report["jobs_file"] = jobs.vendor_counts.__file__
        report["required_fields"] = list(required_fields(RIDE_EVENT_SCHEMA))
    except ImportError as exc:
        report["import_error"] = f"{type(exc).__name__}: {exc}"
    yield json.dumps(report)


def main():
    spark = SparkSession.builder.appName("stack-test-where-code-runs").getOrCreate()
    reports = spark.sparkContext.parallelize(range(2), 2).mapPartitions(_where).collect()
    for report in reports:
        print(f"RESULT {report}")
    spark.stop()


if __name__ == "__main__":
    main()
