"""Readers for TLC trip files as published: CSV, CSV.gz and Parquet, in the yellow, green and FHV layouts.

Each row becomes a normalized ride event (see producers/events.py). A row that cannot be read is not dropped
silently: it is reported with its line number and the reason, and the run goes on.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Callable, Iterator

from producers.events import empty_event, make_ride_id


class LayoutError(Exception):
    """The file's columns match no TLC layout; the message lists what was found and what is expected."""


class RowError(ValueError):
    """One field of one row cannot be read; the message names the field and the value."""


# ---- field parsers: '' is null, anything else must parse or the row is reported ----------------------------


def parse_int(name: str, raw) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, int):
        return raw
    try:
        number = float(raw)  # TLC files mix "1" and "1.0"
    except (TypeError, ValueError):
        raise RowError(f"{name} {raw!r} is not a number") from None
    if number != number or not number.is_integer():  # NaN (Parquet nulls in float columns) or 2.5
        if number != number:
            return None
        raise RowError(f"{name} {raw!r} is not a whole number")
    return int(number)


def parse_float(name: str, raw) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        number = float(raw)  # accepts ".79"
    except (TypeError, ValueError):
        raise RowError(f"{name} {raw!r} is not a number") from None
    if number != number:
        return None
    if number in (float("inf"), float("-inf")):
        raise RowError(f"{name} {raw!r} is not finite")
    return number


TIMESTAMP_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%m/%d/%Y %I:%M:%S %p")


def parse_timestamp(name: str, raw) -> datetime | None:
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
    raise RowError(f"{name} {raw!r} is not a timestamp (expected YYYY-MM-DD HH:MM:SS)")


def parse_text(name: str, raw) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip()
    return text or None


# ---- layouts -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    ride_type: str
    # event field -> (TLC column, parser); TLC column names are matched case-insensitively (FHV files vary).
    columns: dict[str, tuple[str, Callable]]
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
        "VendorID", "tpep_pickup_datetime", "tpep_dropoff_datetime", "passenger_count", "trip_distance",
        "RatecodeID", "store_and_fwd_flag", "PULocationID", "DOLocationID", "payment_type", "fare_amount", "extra",
        "mta_tax", "tip_amount", "tolls_amount", "improvement_surcharge", "total_amount", "congestion_surcharge",
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
        "VendorID", "lpep_pickup_datetime", "lpep_dropoff_datetime", "store_and_fwd_flag", "RatecodeID",
        "PULocationID", "DOLocationID", "passenger_count", "trip_distance", "fare_amount", "extra", "mta_tax",
        "tip_amount", "tolls_amount", "ehail_fee", "improvement_surcharge", "total_amount", "payment_type",
        "trip_type", "congestion_surcharge",
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
        "dispatching_base_num", "pickup_datetime", "dropOff_datetime", "PUlocationID", "DOlocationID", "SR_Flag",
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
    raw: str


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


def parse_plan(layout: Layout, header: list[str]) -> list[tuple[str, str | None, Callable]]:
    """(event field, the file's own spelling of its column or None, parser), worked out once per file."""
    index = {column.lower(): column for column in header}
    return [(name, index.get(column.lower()), parse) for name, (column, parse) in layout.columns.items()]


def row_to_event(layout: Layout, plan, row: dict, source: str, line: int) -> dict:
    """One TLC row (column -> raw value) to a ride event; raises RowError naming the bad field."""
    event = empty_event(layout.ride_type)
    for field_name, column, parse in plan:
        event[field_name] = parse(field_name, row.get(column) if column else None)
    if event["pickup_datetime"] is None:
        raise RowError("pickup_datetime is empty: a ride without a pickup time has no event time")
    event["ride_id"] = make_ride_id(layout.ride_type, source, line)
    return event


WIDTH_ERROR = "__width_error__"  # set on a CSV row whose field count differs from the header's


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _csv_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, dict, str]]]:
    handle = _open_text(path)
    reader = csv.reader(handle)
    try:
        header = next(reader)
    except StopIteration:
        handle.close()
        raise LayoutError(f"{path} is empty: no header row") from None
    header = [column.strip().lstrip("\ufeff") for column in header]

    def rows():
        with handle:
            for values in reader:
                if not values:
                    continue
                row = dict(zip(header, values))
                if len(values) != len(header):
                    row[WIDTH_ERROR] = f"{len(values)} fields where the header has {len(header)}"
                yield reader.line_num, row, ",".join(values)

    return header, rows()


def _parquet_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, dict, str]]]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    header = parquet.schema_arrow.names

    def rows():
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
) -> Iterator[dict]:
    """Ride events of a TLC file, in file order. Unreadable rows go to `report.bad_rows`, never silently away.

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
    return _events(layout, parse_plan(layout, header), rows, path.name, report)


def _events(layout, plan, rows, source, report) -> Iterator[dict]:
    for line, row, raw in rows:
        report.rows += 1
        width_error = row.pop(WIDTH_ERROR, None)
        try:
            if width_error:
                raise RowError(width_error)
            event = row_to_event(layout, plan, row, source, line)
        except RowError as exc:
            report.bad_rows.append(BadRow(line=line, reason=str(exc), raw=raw))
            continue
        report.events += 1
        yield event
