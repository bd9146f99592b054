"""The command line of a declared job: conf/jobs.yaml [name] with the flags over it, checks before Spark starts
(exit 2 naming what is wrong), then its queries on a session of their own until they end."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobs.job import Job
from jobs.preflight import PreflightError, preflight
from jobs.runtime import refuse, start_and_run
from jobs.settings import overrides_from
from pipeline_config.settings import SettingsError


def launch(job: Job[Any], argv: Sequence[str] | None = None) -> int:
    try:
        settings = job.load_settings(overrides_from(job.parser().parse_args(argv)))
        preflight(settings)
    except (SettingsError, PreflightError) as exc:
        return refuse(exc)
    return start_and_run(job.name, [(settings, job.start_queries)])
