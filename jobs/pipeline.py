"""The pipeline as one Spark application: the queries of several jobs in one driver, sharing the cluster's
cores (what `make stream` runs).

Reads/writes: as each job's docstring says (vendor_counts, zone_popularity, ... from conf/jobs.yaml).
Run:          python -m stack submit jobs/pipeline.py --jobs vendor_counts,zone_popularity [job flags...]
"""

from __future__ import annotations

import argparse
import sys

from jobs import (
    ride_lifecycle,
    ride_sessions,
    rides_all,
    vendor_counts,
    zone_popularity,
)
from jobs.preflight import PreflightError, preflight
from jobs.runtime import refuse, start_and_run
from jobs.settings import add_common_arguments, load_job_settings, overrides_from
from pipeline_config.settings import SettingsError

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
    try:
        settings = {name: load_job_settings(JOBS[name][0], name, overrides) for name in names}
        for job_settings in settings.values():
            preflight(job_settings)
    except (SettingsError, PreflightError) as exc:
        return refuse(exc)
    return start_and_run("pipeline", [(settings[name], JOBS[name][1]) for name in names])


if __name__ == "__main__":
    sys.exit(main())
