"""Settings of the streaming jobs: conf/jobs.yaml (defaults merged into each job), then command-line overrides.

Loaded once in a job's main() into a frozen object and passed down; a bad key is refused with its name.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from pipeline_config.settings import (
    CONF_DIR,
    SettingsError,
    describe_validation_error,
    load_settings,
    read_yaml,
    resolve,
    section,
)

# How a job reads its input records (jobs/decode.py).
INPUT_FORMATS = ("auto", "avro", "json")
INTERVAL = re.compile(r"^\d+ (millisecond|second|minute|hour|day)s?$")


def interval(value: str) -> str:
    if not INTERVAL.match(value):
        raise ValueError(f"{value!r} is not a duration such as '10 minutes'")
    return value


# A Spark interval such as "10 minutes", checked when the settings load.
Duration = Annotated[str, AfterValidator(interval)]


# Topics every job writes besides its results.
SIDE_TOPICS = ("dead_letter_topic", "late_topic", "progress_topic")


Sink = Literal["kafka", "postgres", "terminal"]
SINKS: tuple[Sink, ...] = get_args(Sink)


class JobSettings(BaseModel):
    """What every job has; subclasses add their windows and topics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    # A folder or any Hadoop filesystem URI (hdfs://, s3a://, file:/...); a relative path is relative to the
    # working directory of the driver.
    checkpoint_root: str
    trigger: str
    # Where a query with a fresh checkpoint starts (a checkpoint resumes where it stopped, whatever these say):
    # earliest, latest, or Spark's offsets per partition {"rides_green": {"0": 42, "1": -2}} (-2 earliest, -1
    # latest); a starting_timestamp (ISO-8601, or epoch milliseconds) wins: each partition from its first record at
    # or after that time, its end when it has none.
    starting_offsets: str = "earliest"
    starting_timestamp: str | None = None
    input_format: Literal["auto", "avro", "json"] = "auto"
    max_offsets_per_trigger: int | None = Field(None, ge=1)
    # Spark's minPartitions: a batch's offsets split into at least this many tasks, so that a topic of fewer
    # partitions than cores is still read and decoded on every core (null: one task per Kafka partition).
    min_partitions: int | None = Field(None, ge=1)
    accept_data_loss: bool = False  # skip records Kafka deleted before the job read them (and say how many)
    dead_letter_topic: str
    # A bad record's bytes kept in its dead letter (its full length and SHA-256 are kept whatever its size).
    dead_letter_original_max_bytes: int = Field(16384, ge=0)
    # A record larger than this is refused (dead letter): every sink can write what validation lets through.
    max_record_bytes: int = Field(131072, ge=1024)
    # An Avro record of a schema id the job does not know, at most this far above the registry's highest id at
    # start, is looked up and the queries restart with it (jobs/writer_schemas.py); 0: a dead letter at once.
    new_schema_id_lookahead: int = Field(1000, ge=0)
    progress_topic: str | None = None  # where each query's progress goes for the web console; null: nowhere
    # Each query's processed offsets are committed to the consumer group <prefix><query name> (jobs/group_offsets.py),
    # so that Kafka's tools show its lag; null: none.
    lag_group_prefix: str | None = "spark-job-"
    late_topic: str = "rides_late"  # rides a windowed query left out behind its watermark, bytes unchanged
    kafka_producer: dict[str, str | int] = Field(default_factory=dict)  # producer settings of every Kafka sink
    # Where results go: their Kafka topics, the results database (conf/results.yaml), the driver's terminal.
    sinks: tuple[Sink, ...] = SINKS
    results_database: str = ""  # a libpq URL (password from PGPASSFILE); default: the stack's database
    results_schema: str = Field("results", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    printed_rows: int = Field(20, ge=1)
    bootstrap_servers: str = ""
    registry_url: str = ""

    @field_validator("trigger")
    @classmethod
    def _trigger(cls, value: str) -> str:
        return value if value == "available-now" else interval(value)

    @field_validator("starting_offsets")
    @classmethod
    def _offsets(cls, value: str) -> str:
        if value in ("earliest", "latest"):
            return value
        try:
            offsets = json.loads(value)
        except ValueError:
            offsets = None
        if not isinstance(offsets, dict) or not offsets or not all(_partition_offsets(p) for p in offsets.values()):
            raise ValueError(
                f'must be earliest, latest or offsets per partition like {{"rides_green": {{"0": 42, "1": -2}}}}, '
                f"got {value!r}"
            )
        return value

    @field_validator("starting_timestamp")
    @classmethod
    def _timestamp(cls, value: str | None) -> str | None:
        """As epoch milliseconds, which Spark takes."""
        if value is None or value.isdigit():
            return value
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"must be an ISO-8601 time (2020-10-01T06:00:00Z) or epoch milliseconds, got {value!r}"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # the pipeline's times are UTC
        return str(int(moment.timestamp() * 1000))

    def kafka_start(self) -> dict[str, str]:
        """The Kafka source's options of where to start."""
        if self.starting_timestamp is not None:
            return {"startingTimestamp": self.starting_timestamp, "startingOffsetsByTimestampStrategy": "latest"}
        return {"startingOffsets": self.starting_offsets}

    def input_topic_names(self) -> list[str]:
        """The topics the job reads; a job whose inputs are not `input_topics` says so by overriding this."""
        return list(getattr(self, "input_topics", []))

    def output_topic_names(self) -> list[str]:
        """The topics the job's results go to: its settings named *_topic that are neither inputs nor the side
        topics every job has (dead letters, late rides, progress)."""
        inputs = set(self.input_topic_names())
        return [
            value
            for name, value in self
            if name.endswith("_topic") and name not in SIDE_TOPICS and isinstance(value, str) and value not in inputs
        ]

    def writes_to(self, sink: str) -> bool:
        return sink in self.sinks

    def checkpoint_dir(self) -> str:
        """The job's folder of checkpoints (one folder per query in it): a URI, or an absolute local path."""
        root = self.checkpoint_root.rstrip("/")
        if "://" not in root and not root.startswith("file:"):
            root = str(resolve(root))
        return f"{root}/{self.name}"

    def local_checkpoint_dir(self) -> Path | None:
        """The checkpoint folder on the driver's own disk, or None when the root is a remote filesystem."""
        root = self.checkpoint_dir()
        if "://" not in root:
            return Path(root.removeprefix("file:"))
        return Path(root.removeprefix("file://")) if root.startswith("file://") else None

    def checkpoint(self, query: str) -> str:
        """Each query has its own checkpoint directory."""
        return f"{self.checkpoint_dir()}/{query}"


S = TypeVar("S", bound=JobSettings)


def first_existing_location(candidates: list[str], hint: str) -> str:
    """The first of the candidates that is a Hadoop filesystem URI (hdfs://, s3a://: Spark reads it), or a local
    file that exists (relative ones from the checkout, see pipeline_config.settings.resolve); `hint` says how to
    get one."""
    for candidate in candidates:
        if "://" in candidate:
            return candidate
        path = resolve(candidate)
        if path.exists():
            return str(path)
    raise SettingsError(f"none of {', '.join(candidates)} exists; {hint}")


def load_job_settings(cls: type[S], name: str, overrides: dict | None = None, path: Path = CONF_DIR / "jobs.yaml") -> S:
    raw = read_yaml(path)
    if name not in raw:
        raise SettingsError(f"{path} has no section {name!r}")
    stack = load_settings()
    merged = {
        "name": name,
        "bootstrap_servers": stack.kafka.bootstrap_servers,
        "registry_url": stack.registry.url,
        "results_database": stack.postgres.url,
        **section(raw, "defaults", path),
        **section(raw, name, path),
        **{key: value for key, value in (overrides or {}).items() if value is not None},
    }
    if merged.get("checkpoint_root") is None:
        merged["checkpoint_root"] = str(stack.state_dir / "checkpoints")
    if merged.get("results_database") is None:
        merged["results_database"] = stack.postgres.url
    try:
        return cls.model_validate(merged)
    except ValidationError as exc:
        flags = " with the command-line flags" if any(v is not None for v in (overrides or {}).values()) else ""
        raise SettingsError(describe_validation_error(f"{path} [{name}]{flags}", exc)) from None


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line overrides every job accepts; unset flags keep conf/jobs.yaml's values."""
    parser.add_argument("--input-topics", type=lambda v: v.split(","), help="comma-separated input topics")
    parser.add_argument("--output-topic", help="topic the results go to")
    parser.add_argument("--dead-letter-topic", help="topic bad records go to")
    parser.add_argument("--late-topic", help="topic the rides a windowed query left out behind its watermark go to")
    parser.add_argument(
        "--checkpoint-root", help="folder or Hadoop filesystem URI holding one checkpoint folder per query"
    )
    parser.add_argument("--trigger", help="'5 seconds' style processing-time trigger, or 'available-now'")
    parser.add_argument(
        "--starting-offsets",
        help='earliest, latest, or offsets per partition as JSON: \'{"rides_green": {"0": 42, "1": -2}}\' '
        "(a fresh checkpoint only)",
    )
    parser.add_argument(
        "--starting-timestamp",
        help="start each partition at its first record at or after this time: 2020-10-01T06:00:00Z or epoch ms "
        "(a fresh checkpoint only)",
    )
    parser.add_argument(
        "--input-format",
        choices=INPUT_FORMATS,
        help="auto detects each record's format (Avro, JSON, CSV); avro or json reads that format "
        "only and sends records of any other to the dead-letter topic",
    )
    parser.add_argument("--max-offsets-per-trigger", type=int)
    parser.add_argument("--min-partitions", type=int, help="read each batch in at least this many tasks")
    parser.add_argument(
        "--accept-data-loss",
        action="store_true",
        default=None,
        help="skip records that Kafka deleted (retention, delete_records) before the job read them; "
        "without it the job refuses to start and names the offsets",
    )
    parser.add_argument(
        "--sinks",
        type=comma_list,
        help="where results go, comma-separated: kafka, postgres (the results database), terminal",
    )
    parser.add_argument("--results-database", help="the results database as a libpq URL (password in PGPASSFILE)")
    parser.add_argument("--results-schema", help="the schema of the results tables, e.g. a fresh one to reprocess into")
    parser.add_argument(
        "--lag-group-prefix",
        help="each query's processed offsets go to the consumer group <prefix><query> (default spark-job-); "
        "a reprocessing run takes its own, so that the running job's lag stays its own",
    )
    parser.add_argument("--bootstrap-servers", help="Kafka as the cluster's executors reach it")
    parser.add_argument("--registry-url", help="the schema registry's Confluent API")


def _partition_offsets(partitions: object) -> bool:
    return (
        isinstance(partitions, dict)
        and bool(partitions)
        and all(
            str(number).isdigit() and isinstance(offset, int) and offset >= -2 for number, offset in partitions.items()
        )
    )


def comma_list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def overrides_from(options: argparse.Namespace) -> dict:
    return {key: value for key, value in vars(options).items() if value is not None}
