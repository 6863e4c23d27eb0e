"""The event table's schema (v1) and the validation every incoming batch passes."""

from __future__ import annotations

import datetime as dt
import json
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from warehouse.errors import ValidationError

SCHEMA_VERSION = 1

_TS = pa.timestamp("us", tz="UTC")

SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string()),
        pa.field("ts", _TS),
        pa.field("tenant_id", pa.string()),
        pa.field("user_id", pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("parent_session_id", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("type", pa.string()),
        pa.field("role", pa.string()),
        pa.field("content", pa.string()),
        pa.field("harness", pa.string()),
        pa.field("model", pa.string()),
        pa.field("compute", pa.string()),
        pa.field("input_tokens", pa.int64()),
        pa.field("output_tokens", pa.int64()),
        pa.field("cache_read_tokens", pa.int64()),
        pa.field("cache_write_tokens", pa.int64()),
        pa.field("cost_usd", pa.float64()),
        pa.field("latency_ms", pa.float64()),
        pa.field("ttft_ms", pa.float64()),
        pa.field("status", pa.string()),
        pa.field("error", pa.string()),
        pa.field("attrs", pa.string()),
    ],
    metadata={"cerver.schema_version": str(SCHEMA_VERSION)},
)

REQUIRED = ("event_id", "ts", "tenant_id", "session_id", "type")

EVENT_TYPES = frozenset(
    {
        "session.created",
        "session.updated",
        "session.closed",
        "message",
        "run.started",
        "run.completed",
        "run.failed",
        "tool.call",
        "tool.result",
        "compute.attached",
        "compute.exec",
        "session.spawned",
        "session.selected",
        "usage",
    }
)

ROLES = frozenset({"user", "assistant", "system", "tool"})

# Columns whose value may arrive as structured data and is kept as JSON text.
JSON_FIELDS = frozenset({"content", "attrs"})

Events = Sequence[Mapping[str, Any]] | pa.Table | pa.RecordBatch


def to_table(events: Events, schema: pa.Schema = SCHEMA) -> pa.Table:
    """Validate a batch and return it as a table of exactly `schema`.

    Raises ValidationError naming the first bad event's index and field; the
    caller writes nothing in that case.
    """
    if isinstance(events, pa.RecordBatch):
        events = pa.Table.from_batches([events])
    if isinstance(events, pa.Table):
        table = _conform_table(events, schema)
    elif isinstance(events, (str, bytes, Mapping)) or not isinstance(events, Sequence):
        raise ValidationError(0, None, "expected a list of event objects or a pyarrow Table")
    elif len(events) <= SMALL_BATCH and (table := _small_table(events, schema)) is not None:
        return table
    else:
        table = _table_from_rows(events, schema)
    _check_values(table)
    return table


# A run's events come a few at a time: for batches this small, plain Python beats Arrow's
# kernels (checks here, hashing in dedup.py, encoding in wal.py).
SMALL_BATCH = 32

T = TypeVar("T")


def per_schema(build: Callable[[pa.Schema], T]) -> Callable[[pa.Schema], T]:
    """Remember `build(schema)` by the schema object's identity: hashing a schema costs more
    than the lookup saves on the small-batch path."""
    memo: dict[int, tuple[pa.Schema, T]] = {}

    def lookup(schema: pa.Schema) -> T:
        hit = memo.get(id(schema))
        if hit is None or hit[0] is not schema:  # the schema is kept, so its id is never reused
            hit = memo[id(schema)] = (schema, build(schema))
        return hit[1]

    return lookup


@per_schema
def _plain_kinds(schema: pa.Schema) -> tuple[dict[str, frozenset[type]], pa.StructType]:
    kinds = {f.name: _fast_kinds(f.type) for f in schema}
    kinds["ts"] = frozenset({dt.datetime})
    return kinds, pa.struct(list(schema))


