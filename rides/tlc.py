"""Readers for TLC trip files as published: CSV, CSV.gz and Parquet, in the yellow, green and FHV layouts.

Each row becomes a normalized ride event (see producers/events.py). A row that cannot be read is not dropped
silently: it is reported with its line number and the reason, and the run goes on.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from pipeline_config.errors import CannotRunError
from rides.events import Ride, empty_event, make_ride_id

# A row as read: column name to raw value. A numbered row: its line, the row, and its text as read (for a dead
# letter).
Row = dict[str, Any]
NumberedRow = tuple[int, Row, str | bytes]
# Reads one field's raw value: (field name, raw value) -> value, or raises RowError.
FieldParser = Callable[[str, Any], Any]
# (field, column or None, parser) for each field of the ride, for one file's header.
Plan = list[tuple[str, str | None, FieldParser]]


class LayoutError(CannotRunError):
    """The file's columns match no TLC layout; the message lists what was found and what is expected."""


class RowError(ValueError):
    """One field of one row cannot be read; the message names the field and the value."""


# ---- field parsers: '' is null, anything else must parse or the row is reported ----------------------------


def _shown(raw: object) -> str:
    """A value as quoted in a reason: a hostile one is cut (the whole row is in the dead letter)."""
    text = repr(raw)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_int(name: str, raw: Any) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, int):
        return raw
    try:
        number = float(raw)  # TLC files mix "1" and "1.0"
    except (TypeError, ValueError):
        raise RowError(f"{name} {_shown(raw)} is not a number") from None
    if number != number or not number.is_integer():  # NaN (Parquet nulls in float columns) or 2.5
        if number != number:
            return None
        raise RowError(f"{name} {_shown(raw)} is not a whole number")
    return int(number)


def parse_float(name: str, raw: Any) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        number = float(raw)  # accepts ".79"
    except (TypeError, ValueError):
        raise RowError(f"{name} {_shown(raw)} is not a number") from None
    if number != number:
        return None
    if number in (float("inf"), float("-inf")):
        raise RowError(f"{name} {_shown(raw)} is not finite")
    return number


TIMESTAMP_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%m/%d/%Y %I:%M:%S %p")


