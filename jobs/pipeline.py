"""The pipeline as one Spark application: the queries of several jobs in one driver, sharing the cluster's
cores (what `make stream` runs).

Reads/writes: as each job's docstring says (vendor_counts, zone_popularity, ... from conf/jobs.yaml).
Run:          python -m stack submit jobs/pipeline.py --jobs vendor_counts,zone_popularity [job flags...]
"""

from __future__ import annotations

import argparse
import sys

from jobs import ride_lifecycle, ride_sessions, rides_all, vendor_counts, zone_popularity
from jobs.runtime import run_until_done, start_job
from jobs.settings import add_common_arguments, load_job_settings, overrides_from

JOBS = {
    "vendor_counts": (vendor_counts.VendorCountsSettings, vendor_counts.start_queries),
    "zone_popularity": (zone_popularity.ZonePopularitySettings, zone_popularity.start_queries),
    "rides_all": (rides_all.RidesAllSettings, rides_all.start_queries),
    "ride_lifecycle": (ride_lifecycle.RideLifecycleSettings, ride_lifecycle.start_queries),
    "ride_sessions": (ride_sessions.RideSessionsSettings, ride_sessions.start_queries),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", default="vendor_counts,zone_popularity",
                        help=f"comma-separated, of: {', '.join(JOBS)}")
    add_common_arguments(parser)
    options = parser.parse_args(argv)
    names = options.jobs.split(",")
    unknown = [name for name in names if name not in JOBS]
    if unknown:
        parser.error(f"unknown job(s) {', '.join(unknown)}; known: {', '.join(JOBS)}")
    overrides = {k: v for k, v in overrides_from(options).items() if k != "jobs"}
    settings = {name: load_job_settings(JOBS[name][0], name, overrides) for name in names}
    spark = start_job("pipeline", overrides.get("input_format", "auto"))
    queries = [query for name in names for query in JOBS[name][1](spark, settings[name])]
    return run_until_done(spark, queries)


if __name__ == "__main__":
    sys.exit(main())