def _small_table(rows: Sequence[Any], schema: pa.Schema) -> pa.Table | None:
    """The batch as a table if every value is plainly valid; None sends it down the general path.

    The general path names the first error, so this one never has to: it only accepts.
    ISO 8601 timestamps and structured `content`/`attrs` are converted on copies of the rows.
    """
    kinds, struct = _plain_kinds(schema)
    plain = []
    for row in rows:
        if type(row) is not dict:
            return None
        copy = None
        for name, value in row.items():
            allowed = kinds.get(name)
            if allowed is None:
                return None
            if type(value) in allowed:
                continue
            if name == "ts" and type(value) is str:
                value = _iso_timestamp(value)
            elif name in JSON_FIELDS and type(value) in (dict, list):
                value = _as_json_text(value)
            else:
                return None
            if value is None:
                return None
            copy = copy or dict(row)
            copy[name] = value
        row = copy or row
        if not all(row.get(name) for name in REQUIRED):
            return None
        if row["type"] not in EVENT_TYPES or row["ts"].tzinfo is None:
            return None
        if (role := row.get("role")) is not None and role not in ROLES:
            return None
        plain.append(row)
    rows = plain
    try:
        batch = pa.RecordBatch.from_struct_array(pa.array(rows, type=struct))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None  # e.g. an integer beyond int64
    return pa.Table.from_batches([batch.replace_schema_metadata(schema.metadata)])


