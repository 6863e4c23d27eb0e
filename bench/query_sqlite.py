"""The ten named questions in SQLite SQL (bench/sqlite_queries/<name>.sql), over the loaded events."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa

SQL_DIR = Path(__file__).resolve().parent / "sqlite_queries"
# Every connection's settings: a bigger page cache than the default 2 MiB, and sorts in memory.
PRAGMAS = ("PRAGMA cache_size = -262144", "PRAGMA temp_store = MEMORY")
PRAGMAS_TEXT = "cache_size = 256 MiB, temp_store = MEMORY"


@cache
def sql(name: str) -> str:
    """The SQLite version of the named query."""
    return (SQL_DIR / f"{name}.sql").read_text()


def connect(path: Path) -> sqlite3.Connection:
    """A fresh read-only connection to the loaded file."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    for pragma in PRAGMAS:
        con.execute(pragma)
    return con


def sqlite_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """Bound values as SQLite takes them: timestamps as integer microseconds since the epoch."""
    return {
        name: micros(value) if isinstance(value, dt.datetime) else value for name, value in values.items()
    }


def micros(value: dt.datetime) -> int:
    return (value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def run(con: sqlite3.Connection, name: str, values: Mapping[str, Any]) -> tuple[list[str], list[tuple]]:
    """Run the named query with its bound `values`: the column names and every row, fetched."""
    cursor = con.execute(sql(name), sqlite_params(values))
    rows = cursor.fetchall()
    return [d[0] for d in cursor.description], rows


def as_table(answer: tuple[list[str], list[tuple]]) -> pa.Table:
    """An answer of `run` as an Arrow table (outside the timed part)."""
    names, rows = answer
    if not rows:
        return pa.table({n: pa.nulls(0) for n in names})
    return pa.table({n: pa.array(column) for n, column in zip(names, zip(*rows))})
