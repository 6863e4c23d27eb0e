"""The ten named questions as Polars lazy queries over the warehouse's live Parquet files.

Each builds the part of the `runs` or `sessions` view it reads (only the columns it needs) from
`events`, as DuckDB's optimiser does with the views. A column's "latest non-null value" is taken
by sorting the group's values by ts, whatever order the files hold the rows in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

ENDED = ("run.completed", "run.failed")
TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
RUN_KEYS = ["tenant_id", "session_id", "run_id"]
SESSION_KEYS = ["tenant_id", "session_id"]

ts, kind = pl.col("ts"), pl.col("type")


def scan(files: list[str]) -> pl.LazyFrame:
    """The events: the live Parquet files, read as they are (the day partition is not a column)."""
    return pl.scan_parquet(files, hive_partitioning=False)


def latest(column: str, where: pl.Expr | None = None) -> pl.Expr:
    """The group's latest non-null value of `column` by ts (among the rows `where` holds)."""
    value, order = pl.col(column), ts
    if where is not None:
        value, order = value.filter(where), order.filter(where)
    return value.sort_by(order).drop_nulls().last()


def sum_or_null(expr: pl.Expr) -> pl.Expr:
    """SQL's sum: null when every value is null (Polars sums those to 0)."""
    return pl.when(expr.count() > 0).then(expr.sum())


def run_status() -> pl.Expr:
    failed, completed = kind == "run.failed", kind == "run.completed"
    return (
        pl.when(failed.any())
        .then(pl.coalesce(latest("status", failed), pl.lit("error")))
        .when(completed.any())
        .then(pl.coalesce(latest("status", completed), pl.lit("ok")))
        .otherwise(pl.lit("running"))
    )


def session_status() -> pl.Expr:
    started, ended = ts.filter(kind == "run.started").max(), ts.filter(kind.is_in(ENDED)).max()
    return (
        pl.when((kind == "session.closed").any())
        .then(pl.lit("closed"))
        .when(started.is_not_null() & (ended.is_null() | (started > ended)))
        .then(pl.lit("running"))
        .otherwise(pl.lit("ready"))
    )


def _run_columns() -> dict[str, pl.Expr]:
    return {
        "user_id": latest("user_id"),
        "model": latest("model"),
        "harness": latest("harness"),
        "compute": latest("compute"),
        "status": run_status(),
        "started_at": ts.min(),
        "ended_at": ts.filter(kind.is_in(ENDED)).max(),
        "latency_ms": pl.col("latency_ms").max(),
        "ttft_ms": pl.col("ttft_ms").min(),
        **{c: pl.col(c).sum() for c in TOKENS},  # Polars sums nulls to 0, as the view's coalesce
        "cost_usd": pl.col("cost_usd").sum(),
        "error": latest("error"),
    }


def _session_columns() -> dict[str, pl.Expr]:
    return {
        "user_id": latest("user_id"),
        "parent_session_id": latest("parent_session_id"),
        "status": session_status(),
        "harness": latest("harness"),
        "model": latest("model"),
        "compute": latest("compute"),
        "created_at": pl.coalesce(ts.filter(kind == "session.created").min(), ts.min()),
        "last_event_at": ts.max(),
        "messages": (kind == "message").sum(),
        "runs": kind.is_in(ENDED).sum(),
        "input_tokens": pl.col("input_tokens").sum(),
        "output_tokens": pl.col("output_tokens").sum(),
        "cost_usd": pl.col("cost_usd").sum(),
    }


def runs(events: pl.LazyFrame, *columns: str) -> pl.LazyFrame:
    """The `runs` view's keys and `columns` (a run is its events' group of run_id)."""
    every = _run_columns()
    return (
        events.filter(pl.col("run_id").is_not_null())
        .group_by(RUN_KEYS)
        .agg(every[c].alias(c) for c in columns)
    )


def sessions(events: pl.LazyFrame, *columns: str) -> pl.LazyFrame:
    """The `sessions` view's keys and `columns`; `tokens` is input plus output tokens."""
    every = _session_columns()
    wanted = [c for c in columns if c != "tokens"]
    if "tokens" in columns:
        wanted += [c for c in ("input_tokens", "output_tokens") if c not in wanted]
    frame = events.group_by(SESSION_KEYS).agg(every[c].alias(c) for c in wanted)
    if "tokens" in columns:
        frame = frame.with_columns(tokens=pl.col("input_tokens") + pl.col("output_tokens"))
    return frame


