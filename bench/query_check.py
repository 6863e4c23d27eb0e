"""Do two engines give the same answer to a question? Row by row, matched on the answer's key.

Answers differ in types (SQLite has no timestamps, dates or booleans; DuckDB's integers may be
Polars' unsigned), so both sides are normalised first: timestamps to epoch microseconds, dates
to ISO text, booleans and integers to 64-bit integers. Where either side is a float, both are
compared as floats, within a relative 1e-7: engines add in different orders.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import pyarrow as pa

# The columns that identify a row of each answer (its grain).
KEYS: dict[str, tuple[str, ...]] = {
    "sessions": ("tenant_id", "session_id"),
    "cost_by_model": ("model",),
    "cost_by_user": ("tenant_id", "user_id", "day"),
    "latency_by_model": ("model",),
    "errors_by_model": ("model",),
    "compute_time_by_provider": ("compute",),
    "fanout_comparison": ("tenant_id", "parent_session_id", "child_session_id"),
    "daily_active_users": ("day", "tenant_id"),
    "top_sessions_by_cost": ("tenant_id", "session_id"),
    "what_if_cost": ("model",),
}
# The total shown beside each answer's row count in the report.
TOTALS: dict[str, str] = {
    "sessions": "cost_usd",
    "cost_by_model": "cost_usd",
    "cost_by_user": "cost_usd",
    "latency_by_model": "latency_p95_ms",
    "errors_by_model": "errors",
    "compute_time_by_provider": "total_s",
    "fanout_comparison": "children_cost_usd",
    "daily_active_users": "cost_usd",
    "top_sessions_by_cost": "cost_usd",
    "what_if_cost": "what_if_cost_usd",
}
RELATIVE = 1e-7
ABSOLUTE = 1e-9


@dataclass(frozen=True)
class Agreement:
    """How an answer compares with the reference: the same, or what differs."""

    rows: int
    total: float | None
    problems: tuple[str, ...]

    @property
    def same(self) -> bool:
        return not self.problems


def total(name: str, answer: pa.Table) -> float | None:
    """The answer's key total (e.g. its cost), for the report."""
    column = TOTALS[name]
    if column not in answer.column_names:
        return None
    return normalise(pl.from_arrow(answer).select(column)).get_column(column).cast(pl.Float64).sum()


def compare(name: str, reference: pa.Table, answer: pa.Table) -> Agreement:
    """How `answer` agrees with `reference` on the named question: rows, columns and every value."""
    problems: list[str] = []
    missing = [c for c in reference.column_names if c not in answer.column_names]
    if missing:
        problems.append(f"missing columns {', '.join(missing)}")
    if answer.num_rows != reference.num_rows:
        problems.append(f"{answer.num_rows:,} rows where the reference has {reference.num_rows:,}")
    else:
        columns = [c for c in reference.column_names if c not in missing]
        problems += differences(name, reference.select(columns), answer.select(columns))
    return Agreement(answer.num_rows, total(name, answer), tuple(problems))


def differences(name: str, reference: pa.Table, answer: pa.Table) -> list[str]:
    """Columns whose values differ once both answers are sorted by the key; with a count and an example."""
    keys = list(KEYS[name])
    left = normalise(pl.from_arrow(reference)).sort(keys, nulls_last=True)
    right = normalise(pl.from_arrow(answer)).sort(keys, nulls_last=True)
    out = []
    for column in left.columns:
        a, b = left.get_column(column), right.get_column(column)
        if pl.Float64 in (a.dtype, b.dtype):
            a, b = a.cast(pl.Float64, strict=False), b.cast(pl.Float64, strict=False)
            same = ((a - b).abs() <= ABSOLUTE + RELATIVE * a.abs()) | (a.is_null() & b.is_null())
        else:
            same = (a.cast(pl.String) == b.cast(pl.String)) | (a.is_null() & b.is_null())
        same = same.fill_null(False)
        if not same.all():
            at = int((~same).arg_max() or 0)
            key = ", ".join(str(left.get_column(k)[at]) for k in keys)
            out.append(f"{column}: {(~same).sum():,} rows differ (e.g. at {key}: {a[at]!r} vs {b[at]!r})")
    return out


def normalise(frame: pl.DataFrame) -> pl.DataFrame:
    """Types every engine can give: epoch microseconds, ISO dates, 64-bit integers, floats, text."""
    out = []
    for column, dtype in frame.schema.items():
        value = pl.col(column)
        if isinstance(dtype, pl.Datetime):
            value = value.dt.epoch("us")
        elif dtype == pl.Date:
            value = value.dt.strftime("%Y-%m-%d")
        elif dtype == pl.Boolean or dtype.is_integer():
            value = value.cast(pl.Int64)
        elif dtype.is_numeric():
            value = value.cast(pl.Float64)
        elif dtype == pl.Null:
            value = value.cast(pl.String)  # SQLite: a column without a single value
        out.append(value.alias(column))
    return frame.select(out)