def parse_timestamp(name: str, raw: Any) -> datetime | None:
    """TLC wall-clock times, kept naive (see ride_event.avsc for why they are carried as UTC)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, datetime):
        return raw.replace(tzinfo=None)
    if isinstance(raw, date):
        return datetime(raw.year, raw.month, raw.day)
    text = str(raw).strip()
    try:
        return datetime.fromisoformat(text).replace(tzinfo=None)  # the common case, and fast
    except ValueError:
        pass
    for layout in TIMESTAMP_FORMATS:
        try:
            return datetime.strptime(text, layout)
        except ValueError:
            continue
    raise RowError(f"{name} {_shown(raw)} is not a timestamp (expected YYYY-MM-DD HH:MM:SS)")


def parse_text(name: str, raw: Any) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip()
    return text or None


# ---- layouts -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    ride_type: str
    # event field -> (TLC column, parser); TLC column names are matched case-insensitively (FHV files vary).
    columns: dict[str, tuple[str, FieldParser]]
    # a column whose presence identifies the layout
    marker: str
    # the columns in the order the TLC publishes them: the order of a CSV line of this layout
    header: tuple[str, ...] = ()

    @property
    def expected_columns(self) -> list[str]:
        return [column for column, _ in self.columns.values()]


_MONEY = {
    name: (name, parse_float)
    for name in (
        "fare_amount",
        "extra",
        "mta_tax",
        "tip_amount",
        "tolls_amount",
        "improvement_surcharge",
        "total_amount",
        "congestion_surcharge",
    )
}

YELLOW = Layout(
    ride_type="yellow",
    marker="tpep_pickup_datetime",
    header=(
        "VendorID",
        "tpep_pickup_datetime",
        "tpep_dropoff_datetime",
        "passenger_count",
        "trip_distance",
        "RatecodeID",
        "store_and_fwd_flag",
        "PULocationID",
        "DOLocationID",
        "payment_type",
        "fare_amount",
        "extra",
        "mta_tax",
        "tip_amount",
        "tolls_amount",
        "improvement_surcharge",
        "total_amount",
        "congestion_surcharge",
        "airport_fee",
    ),
    columns={
        "VendorID": ("VendorID", parse_int),
        "pickup_datetime": ("tpep_pickup_datetime", parse_timestamp),
        "dropoff_datetime": ("tpep_dropoff_datetime", parse_timestamp),
        "passenger_count": ("passenger_count", parse_int),
        "trip_distance": ("trip_distance", parse_float),
        "RatecodeID": ("RatecodeID", parse_int),
        "store_and_fwd_flag": ("store_and_fwd_flag", parse_text),
        "PULocationID": ("PULocationID", parse_int),
        "DOLocationID": ("DOLocationID", parse_int),
        "payment_type": ("payment_type", parse_int),
        **_MONEY,
        "airport_fee": ("airport_fee", parse_float),
    },
)

GREEN = Layout(
    ride_type="green",
    marker="lpep_pickup_datetime",
    header=(
        "VendorID",
        "lpep_pickup_datetime",
        "lpep_dropoff_datetime",
        "store_and_fwd_flag",
        "RatecodeID",
        "PULocationID",
        "DOLocationID",
        "passenger_count",
        "trip_distance",
        "fare_amount",
        "extra",
        "mta_tax",
        "tip_amount",
        "tolls_amount",
        "ehail_fee",
        "improvement_surcharge",
        "total_amount",
        "payment_type",
        "trip_type",
        "congestion_surcharge",
    ),
    columns={
        "VendorID": ("VendorID", parse_int),
        "pickup_datetime": ("lpep_pickup_datetime", parse_timestamp),
        "dropoff_datetime": ("lpep_dropoff_datetime", parse_timestamp),
        "store_and_fwd_flag": ("store_and_fwd_flag", parse_text),
        "RatecodeID": ("RatecodeID", parse_int),
        "PULocationID": ("PULocationID", parse_int),
        "DOLocationID": ("DOLocationID", parse_int),
        "passenger_count": ("passenger_count", parse_int),
        "trip_distance": ("trip_distance", parse_float),
        **_MONEY,
        "ehail_fee": ("ehail_fee", parse_float),
        "payment_type": ("payment_type", parse_int),
        "trip_type": ("trip_type", parse_int),
    },
)

FHV = Layout(
    ride_type="fhv",
    marker="dispatching_base_num",
    header=(
        "dispatching_base_num",
        "pickup_datetime",
        "dropOff_datetime",
        "PUlocationID",
        "DOlocationID",
        "SR_Flag",
        "Affiliated_base_number",
    ),
    columns={
        "dispatching_base_num": ("dispatching_base_num", parse_text),
        "pickup_datetime": ("pickup_datetime", parse_timestamp),
        "dropoff_datetime": ("dropOff_datetime", parse_timestamp),
        "PULocationID": ("PUlocationID", parse_int),
        "DOLocationID": ("DOlocationID", parse_int),
        "SR_Flag": ("SR_Flag", parse_int),
        "affiliated_base_number": ("Affiliated_base_number", parse_text),
    },
)

LAYOUTS = {layout.ride_type: layout for layout in (YELLOW, GREEN, FHV)}


def field_of_column(layout: Layout) -> dict[str, str]:
    """TLC column -> event field, for every column of the layout's header."""
    return {column: field_name for field_name, (column, _) in layout.columns.items()}


# Columns a layout may lack in some years' files; they are null when absent.
OPTIONAL_COLUMNS = {"airport_fee", "congestion_surcharge", "ehail_fee", "sr_flag", "affiliated_base_number"}


def detect_layout(columns: list[str], expected: str | None = None) -> Layout:
    lowered = {column.strip().lower() for column in columns}
    if expected is not None:
        if expected not in LAYOUTS:
            raise LayoutError(f"unknown ride kind {expected!r}; choose one of {', '.join(LAYOUTS)}")
        candidates = [LAYOUTS[expected]]
    else:
        candidates = [layout for layout in LAYOUTS.values() if layout.marker.lower() in lowered]
    for layout in candidates:
        missing = [
            column
            for column in layout.expected_columns
            if column.lower() not in lowered and column.lower() not in OPTIONAL_COLUMNS
        ]
        if not missing:
            return layout
        if expected is not None or len(candidates) == 1:
            raise LayoutError(
                f"the columns look like the {layout.ride_type} layout but lack {', '.join(missing)}. "
                f"Found: {', '.join(columns)}. Expected: {', '.join(layout.expected_columns)}"
            )
    expectations = "; ".join(f"{name}: {', '.join(layout.expected_columns)}" for name, layout in LAYOUTS.items())
    raise LayoutError(f"unknown layout. Found columns: {', '.join(columns)}. Expected one of: {expectations}")


# ---- reading -------------------------------------------------------------------------------------------------


@dataclass
class BadRow:
    line: int
    reason: str
    raw: str | bytes  # bytes when the line was not text


