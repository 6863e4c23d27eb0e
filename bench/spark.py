"""The `sessions` query on N demo events (default 10M): DuckDB (Cerver) beside Spark in local mode.

1. `bench/query_data.make_warehouse` writes about N demo events into a temporary warehouse
   (flushed and compacted), as the queries benchmark does.
2. DuckDB: `queries.run` on a read-only warehouse opened in a fresh child process, cold (its
   first run, which builds the sessions summary) and warm (the median of the next runs); the
   child is bench/queries.py's, so the two benchmarks measure DuckDB the same way.
3. Spark: a `local[2]` session (`queries.engines.spark`), the table's live files attached, then
   the same query cold (the first run in the new JVM) and warm. Spark recomputes the sessions
   aggregate every time: it keeps nothing between queries unless told to cache.
4. Spark's answer is checked against DuckDB's, row by row (bench/query_check.py).

    .venv/bin/python bench/spark.py                               # 10M events, about 5-10 minutes
    .venv/bin/python bench/spark.py --events 200000 --results ''  # a quick check, printed only

The report is printed and written into the `## Spark` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as `python bench/spark.py`, this folder heads sys.path and bench/queries.py would shadow the
# `queries` package: drop the folder and put the repository root first.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from bench import query_check, query_data, query_report  # noqa: E402
from bench.queries import Measured, attempt, measure_duckdb, timed, warm_runs  # noqa: E402
from bench.results import write_section  # noqa: E402

SECTION = "## Spark"
QUERY = "sessions"


def say(message: str) -> None:
    """A progress line with a timestamp."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class SparkRun:
    """Spark's side: starting the session, attaching the table, then the query."""

    start_s: float = 0.0
    attach_s: float = 0.0
    files: int = 0
    measured: Measured = field(default_factory=Measured)


def measure_spark(data: Path, args: argparse.Namespace) -> SparkRun:
    """A new local Spark session (a new JVM): attach the table, run the query cold, then warm."""
    from queries.engines import spark

    run = SparkRun()

    def measure() -> None:
        run.start_s, session = timed(
            lambda: spark.session(f"local[{args.cores}]", conf={"spark.driver.memory": args.driver_memory})
        )
        try:
            run.attach_s, files = timed(lambda: spark.attach(session, data))
            run.files = len(files)
            m = run.measured
            m.cold_s, m.answer = timed(lambda: spark.run(session, QUERY))
            m.warm = warm_runs(lambda: spark.run(session, QUERY), m.cold_s, args.repeats, args.warm_budget)
        finally:
            session.stop()

    attempt(run.measured, measure)
    return run


def java_version() -> str:
    """The JVM Spark runs on, as `java -version` names it."""
    done = subprocess.run(["java", "-version"], capture_output=True, text=True)
    return (done.stderr or done.stdout).splitlines()[0] if done.returncode == 0 else "?"


def render(
    args: argparse.Namespace,
    host: list[str],
    generated: query_data.Generated | None,
    duck: Measured,
    spark_run: SparkRun,
    seconds_total: float,
) -> str:
    """The section as markdown: machine, data, seconds side by side, the ratio, the answer check."""
    s, seconds, ratio = spark_run.measured, query_report.seconds, query_report.ratio
    out = [SECTION, "", INTRO.strip().format(repeats=args.repeats, budget=args.warm_budget), ""]
    out += ["### Machine", "", *host, f"- load average at the end: {query_report.load_average()}"]
    out.append(
        f"- pyspark {metadata.version('pyspark')} on {java_version()}; sqlglot {metadata.version('sqlglot')}"
    )
    params = f"--events {args.events} --repeats {args.repeats} --warm-budget {args.warm_budget:g} "
    params += f"--seed {args.seed} --cores {args.cores} --driver-memory {args.driver_memory}"
    out += [f"- parameters: {params}; run time {seconds_total / 60:.1f} min", ""]
    if generated is not None:
        g = generated
        out += [
            "### Data",
            "",
            f"- demo: {g.events:,} events, {g.all_sessions:,} sessions (fan-out children included), "
            f"{g.users:,} users; flushed and compacted into {g.files} Parquet files",
            "",
        ]
    out += [
        "### Seconds",
        "",
        "| engine | cold | warm (median) | warm runs | rows |",
        "|---|---:|---:|---:|---:|",
    ]
    for engine, m in (("DuckDB (Cerver)", duck), ("Spark local", s)):
        rows = f"{m.answer.num_rows:,}" if m.answer is not None else "-"
        cold = "failed" if m.error else seconds(m.cold_s)
        warm = "-" if m.error else seconds(m.warm_s)
        out.append(f"| {engine} | {cold} | {warm} | {len(m.warm)} | {rows} |")
    out.append(
        f"| **Spark / DuckDB** | {ratio(s.cold_s, duck.cold_s)} | {ratio(s.warm_s, duck.warm_s)} | | |"
    )
    out += [
        "",
        f"- Spark besides: starting the session (a JVM) {seconds(spark_run.start_s)} s, attaching the "
        f"table ({spark_run.files} files from the Delta log, schemas merged, views made) "
        f"{seconds(spark_run.attach_s)} s; neither is in cold.",
    ]
    if duck.open_s is not None:
        out.append(
            f"- DuckDB: opening the read-only warehouse in the child took {duck.open_s:.3f} s, not in cold."
        )
    out += ["", "### Answer", "", f"- {agreement(duck, s)}", "", "### Notes", "", NOTES.strip(), ""]
    out += ["Reproduce: `.venv/bin/python bench/spark.py` (quick: `--events 200000 --results ''`).", ""]
    return "\n".join(out)


