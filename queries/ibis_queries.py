"""The named queries as ibis expressions: the same questions, for any ibis backend.

Each function takes an ibis backend whose tables are named as the warehouse's views
(`events`, `sessions`, `messages`, `runs`, and `prices` for what_if_cost) and the query's
parameters as `queries.bind` returns them, and builds an expression without running it.
Only portable operations are used (filters, joins, group-bys, windows, quantiles, JSON
field access), no raw SQL, so the expressions compile for other backends too.

    con = queries.ibis_connection(wh)          # an in-memory DuckDB holding a copy of the views
    expression(con, "cost_by_model", {"since": "2026-11-01"}).to_pyarrow()
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import ibis
import ibis.expr.types as ir
from ibis import _
from ibis.backends import BaseBackend

from queries.catalog import get
from queries.params import bind
from queries.prices import prices_table

VIEWS = ("events", "sessions", "messages", "runs")
RUN_ENDS = ("run.completed", "run.failed")
SESSION_COLUMNS = (
    "tenant_id",
    "user_id",
    "session_id",
    "parent_session_id",
    "status",
    "harness",
    "model",
    "compute",
    "created_at",
    "last_event_at",
    "messages",
    "runs",
    "input_tokens",
    "output_tokens",
    "tokens",
    "cost_usd",
)
TOP_SESSION_COLUMNS = (
    "tenant_id",
    "user_id",
    "session_id",
    "parent_session_id",
    "harness",
    "model",
    "compute",
    "runs",
    "tokens",
    "cost_usd",
    "created_at",
    "last_event_at",
)
TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def connect(wh: Any) -> BaseBackend:
    """An in-memory ibis DuckDB with a copy of `wh`'s views as tables, and the prices table."""
    con = ibis.duckdb.connect()
    for name in VIEWS:  # names from the constant above, never from a caller
        con.create_table(name, ibis.memtable(wh.sql(f"SELECT * FROM {name}")))
    con.create_table("prices", ibis.memtable(prices_table()))
    return con


def expression(con: BaseBackend, name: str, values: Mapping[str, Any] | None = None) -> ir.Table:
    """The named query `name` as an ibis expression over `con`, its values bound as the SQL's are."""
    return EXPRESSIONS[name](con, **bind(get(name), values or {}))


def _between(column: ir.TimestampValue, since: dt.datetime, until: dt.datetime) -> ir.BooleanValue:
    return (column >= since) & (column < until)


