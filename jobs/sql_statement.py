"""The statement of a SQL-over-streams file: `CREATE STREAM|TABLE <name> [WITH (...)] AS SELECT ...`.

The SELECT is Spark SQL, run unchanged over the named streams of conf/jobs.yaml [stream_sql]; this module only
reads what surrounds it: the kind of result, its topic, and the options of the WITH clause. No Spark here, so
that a bad file is refused before a session starts.

- STREAM: every result row is appended once (append output mode: a window is written when the watermark
  closes it); the topic keeps everything for its retention.
- TABLE: a changelog keyed by KEY (update output mode: a window is re-written as rides arrive); the topic is
  compacted, so a reader keeps the latest row per key.

Either goes where SINKS says (default: the job's `sinks` of conf/jobs.yaml): its topic, a table of the results
database named like the statement (a TABLE upserted by KEY, a STREAM appended), the terminal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from jobs.settings import SINKS, comma_list
from pipeline_config.errors import CannotRunError

STATEMENT = re.compile(
    r"^\s*CREATE\s+(?P<kind>STREAM|TABLE)\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(?:WITH\s*\((?P<options>[^)]*)\)\s*)?AS\s+(?P<select>(?:SELECT|WITH)\b.*?)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
OPTION = re.compile(r"^\s*(?P<key>[A-Za-z_]+)\s*=\s*(?:'(?P<quoted>[^']*)'|(?P<bare>[^,\s]+))\s*$")
OPTIONS = {
    "KEY": "comma-separated result columns whose values make the record key (required for a TABLE)",
    "PARTITIONS": "partitions of the result topic when it is created",
    "SINKS": f"where the result goes, comma-separated among {', '.join(SINKS)} (default: the job's sinks)",
}
# What a query reads: the names after FROM and JOIN (a column alias such as `count(*) AS rides` is not one).
RELATION = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
LINE_COMMENT = re.compile(r"--[^\n]*")
# What is not SQL code: string literals ('...', "..."), block and line comments. Names found there are not read.
NOT_CODE = re.compile(r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"|/\*.*?\*/|--[^\n]*", re.DOTALL)
USAGE = (
    "CREATE STREAM|TABLE <topic> [WITH (KEY = 'col, ...', PARTITIONS = n, SINKS = 'kafka, postgres')] "
    "AS SELECT ... FROM <stream> ..."
)


class StatementError(CannotRunError, ValueError):
    """The file is not one statement this runner understands; the message says what is wrong."""


@dataclass(frozen=True)
class Statement:
    kind: str  # "STREAM" or "TABLE"
    name: str  # also the result topic
    select: str
    key_columns: tuple[str, ...] = ()
    partitions: int | None = None
    description: str = ""
    names_used: tuple[str, ...] = field(default=())
    sinks: tuple[str, ...] = ()  # from WITH (SINKS = ...); empty: the job's own

    @property
    def output_mode(self) -> str:
        return "update" if self.kind == "TABLE" else "append"

    @property
    def topic_cleanup_policy(self) -> str:
        return "compact,delete" if self.kind == "TABLE" else "delete"


def parse_statement(text: str, origin: str, known_names: list[str]) -> Statement:
    """The statement of a file's text; `known_names` are the streams and tables a query may read."""
    comments = [line.strip()[2:].strip() for line in text.splitlines() if line.strip().startswith("--")]
    description = comments[0] if comments else ""
    body = LINE_COMMENT.sub("", text).strip()
    if body.count(";") > 1 or (";" in body and not body.rstrip().endswith(";")):
        raise StatementError(f"{origin}: holds more than one statement; one file is one query ({USAGE})")
    match = STATEMENT.match(body)
    if not match:
        raise StatementError(f"{origin}: not a statement of the form {USAGE}")
    options = _options(match.group("options") or "", origin)
    kind = match.group("kind").upper()
    key_columns = tuple(column.strip() for column in options.get("KEY", "").split(",") if column.strip())
    if kind == "TABLE" and not key_columns:
        raise StatementError(f"{origin}: a TABLE needs WITH (KEY = '...'): the columns that identify a result row")
    select = match.group("select")
    read = {name.lower() for name in RELATION.findall(NOT_CODE.sub(" ", select))}
    names_used = tuple(name for name in known_names if name.lower() in read)
    if not names_used:
        raise StatementError(
            f"{origin}: the query reads none of the known streams and tables "
            f"({', '.join(known_names)}; conf/jobs.yaml [stream_sql])"
        )
    return Statement(
        kind,
        match.group("name"),
        select,
        key_columns,
        _partitions(options, origin),
        description,
        names_used,
        _sinks(options, origin),
    )


def _options(text: str, origin: str) -> dict[str, str]:
    options = {}
    for item in filter(str.strip, _split_options(text)):
        match = OPTION.match(item)
        if not match:
            raise StatementError(f"{origin}: WITH option {item.strip()!r} is not NAME = 'value'")
        key = match.group("key").upper()
        if key not in OPTIONS:
            known = "; ".join(f"{name}: {meaning}" for name, meaning in OPTIONS.items())
            raise StatementError(f"{origin}: unknown WITH option {key} (known: {known})")
        options[key] = match.group("quoted") if match.group("quoted") is not None else match.group("bare")
    return options


def _split_options(text: str) -> list[str]:
    """Split on the commas outside quotes: KEY = 'a, b', PARTITIONS = 3."""
    return re.findall(r"(?:[^,']|'[^']*')+", text)


def _partitions(options: dict[str, str], origin: str) -> int | None:
    if "PARTITIONS" not in options:
        return None
    value = options["PARTITIONS"]
    if not value.isdigit() or int(value) < 1:
        raise StatementError(f"{origin}: PARTITIONS must be a whole number of at least 1, got {value!r}")
    return int(value)


def _sinks(options: dict[str, str], origin: str) -> tuple[str, ...]:
    if "SINKS" not in options:
        return ()
    sinks = comma_list(options["SINKS"].lower())
    unknown = [sink for sink in sinks if sink not in SINKS]
    if unknown or not sinks:
        raise StatementError(
            f"{origin}: SINKS = {options['SINKS']!r}: expected a comma-separated list of {', '.join(SINKS)}"
        )
    return sinks
