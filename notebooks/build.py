"""Writes the comparison notebooks from their cells, and runs them (nbclient) so they carry outputs.

The cells live here, as plain text, so a change to a notebook is a reviewable diff of this file;
the `.ipynb` files are its product, committed with their outputs (plots as PNG) from a demo set.

    .venv/bin/python notebooks/build.py                 # demo data in a temp folder, run, write both
    .venv/bin/python notebooks/build.py --data DIR      # run against an existing warehouse
    .venv/bin/python notebooks/build.py --no-run        # cells only, no outputs

The notebooks read `CERVER_DATA` and use only `queries` and `warehouse`: no logic of their own.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

SETUP = """\
import os

import matplotlib.pyplot as plt

import queries
import warehouse

wh = warehouse.open(os.environ.get("CERVER_DATA", "cerver-data"), read_only=True)
info = wh.sql("select count(*) as events, count(distinct session_id) as sessions from events").to_pylist()[0]
print(f"{info['events']:,} events in {info['sessions']:,} sessions")"""

COST = [
    (
        "md",
        "# Cost comparison\n\n"
        "Where the money goes: per model, per user, per day; what fan-outs cost next to the answer\n"
        "that was kept; and what the same work would have cost on another model. Every figure comes\n"
        "from a named query in `queries/` (run them yourself: `cerver query --list`). The data is the\n"
        "warehouse at `$CERVER_DATA`; the committed outputs come from `cerver demo`.",
    ),
    ("code", SETUP),
    ("md", "## Cost per model\n\n`cost_by_model`: spend, tokens and runs per model."),
    (
        "code",
        """\
by_model = queries.run(wh, "cost_by_model", polars=True)
fig, ax = plt.subplots(figsize=(8, 4))
ax.barh(by_model["model"].to_list()[::-1], by_model["cost_usd"].to_list()[::-1])
ax.set_xlabel("cost (USD)")
ax.set_title("Cost per model")
plt.show()
by_model.select("model", "runs", "tokens", "cost_usd", "cost_per_run_usd")""",
    ),
    (
        "md",
        "## Cost per user and per day\n\n`cost_by_user`: each user's spend per UTC day, beside their total.",
    ),
    (
        "code",
        """\
by_user = queries.run(wh, "cost_by_user", polars=True)
totals = by_user.unique("user_id").sort("total_cost_usd", descending=True).head(15)
fig, ax = plt.subplots(figsize=(8, 4))
ax.barh(totals["user_id"].to_list()[::-1], totals["total_cost_usd"].to_list()[::-1])
ax.set_xlabel("cost (USD)")
ax.set_title("The 15 users who spent most")
plt.show()
totals.select("user_id", "total_runs", "total_cost_usd")""",
    ),
    (
        "code",
        """\
daily = queries.run(wh, "daily_active_users", polars=True).sort("day")
fig, ax = plt.subplots(figsize=(8, 3))
ax.plot(daily["day"].to_list(), daily["cost_usd"].to_list(), marker=".")
ax.set_ylabel("cost (USD)")
ax.set_title("Spend per day")
fig.autofmt_xdate()
plt.show()""",
    ),
    (
        "md",
        "## Fan-outs: the cost trail\n\n"
        "`fanout_comparison`: every child of every fan-out, side by side, the kept one marked. A fan-out\n"
        "pays for all its children; only the selected one's answer is used.",
    ),
    (
        "code",
        """\
fanouts = queries.run(wh, "fanout_comparison", polars=True)
trail = fanouts.unique("parent_session_id").select("children_cost_usd", "selected_cost_usd")
spent, kept = trail["children_cost_usd"].sum(), trail["selected_cost_usd"].sum()
print(f"{len(trail)} fan-outs: ${spent:.4f} spent on children, ${kept:.4f} of it on the answers kept")
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(["all children", "selected children"], [spent, kept])
ax.set_ylabel("cost (USD)")
ax.set_title("Fan-out cost trail")
plt.show()
fanouts.head(10).select("parent_session_id", "model", "harness", "status", "cost_usd", "selected")""",
    ),
    (
        "md",
        "## What if\n\n"
        "`what_if_cost`: every run's tokens re-priced at another model's prices (litellm's price map).\n"
        "Here: what everything would have cost on Claude Sonnet, model by model.",
    ),
    (
        "code",
        """\
what_if = queries.run(wh, "what_if_cost", {"model": "anthropic/claude-sonnet-4-5"}, polars=True)
models, at = what_if["model"].to_list(), range(what_if.height)
fig, ax = plt.subplots(figsize=(8, 4.5))
ax.barh([i + 0.2 for i in at], what_if["cost_usd"].to_list(), height=0.4, label="actual")
ax.barh([i - 0.2 for i in at], what_if["what_if_cost_usd"].to_list(), height=0.4, label="on Sonnet")
ax.set_yticks(list(at), models)
ax.set_xlabel("cost (USD)")
ax.set_title("Actual cost, and the same tokens priced as Claude Sonnet")
ax.legend()
plt.show()
print(f"actual ${what_if['cost_usd'].sum():.4f}, on Sonnet ${what_if['what_if_cost_usd'].sum():.4f}")""",
    ),
]

LATENCY = [
    (
        "md",
        "# Latency comparison\n\n"
        "How fast each model answers, and how often it fails: latency and time to first token per model\n"
        "and per harness, then errors. Figures from the named queries in `queries/`; distributions read\n"
        "the `runs` view directly. The data is the warehouse at `$CERVER_DATA`.",
    ),
    ("code", SETUP),
    (
        "md",
        "## Percentiles per model\n\n"
        "`latency_by_model`: p50, p95 and p99 of run latency and of time to first token.",
    ),
    (
        "code",
        """\
