"""Every streaming job of the project, declared once: name, settings, and its own command-line flags. Its Spark
code is jobs/<name>.py (`start_queries`), loaded only when the job runs."""

from __future__ import annotations

from typing import Any

from jobs.job import Job
from jobs.job_settings import (
    RideLifecycleSettings,
    RidesAllSettings,
    RideSessionsSettings,
    VendorCountsSettings,
    ZonePopularitySettings,
)

DECLARED: tuple[Job[Any], ...] = (
    Job(
        "vendor_counts",
        VendorCountsSettings,
        extra_arguments=(
            ("--watermark", "how late a ride may arrive, e.g. '30 minutes'"),
            ("--window-kinds", "the window queries to run, comma-separated: sliding,tumbling (default both)"),
        ),
    ),
    Job(
        "zone_popularity",
        ZonePopularitySettings,
        extra_arguments=(
            ("--top-topic", "topic of the per-window rankings"),
            ("--top-n", "how many zones each ranking holds"),
            ("--zones-topic", "the zone table's compacted topic, followed as it changes"),
        ),
    ),
    Job(
        "rides_all",
        RidesAllSettings,
        extra_arguments=(
            ("--top-topic", "topic of the hourly leaders"),
            ("--output-format", "avro (the wire format, schema in the registry) or json"),
        ),
    ),
    Job(
        "ride_lifecycle",
        RideLifecycleSettings,
        extra_arguments=(
            ("--started-topic", "topic of 'ride started' events"),
            ("--ended-topic", "topic of 'ride ended' events"),
            ("--max-ride-duration", "e.g. '3 hours'"),
        ),
    ),
    Job(
        "ride_sessions",
        RideSessionsSettings,
        extra_arguments=(
            ("--gap", "session gap, e.g. '5 minutes'"),
            ("--min-rides", "smallest session reported as a streak"),
        ),
    ),
)

JOBS: dict[str, Job[Any]] = {job.name: job for job in DECLARED}
