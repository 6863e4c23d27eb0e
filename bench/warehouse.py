"""Benchmarks for the warehouse, side by side in one run, with medians (the machine is shared).

1. Durable append throughput: batches of 1,000 events from 4 threads (and 1 for reference), as
   lists of dicts and as pre-built Arrow tables; each `append` returns only after fsync.
2. The `sessions` view over N events (default 10M: N/10 sessions, N/200 users, 4 tenants, ~7 days):
   first and warm full fetch, point lookups, against the same data and query in SQLite.
3. Small files: 10,000 appends of 100 events with eager flushing (~1,000 small Parquet files), the
   `sessions` query before and after `compact()`, and files per day afterwards.
4. Recovery: a child appends 1M events with flushing off and is SIGKILLed; time the writer's
   `warehouse.open` (log replay + dedup index) and check every event is there.

Run from the repository root (the full run takes 10-20 minutes; see --help for smaller runs):

    .venv/bin/python bench/warehouse.py
    .venv/bin/python bench/warehouse.py --events 1000000 --small-appends 1000 --recovery-events 200000

Data lives in temporary folders (under /tmp unless $TMPDIR says otherwise), removed at the end. The
report is printed and written to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# Run as `python bench/warehouse.py`, this folder heads sys.path and this file's name would shadow
# the `warehouse` package it measures: drop the folder and put the repository root first.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != BENCH)]

import warehouse  # noqa: E402
from bench.results import write_section  # noqa: E402
from warehouse.schema import SCHEMA, Events, to_table  # noqa: E402

T = TypeVar("T")
SECTION = "## Warehouse"

# -- targets and shapes ---------------------------------------------------------------------------

APPEND_TARGET = 200_000  # events/s, 4 threads
SESSIONS_TARGET_S = 0.5  # warm `SELECT * FROM sessions` over 10M events
SMALL_FILES_RATIO_TARGET = 3.0  # query before compaction within 3x of after
FILES_PER_DAY_TARGET = 5  # "a handful at most"
RECOVERY_TARGET_S = 10.0  # writer's open after a crash with 1M events in the log

APPEND_BATCH = 1_000
APPEND_REPEATS = 3
SESSIONS_REPEATS = 5
LOOKUP_REPEATS = 20
SQLITE_REPEATS = 3
LOAD_CHUNK = 500_000
SMALL_BATCH = 100
RECOVERY_BATCH = 10_000
RECOVERY_REPEATS = 3

NO_FLUSH = warehouse.FlushPolicy(rows=10**9, bytes=1 << 40, age_s=1e9, compact_files=10**9)
EAGER_FLUSH = warehouse.FlushPolicy(rows=1_000, bytes=1 << 40, age_s=1e9, compact_files=10**9)

START = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)
START_US = int(START.timestamp()) * 1_000_000
DAY_US = 86_400 * 1_000_000

TENANTS = ("acme", "globex", "initech", "umbrella")
TENANT_WEIGHTS = (0.45, 0.30, 0.17, 0.08)
# name, $ per input token, $ per output token, share of sessions
MODELS = (
    ("gpt-4o", 2.5e-6, 10e-6, 0.25),
    ("gpt-4o-mini", 0.15e-6, 0.6e-6, 0.25),
    ("claude-sonnet-4", 3e-6, 15e-6, 0.25),
    ("claude-haiku-4", 0.8e-6, 4e-6, 0.15),
    ("gemini-2.5-flash", 0.3e-6, 2.5e-6, 0.10),
)
HARNESSES = ("cerver-agent", "langgraph", "openai-agents")
ERRORS = ("rate_limited: 429 from provider", "timeout after 60s")
SOURCES = ('{"source":"web"}', '{"source":"api"}', '{"source":"slack"}')
WORDS_TEXT = (
    "the user wants a short summary of the quarterly report please check numbers and compare with "
    "last year agent called tool search returned three results about pricing plan invoice refund "
    "deploy staging branch tests failing because timeout config missing retry budget cache warm"
)
WORDS = WORDS_TEXT.split()

# Event kinds by code: a session is created, then turns of (user message, run.started, assistant
# message, run.completed or run.failed), and 30% of sessions end with session.closed.
KIND_TYPES = ("session.created", "message", "run.started", "message", "run.completed", "run.failed")
KIND_TYPES += ("session.closed",)
KIND_ROLES = (None, "user", None, "assistant", None, None, None)
CREATED, USER_MSG, RUN_STARTED, ASSISTANT_MSG, RUN_COMPLETED, RUN_FAILED, CLOSED = range(7)


def say(message: str) -> None:
    """A progress line with a timestamp."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- the report -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One measured figure and, when it has one, its target (`op` is >=, <= or ==)."""

    name: str
    value: float
    unit: str
    target: float | None = None
    op: str = ">="
    reference: bool = False

    @property
    def ratio(self) -> float | None:
        """Value over target (for >= figures), target over value (for <=): above 1 is good."""
        if not self.target or not self.value:
            return None
        return self.value / self.target if self.op == ">=" else self.target / self.value

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "-"
        if self.reference:
            return "(ref)"
        ok = {
            ">=": self.value >= self.target,
            "<=": self.value <= self.target,
            "==": self.value == self.target,
        }[self.op]
        return "PASS" if ok else "FAIL"


