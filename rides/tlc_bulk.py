"""TLC files read a block at a time into Arrow columns: the producer's bulk path, giving the same rides, with the
same ids and the same bad rows, as rides/tlc.py's reader (which reads and checks one row at a time).

A CSV block (a few MiB of whole lines) is checked in numpy first: lines of the header's width go to pyarrow's CSV
parser as text, and each field is validated in columns against patterns whose values Arrow reads exactly as the
per-row parsers do (an int as 1 or 1.0, a float as .79, a time as 2020-10-01 00:31:19 that exists). A row with any
field outside them (a blank, a comma too many, 2.5 passengers, a pickup past the file's month, February 30) is
read by the per-row reader itself, so it becomes the same event or the same bad row with the same reason. From a
block with a quote, a carriage return not ending a line, or bytes that are not UTF-8 on, the rest of the file is read row by row: a
quoted field may span lines, and only the csv module numbers those lines as the per-row reader does.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import csv as arrow_csv

from rides.bulk_encoding import arrow_schema
from rides.events import Ride, make_ride_ids
from rides.tlc import (
    MAX_LINE_BYTES,
    BadRow,
    FileMonth,
    Layout,
    LayoutError,
    NumberedRow,
    Plan,
    ReadReport,
    Row,
    csv_rows,
    detect_layout,
    open_csv,
    parse_float,
    parse_int,
    parse_plan,
    parse_text,
    parse_timestamp,
    read_row,
)

BLOCK_BYTES = 4 << 20  # about 20,000 TLC rows
PARQUET_BATCH_ROWS = 20_000

# Values Arrow reads as the per-row parsers do; anything else is read by them.
_INT = r"^-?[0-9]{1,9}(\.0*)?$"  # parse_int: "1" and "1.0"; nine digits fit an Avro int
_FLOAT = r"^-?([0-9]{1,15}(\.[0-9]{0,15})?|\.[0-9]{1,15})$"  # parse_float: "0.5", ".79", "5"
_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"  # parse_timestamp's common case
_TEXT = r"^[!-~]*$"  # parse_text: printable ASCII without spaces (nothing to strip)
_NULL_TEXT = pa.scalar(None, pa.string())


@dataclass
class RideBlock:
    """Rides of consecutive lines: those read in columns (table, with their lines), and the others one by one
    (line, ride or bad row), in line order."""

    table: pa.Table
    lines: np.ndarray
    one_by_one: list[tuple[int, Ride | BadRow]] = field(default_factory=list)
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # the line of every row read

    def event_lines(self) -> np.ndarray:
        odd = [line for line, event in self.one_by_one if not isinstance(event, BadRow)]
        return np.sort(np.concatenate((self.lines, np.array(odd, dtype=np.int64))))

    def until(self, last_line: int) -> RideBlock:
        """The part of the block up to a line (included)."""
        kept = int(np.searchsorted(self.lines, last_line, side="right"))
        return RideBlock(
            self.table.slice(0, kept),
            self.lines[:kept],
            [(line, event) for line, event in self.one_by_one if line <= last_line],
            self.rows[self.rows <= last_line],
        )


def read_ride_blocks(
    path: Path | str,
    ride_type: str | None = None,
    report: ReadReport | None = None,
    check_month: bool = True,
    limit: int | None = None,
) -> Iterator[RideBlock]:
    """The rides of a TLC file a block at a time, as read_rides reads them (same arguments, same report, same
    errors before anything is read), up to `limit` rides."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    report = report if report is not None else ReadReport(source=str(path))
    name = path.name.lower()
    month = FileMonth.of(path) if check_month else None
    return _limited(_blocks(path, name, ride_type, report, month), report, limit)


def _limited(blocks: Iterator[RideBlock], report: ReadReport, limit: int | None) -> Iterator[RideBlock]:
    """The blocks up to the limit-th ride (as read_rides stops: the rows after it are not read), counted in the
    report."""
    remaining = limit
    try:
        for block in blocks:
            if remaining is not None:
                events = block.event_lines()
                if len(events) >= remaining:
                    block = block.until(int(events[remaining - 1])) if remaining else block.until(-1)
                remaining -= min(remaining, len(events))
            bad = [event for _, event in block.one_by_one if isinstance(event, BadRow)]
            report.rows += len(block.rows)
            report.events += block.table.num_rows + len(block.one_by_one) - len(bad)
            report.bad_rows.extend(bad)
            yield block
            if remaining == 0:
                return
    finally:
        blocks.close()  # type: ignore[attr-defined]  # a generator: closes the file


