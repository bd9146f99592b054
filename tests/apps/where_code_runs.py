"""A PySpark application for the packaging test: on the cluster's executors, import the jobs' code and report
where it came from, which Python ran it and from which folder, and the flags of the JVMs (the executor's, and the
driver's on a line of its own).

Run: python -m stack submit tests/apps/where_code_runs.py
"""

import json
import sys

from pyspark.sql import SparkSession


def _jvm_flags() -> list[str]:
    """The command line of the executor JVM above this Python worker (read from /proc: Linux only)."""
    import os

    pid = os.getpid()
    while pid > 1:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            arguments = [part.decode() for part in cmdline.read().split(b"\0") if part]
        if arguments and arguments[0].endswith("/java"):
            return [argument for argument in arguments if argument.startswith(("-XX:", "-D"))]
        with open(f"/proc/{pid}/stat") as stat:
            pid = int(stat.read().rsplit(")", 1)[1].split()[1])
    return []


def _where(_rows):
    import os

    report: dict[str, object] = {"python": sys.executable, "cwd": os.getcwd(), "jvm_flags": _jvm_flags()}
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
    driver_jvm = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    print(f"DRIVER_JVM {json.dumps(list(driver_jvm.getInputArguments()))}")
    spark.stop()


if __name__ == "__main__":
    main()