def within(column: str, values: Mapping[str, Any]) -> pl.Expr:
    return (pl.col(column) >= values["since"]) & (pl.col(column) < values["until"])


def matches(column: str, value: str) -> pl.Expr:
    """`($value = '' OR column = $value)`."""
    return pl.lit(True) if value == "" else pl.col(column) == value


# -- the ten questions ----------------------------------------------------------------------------

# fmt: off
SESSION_ROW = [
    "tenant_id", "user_id", "session_id", "parent_session_id", "status", "harness", "model", "compute",
    "created_at", "last_event_at", "messages", "runs", "input_tokens", "output_tokens", "tokens", "cost_usd",
]
TOP_ROW = [
    "tenant_id", "user_id", "session_id", "parent_session_id", "harness", "model", "compute", "runs",
    "tokens", "cost_usd", "created_at", "last_event_at",
]
# fmt: on


def q_sessions(events: pl.LazyFrame, v: Mapping[str, Any], _: pl.LazyFrame) -> pl.LazyFrame:
    columns = [c for c in SESSION_ROW if c not in SESSION_KEYS]
    return (
        sessions(events, *columns)
        .filter(within("created_at", v) & matches("user_id", v["user"]))
        .sort("created_at", "tenant_id", "session_id")
        .select(SESSION_ROW)
    )


def q_top_sessions_by_cost(events: pl.LazyFrame, v: Mapping[str, Any], _: pl.LazyFrame) -> pl.LazyFrame:
    columns = [c for c in TOP_ROW if c not in SESSION_KEYS]
    return (
        sessions(events, *columns)
        .filter(within("created_at", v))
        .sort(["cost_usd", "tenant_id", "session_id"], descending=[True, False, False])
        .head(v["limit"])
        .select(TOP_ROW)
    )


def q_cost_by_model(events: pl.LazyFrame, v: Mapping[str, Any], _: pl.LazyFrame) -> pl.LazyFrame:
    return (
        runs(events, "model", "started_at", *TOKENS, "cost_usd")
        .filter(pl.col("model").is_not_null() & within("started_at", v))
        .group_by("model")
        .agg(
            runs=pl.len(),
            **{c: pl.col(c).sum() for c in TOKENS},
            tokens=(pl.col("input_tokens") + pl.col("output_tokens")).sum(),
            cost_usd=pl.col("cost_usd").sum(),
        )
        .with_columns(cost_per_run_usd=pl.col("cost_usd") / pl.col("runs"))
        .sort(["cost_usd", "model"], descending=[True, False])
    )


def q_cost_by_user(events: pl.LazyFrame, v: Mapping[str, Any], _: pl.LazyFrame) -> pl.LazyFrame:
    user = ["tenant_id", "user_id"]
    return (
        runs(events, "user_id", "model", "started_at", "input_tokens", "output_tokens", "cost_usd")
        .filter(pl.col("model").is_not_null() & within("started_at", v) & matches("user_id", v["user"]))
        .group_by(*user, day=pl.col("started_at").dt.date())
        .agg(
            runs=pl.len(),
            tokens=(pl.col("input_tokens") + pl.col("output_tokens")).sum(),
            cost_usd=pl.col("cost_usd").sum(),
        )
        .with_columns(
            total_runs=pl.col("runs").sum().over(user), total_cost_usd=pl.col("cost_usd").sum().over(user)
        )
        .sort(["total_cost_usd", *user, "day"], descending=[True, False, False, False])
    )