@dataclass
class ReadReport:
    """What a read produced: counts, and every row that could not be read with its line and reason."""

    source: str
    layout: str = ""
    rows: int = 0
    events: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.source}: {self.rows:,} rows, {self.events:,} events ({self.layout})"
        if self.bad_rows:
            first = self.bad_rows[0]
            text += f", {len(self.bad_rows):,} unreadable (first: line {first.line}: {first.reason})"
        return text


def parse_plan(layout: Layout, header: list[str]) -> Plan:
    """(event field, the file's own spelling of its column or None, parser), worked out once per file."""
    index = {column.lower(): column for column in header}
    return [(name, index.get(column.lower()), parse) for name, (column, parse) in layout.columns.items()]


def row_to_event(layout: Layout, plan: Plan, row: Row, source: str, line: int, month: FileMonth | None = None) -> Ride:
    """One TLC row (column -> raw value) to a ride event; raises RowError naming the bad field."""
    event = empty_event(layout.ride_type)
    for field_name, column, parse in plan:
        event[field_name] = parse(field_name, row.get(column) if column else None)
    if event["pickup_datetime"] is None:
        raise RowError("pickup_datetime is empty: a ride without a pickup time has no event time")
    if month is not None:
        month.check(event["pickup_datetime"])
    event["ride_id"] = make_ride_id(layout.ride_type, source, line)
    return event


# The TLC names its files <kind>_tripdata_<YYYY>-<MM>: the month whose rides the file holds.
FILE_MONTH = re.compile(r"_(\d{4})-(\d{2})\.(?:csv|csv\.gz|parquet)$", re.IGNORECASE)
# TLC files hold a few rides of the neighbouring days (the green file of 2020-10 has pickups of 2020-11-01 05:13).
DAYS_PAST_FILE_MONTH = 1


