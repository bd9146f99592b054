"""Every streaming job of the project by name, from each job's own declaration (`JOB` in its module)."""

from __future__ import annotations

from typing import Any

from jobs import ride_lifecycle, ride_sessions, rides_all, vendor_counts, zone_popularity
from jobs.job import Job

JOBS: dict[str, Job[Any]] = {
    job.name: job
    for job in (vendor_counts.JOB, zone_popularity.JOB, rides_all.JOB, ride_lifecycle.JOB, ride_sessions.JOB)
}