def _model_runs(
    con: BaseBackend, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> ir.Table:
    runs = con.table("runs").filter(_.model.notnull())
    if since is not None and until is not None:
        runs = runs.filter(_between(runs.started_at, since, until))
    return runs


def _token_sums(t: ir.Table) -> dict[str, ir.Value]:
    return {name: t[name].sum() for name in TOKEN_COLUMNS}


def sessions(con: BaseBackend, *, since: dt.datetime, until: dt.datetime, user: str) -> ir.Table:
    """One row per session: who, on which harness, model and compute, its runs, tokens and cost."""
    s = con.table("sessions")
    s = s.filter(_between(s.created_at, since, until))
    if user:
        s = s.filter(s.user_id == user)
    return s.select(*SESSION_COLUMNS).order_by(["created_at", "tenant_id", "session_id"])


def cost_by_model(con: BaseBackend, *, since: dt.datetime, until: dt.datetime) -> ir.Table:
    """Spend, tokens and runs per model."""
    r = _model_runs(con, since, until)
    out = r.group_by("model").aggregate(
        runs=r.count(),
        **_token_sums(r),
        tokens=(r.input_tokens + r.output_tokens).sum(),
        cost_usd=r.cost_usd.sum(),
    )
    out = out.mutate(cost_per_run_usd=out.cost_usd / out.runs)
    return out.order_by([ibis.desc("cost_usd"), "model"])


def cost_by_user(con: BaseBackend, *, since: dt.datetime, until: dt.datetime, user: str) -> ir.Table:
    """Spend per user per UTC day, beside the user's total over the range."""
    r = _model_runs(con, since, until)
    if user:
        r = r.filter(r.user_id == user)
    r = r.mutate(day=r.started_at.date())
    out = r.group_by(["tenant_id", "user_id", "day"]).aggregate(
        runs=r.count(), tokens=(r.input_tokens + r.output_tokens).sum(), cost_usd=r.cost_usd.sum()
    )
    per_user = ibis.window(group_by=[out.tenant_id, out.user_id])
    out = out.mutate(
        total_runs=out.runs.sum().over(per_user), total_cost_usd=out.cost_usd.sum().over(per_user)
    )
    return out.order_by([ibis.desc("total_cost_usd"), "tenant_id", "user_id", "day"])


def latency_by_model(con: BaseBackend, *, since: dt.datetime, until: dt.datetime, status: str) -> ir.Table:
    """p50, p95 and p99 of run latency and time to first token, per model."""
    r = _model_runs(con, since, until)
    r = r.filter(r.status != "running")
    if status:
        r = r.filter(r.status == status)
    quantiles = {
        f"{prefix}_p{round(q * 100)}_ms": r[column].quantile(q)
        for prefix, column in (("latency", "latency_ms"), ("ttft", "ttft_ms"))
        for q in (0.5, 0.95, 0.99)
    }
    out = r.group_by("model").aggregate(
        runs=r.count(), latency_mean_ms=r.latency_ms.mean(), streamed_runs=r.ttft_ms.count(), **quantiles
    )
    order = ["model", "runs", "latency_mean_ms", *list(quantiles)[:3], "streamed_runs", *list(quantiles)[3:]]
    return out.select(*order).order_by("model")


def errors_by_model(con: BaseBackend, *, since: dt.datetime, until: dt.datetime) -> ir.Table:
    """Failed runs per model: how many, the rate, timeouts and the latest error."""
    r = _model_runs(con, since, until)
    r = r.filter(r.status != "running")
    failed = r.status != "ok"
    out = r.group_by("model").aggregate(
        runs=r.count(),
        errors=r.count(where=failed),
        timeouts=r.count(where=r.status == "timeout"),
        interrupted=r.count(where=r.status == "interrupted"),
        last_error=r.error.argmax(r.ended_at, where=failed & r.error.notnull()),
        last_error_at=r.ended_at.max(where=failed),
    )
    out = out.mutate(error_rate=out.errors / out.runs)
    columns = [
        "model",
        "runs",
        "errors",
        "error_rate",
        "timeouts",
        "interrupted",
        "last_error",
        "last_error_at",
    ]
    return out.select(*columns).order_by([ibis.desc("errors"), "model"])


def compute_time_by_provider(con: BaseBackend, *, since: dt.datetime, until: dt.datetime) -> ir.Table:
    """Commands run and compute time per compute provider."""
    e = con.table("events")
    e = e.filter(e.type == "compute.exec", _between(e.ts, since, until))
    out = e.group_by("compute").aggregate(
        execs=e.count(),
        sessions=(e.tenant_id + "/" + e.session_id).nunique(),
        failed=e.count(where=e.status != "ok"),
        total_s=e.latency_ms.sum() / 1000,
        p50_ms=e.latency_ms.quantile(0.5),
        p95_ms=e.latency_ms.quantile(0.95),
        max_ms=e.latency_ms.max(),
    )
    return out.order_by([ibis.desc("total_s"), "compute"])


def daily_active_users(con: BaseBackend, *, since: dt.datetime, until: dt.datetime) -> ir.Table:
    """Per UTC day and tenant: users with any event, their sessions, runs and spend."""
    e = con.table("events")
    e = e.filter(e.user_id.notnull(), _between(e.ts, since, until)).mutate(day=e.ts.date())
    out = e.group_by(["day", "tenant_id"]).aggregate(
        users=e.user_id.nunique(),
        sessions=e.session_id.nunique(),
        runs=e.count(where=e.type.isin(RUN_ENDS)),
        cost_usd=e.cost_usd.sum().fill_null(0),
    )
    return out.order_by(["day", "tenant_id"])


def top_sessions_by_cost(con: BaseBackend, *, limit: int, since: dt.datetime, until: dt.datetime) -> ir.Table:
    """The most expensive sessions, with who ran them and on what."""
    s = con.table("sessions")
    s = s.filter(_between(s.created_at, since, until))
    return (
        s.select(*TOP_SESSION_COLUMNS)
        .order_by([ibis.desc("cost_usd"), "tenant_id", "session_id"])
        .limit(limit)
    )


def fanout_comparison(con: BaseBackend, *, parent: str, since: dt.datetime, until: dt.datetime) -> ir.Table:
    """Each fan-out's children side by side, the kept one marked, and the cost trail."""
    spawned = _spawned(con, parent, since, until)
    kept = _kept(con)
    judged = _judged(con)
    runs = _model_runs(con)
    child_runs = runs.group_by(r_tenant="tenant_id", r_session="session_id").aggregate(
        r_runs=runs.count(), r_latency_ms=runs.latency_ms.sum(), r_status=runs.status.argmax(runs.started_at)
    )
    s = con.table("sessions")
    child_sessions = s.select(
        s_tenant=s.tenant_id,
        s_session=s.session_id,
        s_model=s.model,
        s_harness=s.harness,
        s_compute=s.compute,
        s_tokens=s.tokens,
        s_cost_usd=s.cost_usd,
    )
    j = (
        spawned.left_join(
            child_sessions,
            [
                spawned.tenant_id == child_sessions.s_tenant,
                spawned.child_session_id == child_sessions.s_session,
            ],
        )
        .left_join(
            child_runs,
            [spawned.tenant_id == child_runs.r_tenant, spawned.child_session_id == child_runs.r_session],
        )
        .left_join(kept, [spawned.tenant_id == kept.k_tenant, spawned.parent_session_id == kept.k_parent])
        .left_join(
            judged, [spawned.tenant_id == judged.j_tenant, spawned.child_session_id == judged.j_session]
        )
    )
    children = j.select(
        "tenant_id",
        "parent_session_id",
        "child_session_id",
        "spawned_at",
        "label",
        model=ibis.coalesce(j.s_model, j.variant_model),
        harness=ibis.coalesce(j.s_harness, j.variant_harness),
        compute=ibis.coalesce(j.s_compute, j.variant_compute),
        runs=j.r_runs.fill_null(0),
        status=j.r_status,
        latency_ms=j.r_latency_ms,
        tokens=j.s_tokens.fill_null(0),
        cost_usd=j.s_cost_usd.fill_null(0),
        selected=(j.k_winner == j.child_session_id).fill_null(False),
        judge_score=j.j_score,
        judge_reason=j.j_reason,
    )
    fanout = ibis.window(group_by=[children.tenant_id, children.parent_session_id])
    children = children.mutate(
        children_cost_usd=children.cost_usd.sum().over(fanout),
        selected_cost_usd=children.cost_usd.sum(where=children.selected).over(fanout),
    )
    return children.order_by(["tenant_id", "parent_session_id", "spawned_at", "child_session_id"])


def _spawned(con: BaseBackend, parent: str, since: dt.datetime, until: dt.datetime) -> ir.Table:
    e = con.table("events")
    attrs = e.attrs.cast("json")
    e = e.mutate(
        child_session_id=attrs["child_session_id"].str,
        variant_model=attrs["variant"]["model"].str,
        variant_harness=attrs["variant"]["harness"].str,
        variant_compute=attrs["variant"]["compute"].str,
        label=attrs["label"].str,
    )
    e = e.filter(e.type == "session.spawned", _between(e.ts, since, until))
    if parent:
        e = e.filter(e.session_id == parent)
    return e.group_by(["tenant_id", e.session_id.name("parent_session_id"), "child_session_id"]).aggregate(
        variant_model=e.variant_model.argmin(e.ts),
        variant_harness=e.variant_harness.argmin(e.ts),
        variant_compute=e.variant_compute.argmin(e.ts),
        label=e.label.argmin(e.ts),
        spawned_at=e.ts.min(),
    )


def _kept(con: BaseBackend) -> ir.Table:
    e = con.table("events")
    e = e.mutate(winner=e.attrs.cast("json")["child_session_id"].str).filter(e.type == "session.selected")
    return e.group_by(k_tenant="tenant_id", k_parent="session_id").aggregate(k_winner=e.winner.argmax(e.ts))


def _judged(con: BaseBackend) -> ir.Table:
    """The judge's latest verdict on each child: a session.updated with attrs.judge."""
    e = con.table("events")
    verdict = e.attrs.cast("json")["judge"]
    e = e.mutate(score=verdict["score"].float, reason=verdict["reason"].str)
    e = e.filter(e.type == "session.updated", e.score.notnull())
    return e.group_by(j_tenant="tenant_id", j_session="session_id").aggregate(
        j_score=e.score.argmax(e.ts), j_reason=e.reason.argmax(e.ts)
    )


def what_if_cost(
    con: BaseBackend, *, model: str, from_model: str, since: dt.datetime, until: dt.datetime
) -> ir.Table:
    """What runs would have cost on another model: each run's tokens re-priced at its prices."""
    r = _model_runs(con, since, until)
    if from_model:
        r = r.filter(r.model == from_model)
    p = con.table("prices")
    target = p.filter(p.model == model).select(
        key=ibis.literal(1),
        t_input=p.input_cost_per_token,
        t_output=p.output_cost_per_token,
        t_cache_read=ibis.coalesce(p.cache_read_cost_per_token, p.input_cost_per_token),
        t_cache_write=ibis.coalesce(p.cache_write_cost_per_token, p.input_cost_per_token),
    )
    r = r.mutate(run_key=ibis.literal(1))
    j = r.left_join(target, r.run_key == target.key)  # every run, priced or not
    uncached = ibis.greatest(j.input_tokens - j.cache_read_tokens - j.cache_write_tokens, 0)
    j = j.mutate(
        what_if=uncached * j.t_input
        + j.cache_read_tokens * j.t_cache_read
        + j.cache_write_tokens * j.t_cache_write
        + j.output_tokens * j.t_output
    )
    out = j.group_by("model").aggregate(
        runs=j.count(), **_token_sums(j), cost_usd=j.cost_usd.sum(), what_if_cost_usd=j.what_if.sum()
    )
    out = out.mutate(what_if_model=ibis.literal(model), difference_usd=out.what_if_cost_usd - out.cost_usd)
    columns = [
        "model",
        "what_if_model",
        "runs",
        *TOKEN_COLUMNS,
        "cost_usd",
        "what_if_cost_usd",
        "difference_usd",
    ]
    return out.select(*columns).order_by([ibis.desc("cost_usd"), "model"])


EXPRESSIONS: dict[str, Callable[..., ir.Table]] = {
    f.__name__: f
    for f in (
        sessions,
        cost_by_model,
        cost_by_user,
        latency_by_model,
        errors_by_model,
        compute_time_by_provider,
        daily_active_users,
        top_sessions_by_cost,
        fanout_comparison,
        what_if_cost,
    )
}
