"""The Avro writer schemas a job decodes with, and the ones it learns while it runs.

Spark fixes a streaming query's plan when the query starts, and a Confluent wire-format record names its writer
schema by id: a job decodes with one `from_avro` per writer schema it knew at start. A producer that registers a
new compatible version while the job runs sends records with an id above every id the job knows. Such a record
(an id at most `lookahead` above the highest known) fails its micro-batch with a message naming the id
(`NEWER_SCHEMA_ID`); the job's runner (jobs/runtime.py) then looks the id up in the registry (`learn`), and starts
its queries again from their checkpoints, so that the same batch is read again with the new writer schema. An id
the registry does not know, or knows as something other than an Avro schema, is remembered as absent: its records
go to the dead-letter topic as `unknown schema id`, and the job never loops on it. An id far above every known
one (random bytes behind a zero byte) is a dead letter at once, without a restart.

The book lives for the driver process: what one run of the queries learned, the next knows.
"""

from __future__ import annotations

import contextlib
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from confluent_kafka.schema_registry.error import SchemaRegistryError

from cluster.clients import registry_client
from rides.events import RIDE_EVENT_SCHEMA
from rides.serialization import (
    DeserializationError,
    RegistryUnavailableError,
    SchemaRefusedError,
    TransportError,
    avro_versions,
    register,
    writer_schema_text,
)

# The message of a batch failed on a newer writer schema id, and how the runner finds the id in it.
NEWER_SCHEMA_ID = "writer schema id {} is newer than the job's schemas"
_NEWER_SCHEMA_ID_PATTERN = re.compile(NEWER_SCHEMA_ID.replace("{}", r"(\d+)"))
HIGH_WATER_REQUESTS_AT_ONCE = 8


@dataclass(frozen=True)
class WriterSchema:
    schema_id: int
    schema_json: str


@dataclass(frozen=True)
class KnownWriters:
    """What a query decodes with: the writer schemas by id, and the unknown ids that fail a batch to be looked up:
    those in `lookup_range` (above the highest known, up to `lookahead` above the registry's highest id at start)
    that were not looked up and found absent already. No range: every unknown id is a dead letter at once."""

    schemas: tuple[WriterSchema, ...]  # a tuple: hashable, as the decoder keeps its columns per KnownWriters
    lookup_range: tuple[int, int] | None = None
    absent: frozenset[int] = frozenset()

    @property
    def ids(self) -> list[int]:
        return [writer.schema_id for writer in self.schemas]


def newer_schema_ids(failure: str) -> set[int]:
    """The writer schema ids a query's failure message says it met (none for any other failure)."""
    return {int(found) for found in _NEWER_SCHEMA_ID_PATTERN.findall(failure)}


def registered_writer_schemas(registry_url: str, topics: list[str]) -> list[WriterSchema]:
    """Every Avro schema registered under <topic>-value for the topics, by id, through confluent-kafka's registry
    client.

    The project's own ride schema is registered first (idempotent: the registry returns the existing id), so a
    job started before any producer, on a fresh registry, still knows the id its producers will use."""
    client = registry_client(registry_url)
    found: dict[int, str] = {}
    try:
        for topic in topics:
            subject = f"{topic}-value"
            # A refusal (the subject evolved incompatibly) is fine: its versions are read below all the same.
            with contextlib.suppress(SchemaRefusedError):
                register(client, subject, RIDE_EVENT_SCHEMA)
            found.update(avro_versions(client, subject))
    except RegistryUnavailableError as exc:
        raise RegistryUnavailableError(
            f"cannot reach the schema registry at {registry_url} to read the writer schemas of "
            f"{', '.join(topics)} ({exc}); is the stack up? (make up)"
        ) from None
    return [WriterSchema(schema_id, text) for schema_id, text in sorted(found.items())]


def registry_high_water(registry_url: str) -> int:
    """The highest schema id among the latest versions of the registry's subjects: ids are issued in order, so a
    schema registered from now on gets a higher one."""
    client = registry_client(registry_url)

    def latest_id(subject: str) -> int:
        try:
            return client.get_latest_version(subject).schema_id or 0
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:  # a subject deleted since it was listed has no latest version
                return 0
            raise

    try:
        # One request per subject, a few at a time: a registry of hundreds of subjects answers in a tenth of the
        # time, which a job on the job server would otherwise spend before its queries start.
        with ThreadPoolExecutor(max_workers=HIGH_WATER_REQUESTS_AT_ONCE) as pool:
            return max(pool.map(latest_id, client.get_subjects()), default=0)
    except (SchemaRegistryError, TransportError) as exc:
        raise RegistryUnavailableError(
            f"cannot list the subjects of the schema registry at {registry_url} ({exc})"
        ) from None


@dataclass
class WriterSchemaBook:
    """The schemas registered for a job's topics, plus those its queries met and looked up by id since."""

    learned: dict[int, str] = field(default_factory=dict)
    absent: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def writers(self, registry_url: str, topics: list[str], lookahead: int = 0) -> KnownWriters:
        """The schemas to decode the topics with; with a lookahead, the ids above them to look up when met."""
        registered = {
            writer.schema_id: writer.schema_json for writer in registered_writer_schemas(registry_url, topics)
        }
        with self._lock:
            every = {**self.learned, **registered}
            absent = frozenset(self.absent - every.keys())
        schemas = [WriterSchema(schema_id, text) for schema_id, text in sorted(every.items())]
        if lookahead <= 0:
            return KnownWriters(tuple(schemas))
        first = max(every, default=0) + 1
        last = max(registry_high_water(registry_url), first - 1) + lookahead
        return KnownWriters(tuple(schemas), (first, last), absent)

    def learn(self, registry_url: str, schema_id: int) -> str:
        """Look the id up in the registry; says what was found. Raises RegistryUnavailableError when the
        registry does not answer (the id is then not marked absent: its records must not be dead-lettered for
        the registry's fault)."""
        try:
            text = writer_schema_text(registry_client(registry_url), schema_id)
        except DeserializationError as exc:
            return self._absent(schema_id, str(exc))
        with self._lock:
            self.learned[schema_id] = text
        return "found in the registry: decoding with it"

    def _absent(self, schema_id: int, why: str) -> str:
        with self._lock:
            self.absent.add(schema_id)
        return f"{why}: its records go to the dead-letter topic"


# One book per driver process: every query of the job (and the late-ride audit) decodes with what it holds.
BOOK = WriterSchemaBook()