@dataclass
class Report:
    """Figures, ratios and notes gathered over the run."""

    params: dict[str, object]
    figures: list[Figure] = field(default_factory=list)
    ratios: list[tuple[str, float, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def figure(self, figure: Figure) -> None:
        self.figures.append(figure)
        say(f"  -> {figure.name}: {fmt(figure.value)} {figure.unit}  {figure.verdict}")

    def ratio(self, name: str, value: float, meaning: str) -> None:
        self.ratios.append((name, value, meaning))
        say(f"  -> {name}: {value:.2f}x ({meaning})")

    def note(self, text: str) -> None:
        self.notes.append(text)
        say(f"  note: {text}")


def fmt(value: float) -> str:
    """A number for a report: thousands separators for big ones, 3 significant digits otherwise."""
    if value >= 1000:
        return f"{value:,.0f}"
    if value == int(value):
        return f"{int(value)}"
    return f"{value:.3g}"


def target_text(figure: Figure) -> str:
    return "" if figure.target is None else f"{figure.op} {fmt(figure.target)}"


def ratio_text(figure: Figure) -> str:
    return "" if figure.ratio is None or figure.op == "==" else f"{figure.ratio:.2f}"


# -- timing ---------------------------------------------------------------------------------------


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Seconds a call took, and what it returned."""
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def warm_median(fn: Callable[[], object], repeats: int) -> tuple[float, list[float], float]:
    """Run once to warm, then `repeats` timed runs: their median, their times, and the first run's."""
    first, _ = timed(fn)
    times = [timed(fn)[0] for _ in range(repeats)]
    return statistics.median(times), times, first


def seconds(times: Sequence[float]) -> str:
    return ", ".join(f"{t:.3f}" for t in times)


# -- synthetic events, vectorised -----------------------------------------------------------------

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NIBBLE_SHIFTS = np.arange(60, -4, -4, dtype=np.uint64)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # odd, so multiplying by it scrambles without collisions


def uuid_strings(hi: np.ndarray, lo: np.ndarray) -> pa.Array:
    """UUID-formatted strings of 128-bit values given as two uint64 halves, built without a loop."""
    n = len(hi)
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, :16] = (hi.astype(np.uint64)[:, None] >> _NIBBLE_SHIFTS) & np.uint64(0xF)
    nibbles[:, 16:] = (lo.astype(np.uint64)[:, None] >> _NIBBLE_SHIFTS) & np.uint64(0xF)
    chars = _HEX[nibbles]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for start, stop, src in ((0, 8, 0), (9, 13, 8), (14, 18, 12), (19, 23, 16), (24, 36, 20)):
        text[:, start:stop] = chars[:, src : src + stop - start]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text.tobytes()))


def content_pool(rnd: random.Random, size: int = 2_000) -> list[str]:
    """Message texts of about 100 characters."""
    pool = []
    for _ in range(size):
        length, words = rnd.randint(80, 120), []
        while sum(len(w) + 1 for w in words) < length:
            words.append(rnd.choice(WORDS))
        pool.append(" ".join(words).capitalize() + ".")
    return pool


