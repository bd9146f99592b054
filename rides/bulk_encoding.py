"""Ride events to message bytes a column at a time: the Avro wire format and JSON, byte for byte what the per-row
serializers of rides/serialization.py write for the same rides, without a Python call per field.

Each field of the schema becomes binary Arrow arrays of its encoded bytes (built with numpy: zig-zag varints,
little-endian doubles, length-prefixed strings, union branches; or Arrow's own text of numbers and times for JSON),
and Arrow's binary_join_element_wise concatenates a row's parts in C. Ours because no library encodes Arrow columns to Avro or to Python's json.dumps text: fastavro
and json are one record at a time, which is most of what the per-row producer spends.

A row a bulk encoder cannot write exactly as the per-row serializer would (an int outside the schema's range, a
symbol the enum lacks, a required field that is null) comes back as None: the caller writes that row one by one,
so it meets the per-row serializer's own error, and the dead-letter topic gets the same reason.
"""

from __future__ import annotations

import json
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rides.events import RIDE_EVENT_SCHEMA, SchemaFile, field_names, schema_text
from rides.serialization import MAGIC_BYTE, WIRE_HEADER, json_default

# The Arrow type of each Avro type a ride event uses; a table handed to the encoders has these columns.
_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int64(),
    "long": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    # microseconds, as the datetimes of the per-row path: the Avro millis are worked out from them as it does
    "timestamp-millis": pa.timestamp("us"),
    "enum": pa.string(),
}
_INT32 = (-(2**31), 2**31 - 1)
# Python writes a float in fixed notation inside this range and with an exponent outside it (repr); Arrow's cast
# agrees on the digits (both the shortest that round-trip) but not on where the exponent starts.
_FIXED_NOTATION = (1e-4, 1e16)
# Text json.dumps writes as is between quotes: printable ASCII but the quote and the backslash.
_PLAIN_JSON_TEXT = r"^[ !#-\[\]-~]*$"


class BulkUnsupportedError(ValueError):
    """The schema has a type the bulk encoders do not write; the per-row serializers are used instead."""


def _branches(avro_type: Any) -> tuple[int | None, Any]:
    """(the union index of null or None, the non-null type) of a field type; a union of two non-null types, or of
    more than two, is not supported."""
    if not isinstance(avro_type, list):
        return None, avro_type
    others = [branch for branch in avro_type if branch != "null"]
    if len(avro_type) != 2 or len(others) != 1:
        raise BulkUnsupportedError(f"union {avro_type} is not [null, T]")
    return avro_type.index("null"), others[0]


def _kind(avro_type: Any) -> str:
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") == "timestamp-millis" and avro_type.get("type") == "long":
            return "timestamp-millis"
        if avro_type.get("type") == "enum":
            return "enum"
        avro_type = avro_type.get("type")
    if avro_type not in _ARROW_TYPES:
        raise BulkUnsupportedError(f"type {avro_type!r}")
    return str(avro_type)


def arrow_schema(schema_file: SchemaFile = RIDE_EVENT_SCHEMA) -> pa.Schema:
    """The Arrow columns of a ride event of the schema, for pa.Table.from_pylist and the columnar reader."""
    fields = json.loads(schema_text(schema_file))["fields"]
    return pa.schema([(field["name"], _ARROW_TYPES[_kind(_branches(field["type"])[1])]) for field in fields])


# ---- rows from parts ------------------------------------------------------------------------------------------

# A part of every row: a binary array without nulls (row i's bytes), or bytes every row has.
Part: TypeAlias = "pa.Array | bytes"