def q_latency_by_model(events: pl.LazyFrame, v: Mapping[str, Any], _: pl.LazyFrame) -> pl.LazyFrame:
    latency, ttft = pl.col("latency_ms"), pl.col("ttft_ms")
    return (
        runs(events, "model", "status", "started_at", "latency_ms", "ttft_ms")
        .filter(
            pl.col("model").is_not_null()
            & (pl.col("status") != "running")
            & matches("status", v["status"])
            & within("started_at", v)
        )
        .group_by("model")
        .agg(
            runs=pl.len(),
            latency_mean_ms=latency.mean(),
            **{f"latency_p{q}_ms": latency.quantile(q / 100, "linear") for q in (50, 95, 99)},
            streamed_runs=ttft.count(),
            **{f"ttft_p{q}_ms": ttft.quantile(q / 100, "linear") for q in (50, 95, 99)},
        )
        .sort("model")
    )


def q_errors_by_model(events: pl.LazyFrame, v: Mapping[str, Any], _: pl.LazyFrame) -> pl.LazyFrame:
    status, failed = pl.col("status"), pl.col("status") != "ok"
    with_error = failed & pl.col("error").is_not_null()
    return (
        runs(events, "model", "status", "started_at", "ended_at", "error")
        .filter(pl.col("model").is_not_null() & (status != "running") & within("started_at", v))
        .group_by("model")
        .agg(
            runs=pl.len(),
            errors=failed.sum(),
            timeouts=(status == "timeout").sum(),
            interrupted=(status == "interrupted").sum(),
            last_error=pl.col("error")
            .filter(with_error)
            .sort_by(pl.col("ended_at").filter(with_error))
            .last(),
            last_error_at=pl.col("ended_at").filter(failed).max(),
        )
        .with_columns(error_rate=pl.col("errors") / pl.col("runs"))
        .select(
            "model", "runs", "errors", "error_rate", "timeouts", "interrupted", "last_error", "last_error_at"
        )
        .sort(["errors", "model"], descending=[True, False])
    )


def q_compute_time_by_provider(events: pl.LazyFrame, v: Mapping[str, Any], _: pl.LazyFrame) -> pl.LazyFrame:
    latency = pl.col("latency_ms")
    return (
        events.filter((kind == "compute.exec") & within("ts", v))
        .group_by("compute")
        .agg(
            execs=pl.len(),
            sessions=pl.concat_str("tenant_id", pl.lit("/"), "session_id").drop_nulls().n_unique(),
            failed=(pl.col("status") != "ok").sum(),
            total_s=sum_or_null(latency) / 1000,
            p50_ms=latency.quantile(0.5, "linear"),
            p95_ms=latency.quantile(0.95, "linear"),
            max_ms=latency.max(),
        )
        .sort(["total_s", "compute"], descending=[True, False], nulls_last=True)
    )


def q_daily_active_users(events: pl.LazyFrame, v: Mapping[str, Any], _: pl.LazyFrame) -> pl.LazyFrame:
    return (
        events.filter(pl.col("user_id").is_not_null() & within("ts", v))
        .group_by(day=ts.dt.date(), tenant_id=pl.col("tenant_id"))
        .agg(
            users=pl.col("user_id").n_unique(),
            sessions=pl.col("session_id").drop_nulls().n_unique(),
            runs=kind.is_in(ENDED).sum(),
            cost_usd=pl.col("cost_usd").sum(),
        )
        .sort("day", "tenant_id")
    )


def q_what_if_cost(events: pl.LazyFrame, v: Mapping[str, Any], prices: pl.LazyFrame) -> pl.LazyFrame:
    target = prices.filter(pl.col("model") == v["model"]).drop("model", "provider")
    input_rate = pl.col("input_cost_per_token")
    fresh = pl.max_horizontal(
        pl.col("input_tokens") - pl.col("cache_read_tokens") - pl.col("cache_write_tokens"), pl.lit(0)
    )
    what_if = (
        fresh * input_rate
        + pl.col("cache_read_tokens") * pl.coalesce("cache_read_cost_per_token", input_rate)
        + pl.col("cache_write_tokens") * pl.coalesce("cache_write_cost_per_token", input_rate)
        + pl.col("output_tokens") * pl.col("output_cost_per_token")
    )
    return (
        runs(events, "model", "started_at", *TOKENS, "cost_usd")
        .filter(pl.col("model").is_not_null() & matches("model", v["from_model"]) & within("started_at", v))
        .join(target, how="left", on=pl.lit(True))  # LEFT JOIN target ON true
        .group_by("model")
        .agg(
            runs=pl.len(),
            **{c: pl.col(c).sum() for c in TOKENS},
            cost_usd=pl.col("cost_usd").sum(),
            what_if_cost_usd=sum_or_null(what_if),
        )
        .with_columns(
            what_if_model=pl.lit(v["model"]), difference_usd=pl.col("what_if_cost_usd") - pl.col("cost_usd")
        )
        .select("model", "what_if_model", "runs", *TOKENS, "cost_usd", "what_if_cost_usd", "difference_usd")
        .sort(["cost_usd", "model"], descending=[True, False])
    )