@dataclass(frozen=True)
class Shape:
    """How much synthetic data: events, sessions, users, over `days` days."""

    events: int
    sessions: int
    users: int
    days: float = 7.0

    @classmethod
    def for_events(cls, events: int) -> Shape:
        """The brief's proportions: sessions = events/10, users = events/200."""
        return cls(events, max(1, min(events // 10, events // 2)), max(1, events // 200))


class Synth:
    """Realistic sessions laid out with numpy; `chunks` yields them as schema tables in time order."""

    def __init__(self, shape: Shape, seed: int):
        self.shape, self.seed = shape, seed
        rng = np.random.default_rng(seed)
        n, s = shape.events, shape.sessions
        sizes = rng.multinomial(n - 2 * s, np.full(s, 1.0 / s)) + 2  # >= 2 events, mean n/s
        starts = np.cumsum(sizes) - sizes
        self.session = np.repeat(np.arange(s, dtype=np.int64), sizes)
        pos = np.arange(n, dtype=np.int64) - np.repeat(starts, sizes)
        self.turn = np.maximum(pos - 1, 0) // 4
        kind = np.where(pos == 0, CREATED, 1 + (pos - 1) % 4).astype(np.int8)
        kind[(kind == RUN_COMPLETED) & (rng.random(n) < 0.02)] = RUN_FAILED
        closing = np.repeat(rng.random(s) < 0.3, sizes) & (pos == np.repeat(sizes - 1, sizes)) & (pos > 0)
        kind[closing] = CLOSED
        self.kind = kind
        gaps = rng.exponential(15e6, n).astype(np.int64) + 1_000  # ~15 s apart, never equal
        gaps[starts] = 0
        elapsed = np.cumsum(gaps)
        begin = rng.integers(0, int(shape.days * DAY_US), s)
        self.ts = START_US + np.repeat(begin, sizes) + elapsed - np.repeat(elapsed[starts], sizes)
        self.order = np.argsort(self.ts, kind="stable")
        self._sessions_init(rng)

    def _sessions_init(self, rng: np.random.Generator) -> None:
        s, u = self.shape.sessions, self.shape.users
        user_tenant = rng.choice(len(TENANTS), u, p=TENANT_WEIGHTS)
        self.user = rng.integers(0, u, s)
        self.tenant = user_tenant[self.user]
        self.model = rng.choice(len(MODELS), s, p=[m[3] for m in MODELS])
        self.harness = rng.integers(0, len(HARNESSES), s)
        self.has_compute = rng.random(s) < 0.2
        self.parent = np.where(rng.random(s) < 0.05, rng.integers(0, s, s), -1)
        self.source = rng.integers(0, len(SOURCES), s)
        index = np.arange(s, dtype=np.uint64)
        self.session_ids = uuid_strings(index * _GOLDEN, rng.integers(0, 2**63, s, dtype=np.uint64))
        self.user_ids = pa.array([f"usr_{k:06d}" for k in range(u)])
        self.contents = pa.array(content_pool(random.Random(self.seed)))
        self.prices_in = np.array([m[1] for m in MODELS])
        self.prices_out = np.array([m[2] for m in MODELS])

    def chunks(self, rows: int) -> Iterator[pa.Table]:
        """The events in time order, `rows` at a time."""
        for start in range(0, self.shape.events, rows):
            yield self.chunk(self.order[start : start + rows], start)

    def chunk(self, idx: np.ndarray, salt: int) -> pa.Table:
        """Events `idx` as a table of exactly the warehouse schema."""
        rng = np.random.default_rng([self.seed, salt])
        sess, kind, ts = self.session[idx], self.kind[idx], self.ts[idx]
        is_run = np.isin(kind, (RUN_COMPLETED, RUN_FAILED))
        in_run = np.isin(kind, (RUN_STARTED, ASSISTANT_MSG, RUN_COMPLETED, RUN_FAILED))
        created = kind == CREATED
        columns: dict[str, pa.Array] = {
            "event_id": self._event_ids(idx, ts, rng),
            "ts": pa.array(ts, type=pa.timestamp("us", tz="UTC")),
            "tenant_id": pa.array(TENANTS).take(self.tenant[sess]),
            "user_id": self.user_ids.take(self.user[sess]),
            "session_id": self.session_ids.take(sess),
            "parent_session_id": self.session_ids.take(
                _masked(self.parent[sess], created & (self.parent[sess] >= 0))
            ),
            "run_id": _masked_strings(uuid_strings(sess.astype(np.uint64) * _GOLDEN, self.turn[idx]), in_run),
            "type": pa.array(KIND_TYPES).take(kind),
            "role": pa.array(KIND_ROLES, pa.string()).take(kind),
            "content": self.contents.take(
                _masked(
                    rng.integers(0, len(self.contents), len(idx)), np.isin(kind, (USER_MSG, ASSISTANT_MSG))
                )
            ),
            "harness": pa.array(HARNESSES).take(_masked(self.harness[sess], created | is_run)),
            "model": pa.array([m[0] for m in MODELS]).take(_masked(self.model[sess], in_run)),
            "compute": pa.array(["e2b"]).take(
                _masked(np.zeros(len(idx), np.int64), created & self.has_compute[sess])
            ),
        }
        columns.update(self._run_columns(rng, sess, kind, is_run))
        columns["attrs"] = pa.array(SOURCES).take(_masked(self.source[sess], created))
        return pa.Table.from_arrays([columns[f.name] for f in SCHEMA], schema=SCHEMA)

    def _event_ids(self, idx: np.ndarray, ts: np.ndarray, rng: np.random.Generator) -> pa.Array:
        """UUIDv7-shaped ids: the millisecond, random bits, and the event's number for uniqueness."""
        ms = (ts // 1000).astype(np.uint64)
        hi = (ms << np.uint64(16)) | np.uint64(0x7000) | rng.integers(0, 0x1000, len(idx), dtype=np.uint64)
        rand = rng.integers(0, 2**63, len(idx), dtype=np.uint64) & np.uint64(0x3FFFFFFC00000000)
        lo = np.uint64(1 << 63) | rand | idx.astype(np.uint64)
        return uuid_strings(hi, lo)

    def _run_columns(
        self, rng: np.random.Generator, sess: np.ndarray, kind: np.ndarray, is_run: np.ndarray
    ) -> dict[str, pa.Array]:
        n = len(kind)
        tokens_in = np.rint(rng.lognormal(7.0, 0.8, n)).astype(np.int64)
        tokens_out = np.rint(rng.lognormal(5.5, 0.7, n)).astype(np.int64)
        cache_read = (tokens_in * rng.random(n)).astype(np.int64)
        model = self.model[sess]
        cost = tokens_in * self.prices_in[model] + tokens_out * self.prices_out[model]
        completed, failed = kind == RUN_COMPLETED, kind == RUN_FAILED
        return {
            "input_tokens": pa.array(tokens_in, mask=~is_run),
            "output_tokens": pa.array(tokens_out, mask=~is_run),
            "cache_read_tokens": pa.array(cache_read, mask=~(is_run & (rng.random(n) < 0.3))),
            "cache_write_tokens": pa.nulls(n, pa.int64()),
            "cost_usd": pa.array(cost, mask=~is_run),
            "latency_ms": pa.array(rng.lognormal(7.5, 0.5, n), mask=~is_run),
            "ttft_ms": pa.array(rng.lognormal(6.0, 0.4, n), mask=~completed),
            "status": pa.array(["ok", "error"]).take(_masked(failed.astype(np.int64), is_run)),
            "error": pa.array(ERRORS).take(_masked(rng.integers(0, len(ERRORS), n), failed)),
        }


def _masked(indices: np.ndarray, keep: np.ndarray) -> pa.Array:
    """Take-indices that are null where `keep` is false."""
    return pa.array(indices.astype(np.int64), mask=~keep)


def _masked_strings(values: pa.Array, keep: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(keep), values, pa.scalar(None, pa.string()))


def dict_events(n: int, seed: int) -> list[dict[str, Any]]:
    """Events as a producer sends them: sparse dicts, aware datetimes, 3 messages per run.completed."""
    rnd = random.Random(seed)
    pool = content_pool(rnd)
    models = [m[0] for m in MODELS]
    users = [f"usr_{k:05d}" for k in range(500)]
    events: list[dict[str, Any]] = []
    session = tenant = user = ""
    for i in range(n):
        if i % 12 == 0:
            session = str(uuid.UUID(int=rnd.getrandbits(128)))
            tenant, user = rnd.choices(TENANTS, TENANT_WEIGHTS)[0], rnd.choice(users)
        event: dict[str, Any] = {
            "event_id": warehouse.new_event_id(),
            "ts": START + dt.timedelta(microseconds=50_000 * i + rnd.randrange(50_000)),
            "tenant_id": tenant,
            "user_id": user,
            "session_id": session,
        }
        if i % 4 == 3:
            tokens_in, tokens_out = rnd.randint(200, 4_000), rnd.randint(20, 800)
            event.update(
                type="run.completed",
                run_id=f"run_{i // 4:08d}",
                model=rnd.choice(models),
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                cost_usd=round(tokens_in * 2.5e-6 + tokens_out * 1e-5, 6),
                latency_ms=rnd.uniform(300, 9_000),
                status="ok",
            )
        else:
            event.update(type="message", role=rnd.choice(("user", "assistant")), content=rnd.choice(pool))
        events.append(event)
    return events


def temp_dir(parent: Path, name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=parent))


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# -- 1. durable append throughput -----------------------------------------------------------------


def append_from_threads(root: Path, batches: Sequence[Events], threads: int) -> float:
    """Events/s appending `batches` from `threads` threads into a fresh, never-flushing warehouse."""
    wh = warehouse.open(root, policy=NO_FLUSH)
    try:
        barrier = threading.Barrier(threads + 1)
        accepted = [0] * threads
        errors: list[BaseException] = []

        def work(k: int) -> None:
            barrier.wait()
            try:
                for batch in batches[k::threads]:
                    accepted[k] += wh.append(batch).accepted
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for worker in workers:
            worker.start()
        barrier.wait()
        started = time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        if errors:
            raise errors[0]
        total = sum(len(b) if isinstance(b, list) else b.num_rows for b in batches)
        if sum(accepted) != total or wh.tail_rows != total:
            raise RuntimeError(f"accepted {sum(accepted)}, tail {wh.tail_rows}, sent {total}")
        return total / elapsed
    finally:
        wh.close()  # flushes the tail: outside the timed part


def bench_appends(args: argparse.Namespace, report: Report, tmp: Path) -> None:
    n = args.append_events
    say(f"1. durable appends: building {n:,} events as dicts and as Arrow tables")
    dicts = dict_events(n, seed=11)
    forms = {
        "dicts": [dicts[i : i + APPEND_BATCH] for i in range(0, n, APPEND_BATCH)],
        "Arrow": [to_table(dicts[i : i + APPEND_BATCH]) for i in range(0, n, APPEND_BATCH)],
    }
    runs: dict[tuple[str, int], list[float]] = {(f, t): [] for f in forms for t in (4, 1)}
    for repeat in range(APPEND_REPEATS):
        for (form, threads), rates in runs.items():
            root = temp_dir(tmp, "append")
            rates.append(append_from_threads(root, forms[form], threads))
            shutil.rmtree(root)
            say(f"   repeat {repeat + 1}: {form}, {threads} thread(s): {rates[-1]:,.0f} events/s")
    report.note(
        "appends: FlushPolicy(rows=1e9, bytes=1 TiB, age_s=1e9) so no flush runs while timed; the "
        f"tail held every event afterwards (checked); {n:,} events in batches of {APPEND_BATCH:,} per "
        f"measurement, fresh warehouse each, median of {APPEND_REPEATS}"
    )
    medians = {key: statistics.median(rates) for key, rates in runs.items()}
    for (form, threads), value in medians.items():
        name = f"1. append, {threads} thread{'s' if threads > 1 else ''}, {form}"
        report.figure(Figure(name, value, "events/s", APPEND_TARGET, ">=", reference=threads == 1))
    arrow_gain = medians["Arrow", 4] / medians["dicts", 4]
    report.ratio("1. Arrow / dicts throughput, 4 threads", arrow_gain, "pre-built Arrow tables over dicts")
    for form in forms:
        report.ratio(
            f"1. 4 threads / 1 thread, {form}", medians[form, 4] / medians[form, 1], "scaling with threads"
        )


# -- 2. the sessions view against SQLite ----------------------------------------------------------

SESSIONS_SQL = "SELECT * FROM sessions"
LOOKUP_SQL = "SELECT * FROM sessions WHERE tenant_id = ? AND session_id = ?"
TS_WIDTH = len("2025-03-03T00:00:00.000000Z")  # SQLite keeps ts as fixed-width ISO text

SQLITE_SESSIONS = f"""
SELECT
    tenant_id,
    substr(max(ts || user_id), {TS_WIDTH + 1}) AS user_id,
    session_id,
    substr(max(ts || parent_session_id), {TS_WIDTH + 1}) AS parent_session_id,
    CASE
        WHEN max(ts) FILTER (WHERE type = 'session.closed') IS NOT NULL THEN 'closed'
        WHEN max(ts) FILTER (WHERE type = 'run.started')
            > coalesce(max(ts) FILTER (WHERE type IN ('run.completed', 'run.failed')), '') THEN 'running'
        ELSE 'ready'
    END AS status,
    substr(max(ts || harness), {TS_WIDTH + 1}) AS harness,
    substr(max(ts || model), {TS_WIDTH + 1}) AS model,
    substr(max(ts || compute), {TS_WIDTH + 1}) AS compute,
    coalesce(min(ts) FILTER (WHERE type = 'session.created'), min(ts)) AS created_at,
    max(ts) FILTER (WHERE type = 'session.closed') AS closed_at,
    max(ts) AS last_event_at,
    count(*) FILTER (WHERE type = 'message') AS messages,
    count(*) FILTER (WHERE type IN ('run.completed', 'run.failed')) AS runs,
    coalesce(sum(input_tokens), 0) AS input_tokens,
    coalesce(sum(output_tokens), 0) AS output_tokens,
    coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) AS tokens,
    coalesce(sum(cost_usd), 0) AS cost_usd
FROM events
{{where}}
GROUP BY tenant_id, session_id
"""
SQLITE_NOTE = (
    "SQLite query: the view's columns and filters (FILTER clauses as in DuckDB); ts is stored as "
    "fixed-width ISO-8601 text, so timestamps come back as text; 'latest non-null X' is "
    "substr(max(ts || X), 28) (ts || NULL is NULL, which max skips), so ties on equal ts pick the "
    "greater value where DuckDB's arg_max picks any; '-infinity' is ''; loaded with journal_mode=OFF, "
    "synchronous=OFF, index on (tenant_id, session_id, ts) built after the load, default page cache"
)


def load_warehouse(root: Path, chunks: Sequence[pa.Table]) -> dict[str, float]:
    """Append the chunks (default flush policy), then flush and compact; seconds per phase."""
    wh = warehouse.open(root)
    try:
        append_s, _ = timed(lambda: [wh.append(chunk) for chunk in chunks])
        flush_s, _ = timed(wh.flush)
        compact_s, result = timed(wh.compact)
        say(f"   compacted {result}")
    finally:
        wh.close()
    return {"append": append_s, "flush": flush_s, "compact": compact_s}


def summarize(rows: Sequence[dict[str, Any]] | pa.Table) -> dict[str, object]:
    """Totals over a sessions result, to check DuckDB and SQLite agree."""
    if isinstance(rows, pa.Table):
        status = Counter(rows.column("status").to_pylist())
        total = {c: pc.sum(rows.column(c)).as_py() for c in ("messages", "runs", "tokens")}
        models = rows.num_rows - rows.column("model").null_count
        return {"rows": rows.num_rows, **total, "with_model": models, "status": dict(sorted(status.items()))}
    status = Counter(r["status"] for r in rows)
    total = {c: sum(r[c] for r in rows) for c in ("messages", "runs", "tokens")}
    models = sum(r["model"] is not None for r in rows)
    return {"rows": len(rows), **total, "with_model": models, "status": dict(sorted(status.items()))}


def sqlite_type(kind: pa.DataType) -> str:
    if pa.types.is_integer(kind):
        return "INTEGER"
    if pa.types.is_floating(kind):
        return "REAL"
    return "TEXT"


def sqlite_rows(table: pa.Table) -> Iterator[tuple[Any, ...]]:
    """Rows of a chunk as tuples, with ts as fixed-width ISO text."""
    columns = []
    for name in table.column_names:
        column = table.column(name)
        if name == "ts":
            column = pc.strftime(column, "%Y-%m-%dT%H:%M:%SZ")
        columns.append(column.to_pylist())
    return zip(*columns)


def load_sqlite(path: Path, chunks: Sequence[pa.Table]) -> float:
    """Seconds to load the events and build the index."""
    started = time.perf_counter()
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        columns = ", ".join(f"{f.name} {sqlite_type(f.type)}" for f in SCHEMA)
        con.execute(f"CREATE TABLE events ({columns})")
        insert = f"INSERT INTO events VALUES ({', '.join('?' * len(SCHEMA))})"
        for chunk in chunks:
            con.executemany(insert, sqlite_rows(chunk))
            con.commit()
        con.execute("CREATE INDEX events_session ON events (tenant_id, session_id, ts)")
        con.commit()
    finally:
        con.close()
    return time.perf_counter() - started


def bench_duckdb_sessions(
    root: Path, report: Report
) -> tuple[float, list[tuple[str, str]], dict[str, object]]:
    """Warm full fetch and point lookups through the warehouse; returns the median and some keys."""
    wh = warehouse.open(root)
    try:
        median, times, first = warm_median(lambda: wh.sql(SESSIONS_SQL), SESSIONS_REPEATS)
        result = wh.sql(SESSIONS_SQL)
        say(f"   DuckDB sessions: {result.num_rows:,} rows; first {first:.3f} s, then {seconds(times)} s")
        rnd = random.Random(5)
        picks = [rnd.randrange(result.num_rows) for _ in range(LOOKUP_REPEATS)]
        keys = [(result["tenant_id"][i].as_py(), result["session_id"][i].as_py()) for i in picks]
        wh.sql(LOOKUP_SQL, list(keys[0]))
        lookups = [timed(lambda k=k: wh.sql(LOOKUP_SQL, list(k)))[0] for k in keys]
        summary = summarize(result)
    finally:
        wh.close()
    report.figure(Figure("2. sessions view, first query after open (DuckDB)", first, "s"))
    report.figure(Figure("2. sessions view, warm full fetch (DuckDB)", median, "s", SESSIONS_TARGET_S, "<="))
    report.figure(Figure("2. sessions point lookup (DuckDB)", statistics.median(lookups) * 1e3, "ms"))
    return median, keys, summary


def bench_sqlite_sessions(path: Path, keys: list[tuple[str, str]], report: Report) -> tuple[float, dict]:
    """Warm full fetch and point lookups of the equivalent query in SQLite."""
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        full = SQLITE_SESSIONS.format(where="")
        lookup = SQLITE_SESSIONS.format(where="WHERE tenant_id = ? AND session_id = ?")
        median, times, _ = warm_median(lambda: con.execute(full).fetchall(), SQLITE_REPEATS)
        rows = con.execute(full).fetchall()
        say(f"   SQLite sessions: {len(rows):,} rows; {seconds(times)} s")
        con.execute(lookup, keys[0]).fetchall()
        lookups = [timed(lambda k=k: con.execute(lookup, k).fetchall())[0] for k in keys]
        summary = summarize([dict(r) for r in rows])
    finally:
        con.close()
    report.figure(Figure("2. sessions view, warm full fetch (SQLite)", median, "s"))
    report.figure(Figure("2. sessions point lookup (SQLite)", statistics.median(lookups) * 1e3, "ms"))
    return median, summary


def bench_sessions(args: argparse.Namespace, report: Report, tmp: Path) -> None:
    shape = Shape.for_events(args.events)
    say(f"2. sessions view: generating {shape}")
    gen_s, chunks = timed(lambda: list(Synth(shape, seed=1).chunks(LOAD_CHUNK)))
    say(f"   generated {sum(c.num_rows for c in chunks):,} events in {gen_s:.1f} s")
    root = temp_dir(tmp, "sessions")
    phases = load_warehouse(root, chunks)
    on_disk = folder_bytes(root / "events") / 2**20
    say(f"   loaded into the warehouse: {phases}; {on_disk:,.0f} MiB on disk (incl. replaced files)")
    report.note(
        f"sessions: {shape.events:,} events, {shape.sessions:,} sessions, {shape.users:,} users, "
        f"{len(TENANTS)} tenants, ~{shape.days:g} days; warehouse load (appends of {LOAD_CHUNK:,}, "
        f"default policy) {phases['append']:.1f} s + flush {phases['flush']:.1f} s "
        f"+ compact {phases['compact']:.1f} s"
    )
    report.note(
        "sessions: 'first query' is the warm-up run after opening the warehouse (Parquet metadata, "
        "and whatever the view materialises); 'warm' is the median of the runs after it"
    )
    duck_s, keys, duck_summary = bench_duckdb_sessions(root, report)
    shutil.rmtree(root)
    if args.skip_sqlite:
        return
    path = temp_dir(tmp, "sqlite") / "events.sqlite"
    load_s = load_sqlite(path, chunks)
    del chunks
    say(f"   loaded into SQLite in {load_s:.1f} s; {path.stat().st_size / 2**20:,.0f} MiB")
    report.note(f"sessions: SQLite load (executemany per {LOAD_CHUNK:,} rows + index) {load_s:.1f} s")
    sqlite_s, sqlite_summary = bench_sqlite_sessions(path, keys, report)
    shutil.rmtree(path.parent)
    report.ratio("2. SQLite / DuckDB, sessions full fetch", sqlite_s / duck_s, "how much faster DuckDB is")
    report.note(SQLITE_NOTE)
    if duck_summary == sqlite_summary:
        report.note(f"sessions: DuckDB and SQLite results agree on totals {duck_summary}")
    else:
        report.note(f"sessions: results DIFFER: DuckDB {duck_summary} vs SQLite {sqlite_summary}")


# -- 3. small files -------------------------------------------------------------------------------


def files_per_day(wh: warehouse.Warehouse) -> dict[dt.date, int]:
    return {day: len(files) for day, files in sorted(wh._parts.partitions().items())}


def append_small(wh: warehouse.Warehouse, batches: Sequence[pa.Table], flush_every: int) -> list[float]:
    """Append the batches one by one; with `flush_every`, flush after that many. Returns flush times."""
    flushes = []
    for i, batch in enumerate(batches, 1):
        wh.append(batch)
        if flush_every and i % flush_every == 0:
            flushes.append(timed(wh.flush)[0])
    flushes.append(timed(wh.flush)[0])
    return flushes


def bench_small_files(args: argparse.Namespace, report: Report, tmp: Path) -> None:
    n, every = args.small_appends * SMALL_BATCH, args.small_flush_every
    how = f"flushing after every {every} appends" if every else "leaving flushes to the background"
    say(f"3. small files: {args.small_appends:,} appends of {SMALL_BATCH} events, {how}")
    table = pa.concat_tables(Synth(Shape.for_events(n), seed=3).chunks(LOAD_CHUNK)).combine_chunks()
    batches = [table.slice(i, SMALL_BATCH) for i in range(0, n, SMALL_BATCH)]
    root = temp_dir(tmp, "small")
    wh = warehouse.open(root, policy=EAGER_FLUSH)
    try:
        append_s, flushes = timed(lambda: append_small(wh, batches, every))
        if wh.last_flush_error is not None:
            report.note(f"small files: the background flush failed: {wh.last_flush_error!r}")
        before, info = files_per_day(wh), wh.info()
        say(f"   appended in {append_s:.1f} s: {info}; files per day {list(before.values())}")
        before_s, times, before_first = warm_median(lambda: wh.sql(SESSIONS_SQL), SESSIONS_REPEATS)
        say(f"   sessions before compaction: first {before_first:.3f} s, then {seconds(times)} s")
        compact_s, result = timed(wh.compact)
        after = files_per_day(wh)
        say(f"   compacted in {compact_s:.1f} s: {result}; files per day {list(after.values())}")
        after_s, times, after_first = warm_median(lambda: wh.sql(SESSIONS_SQL), SESSIONS_REPEATS)
        say(f"   sessions after compaction: first {after_first:.3f} s, then {seconds(times)} s")
    finally:
        wh.close()
        shutil.rmtree(root)
    report.note(
        f"small files: {args.small_appends:,} appends of {SMALL_BATCH} ({args.small_appends / append_s:,.0f}"
        f" appends/s incl. flushes), FlushPolicy(rows=1000, compact_files=1e9), {how}: "
        f"{info['table_version'] + 1} Delta commits, {sum(before.values())} files over {len(before)} days "
        f"(at most {max(before.values())} a day) before compaction; compact() took {compact_s:.1f} s"
    )
    if every and len(flushes) > 100:
        first, last = statistics.median(flushes[:50]), statistics.median(flushes[-51:-1])
        report.note(
            f"small files: a flush took {first * 1e3:.0f} ms (median of the first 50), "
            f"{last * 1e3:.0f} ms (median of the last 50)"
        )
    report.figure(Figure("3. sessions, first query before compaction", before_first, "s"))
    report.figure(Figure("3. sessions, first query after compaction", after_first, "s"))
    report.figure(Figure("3. sessions, warm, before compaction", before_s, "s"))
    report.figure(Figure("3. sessions, warm, after compaction", after_s, "s"))
    ratio = before_s / after_s
    report.figure(Figure("3. before / after compaction", ratio, "x", SMALL_FILES_RATIO_TARGET, "<="))
    most = max(after.values())
    report.figure(
        Figure("3. files per day after compaction (most)", most, "files", FILES_PER_DAY_TARGET, "<=")
    )


# -- 4. recovery ----------------------------------------------------------------------------------


def recovery_child(root: Path, events: int) -> None:
    """In the child: append `events` with flushing off, say "ready", and wait to be killed."""
    synth = Synth(Shape.for_events(events), seed=4)
    wh = warehouse.open(root, policy=NO_FLUSH)
    started = time.perf_counter()
    for table in synth.chunks(RECOVERY_BATCH):
        wh.append(table)
    print(f"ready {wh.tail_rows} {time.perf_counter() - started:.2f}", flush=True)
    time.sleep(3600)


def crash_child(root: Path, events: int) -> tuple[int, float]:
    """Run the child until it says ready, then SIGKILL it; returns (tail rows, append seconds)."""
    command = [sys.executable, __file__, "--recovery-child", str(root), "--recovery-events", str(events)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(900, child.kill)
    watchdog.start()
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        watchdog.cancel()
    if not line or line[0] != "ready":
        raise RuntimeError(f"the recovery child did not get ready: {line}")
    return int(line[1]), float(line[2])


def bench_recovery(args: argparse.Namespace, report: Report, tmp: Path) -> None:
    n = args.recovery_events
    say(f"4. recovery: a child appends {n:,} events (tables of {RECOVERY_BATCH:,}), never flushing")
    source = temp_dir(tmp, "crashed")
    tail, append_s = crash_child(source, n)
    wal_mib = folder_bytes(source / "wal") / 2**20
    say(f"   child appended {tail:,} events in {append_s:.1f} s and was killed; log {wal_mib:,.0f} MiB")
    opens, counts = [], []
    for repeat in range(RECOVERY_REPEATS):
        copy = tmp / f"recovered-{repeat}"
        shutil.copytree(source, copy)
        open_s, wh = timed(lambda copy=copy: warehouse.open(copy))
        try:
            counts.append(wh.sql("select count(*) from events").column(0)[0].as_py())
        finally:
            wh.close()  # flushes the recovered tail: outside the timed part
            shutil.rmtree(copy)
        opens.append(open_s)
        say(f"   open {repeat + 1}: {open_s:.2f} s, {counts[-1]:,} events")
    shutil.rmtree(source)
    report.note(
        f"recovery: {n:,} events in the log ({wal_mib:,.0f} MiB, lz4 Arrow IPC), child appended them "
        f"in {append_s:.1f} s; opens: {seconds(opens)} s (each on a fresh copy of the killed folder)"
    )
    report.figure(
        Figure(
            "4. writer open after SIGKILL (replay + index)",
            statistics.median(opens),
            "s",
            RECOVERY_TARGET_S,
            "<=",
        )
    )
    report.figure(Figure("4. events visible after recovery (min over opens)", min(counts), "events", n, "=="))


# -- machine and results --------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What ran the benchmark."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")), "?"
    )
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem_kb = next((int(ln.split()[1]) for ln in meminfo.splitlines() if ln.startswith("MemTotal")), 0)
    versions = ", ".join(
        f"{p} {metadata.version(p)}" for p in ("duckdb", "deltalake", "pyarrow", "numpy", "polars")
    )
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
        "cpu": model,
        "ram": f"{mem_kb / 2**20:.1f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": f"{versions}, sqlite {sqlite3.sqlite_version}",
        "warehouse code": f"{Path(warehouse.__file__).parent}, {git_state()}",
        "load average at start": load_average(),
    }


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: how busy the shared machine was."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def git_state() -> str:
    """The commit the warehouse package was at, and whether it had uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "warehouse"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"commit {head}" + (" with uncommitted changes in warehouse/" if dirty else "")


def render_text(report: Report) -> str:
    """The figures as a plain-text table, for the terminal."""
    lines = [f"{'figure':<52} {'value':>12} {'unit':<9} {'target':>12} {'ratio':>6}  verdict"]
    for f in report.figures:
        value, target = fmt(f.value), target_text(f)
        lines.append(f"{f.name:<52} {value:>12} {f.unit:<9} {target:>12} {ratio_text(f):>6}  {f.verdict}")
    lines.append("")
    lines += [f"{name}: {value:.2f}x ({meaning})" for name, value, meaning in report.ratios]
    lines.append("")
    lines += [f"- {note}" for note in report.notes]
    return "\n".join(lines)


def render_markdown(report: Report, host: dict[str, str], total_s: float) -> str:
    """RESULTS.md: the machine, the figures with targets and verdicts, the ratios, how to reproduce."""
    out = [SECTION, "", "Written by `bench/warehouse.py`; numbers are medians.", ""]
    out += ["### Machine", ""]
    out += [f"- {key}: {value}" for key, value in host.items()]
    params = ", ".join(f"{k}={v:,}" if type(v) is int else f"{k}={v}" for k, v in report.params.items())
    out += [f"- parameters: {params}", f"- run time: {total_s / 60:.1f} min", ""]
    out += [
        "### Figures",
        "",
        "| figure | value | unit | target | ratio to target | verdict |",
        "|---|---:|---|---:|---:|---|",
    ]
    for f in report.figures:
        out.append(
            f"| {f.name} | {fmt(f.value)} | {f.unit} | {target_text(f)} | {ratio_text(f)} | {f.verdict} |"
        )
    out += [
        "",
        "Ratio to target: above 1 meets it (value/target for throughput, target/value for times).",
        "",
    ]
    out += ["### Ratios", "", "| ratio | value | meaning |", "|---|---:|---|"]
    out += [f"| {name} | {value:.2f}x | {meaning} |" for name, value, meaning in report.ratios]
    out += ["", "### Notes", ""]
    out += [f"- {note}" for note in report.notes]
    out += ["", "### Reproduce", "", "```", ".venv/bin/python bench/warehouse.py", "```", ""]
    return "\n".join(out)


# -- main -----------------------------------------------------------------------------------------

SECTIONS: dict[str, Callable[[argparse.Namespace, Report, Path], None]] = {
    "1": bench_appends,
    "2": bench_sessions,
    "3": bench_small_files,
    "4": bench_recovery,
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events for the sessions view (2)")
    parser.add_argument(
        "--append-events", type=int, default=200_000, help="events per append measurement (1)"
    )
    parser.add_argument("--small-appends", type=int, default=10_000, help="appends of 100 events (3)")
    parser.add_argument(
        "--small-flush-every", type=int, default=10, help="flush after this many appends; 0: policy only (3)"
    )
    parser.add_argument(
        "--recovery-events", type=int, default=1_000_000, help="events in the crashed log (4)"
    )
    parser.add_argument("--only", default="1,2,3,4", help="sections to run, e.g. 2,4")
    parser.add_argument("--skip-sqlite", action="store_true", help="leave SQLite out of section 2")
    parser.add_argument("--results", default=str(BENCH / "RESULTS.md"), help="where to write; '' for nowhere")
    parser.add_argument("--recovery-child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.recovery_child:
        recovery_child(Path(args.recovery_child), args.recovery_events)
        return 0
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    params = {k: v for k, v in vars(args).items() if k not in ("results", "recovery_child")}
    report = Report(params=params)
    host = machine()
    say(f"machine: {host}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cerver-bench-") as tmp:
        for key in sections:
            try:
                SECTIONS[key](args, report, Path(tmp))
            except Exception as exc:
                traceback.print_exc()
                report.note(f"section {key} FAILED: {exc!r}")
    total_s = time.perf_counter() - started
    host["load average at end"] = load_average()
    print("\n== Cerver warehouse benchmark ==\n" + render_text(report), flush=True)
    if args.results:
        write_section(Path(args.results), SECTION, render_markdown(report, host, total_s))
        say(f"wrote {args.results}")
    return 1 if any("FAILED" in note for note in report.notes) else 0  # a missed target is not an error


if __name__ == "__main__":
    sys.exit(main())