def _blocks(
    path: Path, name: str, ride_type: str | None, report: ReadReport, month: FileMonth | None
) -> Iterator[RideBlock]:
    if name.endswith(".parquet"):
        parquet = pq.ParquetFile(path)
        layout = detect_layout(parquet.schema_arrow.names, ride_type)
        report.layout = layout.ride_type
        return _Reader(layout, parse_plan(layout, parquet.schema_arrow.names), path.name, month).parquet_blocks(parquet)
    if not name.endswith((".csv", ".csv.gz")):
        raise LayoutError(f"{path}: expected a .csv, .csv.gz or .parquet file")
    handle, header = open_csv(path)
    try:
        layout = detect_layout(header, ride_type)
    except LayoutError:
        handle.close()
        raise
    report.layout = layout.ride_type
    return _Reader(layout, parse_plan(layout, header), path.name, month).csv_blocks(handle, header)


class _Reader:
    def __init__(self, layout: Layout, plan: Plan, source: str, month: FileMonth | None):
        self.layout, self.plan, self.source, self.month = layout, plan, source, month
        self.schema = arrow_schema()

    # ---- CSV ----

    def csv_blocks(self, handle: IO[bytes], header: list[str]) -> Iterator[RideBlock]:
        line = 2  # the header is line 1
        with handle:
            while block := handle.read(BLOCK_BYTES):
                if not block.endswith(b"\n"):
                    block += handle.readline()
                if b'"' in block or block.count(b"\r") != block.count(b"\r\n") or not _is_utf8(block):
                    yield from self._row_by_row(csv_rows(itertools.chain(io.BytesIO(block), handle), header, line))
                    return
                yield self._plain_block(block, header, line)
                line += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)

    def _plain_block(self, block: bytes, header: list[str], first_line: int) -> RideBlock:
        data = np.frombuffer(block, dtype=np.uint8)
        newlines = np.flatnonzero(data == 10)
        ends = newlines if block.endswith(b"\n") else np.append(newlines, len(data))
        starts = np.concatenate(([0], ends[:-1] + 1))
        text_ends = ends - (data[np.maximum(ends - 1, 0)] == 13)  # without a CRLF file's carriage return
        text_ends = np.maximum(text_ends, starts)
        commas = np.flatnonzero(data == 44)
        widths = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
        lengths = np.minimum(ends + 1, len(data)) - starts  # as the per-row reader measures a line: with its newline
        blank = text_ends == starts
        whole = ~blank & (widths == len(header)) & (lengths <= MAX_LINE_BYTES)
        numbers = first_line + np.arange(len(starts))
        odd: list[tuple[int, Ride | BadRow]] = []
        for index in np.flatnonzero(~blank & ~whole).tolist():  # a comma too many or too few, a line too long
            raw = block[starts[index] : ends[index] + 1]
            odd.extend(self._read_rows(csv_rows([raw], header, int(numbers[index]))))
        if not whole.all():
            keep = np.repeat(whole, np.minimum(ends + 1, len(data)) - starts)
            block = data[keep].tobytes()
        columns = _parse_csv(block, header, [column for _, column, _ in self.plan if column], int(whole.sum()))
        lines = numbers[whole]
        whole_lines = np.flatnonzero(whole)

        def text_row(index: int) -> tuple[Row, str]:
            row_number = int(whole_lines[index])
            text = bytes(data[starts[row_number] : text_ends[row_number]]).decode("utf-8")
            return dict(zip(header, text.split(","), strict=False)), text

        return self._block(columns, lines, text_row, odd, numbers[~blank])

    # ---- Parquet ----

    def parquet_blocks(self, parquet: pq.ParquetFile) -> Iterator[RideBlock]:
        line = 1
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            lines = line + np.arange(batch.num_rows)
            line += batch.num_rows

            def python_row(index: int, batch: pa.RecordBatch = batch) -> tuple[Row, str]:
                row = batch.slice(index, 1).to_pylist()[0]
                return row, repr(row)

            columns = {name: batch.column(name) for name in batch.schema.names}
            yield self._block(columns, lines, python_row, [], lines)

    # ---- both ----

    def _row_by_row(self, rows: Iterable[NumberedRow]) -> Iterator[RideBlock]:
        rows = iter(rows)
        while chunk := list(itertools.islice(rows, PARQUET_BATCH_ROWS)):
            odd = list(self._read_rows(chunk))
            read = np.array([line for line, _ in odd], dtype=np.int64)
            yield RideBlock(self.schema.empty_table(), np.zeros(0, dtype=np.int64), odd, read)

    def _read_rows(self, rows: Iterable[NumberedRow]) -> Iterator[tuple[int, Ride | BadRow]]:
        for numbered in rows:
            yield numbered[0], read_row(self.layout, self.plan, numbered, self.source, self.month)

    def _block(
        self,
        columns: dict[str, pa.Array],
        lines: np.ndarray,
        row_of: Callable[[int], tuple[Row, str]],
        odd: list[tuple[int, Ride | BadRow]],
        rows: np.ndarray,
    ) -> RideBlock:
        """The rides of the rows whose every field is read in columns, and the others read one by one."""
        n = len(lines)
        fast = np.ones(n, dtype=bool)
        values: dict[str, pa.Array] = {}
        for name, column, parse in self.plan:
            if column is None:
                continue
            parsed, ok = _PARSERS[parse](columns[column])
            values[name] = parsed
            fast &= ok
        pickup = values.get("pickup_datetime")
        if pickup is not None:
            micros = np.asarray(pickup.cast(pa.int64()).fill_null(np.iinfo(np.int64).max), dtype=np.int64)
            fast &= np.asarray(pickup.is_valid(), dtype=bool)
            if self.month is not None:
                fast &= micros < _micros(self.month)
        for index in np.flatnonzero(~fast).tolist():
            row, raw = row_of(index)
            odd.extend(self._read_rows([(int(lines[index]), row, raw)]))
        odd.sort(key=lambda pair: pair[0])
        kept = pa.array(fast)
        fast_lines = lines[fast]
        ride_ids = make_ride_ids(self.layout.ride_type, self.source, fast_lines.tolist())
        arrays = []
        for schema_field in self.schema:
            if schema_field.name == "ride_id":
                arrays.append(pa.array(ride_ids, type=pa.string()))
            elif schema_field.name == "ride_type":
                arrays.append(pa.array([self.layout.ride_type] * len(fast_lines), type=pa.string()))
            elif schema_field.name in values:
                arrays.append(values[schema_field.name].filter(kept).cast(schema_field.type))
            else:
                arrays.append(pa.nulls(len(fast_lines), schema_field.type))
        return RideBlock(pa.Table.from_arrays(arrays, schema=self.schema), fast_lines, odd, rows)


