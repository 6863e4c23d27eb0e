"""The `## Queries` section of bench/RESULTS.md: the machine, the data, seconds and ratios, answers."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import sqlite3
import statistics
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from bench import query_check, query_data, query_sqlite

if TYPE_CHECKING:
    from bench.queries import Measured, Run

SECTION = "## Queries"
ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("duckdb", "polars", "pyarrow", "deltalake")


def machine() -> list[str]:
    """What ran the benchmark, as the section's first lines (the end's load average comes later)."""
    with open("/proc/cpuinfo") as info:
        cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), "?")
    with open("/proc/meminfo") as info:
        mem_kb = next((int(ln.split()[1]) for ln in info if ln.startswith("MemTotal")), 0)
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in PACKAGES)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    fs = subprocess.run(["df", "--output=fstype", tempfile.gettempdir()], capture_output=True, text=True)
    return [
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}; nproc: {len(os.sched_getaffinity(0))}; "
        f"cpu: {cpu}; ram: {mem_kb / 2**20:.1f} GiB",
        f"- python {platform.python_version()}; {versions}; sqlite {sqlite3.sqlite_version}",
        f"- commit {commit.stdout.strip() or '?'} plus the working tree; data on "
        f"{(fs.stdout.split() or ['?'])[-1]} under {tempfile.gettempdir()}",
        f"- load average at the start: {load_average()}",
    ]


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def seconds(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:,.1f}"


def ratio(numerator: float, denominator: float) -> str:
    if math.isnan(numerator) or math.isnan(denominator) or denominator <= 0:
        return "-"
    value = numerator / denominator
    return f"{value:.2f}x" if value < 10 else f"{value:,.0f}x"


def warm_cell(m: Measured | None, repeats: int) -> str:
    if m is None or m.error:
        return "-"
    fewer = f" ({len(m.warm)})" if len(m.warm) < repeats else ""
    return seconds(m.warm_s) + fewer


def cold_cell(m: Measured | None) -> str:
    if m is None:
        return "-"
    return "failed" if m.error else seconds(m.cold_s)


def timings(run: Run) -> list[str]:
    """One row per query: each engine's cold and warm seconds, and the warm ratios to DuckDB."""
    repeats = run.args.repeats
    out = [
        "| query | rows | DuckDB cold | DuckDB warm | SQLite cold | SQLite warm | Polars cold | Polars warm "
        "| SQLite / DuckDB | Polars / DuckDB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    sums: dict[tuple[str, str], float] = {}
    for name, row in run.results.items():
        duck, lite, pol = (row.get(e) for e in ("DuckDB", "SQLite", "Polars"))
        rows = f"{duck.answer.num_rows:,}" if duck and duck.answer is not None else "-"
        cells = [cold_cell(duck), warm_cell(duck, repeats), cold_cell(lite), warm_cell(lite, repeats)]
        cells += [cold_cell(pol), warm_cell(pol, repeats)]
        duck_warm = duck.warm_s if duck and not duck.error else math.nan
        ratios = [ratio(m.warm_s, duck_warm) if m and not m.error else "-" for m in (lite, pol)]
        out.append(f"| `{name}` | {rows} | {' | '.join(cells)} | {' | '.join(ratios)} |")
        for engine, m in row.items():
            sums[engine, "cold"] = sums.get((engine, "cold"), 0.0) + (math.nan if m.error else m.cold_s)
            sums[engine, "warm"] = sums.get((engine, "warm"), 0.0) + (math.nan if m.error else m.warm_s)
    cells = [
        seconds(sums.get((e, k), math.nan)) for e in ("DuckDB", "SQLite", "Polars") for k in ("cold", "warm")
    ]
    duck_warm = sums.get(("DuckDB", "warm"), math.nan)
    ratios = [ratio(sums.get((e, "warm"), math.nan), duck_warm) for e in ("SQLite", "Polars")]
    out.append(f"| **sum** | | {' | '.join(cells)} | {' | '.join(ratios)} |")
    return out


def answers(run: Run) -> list[str]:
    """One row per query: rows and a key total from each engine, and whether they agree with DuckDB."""
    out = [
        "| query | total of | DuckDB rows, total | SQLite rows, total | Polars rows, total "
        "| agrees with DuckDB |",
        "|---|---|---:|---:|---:|---|",
    ]
    for name, row in run.results.items():
        cells, verdicts = [], []
        for engine in ("DuckDB", "SQLite", "Polars"):
            m = row.get(engine)
            a = m.agreement if m else None
            cells.append("-" if a is None else f"{a.rows:,}, {'-' if a.total is None else f'{a.total:,.6g}'}")
            if engine != "DuckDB" and m is not None:
                verdicts.append(f"{engine}: {verdict(m)}")
        out.append(f"| `{name}` | {query_check.TOTALS[name]} | {' | '.join(cells)} | {'; '.join(verdicts)} |")
    return out


def verdict(m: Measured) -> str:
    if m.error:
        return f"failed ({m.error})"
    if m.agreement is None:
        return "not compared (DuckDB failed)"
    return "yes, every row and column" if m.agreement.same else "NO: " + "; ".join(m.agreement.problems)


def data_lines(run: Run) -> list[str]:
    out = []
    if (g := run.generated) is not None:
        out.append(
            f"- demo: {g.events:,} events (asked for {run.args.events:,}): {g.sessions:,} top-level sessions "
            f"({g.all_sessions:,} with fan-out children) of {g.users:,} users; {g.per_session:.1f} events "
            f"per session from a probe run ({g.probe_s:.1f} s)"
        )
        out.append(
            f"- generating took {g.generate_s:.1f} s ({g.events / g.generate_s:,.0f} events/s through "
            f"`Warehouse.append`), then flush {g.flush_s:.1f} s and compact {g.compact_s:.1f} s: "
            f"{g.files} Parquet files"
        )
    if (s := run.load) is not None:
        columns = ", ".join(name for name, _ in query_data.SQLITE_COLUMNS)
        indexes = ", ".join(f"({on})" for _, on in query_data.SQLITE_INDEXES)
        out.append(
            f"- SQLite load: {s.rows:,} rows in {s.insert_s:.1f} s (executemany from Arrow batches of "
            f"{query_data.SQLITE_BATCH:,}), indexes and ANALYZE {s.index_s:.1f} s; {s.mib:,.0f} MiB"
        )
        out.append(
            f"- SQLite holds the columns the questions read ({columns}; ts as integer microseconds), "
            f"not event_id, role and content; indexes {indexes}; journal off while loading; "
            f"each connection read-only with {query_sqlite.PRAGMAS_TEXT}"
        )
        if g is not None:
            setup = g.probe_s + g.generate_s + g.flush_s + g.compact_s
            slower = "longer" if s.insert_s + s.index_s > setup else "less"
            out.append(
                f"- loading SQLite ({s.insert_s + s.index_s:.0f} s) took {slower} than making the demo "
                f"warehouse ({setup:.0f} s: probe, generate, flush, compact)"
            )
    return out


def render(run: Run, host: list[str]) -> str:
    """The whole section as markdown."""
    args = run.args
    opens = [m.open_s for row in run.results.values() if (m := row.get("DuckDB")) and m.open_s is not None]
    out = [SECTION, "", INTRO.strip().format(repeats=args.repeats, budget=args.warm_budget), ""]
    out += ["### Machine", "", *host, f"- load average at the end: {load_average()}"]
    params = f"--events {args.events} --repeats {args.repeats} --warm-budget {args.warm_budget:g}"
    params += f" --seed {args.seed}"
    out += [f"- parameters: {params}; run time {run.seconds / 60:.1f} min", ""]
    out += ["### Data", "", *data_lines(run), ""]
    out += ["### Seconds", "", *timings(run), ""]
    out += [RATIOS.strip(), ""]
    out += ["### Answers", "", *answers(run), ""]
    out += ["### Notes", ""]
    if opens:
        out.append(
            f"- DuckDB: opening the read-only warehouse in the child took {statistics.median(opens):.3f} s "
            "(median), not counted in cold."
        )
    out += [NOTES.strip(), *run.notes, ""]
    out += ["Reproduce: `.venv/bin/python bench/queries.py` (quick: `--events 200000 --results ''`).", ""]
    return "\n".join(out)


INTRO = """
Written by `bench/queries.py`: every named query (`queries/sql/`) on the demo workload, answered by
Cerver (DuckDB through `queries.run`), by SQLite and by Polars, one query at a time on the same 2
cores. Cold: DuckDB's first run in a fresh child process on a newly opened
`warehouse.open(data, read_only=True)` (a new interpreter and DuckDB: no Parquet metadata, no
sessions summary); SQLite's first run on a new connection; Polars' first `collect()` of the lazy
query. Warm: the median of the next {repeats} runs (fewer, shown in brackets, when the first run
says they would take more than {budget:g} s). The OS page cache holds every engine's files (they
were just written or read), so cold means the engine's own caches, not the disk.
"""

RATIOS = """
Ratios are warm over warm: how many times longer SQLite or Polars took than DuckDB. `sum` adds up
the queries' figures.
"""

NOTES = """
- Parameters: each query's defaults (whole time range, every user, `status = ok`), and
  `model = anthropic/claude-sonnet-4-5` for `what_if_cost`; each engine gets the same bound values.
- `sessions`, `top_sessions_by_cost` and `fanout_comparison` read DuckDB's kept sessions summary:
  its cold run builds the summary from the Parquet files, its warm runs reuse it. SQLite and Polars
  aggregate the events for every run. For `fanout_comparison` they summarise only the spawned
  children's sessions and runs (SQLite through its `session_id` index, Polars by a semi join).
- SQLite runs on one core; DuckDB and Polars use both. The `runs` view (events grouped by
  `(tenant_id, session_id, run_id)`) is written into each SQLite and Polars question with only the
  columns that question reads, as DuckDB's optimiser prunes the view.
- SQLite has no quantiles: percentiles rank the values with `row_number()` and `count()` over the
  group and interpolate between the two rows around `(n - 1) * q`, as DuckDB's `quantile_cont`;
  "latest non-null x" (DuckDB's `arg_max`) is `substr(max(ts || x), 17)` over 16-digit microsecond
  timestamps. Polars uses `quantile(q, "linear")` and sorts a group's values by ts.
- `what_if_cost`: the prices table (litellm's bundled map) is built before anything is timed, once
  per process; SQLite holds it as a table keyed by model, Polars as a frame.
- Answers are compared with DuckDB's after each engine's first run, row by row on the query's key
  (floats within a relative 1e-7, as engines add in different orders).
"""
