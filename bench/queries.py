"""The named queries on N demo events (default 10M): DuckDB (Cerver) beside SQLite and Polars.

1. `ingest.demo.generate` writes about N events into a temporary warehouse (the sessions count
   comes from a probe run's events per session), then flush and compact.
2. The events' columns the questions read are loaded into a SQLite file (executemany from the
   Parquet files' Arrow batches), with indexes on what they filter and group by.
3. Per named query, side by side: Cerver through `queries.run` on a read-only warehouse opened
   in a fresh child process (cold: its first run; warm: the median of the next runs); the same
   question in SQLite SQL (bench/sqlite_queries/) on a fresh connection; and as a Polars lazy
   query over the table's live Parquet files (bench/query_polars.py). Every engine's answer is
   checked against DuckDB's, row by row, before its warm runs are timed.

    .venv/bin/python bench/queries.py                   # 10M events, about 15-20 minutes
    .venv/bin/python bench/queries.py --events 200000 --results ''   # a quick check, printed only

The report is printed and written into the `## Queries` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as `python bench/queries.py`, this folder heads sys.path and this file would shadow the
# `queries` package it measures: drop the folder and put the repository root first.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

import pyarrow as pa  # noqa: E402
import pyarrow.feather as feather  # noqa: E402

import queries  # noqa: E402
import warehouse  # noqa: E402
from bench import query_check, query_data, query_sqlite  # noqa: E402
from bench.results import write_section  # noqa: E402

SECTION = "## Queries"
VALUES = {"model": "anthropic/claude-sonnet-4-5"}  # what_if_cost's required parameter; defaults elsewhere
ENGINES = ("DuckDB", "SQLite", "Polars")


def say(message: str) -> None:
    """A progress line with a timestamp."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def bound(name: str) -> dict[str, Any]:
    """The query's parameters as every engine gets them: VALUES where declared, else the defaults."""
    query = queries.get(name)
    declared = {p.name for p in query.params}
    return queries.bind(query, {k: v for k, v in VALUES.items() if k in declared})


# -- timing ---------------------------------------------------------------------------------------