def agreement(duck: Measured, spark_measured: Measured) -> str:
    """Does Spark's answer agree with DuckDB's, every row and column?"""
    if duck.error or spark_measured.error:
        return f"not compared: {duck.error or spark_measured.error}"
    a = query_check.compare(QUERY, duck.answer, spark_measured.answer)
    if a.same:
        total = f"total cost_usd {a.total:,.6g}"
        return f"Spark agrees with DuckDB on every row and column ({a.rows:,} rows; {total})"
    return "Spark DIFFERS from DuckDB: " + "; ".join(a.problems)


INTRO = """
Written by `bench/spark.py`: the `sessions` named query (one row per session, aggregated from
every event) over the same demo table, answered by Cerver (DuckDB through `queries.run`) and by
Spark in local mode (`queries.engines.spark`: the same SQL file transpiled by sqlglot, over the
Delta table's live Parquet files), one after the other on the same cores. Cold: DuckDB's first run
in a fresh child process (a new interpreter and DuckDB, so the sessions summary is built from the
files); Spark's first run in a new session (a new JVM). Warm: the median of the next {repeats}
runs (fewer when the first says they would take more than {budget:g} s). The OS page cache holds
the files for both.
"""
NOTES = """
What the ratio means: warm DuckDB answers from the sessions summary Cerver keeps materialised per
table version (only the unflushed tail is merged in per query), while Spark aggregates every event
on each run; cold compares the two engines doing the same full aggregate. Spark's strength is
more machines, not one: local mode on this machine's cores measures its overhead (JVM, planning,
shuffle) on a job that fits on one machine, which is where DuckDB is built to win.
"""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="demo events to generate (about)")
    parser.add_argument("--repeats", type=int, default=5, help="warm runs per engine")
    parser.add_argument("--warm-budget", type=float, default=120.0, help="fewer warm runs past this (s)")
    parser.add_argument("--seed", type=int, default=7, help="the demo's seed")
    parser.add_argument("--cores", type=int, default=2, help="Spark's local[N]")
    parser.add_argument("--driver-memory", default="4g", help="Spark's driver heap (local mode: all of it)")
    parser.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"), help="'' to print only")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    host = query_report.machine()
    started = time.perf_counter()
    generated, duck, spark_run = None, Measured(), SparkRun()
    with tempfile.TemporaryDirectory(prefix="cerver-bench-spark-") as tmp:
        data = Path(tmp) / "data"
        try:
            say(f"generating about {args.events:,} demo events (seed {args.seed}) into {data}")
            generated = query_data.make_warehouse(data, args.events, args.seed)
            say(f"   {generated.events:,} events, {generated.files} files")
            say("DuckDB (child process)")
            duck = measure_duckdb(data, QUERY, args, Path(tmp))
            say(f"   cold {duck.cold_s:.3f} s, warm {duck.warm_s:.3f} s {duck.error or ''}")
            say(f"Spark local[{args.cores}]")
            spark_run = measure_spark(data, args)
            s = spark_run.measured
            say(
                f"   start {spark_run.start_s:.1f} s, attach {spark_run.attach_s:.1f} s, "
                f"cold {s.cold_s:.3f} s, warm {s.warm_s:.3f} s {s.error or ''}"
            )
        except Exception:
            traceback.print_exc()
    section = render(args, host, generated, duck, spark_run, time.perf_counter() - started)
    print("\n" + section, flush=True)
    if args.results:
        write_section(Path(args.results), SECTION, section)
        say(f"wrote {args.results}")
    return 1 if duck.error or spark_run.measured.error or generated is None else 0


if __name__ == "__main__":
    sys.exit(main())