def _assemble(parts: list[Part]) -> list[bytes]:
    """Row i is the concatenation of each part's bytes of row i, joined by Arrow in C. Bytes every row has are
    merged with their neighbours first: the join's cost grows with its arguments."""
    merged: list[Part] = []
    for part in parts:
        if isinstance(part, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += part
        elif not (isinstance(part, bytes) and not part):
            merged.append(part)
    arguments = [pa.scalar(part, pa.binary()) if isinstance(part, bytes) else part for part in merged]
    rows: list[bytes] = pc.binary_join_element_wise(*arguments, b"").to_pylist()
    return rows


def _from_grid(grid: np.ndarray, widths: np.ndarray) -> pa.Array:
    """A binary array whose row i is the first widths[i] bytes of row i of an (n, w) uint8 grid."""
    used = np.arange(grid.shape[1])[None, :] < widths[:, None]
    offsets = np.zeros(len(widths) + 1, dtype=np.int32)
    np.cumsum(widths, out=offsets[1:])
    flat = np.ascontiguousarray(grid)[used]
    return pa.Array.from_buffers(pa.binary(), len(widths), [None, pa.py_buffer(offsets), pa.py_buffer(flat)])


def _text(array: pa.Array) -> pa.Array:
    """A string array, nulls written as JSON's null, as binary."""
    return pc.fill_null(array, "null").cast(pa.binary())


def _where(rows: np.ndarray, data: bytes) -> Part:
    """data in the rows marked, nothing in the others (bytes when that is every row or none)."""
    if rows.all():
        return data
    if not rows.any():
        return b""
    return pc.if_else(pa.array(rows), pa.scalar(data, pa.binary()), pa.scalar(b"", pa.binary()))


def _varints(unsigned: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """The values' base-128 varints, as Avro writes them (nothing where not valid)."""
    unsigned = unsigned.astype(np.uint64, copy=False)
    top = int(unsigned.max()) if len(unsigned) else 0
    most = max(1, (top.bit_length() + 6) // 7)
    widths = np.ones(len(unsigned), dtype=np.int64)
    for step in range(1, most):
        widths += unsigned >= np.uint64(1 << (7 * step))
    shifts = np.arange(most, dtype=np.uint64) * np.uint64(7)
    groups = ((unsigned[:, None] >> shifts) & np.uint64(0x7F)).astype(np.uint8)
    groups[np.arange(most)[None, :] < widths[:, None] - 1] |= 0x80
    return _from_grid(groups, widths if valid is None else np.where(valid, widths, 0))


def epoch_millis(column: pa.Array) -> np.ndarray:
    """A column of times as epoch milliseconds, as to_epoch_millis works them out from a datetime: seconds as a float,
    times 1000, cut to an int (0 for a null)."""
    micros = np.asarray(pc.fill_null(column.cast(pa.timestamp("us")).cast(pa.int64()), 0), dtype=np.int64)
    return np.trunc((micros / 1_000_000) * 1000).astype(np.int64)


def _constant(numbers: np.ndarray) -> bytes | None:
    """The varint of a column of one small number (0 to 63), or None."""
    if len(numbers) and numbers.min() == numbers.max() and 0 <= numbers[0] < 64:
        return bytes([int(numbers[0]) * 2])
    return None


def _zigzag(values: np.ndarray) -> np.ndarray:
    signed = values.astype(np.int64, copy=False)
    return ((signed << 1) ^ (signed >> 63)).view(np.uint64)


# ---- Avro ---------------------------------------------------------------------------------------------------


class AvroBulkEncoder:
    """Rows of an Arrow table -> Confluent wire-format Avro (magic byte, schema id, body) for one schema: the bytes
    AvroWireSerializer writes for the same rides."""

    def __init__(self, schema_id: int, schema_file: SchemaFile = RIDE_EVENT_SCHEMA):
        schema = json.loads(schema_text(schema_file))
        if isinstance(schema, str) or schema.get("type") == "string":
            self.fields: list[tuple[str | None, int | None, str, Any]] = [(None, None, "string", None)]
        elif schema.get("type") == "record":
            self.fields = []
            for field in schema["fields"]:
                null_index, branch = _branches(field["type"])
                symbols = branch.get("symbols") if isinstance(branch, dict) else None
                self.fields.append((field["name"], null_index, _kind(branch), symbols))
        else:
            raise BulkUnsupportedError(f"schema of type {schema.get('type')!r}")
        self.header = WIRE_HEADER.pack(MAGIC_BYTE, schema_id)

    def encode(self, table: pa.Table) -> list[bytes | None]:
        """One message value per row; None for a row to write one by one (see the module's docstring)."""
        n = table.num_rows
        fits = np.ones(n, dtype=bool)
        parts: list[Part] = [self.header]
        for name, null_index, kind, symbols in self.fields:
            column = table.column(name if name is not None else 0).combine_chunks()
            valid = np.asarray(column.is_valid(), dtype=bool)
            if null_index is None:
                fits &= valid
            else:  # the union's branch: the index of null, or of the other type (bytes when all rows agree)
                branch = np.where(valid, 1 - null_index, null_index)
                parts.append(_constant(branch) or _varints(_zigzag(branch)))
                if not valid.any():
                    continue  # every row null: nothing past the branch
            field_parts, field_fits = _avro_values(column, valid, kind, symbols)
            fits &= field_fits
            parts.extend(field_parts)
        encoded = _assemble(parts)
        if fits.all():
            return list(encoded)
        return [value if ok else None for value, ok in zip(encoded, fits.tolist(), strict=True)]


def _avro_values(
    column: pa.Array, valid: np.ndarray, kind: str, symbols: list[str] | None
) -> tuple[list[Part], np.ndarray]:
    """The bytes of a column's non-null values (a null writes nothing past its branch), and which rows fit."""
    fits = np.ones(len(column), dtype=bool)
    if kind == "string":
        data = pc.fill_null(column.cast(pa.binary()), b"")
        lengths = np.asarray(pc.binary_length(data), dtype=np.int64)
        return [_varints(_zigzag(lengths), valid), data], fits
    if kind == "enum":
        indices = pc.index_in(column, value_set=pa.array(symbols))
        fits &= ~(np.asarray(indices.is_null(), dtype=bool) & valid)
        numbers = np.asarray(pc.fill_null(indices, 0), dtype=np.int64)
    elif kind == "double":
        numbers = np.asarray(pc.fill_null(column, 0.0), dtype="<f8")
        return [_from_grid(numbers.view(np.uint8).reshape(-1, 8), np.where(valid, 8, 0))], fits
    elif kind == "boolean":
        flags = np.asarray(pc.fill_null(column, False), dtype=np.uint8)
        return [_from_grid(flags[:, None], valid.astype(np.int64))], fits
    elif kind == "timestamp-millis":
        numbers = epoch_millis(column)
    else:  # int, long
        numbers = np.asarray(pc.fill_null(column.cast(pa.int64()), 0), dtype=np.int64)
        if kind == "int":
            fits &= (numbers >= _INT32[0]) & (numbers <= _INT32[1])
    return [_varints(_zigzag(numbers), valid)], fits


# ---- JSON ---------------------------------------------------------------------------------------------------


class JsonBulkEncoder:
    """Rows of an Arrow table of ride events -> the JSON text to_json writes for the same events: every field of
    the event in schema order, compact separators, ASCII only, times as ISO-8601 UTC with milliseconds."""

    def __init__(self, schema_file: SchemaFile = RIDE_EVENT_SCHEMA):
        self.names = field_names(schema_file)

    def encode(self, table: pa.Table) -> list[bytes | None]:
        parts: list[Part] = []
        for position, name in enumerate(self.names):
            parts.append((("{" if position == 0 else ",") + json.dumps(name) + ":").encode())
            parts.extend(_json_values(table.column(name).combine_chunks()))
        parts.append(b"}")
        return list(_assemble(parts))


def _json_values(column: pa.Array) -> list[Part]:
    """Each value's JSON text, 'null' for a null."""
    kind = column.type
    valid = np.asarray(column.is_valid(), dtype=bool)
    if pa.types.is_string(kind):
        plain = np.asarray(pc.fill_null(pc.match_substring_regex(column, _PLAIN_JSON_TEXT), True), dtype=bool)
        if plain.all():
            quote = _where(valid, b'"')
            return [quote, _text(column), quote]
        quoted = pc.binary_join_element_wise('"', column, '"', "")
        return [_text(_with_python_text(quoted, column, ~plain))]
    if pa.types.is_floating(kind):
        return _float_text(column, valid)
    if pa.types.is_timestamp(kind):
        # Arrow writes a millisecond time as 2020-10-01 00:31:19.000: with a T, that is isoformat's text. Before
        # 1970 the cast to milliseconds and isoformat may cut a fraction apart: Python writes those.
        millis = column.cast(pa.timestamp("ms"), safe=False).cast(pa.string())
        text = pc.replace_substring(millis, " ", "T", max_replacements=1)
        early = np.asarray(pc.fill_null(pc.year(column), 2000)) < 1970
        if early.any():
            quoted = pc.binary_join_element_wise('"', text, 'Z"', "")
            return [_text(_with_python_text(quoted, column, early))]
        return [_where(valid, b'"'), _text(text), _where(valid, b'Z"')]
    if pa.types.is_boolean(kind):
        return [_text(pc.if_else(column, "true", "false"))]
    return [_text(column.cast(pa.string()))]


def _float_text(column: pa.Array, valid: np.ndarray) -> list[Part]:
    """repr of each float: Arrow's shortest digits, with '.0' on a whole number, and Python's own repr where the
    two notations differ (where either writes an exponent, and inf and nan, which json writes as Infinity and
    NaN)."""
    numbers = np.asarray(pc.fill_null(column, 1.0), dtype=np.float64)
    magnitude = np.abs(numbers)
    with np.errstate(invalid="ignore"):
        odd = ((magnitude < _FIXED_NOTATION[0]) & (magnitude != 0)) | ~(magnitude < _FIXED_NOTATION[1])
    text = pc.fill_null(column.cast(pa.string()), "null")
    odd |= np.asarray(pc.match_substring(text, "e"), dtype=bool)  # Arrow's exponents start sooner (1.2e+14)
    with np.errstate(invalid="ignore"):
        whole = valid & ~odd & (numbers == np.floor(numbers))
    return [_text(_with_python_text(text, column, odd)), _where(whole, b".0")]


def _python_json(value: Any) -> str:
    return json.dumps(value, default=json_default)


def _with_python_text(text: pa.Array, column: pa.Array, rows: np.ndarray) -> pa.Array:
    """text, with the rows marked written by json.dumps (values whose text Arrow does not write as Python)."""
    if not rows.any():
        return text
    values = text.to_pylist()
    originals = column.to_pylist()
    for row in np.flatnonzero(rows).tolist():
        if originals[row] is not None:
            values[row] = _python_json(originals[row])
    return pa.array(values, type=pa.string())