latency = queries.run(wh, "latency_by_model", polars=True).sort("latency_p50_ms")
fig, ax = plt.subplots(figsize=(8, 4))
for column in ("latency_p99_ms", "latency_p95_ms", "latency_p50_ms"):
    ax.barh(latency["model"].to_list(), latency[column].to_list(), label=column.split("_")[1])
ax.set_xlabel("latency (ms)")
ax.set_title("Run latency per model")
ax.legend()
plt.show()
latency.select("model", "runs", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "ttft_p50_ms")""",
    ),
    (
        "md",
        "## Distributions\n\nEmpirical CDFs of latency and time to first token, per model (successful runs).",
    ),
    (
        "code",
        """\
runs = wh.sql("select model, harness, latency_ms, ttft_ms from runs where status = 'ok'").to_pylist()
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for model in sorted({r["model"] for r in runs}):
    for axis, column in ((left, "latency_ms"), (right, "ttft_ms")):
        values = sorted(r[column] for r in runs if r["model"] == model and r[column] is not None)
        if values:
            axis.step(values, [(i + 1) / len(values) for i in range(len(values))], label=model)
left.set(xscale="log", xlabel="latency (ms)", ylabel="share of runs", title="Latency")
right.set(xscale="log", xlabel="time to first token (ms)", title="Time to first token")
right.legend(fontsize=7)
plt.show()""",
    ),
    (
        "code",
        """\
harnesses = sorted({r["harness"] for r in runs})
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.boxplot([[r["latency_ms"] for r in runs if r["harness"] == h] for h in harnesses], showfliers=False)
ax.set_xticks(range(1, len(harnesses) + 1), harnesses)
ax.set(yscale="log", ylabel="latency (ms)", title="Latency per harness")
plt.show()""",
    ),
    (
        "md",
        "## Errors and retries\n\n`errors_by_model`: failed runs per model, the rate and the latest error.",
    ),
    (
        "code",
        """\
errors = queries.run(wh, "errors_by_model", polars=True).sort("error_rate")
fig, ax = plt.subplots(figsize=(8, 4))
ax.barh(errors["model"].to_list(), [100 * r for r in errors["error_rate"].to_list()])
ax.set_xlabel("failed runs (%)")
ax.set_title("Error rate per model")
plt.show()
errors.select("model", "runs", "errors", "error_rate", "timeouts", "last_error")""",
    ),
    (
        "code",
        """\
retried = wh.sql(
    "select model, count(*) as runs, "
    "count(*) filter (where json_array_length(attrs -> 'attempts') > 1) as retried "
    "from events where type = 'run.completed' group by model order by model"
).to_pylist()
fig, ax = plt.subplots(figsize=(8, 3.5))
ax.barh([r["model"] for r in retried], [100 * r["retried"] / r["runs"] for r in retried])
ax.set_xlabel("successful runs that needed a retry (%)")
ax.set_title("Retries per model")
plt.show()""",
    ),
]

NOTEBOOKS = {"cost_comparison.ipynb": COST, "latency_comparison.ipynb": LATENCY}


def notebook(cells: list[tuple[str, str]]):  # -> nbformat.NotebookNode
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
        for kind, src in cells
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def execute(nb, data: Path, timeout_s: int = 300):  # -> nbformat.NotebookNode
    """Run every cell in a fresh kernel with CERVER_DATA set; raises on the first failing cell."""
    from nbclient import NotebookClient

    previous = os.environ.get("CERVER_DATA"), os.environ.get("PYTHONPATH")
    os.environ["CERVER_DATA"] = str(data)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), previous[1]) if p)
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    try:
        NotebookClient(
            nb, timeout=timeout_s, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
        ).execute()
    finally:
        for name, value in zip(("CERVER_DATA", "PYTHONPATH"), previous):
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return nb


def demo_data(folder: Path, sessions: int, seed: int) -> Path:
    """A fresh demo warehouse in `folder`, flushed to Parquet."""
    import warehouse
    from ingest.demo import generate

    with warehouse.open(folder) as wh:
        generate(wh, sessions=sessions, seed=seed)
        wh.flush()
    return folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--data", type=Path, help="an existing warehouse (default: a fresh demo set)")
    p.add_argument("--sessions", type=int, default=1_500, help="demo sessions when --data is not given")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--no-run", action="store_true", help="write the cells without running them")
    p.add_argument("--out", type=Path, default=HERE)
    args = p.parse_args(argv)
    import nbformat

    with tempfile.TemporaryDirectory(prefix="cerver-notebooks-") as tmp:
        data = args.data
        if data is None and not args.no_run:
            data = demo_data(Path(tmp) / "data", args.sessions, args.seed)
        for name, cells in NOTEBOOKS.items():
            nb = notebook(cells)
            if not args.no_run:
                assert data is not None
                execute(nb, data)
            nbformat.write(nb, args.out / name)
            print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