@dataclass(frozen=True)
class FileMonth:
    """The month a TLC file holds, from its name. A ride dated after it (past a day's slack) is refused: one ride
    of 2024 in a file of 2020 would move every job's watermark four years ahead, and each good ride after it would
    be dropped as late. Rides dated before the month are let through: they are late for the jobs, one by one."""

    year: int
    month: int
    latest_pickup: datetime  # the first pickup refused: a day past the month's end

    @classmethod
    def of(cls, path: Path) -> FileMonth | None:
        match = FILE_MONTH.search(path.name)
        if not match or not 1 <= int(match.group(2)) <= 12:
            return None
        year, month = int(match.group(1)), int(match.group(2))
        first_of_next = datetime(year + month // 12, month % 12 + 1, 1)
        return cls(year, month, first_of_next + timedelta(days=DAYS_PAST_FILE_MONTH))

    def check(self, pickup: datetime) -> None:
        if pickup >= self.latest_pickup:
            raise RowError(
                f"pickup_datetime {pickup:%Y-%m-%d %H:%M:%S} is after {self.latest_pickup:%Y-%m-%d %H:%M}, more than "
                f"{DAYS_PAST_FILE_MONTH} day past the file's month ({self.year}-{self.month:02d}): one such ride would "
                f"move the jobs' watermark past every ride after it"
            )


ROW_ERROR = "__row_error__"  # set on a CSV row that cannot be read as a row: wrong width, bad bytes, too long
# A TLC row is about 200 bytes. A longer line is refused whole before the csv module sees it: its own limit
# (128 KiB a field) raises an error that would end the read of the whole file.
MAX_LINE_BYTES = 64 * 1024


def _open_binary(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]  # a GzipFile reads bytes like any IO[bytes]
    return open(path, "rb")


def _checked_lines(lines: Iterable[bytes], refused: list[tuple[int, str, bytes]], first_line: int) -> Iterator[str]:
    """The lines as text for the csv module. A line that is not UTF-8, or longer than MAX_LINE_BYTES, is set aside
    in `refused` with its number and reason, and an empty line takes its place (which csv skips), so that one bad
    line costs that line and not the file."""
    for number, raw in enumerate(lines, start=first_line):
        if len(raw) > MAX_LINE_BYTES:
            refused.append((number, f"line of {len(raw):,} bytes is longer than any TLC row ({MAX_LINE_BYTES:,})", raw))
        else:
            try:
                yield raw.decode("utf-8")
                continue
            except UnicodeDecodeError as exc:
                bad = raw[exc.start : exc.start + 4]
                refused.append((number, f"line is not valid UTF-8 (byte {exc.start + 1}: {bad!r})", raw))
        yield "\n"


def open_csv(path: Path) -> tuple[IO[bytes], list[str]]:
    """The file open past its header line, and the header's column names."""
    handle = _open_binary(path)
    first = handle.readline()
    if not first:
        handle.close()
        raise LayoutError(f"{path} is empty: no header row")
    refused: list[tuple[int, str, bytes]] = []
    try:
        header = next(csv.reader(_checked_lines([first], refused, 1)))
    except csv.Error as exc:
        handle.close()
        raise LayoutError(f"{path}: the header row is not CSV ({exc})") from None
    if refused:
        handle.close()
        raise LayoutError(f"{path}: the header row cannot be read ({refused[0][1]})")
    return handle, [column.strip().lstrip("\ufeff") for column in header]


def csv_rows(lines: Iterable[bytes], header: list[str], first_line: int) -> Iterator[NumberedRow]:
    """The rows of CSV lines (bytes, each with its newline) that follow the header, numbered from first_line. A row
    that cannot be read carries ROW_ERROR and its reason."""
    refused: list[tuple[int, str, bytes]] = []
    reader = csv.reader(_checked_lines(lines, refused, first_line))
    before = first_line - 1  # the reader counts the lines it has read from 1

    def set_aside() -> Iterator[NumberedRow]:
        while refused:
            line, reason, raw = refused.pop(0)
            yield line, {ROW_ERROR: reason}, raw

    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a quote never closed: that line is reported, the read goes on
            yield from set_aside()
            yield before + reader.line_num, {ROW_ERROR: f"not a CSV row: {exc}"}, b""
            continue
        yield from set_aside()
        if not values:
            continue
        row = dict(zip(header, values, strict=False))
        if len(values) != len(header):
            row[ROW_ERROR] = f"{len(values)} fields where the header has {len(header)}"
        yield before + reader.line_num, row, ",".join(values)
    yield from set_aside()


def _csv_rows(path: Path) -> tuple[list[str], Iterator[NumberedRow]]:
    handle, header = open_csv(path)

    def rows() -> Iterator[NumberedRow]:
        with handle:
            yield from csv_rows(handle, header, 2)

    return header, rows()


def _parquet_rows(path: Path) -> tuple[list[str], Iterator[NumberedRow]]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    header = parquet.schema_arrow.names

    def rows() -> Iterator[NumberedRow]:
        line = 0
        for batch in parquet.iter_batches(batch_size=10_000):
            for row in batch.to_pylist():
                line += 1
                yield line, row, repr(row)

    return header, rows()


def read_rides(
    path: Path | str,
    ride_type: str | None = None,
    report: ReadReport | None = None,
    check_month: bool = True,
) -> Iterator[Ride]:
    """Ride events of a TLC file, in file order. Unreadable rows go to `report.bad_rows`, never silently away.

    A file named as the TLC names them (green_tripdata_2020-10.csv.gz) holds one month: a ride dated more than a
    day after it is a bad row too (see FileMonth); check_month=False reads such rides as any other.

    Raises FileNotFoundError for a missing file and LayoutError for columns of no known layout, before
    yielding anything.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    report = report if report is not None else ReadReport(source=str(path))
    name = path.name.lower()
    if name.endswith(".parquet"):
        header, rows = _parquet_rows(path)
    elif name.endswith((".csv", ".csv.gz")):
        header, rows = _csv_rows(path)
    else:
        raise LayoutError(f"{path}: expected a .csv, .csv.gz or .parquet file")
    layout = detect_layout(header, ride_type)
    report.layout = layout.ride_type
    month = FileMonth.of(path) if check_month else None
    return _events(layout, parse_plan(layout, header), rows, path.name, report, month)


def read_row(layout: Layout, plan: Plan, numbered: NumberedRow, source: str, month: FileMonth | None) -> Ride | BadRow:
    """One numbered row as a ride event, or as a bad row with its line and reason."""
    line, row, raw = numbered
    row_error = row.pop(ROW_ERROR, None)
    try:
        if row_error:
            raise RowError(row_error)
        return row_to_event(layout, plan, row, source, line, month)
    except RowError as exc:
        return BadRow(line=line, reason=str(exc), raw=raw)


def _events(
    layout: Layout,
    plan: Plan,
    rows: Iterator[NumberedRow],
    source: str,
    report: ReadReport,
    month: FileMonth | None,
) -> Iterator[Ride]:
    for numbered in rows:
        report.rows += 1
        event = read_row(layout, plan, numbered, source, month)
        if isinstance(event, BadRow):
            report.bad_rows.append(event)
            continue
        report.events += 1
        yield event
