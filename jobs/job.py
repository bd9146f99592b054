"""A streaming job, declared once: its name, its settings (a section of conf/jobs.yaml), how its queries start,
and the topics it reads and writes. The declaration serves `make submit` (each job module's main), the all-jobs
pipeline (jobs/pipeline.py), `python -m jobs` (the list of jobs) and the jobs benchmark, which run the same code
with the same settings.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from jobs.preflight import PreflightError, preflight
from jobs.runtime import refuse, start_and_run
from jobs.settings import JobSettings, add_common_arguments, load_job_settings, overrides_from
from pipeline_config.settings import SettingsError

S = TypeVar("S", bound=JobSettings)


@dataclass(frozen=True)
class Job(Generic[S]):
    name: str
    settings_class: type[S]
    # Starts the job's queries on a session, given its settings.
    start_queries: Callable[[SparkSession, S], list[StreamingQuery]]
    description: str
    # Flags of the job's own settings beyond every job's (jobs/settings.add_common_arguments): (flag, help).
    extra_arguments: tuple[tuple[str, str], ...] = field(default=())

    def load_settings(self, overrides: dict[str, Any] | None = None) -> S:
        """conf/jobs.yaml [defaults] and [name], then the overrides; refused with the key named if wrong."""
        return load_job_settings(self.settings_class, self.name, overrides)

    def topics(self, settings: JobSettings) -> tuple[list[str], list[str]]:
        """(topics read, result topics written)."""
        return settings.input_topic_names(), settings.output_topic_names()

    def parser(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(
            prog=f"jobs/{self.name}.py",
            description=self.description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_common_arguments(parser)
        for flag, help_text in self.extra_arguments:
            # The flag's type is its settings field's: --top-n is top_n: int.
            setting = self.settings_class.model_fields[flag.lstrip("-").replace("-", "_")]
            parser.add_argument(flag, type=int if setting.annotation is int else str, help=help_text)
        return parser

    def main(self, argv: Sequence[str] | None = None) -> int:
        """The command line of the job: conf/jobs.yaml [name] with the flags over it, checks before Spark starts
        (exit 2 naming what is wrong), then the queries on a session of their own until they end."""
        try:
            settings = self.load_settings(overrides_from(self.parser().parse_args(argv)))
            preflight(settings)
        except (SettingsError, PreflightError) as exc:
            return refuse(exc)
        return start_and_run(self.name, [(settings, self.start_queries)])