def _table_from_rows(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    known = set(schema.names)
    if not all(type(row) is dict for row in rows):
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise ValidationError(i, None, f"expected an object, got {type(row).__name__}")
    keys = set().union(*(row.keys() for row in rows)) if rows else set()
    if unknown := keys - known:
        name = sorted(unknown, key=str)[0]
        index = next(i for i, row in enumerate(rows) if name in row)
        raise ValidationError(index, str(name), f"unknown field (schema v{SCHEMA_VERSION})")
    try:
        return _fast_table(_json_fields_as_text(rows), schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, _SlowPath):
        arrays = [_column(field, [row.get(field.name) for row in rows]) for field in schema]
        return pa.Table.from_arrays(arrays, schema=schema)


def _json_fields_as_text(rows: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    """Rows whose structured `content`/`attrs` are JSON text, so that Arrow can take them in one pass.

    Rows that need it are copied; the caller's dicts are never changed.
    """
    plain = (str, _NONE)
    if all(type(row.get(name)) in plain for row in rows for name in JSON_FIELDS):
        return rows
    out = []
    for row in rows:
        if all(type(row.get(name)) in plain for name in JSON_FIELDS):
            out.append(row)
        else:
            out.append({**row, **{name: _as_json_text(row.get(name)) for name in JSON_FIELDS if name in row}})
    return out


class _SlowPath(Exception):
    """The batch needs value-by-value conversion (or has an error to locate)."""


def _fast_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """One C++ pass over the rows for the common, well-typed batch."""
    # Arrow truncates 1.5 to 1 when it fills an int64: read the integer columns as
    # floats too (exact below 2**53, and only used for this check) and insist on whole numbers.
    integers = [pa.field(f.name, pa.float64()) for f in schema if pa.types.is_integer(f.type)]
    probe = pa.array(rows, type=pa.struct(integers))
    for child in probe.flatten():
        if pc.any(pc.not_equal(child, pc.floor(child))).as_py():
            raise _SlowPath
    ts_kinds = {type(r.get("ts")) for r in rows}
    ts_as_text = ts_kinds == {str}
    if not ts_as_text and ts_kinds != {dt.datetime}:
        raise _SlowPath  # Arrow would take an int as microseconds: insist on real timestamps
    fields = [pa.field("ts", pa.string()) if f.name == "ts" and ts_as_text else f for f in schema]
    columns = pa.Table.from_struct_array(pa.array(rows, type=pa.struct(fields))).columns
    if ts_as_text:
        at = schema.get_field_index("ts")
        columns[at] = pc.cast(columns[at], _TS)  # ISO 8601 with an offset; else the slow path
    return pa.Table.from_arrays(columns, schema=schema)


_NONE = type(None)


def _fast_kinds(kind: pa.DataType) -> frozenset[type]:
    """Python types that convert to `kind` exactly, checked per column, not per value."""
    if pa.types.is_integer(kind):
        return frozenset({int, _NONE})
    if pa.types.is_floating(kind):
        return frozenset({int, float, _NONE})
    if pa.types.is_string(kind):
        return frozenset({str, _NONE})
    return frozenset()


def _column(field: pa.Field, values: list[Any]) -> pa.Array:
    kind = field.type
    if pa.types.is_timestamp(kind):
        values = [_as_timestamp(i, field.name, v) for i, v in enumerate(values)]
    elif not {type(v) for v in values} <= _fast_kinds(kind):
        values = _checked(field, values)
    try:
        return pa.array(values, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        index = _first_unconvertible(values, kind)
        raise ValidationError(index, field.name, str(exc)) from None


def _checked(field: pa.Field, values: list[Any]) -> list[Any]:
    """The slow path: convert what may be converted, name the first value that may not."""
    if field.name in JSON_FIELDS:
        values = [_as_json_text(v) for v in values]
    kind = field.type
    if pa.types.is_integer(kind):
        _require(values, field.name, _is_integer, "an integer")
    elif pa.types.is_floating(kind):
        _require(values, field.name, _is_number, "a number")
    elif pa.types.is_string(kind):
        _require(values, field.name, lambda v: isinstance(v, str), "a string")
    return values


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _require(values: list[Any], name: str, ok: Any, what: str) -> None:
    for i, v in enumerate(values):
        if v is not None and not ok(v):
            raise ValidationError(i, name, f"expected {what}, got {type(v).__name__} {v!r:.60}")


def _first_unconvertible(values: list[Any], kind: pa.DataType) -> int:
    for i, v in enumerate(values):
        try:
            pa.array([v], type=kind)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            return i
    return 0


def _as_json_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (Mapping, list, tuple, int, float, bool)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return value


def _iso_timestamp(text: str) -> dt.datetime | None:
    """An ISO 8601 string as a datetime (naive means UTC); None if it is not one."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _as_timestamp(index: int, name: str, value: Any) -> dt.datetime | None:
    if value is None or (type(value) is dt.datetime and value.tzinfo is dt.UTC):
        return value
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(index, name, f"not an ISO 8601 timestamp: {value!r:.60}") from None
    if not isinstance(value, dt.datetime):
        raise ValidationError(
            index, name, f"expected an ISO 8601 string or datetime, got {type(value).__name__}"
        )
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)  # naive means UTC, as everywhere in Cerver
    return value


def _conform_table(table: pa.Table, schema: pa.Schema) -> pa.Table:
    if table.schema.equals(schema):  # already exactly the schema (e.g. built by to_table): no casts
        return table.replace_schema_metadata(schema.metadata)
    if unknown := [n for n in table.column_names if n not in schema.names]:
        raise ValidationError(0, unknown[0], f"unknown field (schema v{SCHEMA_VERSION})")
    n = table.num_rows
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            columns.append(pa.nulls(n, field.type))
            continue
        column = table.column(field.name)
        try:
            columns.append(column.cast(field.type, safe=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            index = _first_uncastable(column, field.type)
            raise ValidationError(index, field.name, str(exc).splitlines()[0]) from None
    return pa.Table.from_arrays(columns, schema=schema)


def _first_uncastable(column: pa.ChunkedArray, kind: pa.DataType) -> int:
    offset = 0
    for chunk in column.chunks:
        for i in range(len(chunk)):
            try:
                chunk.slice(i, 1).cast(kind, safe=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                return offset + i
        offset += len(chunk)
    return 0


def _check_values(table: pa.Table) -> None:
    for name in REQUIRED:
        column = table.column(name)
        if column.null_count:
            raise ValidationError(_first(pc.is_null(column)), name, "required")
        if pa.types.is_string(column.type):
            empty = pc.equal(column, "")
            if pc.any(empty).as_py():
                raise ValidationError(_first(empty), name, "must not be empty")
    _check_member(table, "type", EVENT_TYPES)
    _check_member(table, "role", ROLES)


def _check_member(table: pa.Table, name: str, allowed: frozenset[str]) -> None:
    column = table.column(name)
    outside = pc.invert(pc.is_in(column, value_set=pa.array(sorted(allowed))))
    outside = pc.and_kleene(outside, pc.is_valid(column))
    if pc.any(outside).as_py():
        index = _first(outside)
        value = column[index].as_py()
        raise ValidationError(index, name, f"{value!r} is not one of {', '.join(sorted(allowed))}")


def _first(mask: pa.ChunkedArray | pa.Array) -> int:
    return pc.index(mask, True).as_py()