def q_fanout_comparison(events: pl.LazyFrame, v: Mapping[str, Any], _: pl.LazyFrame) -> pl.LazyFrame:
    parent = ["tenant_id", "parent_session_id"]
    attr = pl.col("attrs").str.json_path_match
    spawned = (
        events.filter((kind == "session.spawned") & within("ts", v) & matches("session_id", v["parent"]))
        .with_columns(
            child_session_id=attr("$.child_session_id"),
            **{f"variant_{c}": attr(f"$.variant.{c}") for c in ("model", "harness", "compute")},
        )
        .group_by("tenant_id", "session_id", "child_session_id")
        .agg(
            **{f"variant_{c}": earliest(f"variant_{c}") for c in ("model", "harness", "compute")},
            spawned_at=ts.min(),
        )
        .rename({"session_id": "parent_session_id"})
    )
    kept = (
        events.filter(kind == "session.selected")
        .with_columns(kept_child=attr("$.child_session_id"))
        .group_by("tenant_id", "session_id")
        .agg(latest("kept_child"))
        .rename({"session_id": "parent_session_id"})
    )
    # Only the children's events: the sessions and runs of no other session are read.
    children = spawned.select("tenant_id", session_id="child_session_id")
    child_events = events.join(children, on=SESSION_KEYS, how="semi")
    child_sessions = sessions(child_events, "model", "harness", "compute", "tokens", "cost_usd")
    child_runs = (
        runs(child_events, "model", "status", "started_at", "latency_ms")
        .filter(pl.col("model").is_not_null())
        .group_by(SESSION_KEYS)
        .agg(
            run_count=pl.len(),
            latency_ms=sum_or_null(pl.col("latency_ms")),
            run_status=pl.col("status").sort_by("started_at").last(),
        )
    )
    by_child = {"left_on": ["tenant_id", "child_session_id"], "right_on": SESSION_KEYS, "how": "left"}
    selected = pl.col("selected")
    return (
        spawned.join(child_sessions, **by_child)
        .join(child_runs, **by_child)
        .join(kept, on=parent, how="left")
        .select(
            *parent,
            "child_session_id",
            "spawned_at",
            *(pl.coalesce(c, f"variant_{c}").alias(c) for c in ("model", "harness", "compute")),
            runs=pl.col("run_count").fill_null(0),
            status=pl.col("run_status"),
            latency_ms=pl.col("latency_ms"),
            tokens=pl.col("tokens").fill_null(0),
            cost_usd=pl.col("cost_usd").fill_null(0),
            selected=(pl.col("kept_child") == pl.col("child_session_id")).fill_null(False),
        )
        .with_columns(
            children_cost_usd=pl.col("cost_usd").sum().over(parent),
            selected_cost_usd=pl.when(selected.any().over(parent)).then(
                pl.when(selected).then(pl.col("cost_usd")).sum().over(parent)
            ),
        )
        .sort(*parent, "spawned_at", "child_session_id")
    )


def earliest(column: str) -> pl.Expr:
    """The group's earliest non-null value of `column` by ts."""
    return pl.col(column).sort_by(ts).drop_nulls().first()


Question = Callable[[pl.LazyFrame, Mapping[str, Any], pl.LazyFrame], pl.LazyFrame]
QUESTIONS: dict[str, Question] = {
    name.removeprefix("q_"): fn for name, fn in list(globals().items()) if name.startswith("q_")
}


def query(name: str, events: pl.LazyFrame, values: Mapping[str, Any], prices: pl.LazyFrame) -> pl.LazyFrame:
    """The named question over `events`, with its bound `values` and the prices table."""
    return QUESTIONS[name](events, values, prices)
