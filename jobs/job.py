"""A streaming job, declared once (jobs/catalog.py): its name, its settings (a section of conf/jobs.yaml), the
module whose `start_queries` starts its queries, and the topics it reads and writes. The declaration serves
`make submit` (each job module's main, through jobs/launch.py), the all-jobs pipeline (jobs/pipeline.py),
`python -m jobs`, the web console (which topics it follows) and the jobs benchmark.

A declaration does not import its job's Spark code: the module is loaded when its queries are started or its
description is asked for, so that a reader of the declarations (the console) does not load pyspark.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from jobs.settings import JobSettings, add_common_arguments, load_job_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.streaming import StreamingQuery

S = TypeVar("S", bound=JobSettings)


@dataclass(frozen=True)
class Job(Generic[S]):
    name: str
    settings_class: type[S]
    # Flags of the job's own settings beyond every job's (jobs/settings.add_common_arguments): (flag, help).
    extra_arguments: tuple[tuple[str, str], ...] = field(default=())

    @property
    def module(self) -> ModuleType:
        """The job's Spark code, jobs/<name>.py (imported on first use)."""
        return importlib.import_module(f"jobs.{self.name}")

    @property
    def start_queries(self) -> Callable[[SparkSession, S], list[StreamingQuery]]:
        """Starts the job's queries on a session, given its settings."""
        start: Callable[[SparkSession, S], list[StreamingQuery]] = self.module.start_queries
        return start

    @property
    def description(self) -> str:
        return self.module.__doc__ or ""

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