def _micros(month: FileMonth) -> int:
    return int(np.datetime64(month.latest_pickup, "us").astype(np.int64))


def _is_utf8(block: bytes) -> bool:
    if block.isascii():
        return True
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _parse_csv(block: bytes, header: list[str], columns: list[str], rows: int) -> dict[str, pa.Array]:
    """The block's columns as text, exactly as written (no quoting, no nulls: an empty field is '')."""
    if rows == 0:
        return {name: pa.array([], type=pa.string()) for name in columns}
    table = arrow_csv.read_csv(
        pa.py_buffer(block),
        read_options=arrow_csv.ReadOptions(column_names=header, block_size=max(1 << 20, len(block) + 1)),
        parse_options=arrow_csv.ParseOptions(quote_char=False, double_quote=False, escape_char=False),
        convert_options=arrow_csv.ConvertOptions(
            column_types=dict.fromkeys(columns, pa.string()),
            include_columns=columns,
            strings_can_be_null=False,
        ),
    )
    return {name: table.column(name).combine_chunks() for name in columns}


# ---- field parsers in columns: (values, which rows they read exactly as the per-row parser would) ---------------


def _as_text(column: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """A column as text, and where that text is what the per-row parser reads: a Parquet column of numbers is
    written by Arrow as Python would parse it back (1, 0.5); a null stays null."""
    if pa.types.is_null(column.type) or pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.cast(pa.string()), np.ones(len(column), dtype=bool)
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return column.cast(pa.string()), np.ones(len(column), dtype=bool)
    return pa.nulls(len(column), pa.string()), np.zeros(len(column), dtype=bool)


def _matching(text: pa.Array, pattern: str) -> tuple[pa.Array, np.ndarray]:
    """(where the text matches, where it is a null: null or empty)."""
    matches = pc.fill_null(pc.match_substring_regex(text, pattern), False)
    empty = np.asarray(pc.fill_null(pc.equal(text, ""), True), dtype=bool)
    return matches, empty


def _ints(column: pa.Array) -> tuple[pa.Array, np.ndarray]:
    text, readable = _as_text(column)
    digits_only = pc.and_(pc.ascii_is_decimal(text), pc.less_equal(pc.utf8_length(text), 9))
    empty = np.asarray(pc.fill_null(pc.equal(text, ""), True), dtype=bool)
    if (np.asarray(pc.fill_null(digits_only, False), dtype=bool) | empty).all():  # the common case, no pattern
        return pc.if_else(digits_only, text, _NULL_TEXT).cast(pa.int64()), readable
    matches, empty = _matching(text, _INT)
    digits = pc.replace_substring_regex(pc.if_else(matches, text, _NULL_TEXT), r"\.0*$", "")
    return digits.cast(pa.int64()), readable & (np.asarray(matches, dtype=bool) | empty)


def _floats(column: pa.Array) -> tuple[pa.Array, np.ndarray]:
    text, readable = _as_text(column)
    matches, empty = _matching(text, _FLOAT)
    return pc.if_else(matches, text, _NULL_TEXT).cast(pa.float64()), readable & (np.asarray(matches) | empty)


def _timestamps(column: pa.Array) -> tuple[pa.Array, np.ndarray]:
    if pa.types.is_timestamp(column.type) and column.type.tz is None:
        micros = column.cast(pa.timestamp("us"), safe=False)
        exact = pc.fill_null(pc.equal(micros.cast(column.type), column), True)  # no nanoseconds lost
        return micros, np.asarray(exact, dtype=bool)
    if pa.types.is_date(column.type) or pa.types.is_null(column.type):
        return column.cast(pa.timestamp("us")), np.ones(len(column), dtype=bool)
    if not pa.types.is_string(column.type):
        return pa.nulls(len(column), pa.timestamp("us")), np.asarray(column.is_null(), dtype=bool)
    empty = np.asarray(pc.fill_null(pc.equal(column, ""), True), dtype=bool)
    plain = pc.if_else(pc.equal(pc.utf8_length(column), 19), column, _NULL_TEXT)
    try:  # the common case: every time in Arrow's ISO-8601 reader, which is quicker than strptime
        parsed = plain.cast(pa.timestamp("us"))
    except pa.ArrowInvalid:
        return _timestamps_by_pattern(column)
    return parsed, _written_back(parsed, column) | empty


def _timestamps_by_pattern(column: pa.Array) -> tuple[pa.Array, np.ndarray]:
    matches, empty = _matching(column, _TIMESTAMP)
    parsed = pc.strptime(
        pc.if_else(matches, column, _NULL_TEXT), format="%Y-%m-%d %H:%M:%S", unit="us", error_is_null=True
    )
    return parsed, _written_back(parsed, column) | empty


def _written_back(parsed: pa.Array, column: pa.Array) -> np.ndarray:
    """Where a time writes back as the text it was read from: the per-row parser's YYYY-MM-DD HH:MM:SS (Arrow's
    strptime reads 2020-02-30 as March 1; its ISO reader takes a T, which Python does too but is left to it)."""
    written = parsed.cast(pa.timestamp("s"), safe=False).cast(pa.string())
    return np.asarray(pc.fill_null(pc.equal(written, column), False), dtype=bool)


def _texts(column: pa.Array) -> tuple[pa.Array, np.ndarray]:
    if pa.types.is_null(column.type):
        column = column.cast(pa.string())
    if not pa.types.is_string(column.type):
        return pa.nulls(len(column), pa.string()), np.asarray(column.is_null(), dtype=bool)
    matches, empty = _matching(column, _TEXT)
    return pc.if_else(pc.equal(column, ""), _NULL_TEXT, column), np.asarray(matches, dtype=bool) | empty


_PARSERS: dict[Callable[..., Any], Callable[[pa.Array], tuple[pa.Array, np.ndarray]]] = {
    parse_int: _ints,
    parse_float: _floats,
    parse_timestamp: _timestamps,
    parse_text: _texts,
}