@dataclass
class Measured:
    """One engine on one question: the first run, the warm runs after it, and the answer."""

    cold_s: float = math.nan
    warm: list[float] = field(default_factory=list)
    answer: pa.Table | None = None
    open_s: float | None = None  # DuckDB: opening the warehouse in the child, not part of cold
    error: str | None = None
    agreement: query_check.Agreement | None = None

    @property
    def warm_s(self) -> float:
        return statistics.median(self.warm) if self.warm else math.nan


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def warm_runs(fn: Callable[[], Any], cold_s: float, repeats: int, budget_s: float) -> list[float]:
    """`repeats` timed runs, fewer (at least one) when the first run says they would pass `budget_s`."""
    count = max(1, min(repeats, int(budget_s // max(cold_s, 1e-9))))
    return [timed(fn)[0] for _ in range(count)]


def attempt(measured: Measured, fn: Callable[[], None]) -> Measured:
    """Run a measurement; a failure is recorded on it (and reported), never raised."""
    try:
        fn()
    except Exception as exc:
        traceback.print_exc()
        measured.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return measured


# -- the three engines ----------------------------------------------------------------------------


def measure_duckdb(data: Path, name: str, args: argparse.Namespace, tmp: Path) -> Measured:
    """Cerver in a child process: a new read-only warehouse there, so no cache of ours is warm."""
    measured = Measured()
    answer_path = tmp / f"{name}.arrow"

    def run() -> None:
        command = [sys.executable, __file__, "--duckdb-child", str(data), "--query", name]
        command += ["--repeats", str(args.repeats), "--warm-budget", str(args.warm_budget)]
        command += ["--answer", str(answer_path)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=3600, cwd=ROOT)
        if done.returncode != 0:
            raise RuntimeError(f"child exited {done.returncode}: {done.stderr.strip()[-500:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        measured.cold_s, measured.warm, measured.open_s = result["cold_s"], result["warm"], result["open_s"]
        measured.answer = feather.read_table(answer_path)
        answer_path.unlink()

    return attempt(measured, run)


def duckdb_child(data: Path, name: str, repeats: int, budget_s: float, answer_path: Path) -> None:
    """In the child: open the warehouse read-only, run the query cold then warm, report as JSON."""
    values = bound(name)
    queries.extra_tables(queries.get(name))  # litellm's price map: built once per process, not timed
    open_s, wh = timed(lambda: warehouse.open(data, read_only=True))
    try:
        cold_s, answer = timed(lambda: queries.run(wh, name, values))
        warm = warm_runs(lambda: queries.run(wh, name, values), cold_s, repeats, budget_s)
    finally:
        wh.close()
    feather.write_feather(answer, str(answer_path))
    print(json.dumps({"open_s": open_s, "cold_s": cold_s, "warm": warm}))


def measure_sqlite(
    path: Path, name: str, values: dict[str, Any], reference: pa.Table | None, args: argparse.Namespace
) -> Measured:
    """SQLite on a new connection: cold is its first run (the OS page cache is warm all the same)."""
    measured = Measured()

    def run() -> None:
        con = query_sqlite.connect(path)
        try:
            measured.cold_s, answer = timed(lambda: query_sqlite.run(con, name, values))
            measured.answer = query_sqlite.as_table(answer)
            check(name, measured, reference)
            measured.warm = warm_runs(
                lambda: query_sqlite.run(con, name, values), measured.cold_s, args.repeats, args.warm_budget
            )
        finally:
            con.close()

    return attempt(measured, run)


def measure_polars(lazy: Any, name: str, reference: pa.Table | None, args: argparse.Namespace) -> Measured:
    """Polars: cold is the first collect of the lazy query, warm the next ones."""
    measured = Measured()

    def run() -> None:
        measured.cold_s, frame = timed(lazy.collect)
        measured.answer = frame.to_arrow()
        check(name, measured, reference)
        measured.warm = warm_runs(lazy.collect, measured.cold_s, args.repeats, args.warm_budget)

    return attempt(measured, run)


def check(name: str, measured: Measured, reference: pa.Table | None) -> None:
    """Compare the answer with DuckDB's before the warm runs; a disagreement is reported, not hidden."""
    if reference is not None and measured.answer is not None:
        measured.agreement = query_check.compare(name, reference, measured.answer)
        for problem in measured.agreement.problems:
            say(f"   DIFFERS from DuckDB: {problem}")


# -- the run --------------------------------------------------------------------------------------


@dataclass
class Run:
    """Everything the report needs."""

    args: argparse.Namespace
    generated: query_data.Generated | None = None
    load: query_data.SqliteLoad | None = None
    results: dict[str, dict[str, Measured]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def bench(run: Run, tmp: Path) -> None:
    """Generate, load SQLite, then every question on the three engines in turn."""
    import polars as pl

    from bench import query_polars

    args, data = run.args, tmp / "data"
    say(f"generating about {args.events:,} demo events (seed {args.seed}) into {data}")
    run.generated = gen = query_data.make_warehouse(data, args.events, args.seed)
    say(f"   {gen.events:,} events in {gen.generate_s:.1f} s; then flush {gen.flush_s:.1f} s")
    files = query_data.live_files(data)
    prices = queries.prices_table()
    sqlite_path = tmp / "events.sqlite"
    if "SQLite" in args.engines:
        say(f"loading SQLite from {len(files)} Parquet files")
        run.load = load = query_data.load_sqlite(sqlite_path, files, prices)
        say(f"   {load.rows:,} rows in {load.insert_s:.1f} s, indexes {load.index_s:.1f} s")
    events, price_frame = query_polars.scan(files), pl.from_arrow(prices).lazy()
    for name in args.queries:
        values = bound(name)
        say(f"{name}")
        row = run.results[name] = {}
        row["DuckDB"] = duck = measure_duckdb(data, name, args, tmp)
        reference = duck.answer
        if reference is not None:
            duck.agreement = query_check.compare(name, reference, reference)
        if "SQLite" in args.engines:
            row["SQLite"] = measure_sqlite(sqlite_path, name, values, reference, args)
        if "Polars" in args.engines:
            lazy = query_polars.query(name, events, values, price_frame)
            row["Polars"] = measure_polars(lazy, name, reference, args)
        for engine, m in row.items():
            figures = f"cold {m.cold_s:.3f} s, warm {m.warm_s:.3f} s ({len(m.warm)} runs)"
            say(f"   {engine}: {m.error or figures}")


# -- main -----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="demo events to generate (about)")
    parser.add_argument("--repeats", type=int, default=5, help="warm runs per engine and query")
    parser.add_argument(
        "--warm-budget", type=float, default=40.0, help="fewer warm runs when they would take longer (s)"
    )
    parser.add_argument("--seed", type=int, default=7, help="the demo's seed")
    parser.add_argument("--queries", default="", help="comma-separated names (default: all ten)")
    parser.add_argument("--engines", default=",".join(ENGINES), help="DuckDB always runs; e.g. DuckDB,Polars")
    parser.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"), help="'' to print only")
    parser.add_argument("--duckdb-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--query", help=argparse.SUPPRESS)
    parser.add_argument("--answer", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    known = [q.name for q in queries.catalog()]
    args.queries = [q.strip() for q in args.queries.split(",") if q.strip()] or known
    unknown = sorted(set(args.queries) - set(known))
    if unknown:
        parser.error(f"unknown queries: {', '.join(unknown)} (known: {', '.join(known)})")
    args.engines = {e.strip() for e in args.engines.split(",")} | {"DuckDB"}
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.duckdb_child:
        duckdb_child(args.duckdb_child, args.query, args.repeats, args.warm_budget, args.answer)
        return 0
    from bench import query_report

    host = query_report.machine()
    run = Run(args)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cerver-bench-queries-") as tmp:
        try:
            bench(run, Path(tmp))
        except Exception as exc:
            traceback.print_exc()
            run.notes.append(f"- the run FAILED: {type(exc).__name__}: {exc}")
    run.seconds = time.perf_counter() - started
    section = query_report.render(run, host)
    print("\n" + section, flush=True)
    if args.results:
        write_section(Path(args.results), query_report.SECTION, section)
        say(f"wrote {args.results}")
    failed = any(m.error for row in run.results.values() for m in row.values())
    return 1 if failed or any("FAILED" in note for note in run.notes) else 0


if __name__ == "__main__":
    sys.exit(main())
