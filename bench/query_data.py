"""The query benchmark's data: a demo warehouse of about N events, its live Parquet files, and SQLite.

The demo writes whole sessions, so the events come from a sessions count: a probe run in a
throwaway folder measures events per session, and the real run asks for target / that.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import warehouse
from ingest.demo import SESSIONS_PER_BATCH, generate

PROBE_MAX_SESSIONS = SESSIONS_PER_BATCH  # one batch: enough to see the mix the full run will have
PROBE_EVENTS_PER_SESSION = 40  # a first guess, only to size the probe for small targets

# What the ten questions read: event_id, role and content are never read, so SQLite goes without
# them (content is most of an event's bytes). ts is stored as integer microseconds since the epoch.
SQLITE_COLUMNS = (
    ("ts", "INTEGER"),
    ("tenant_id", "TEXT"),
    ("user_id", "TEXT"),
    ("session_id", "TEXT"),
    ("parent_session_id", "TEXT"),
    ("run_id", "TEXT"),
    ("type", "TEXT"),
    ("harness", "TEXT"),
    ("model", "TEXT"),
    ("compute", "TEXT"),
    ("input_tokens", "INTEGER"),
    ("output_tokens", "INTEGER"),
    ("cache_read_tokens", "INTEGER"),
    ("cache_write_tokens", "INTEGER"),
    ("cost_usd", "REAL"),
    ("latency_ms", "REAL"),
    ("ttft_ms", "REAL"),
    ("status", "TEXT"),
    ("error", "TEXT"),
    ("attrs", "TEXT"),
)
# What the questions filter, join and group by: event types (compute.exec, session.spawned and
# .selected are a few percent of events), a run's and a session's events together.
SQLITE_INDEXES = (
    ("events_type", "type, tenant_id, session_id"),
    ("events_run", "tenant_id, session_id, run_id"),
    ("events_session", "session_id"),
)
SQLITE_BATCH = 100_000


@dataclass(frozen=True)
class Generated:
    """What the demo wrote and how long each step took."""

    events: int
    sessions: int  # top-level sessions asked for
    all_sessions: int  # fan-out children included
    users: int
    per_session: float  # events per top-level session, from the probe
    probe_s: float
    generate_s: float
    flush_s: float
    compact_s: float
    files: int


def make_warehouse(root: Path, target_events: int, seed: int) -> Generated:
    """Generate about `target_events` demo events into a new warehouse at `root`, flushed and compacted."""
    probe_started = time.perf_counter()
    per_session = probe(target_events, seed)
    probe_s = time.perf_counter() - probe_started
    sessions = max(1, round(target_events / per_session))
    with warehouse.open(root) as wh:
        started = time.perf_counter()
        summary = generate(wh, sessions=sessions, seed=seed)
        generate_s = time.perf_counter() - started
        flush_s = timed(wh.flush)
        compact_s = timed(wh.compact)
        files = int(wh.info()["files"])
    return Generated(
        summary.events,
        sessions,
        summary.sessions,
        summary.users,
        per_session,
        probe_s,
        generate_s,
        flush_s,
        compact_s,
        files,
    )


def probe(target_events: int, seed: int) -> float:
    """Events per top-level session, measured on a small run of the same seed in a throwaway folder."""
    sessions = min(PROBE_MAX_SESSIONS, max(100, target_events // PROBE_EVENTS_PER_SESSION))
    folder = Path(tempfile.mkdtemp(prefix="cerver-probe-"))
    try:
        with warehouse.open(folder) as wh:
            return generate(wh, sessions=sessions, seed=seed).events / sessions
    finally:
        shutil.rmtree(folder)


def timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def live_files(root: Path) -> list[str]:
    """The Parquet files of the table's current version, from the Delta log (not from a query)."""
    from deltalake import DeltaTable

    return sorted(uri.removeprefix("file://") for uri in DeltaTable(str(root / "events")).file_uris())


def parquet_batches(files: list[str], columns: list[str]) -> Iterator[pa.RecordBatch]:
    """The files' rows, `columns` only, a row group or so at a time."""
    for path in files:
        yield from pq.ParquetFile(path).iter_batches(batch_size=SQLITE_BATCH, columns=columns)


@dataclass(frozen=True)
class SqliteLoad:
    """How long loading SQLite took, and what it made."""

    rows: int
    insert_s: float
    index_s: float
    mib: float


def load_sqlite(path: Path, files: list[str], prices: pa.Table) -> SqliteLoad:
    """The events' columns the questions read, and the prices table, into a new SQLite file."""
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA journal_mode = OFF")
        con.execute("PRAGMA synchronous = OFF")
        columns = [name for name, _ in SQLITE_COLUMNS]
        con.execute(f"CREATE TABLE events ({', '.join(f'{n} {t}' for n, t in SQLITE_COLUMNS)})")
        insert = f"INSERT INTO events VALUES ({', '.join('?' * len(columns))})"
        started, rows = time.perf_counter(), 0
        for batch in parquet_batches(files, columns):
            con.executemany(insert, sqlite_rows(batch))
            rows += batch.num_rows
        load_prices(con, prices)
        con.commit()
        insert_s = time.perf_counter() - started
        started = time.perf_counter()
        for name, on in SQLITE_INDEXES:
            con.execute(f"CREATE INDEX {name} ON events ({on})")  # names from the constant above
        con.execute("ANALYZE")
        con.commit()
        index_s = time.perf_counter() - started
    finally:
        con.close()
    return SqliteLoad(rows, insert_s, index_s, path.stat().st_size / 2**20)


def sqlite_rows(batch: pa.RecordBatch) -> Iterator[tuple[Any, ...]]:
    """A batch's rows as tuples, ts as integer microseconds."""
    columns = []
    for name in batch.schema.names:
        column = batch.column(name)
        if name == "ts":
            column = pc.cast(column, pa.timestamp("us", tz="UTC")).cast(pa.int64())
        columns.append(column.to_pylist())
    return zip(*columns)


def load_prices(con: sqlite3.Connection, prices: pa.Table) -> None:
    """The prices table, as the DuckDB query reads it (the target model's row is picked by the query)."""
    names = prices.schema.names
    kinds = {
        name: "REAL" if pa.types.is_floating(prices.schema.field(name).type) else "TEXT" for name in names
    }
    kinds["model"] += " PRIMARY KEY"  # else SQLite scans the prices for every run it re-prices
    con.execute(f"CREATE TABLE prices ({', '.join(f'{n} {kinds[n]}' for n in names)})")
    rows = zip(*(prices.column(name).to_pylist() for name in names))
    con.executemany(f"INSERT INTO prices VALUES ({', '.join('?' * len(names))})", rows)
