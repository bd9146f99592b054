"""The pipeline as one Spark application: the queries of several jobs in one driver, sharing the cluster's
cores (what `make stream` runs).

Reads/writes: as each job's docstring says (vendor_counts, zone_popularity, ... from conf/jobs.yaml).
Run:          python -m stack submit jobs/pipeline.py --jobs vendor_counts,zone_popularity [job flags...]
"""

from __future__ import annotations

import argparse
import sys

from jobs.catalog import JOBS
from jobs.preflight import PreflightError, preflight
from jobs.runtime import refuse, start_and_run
from jobs.settings import JobSettings, add_common_arguments, overrides_from
from pipeline_config.settings import SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--jobs", default="vendor_counts,zone_popularity", help=f"comma-separated, of: {', '.join(JOBS)}"
    )
    add_common_arguments(parser)
    options = parser.parse_args(argv)
    names = options.jobs.split(",")
    unknown = [name for name in names if name not in JOBS]
    if unknown:
        parser.error(f"unknown job(s) {', '.join(unknown)}; known: {', '.join(JOBS)}")
    overrides = {k: v for k, v in overrides_from(options).items() if k != "jobs"}
    try:
        settings: dict[str, JobSettings] = {name: JOBS[name].load_settings(overrides) for name in names}
        for job_settings in settings.values():
            preflight(job_settings)
    except (SettingsError, PreflightError) as exc:
        return refuse(exc)
    return start_and_run("pipeline", [(settings[name], JOBS[name].start_queries) for name in names])


if __name__ == "__main__":
    sys.exit(main())
