"""Every named query's figures, against the same figures computed in Polars.

Twice over: on a hand-made workload (whose figures are also written out by hand in the
`*_by_hand` tests) and on the demo dataset (`cerver demo`). The expected tables are built
from the events with Polars alone (no DuckDB, no views).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

import queries
import warehouse
from ingest.demo import generate
from ingest.pricing import price
from tests.conftest import MANUAL
from tests.queries_dataset import DAY2, DAY3, GPT, OPUS, SONNET, as_json, build, load

ENDS = ["run.completed", "run.failed"]


@pytest.fixture(scope="module", params=["hand-made", "demo"])
def events(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    if request.param == "hand-made":
        return build()
    with warehouse.open(tmp_path_factory.mktemp("demo") / "data", policy=MANUAL) as demo:
        generate(demo, sessions=120, seed=11)
        return demo.sql("select * from events order by ts, event_id").to_pylist()


@pytest.fixture(scope="module")
def hand_wh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[warehouse.Warehouse]:
    """The hand-made workload alone, for the figures written out by hand."""
    w = warehouse.open(tmp_path_factory.mktemp("hand") / "cerver-data", policy=MANUAL)
    load(w, build())
    yield w
    w.close()


@pytest.fixture(scope="module")
def wh(
    tmp_path_factory: pytest.TempPathFactory, events: list[dict[str, Any]]
) -> Iterator[warehouse.Warehouse]:
    w = warehouse.open(tmp_path_factory.mktemp("queries") / "cerver-data", policy=MANUAL)
    load(w, events)
    yield w
    w.close()


@pytest.fixture(scope="module")
def ev(events: list[dict[str, Any]]) -> pl.DataFrame:
    frame = pl.DataFrame([as_json(e) for e in events], infer_schema_length=None)
    kinds = {
        c: pl.Int64 for c in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    }
    kinds |= {c: pl.Float64 for c in ("cost_usd", "latency_ms", "ttft_ms")}
    # A column no event fills (the demo writes no cache writes) would otherwise be of type Null.
    return frame.with_columns(pl.col(c).cast(k) for c, k in kinds.items() if c in frame.columns).sort("ts")


@pytest.fixture(scope="module")
def runs(ev: pl.DataFrame) -> pl.DataFrame:
    """One row per run, as the README defines the `runs` view."""
    ended = pl.col("type").is_in(ENDS)
    return (
        ev.filter(pl.col("run_id").is_not_null())
        .group_by("tenant_id", "session_id", "run_id")
        .agg(
            user_id=pl.col("user_id").drop_nulls().last(),
            model=pl.col("model").drop_nulls().last(),
            status=pl.col("status").filter(ended).last(),
            finished=ended.any(),
            started_at=pl.col("ts").min(),
            ended_at=pl.col("ts").filter(ended).max(),
            latency_ms=pl.col("latency_ms").max(),
            ttft_ms=pl.col("ttft_ms").min(),
            input_tokens=pl.col("input_tokens").sum(),
            output_tokens=pl.col("output_tokens").sum(),
            cache_read_tokens=pl.col("cache_read_tokens").sum(),
            cache_write_tokens=pl.col("cache_write_tokens").sum(),
            cost_usd=pl.col("cost_usd").sum(),
            error=pl.col("error").drop_nulls().last(),
        )
        .with_columns(status=pl.when("finished").then("status").otherwise(pl.lit("running")))
        .filter(pl.col("model").is_not_null())
    )


@pytest.fixture(scope="module")
def sessions(ev: pl.DataFrame) -> pl.DataFrame:
    """One row per session, as the README defines the `sessions` view."""
    latest = {c: pl.col(c).drop_nulls().last() for c in ("user_id", "parent_session_id", "harness", "model")}
    return (
        ev.group_by("tenant_id", "session_id")
        .agg(
            **latest,
            compute=pl.col("compute").drop_nulls().last(),
            started=pl.col("ts").filter(pl.col("type") == "run.started").max(),
            ended=pl.col("ts").filter(pl.col("type").is_in(ENDS)).max(),
            created_at=pl.col("ts").filter(pl.col("type") == "session.created").min(),
            closed=(pl.col("type") == "session.closed").any(),
            last_event_at=pl.col("ts").max(),
            messages=(pl.col("type") == "message").sum(),
            runs=pl.col("type").is_in(ENDS).sum(),
            input_tokens=pl.col("input_tokens").sum(),
            output_tokens=pl.col("output_tokens").sum(),
            cost_usd=pl.col("cost_usd").sum(),
        )
        .with_columns(
            status=pl.when(pl.col("closed"))
            .then(pl.lit("closed"))
            .when(pl.col("started") > pl.col("ended").fill_null(dt.datetime.min.replace(tzinfo=dt.UTC)))
            .then(pl.lit("running"))
            .otherwise(pl.lit("ready")),
            tokens=pl.col("input_tokens") + pl.col("output_tokens"),
        )
    )


def assert_rows(actual: pa.Table | pl.DataFrame, expected: pl.DataFrame) -> None:
    """Same columns in the same order, same rows in the same order; floats to a relative 1e-9."""
    got = actual.to_dicts() if isinstance(actual, pl.DataFrame) else actual.to_pylist()
    names = actual.columns if isinstance(actual, pl.DataFrame) else actual.column_names
    assert list(names) == expected.columns
    want = expected.to_dicts()
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want):
        wrong = {k: (g[k], w[k]) for k in w if not _same(g[k], w[k])}
        assert not wrong, f"{g}\n!= {w}"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def q(name: str, **values: Any) -> tuple[str, dict[str, Any]]:
    return name, values


# -- sessions ---------------------------------------------------------------------------------


SESSION_COLUMNS = [
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
]


@pytest.mark.parametrize("values", [{}, {"user": "u1"}, {"since": "2026-11-02", "until": "2026-11-03"}])
def test_sessions(wh: warehouse.Warehouse, sessions: pl.DataFrame, values: dict[str, Any]) -> None:
    expected = sessions
    if "user" in values:
        expected = expected.filter(pl.col("user_id") == values["user"])
    if "since" in values:
        expected = expected.filter(pl.col("created_at").dt.date() == DAY2.date())
    expected = expected.sort("created_at", "tenant_id", "session_id").select(SESSION_COLUMNS)
    assert_rows(queries.run(wh, "sessions", values), expected)


def test_sessions_by_hand(hand_wh: warehouse.Warehouse) -> None:
    rows = {r["session_id"]: r for r in queries.run(hand_wh, "sessions").to_pylist()}
    assert len(rows) == 12
    assert rows["s3"]["model"] == SONNET  # switched mid-session
    assert (rows["s3"]["harness"], rows["s3"]["compute"], rows["s3"]["runs"]) == ("codex", "relay", 3)
    assert rows["p2"]["status"] == "running" and rows["c2"]["parent_session_id"] == "p1"
    assert rows["s1"]["cost_usd"] == pytest.approx(0.14) and rows["s1"]["tokens"] == 4700


# -- cost ---------------------------------------------------------------------------------------


def _cost_by_model(runs: pl.DataFrame) -> pl.DataFrame:
    return (
        runs.group_by("model")
        .agg(
            runs=pl.len(),
            input_tokens=pl.col("input_tokens").sum(),
            output_tokens=pl.col("output_tokens").sum(),
            cache_read_tokens=pl.col("cache_read_tokens").sum(),
            cache_write_tokens=pl.col("cache_write_tokens").sum(),
            tokens=(pl.col("input_tokens") + pl.col("output_tokens")).sum(),
            cost_usd=pl.col("cost_usd").sum(),
        )
        .with_columns(cost_per_run_usd=pl.col("cost_usd") / pl.col("runs"))
        .sort(["cost_usd", "model"], descending=[True, False])
    )


def test_cost_by_model(wh: warehouse.Warehouse, runs: pl.DataFrame) -> None:
    assert_rows(queries.run(wh, "cost_by_model"), _cost_by_model(runs))


def test_cost_by_model_by_hand(hand_wh: warehouse.Warehouse) -> None:
    opus = queries.run(hand_wh, "cost_by_model").to_pylist()[0]
    assert (opus["model"], opus["runs"], opus["tokens"]) == (OPUS, 5, 13_700)
    assert opus["cost_usd"] == pytest.approx(0.05 + 0.09 + 0.2 + 0.25 + 0.1)


def test_cost_by_model_over_a_range(hand_wh: warehouse.Warehouse) -> None:
    table = queries.run(hand_wh, "cost_by_model", {"since": "2026-11-02T00:00:00Z", "until": DAY3.date()})
    assert {r["model"]: r["runs"] for r in table.to_pylist()} == {GPT: 4, SONNET: 2}


def test_cost_by_model_over_a_range_as_polars_computes_it(
    wh: warehouse.Warehouse, runs: pl.DataFrame
) -> None:
    middle = runs["started_at"].sort()[runs.height // 2]
    since, until = middle - dt.timedelta(days=1), middle + dt.timedelta(days=1)
    table = queries.run(wh, "cost_by_model", {"since": since.isoformat(), "until": until.isoformat()})
    chosen = runs.filter((pl.col("started_at") >= since) & (pl.col("started_at") < until))
    assert table.num_rows > 0
    assert_rows(table, _cost_by_model(chosen))


@pytest.mark.parametrize("values", [{}, {"user": "u1"}, {"since": "2026-11-03"}])
def test_cost_by_user(wh: warehouse.Warehouse, runs: pl.DataFrame, values: dict[str, Any]) -> None:
    chosen = runs.filter(pl.col("user_id") == values["user"]) if "user" in values else runs
    if "since" in values:
        chosen = chosen.filter(pl.col("started_at") >= DAY3.replace(hour=0))
    user = ["tenant_id", "user_id"]
    expected = (
        chosen.with_columns(day=pl.col("started_at").dt.date())
        .group_by(*user, "day")
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
    assert_rows(queries.run(wh, "cost_by_user", values), expected)


def test_cost_by_user_keeps_tenants_apart(hand_wh: warehouse.Warehouse) -> None:
    rows = queries.run(hand_wh, "cost_by_user", {"user": "u1"}).to_pylist()
    assert {(r["tenant_id"], r["day"]): r["total_cost_usd"] for r in rows} == {
        ("t1", dt.date(2026, 11, 1)): pytest.approx(0.142),
        ("t1", dt.date(2026, 11, 2)): pytest.approx(0.142),
        ("t2", dt.date(2026, 11, 1)): pytest.approx(0.001),
    }


# -- latency and errors -------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["ok", "", "error"])
def test_latency_by_model(wh: warehouse.Warehouse, runs: pl.DataFrame, status: str) -> None:
    finished = runs.filter(pl.col("status") != "running")
    if status:
        finished = finished.filter(pl.col("status") == status)

    def quantiles(column: str, prefix: str) -> dict[str, pl.Expr]:
        return {
            f"{prefix}_p{round(q * 100)}_ms": pl.col(column).quantile(q, interpolation="linear")
            for q in (0.5, 0.95, 0.99)
        }

    expected = (
        finished.group_by("model")
        .agg(
            runs=pl.len(),
            latency_mean_ms=pl.col("latency_ms").mean(),
            **quantiles("latency_ms", "latency"),
            streamed_runs=pl.col("ttft_ms").count(),
            **quantiles("ttft_ms", "ttft"),
        )
        .sort("model")
    )
    assert_rows(queries.run(wh, "latency_by_model", {"status": status}), expected)


def test_latency_by_hand(hand_wh: warehouse.Warehouse) -> None:
    gpt = next(r for r in queries.run(hand_wh, "latency_by_model").to_pylist() if r["model"] == GPT)
    # ok GPT runs took 500, 700, 800 and 1000 ms; 100, 150 and 200 ms to the first token
    assert (gpt["runs"], gpt["latency_p50_ms"], gpt["latency_p95_ms"]) == (4, 750.0, pytest.approx(970.0))
    assert (gpt["streamed_runs"], gpt["ttft_p50_ms"], gpt["ttft_p99_ms"]) == (3, 150.0, pytest.approx(199.0))


def test_errors_by_model(wh: warehouse.Warehouse, runs: pl.DataFrame) -> None:
    finished = runs.filter(pl.col("status") != "running")
    failed = pl.col("status") != "ok"
    expected = (
        finished.sort("ended_at")  # groups keep this order
        .group_by("model")
        .agg(
            runs=pl.len(),
            errors=failed.sum(),
            error_rate=failed.mean(),
            timeouts=(pl.col("status") == "timeout").sum(),
            interrupted=(pl.col("status") == "interrupted").sum(),
            last_error=pl.col("error").filter(failed & pl.col("error").is_not_null()).last(),
            last_error_at=pl.col("ended_at").filter(failed).max(),
        )
        .sort(["errors", "model"], descending=[True, False])
    )
    table = queries.run(wh, "errors_by_model")
    assert_rows(table, expected)


# -- compute, fan-out, activity -----------------------------------------------------------------


def test_compute_time_by_provider(wh: warehouse.Warehouse, ev: pl.DataFrame) -> None:
    expected = (
        ev.filter(pl.col("type") == "compute.exec")
        .group_by("compute")
        .agg(
            execs=pl.len(),
            sessions=pl.struct("tenant_id", "session_id").n_unique(),
            failed=(pl.col("status") != "ok").sum(),
            total_s=pl.col("latency_ms").sum() / 1000,
            p50_ms=pl.col("latency_ms").quantile(0.5, interpolation="linear"),
            p95_ms=pl.col("latency_ms").quantile(0.95, interpolation="linear"),
            max_ms=pl.col("latency_ms").max(),
        )
        .sort(["total_s", "compute"], descending=[True, False])
    )
    table = queries.run(wh, "compute_time_by_provider")
    assert_rows(table, expected)


def _fanouts(ev: pl.DataFrame, runs: pl.DataFrame, sessions: pl.DataFrame) -> pl.DataFrame:
    child = pl.col("attrs").str.json_path_match("$.child_session_id")
    parent = ["tenant_id", "parent_session_id"]
    spawned = (
        ev.filter(pl.col("type") == "session.spawned")
        .select(
            "tenant_id",
            parent_session_id="session_id",
            child_session_id=child,
            spawned_at="ts",
            label=pl.col("attrs").str.json_path_match("$.label"),
        )
        .group_by(*parent, "child_session_id")
        .agg(pl.col("label").sort_by("spawned_at").first(), pl.col("spawned_at").min())
    )
    verdict = pl.col("attrs").str.json_path_match
    judged = (
        ev.filter(pl.col("type") == "session.updated", verdict("$.judge.score").is_not_null())
        .sort("ts")
        .group_by("tenant_id", "session_id")
        .agg(
            judge_score=verdict("$.judge.score").cast(pl.Float64).last(),
            judge_reason=verdict("$.judge.reason").last(),
        )
        .rename({"session_id": "child_session_id"})
    )
    kept = (
        ev.filter(pl.col("type") == "session.selected")
        .group_by("tenant_id", "session_id")
        .agg(winner=child.sort_by(pl.col("ts")).last())
        .rename({"session_id": "parent_session_id"})
    )
    child_runs = runs.group_by("tenant_id", "session_id").agg(
        runs=pl.len(),
        latency_ms=pl.col("latency_ms").sum(),
        status=pl.col("status").sort_by("started_at").last(),
    )
    child_sessions = sessions.select(
        "tenant_id", "session_id", "model", "harness", "compute", "tokens", "cost_usd"
    )
    return (
        spawned.join(
            child_sessions,
            left_on=["tenant_id", "child_session_id"],
            right_on=["tenant_id", "session_id"],
            how="left",
        )
        .join(
            child_runs,
            left_on=["tenant_id", "child_session_id"],
            right_on=["tenant_id", "session_id"],
            how="left",
        )
        .join(kept, on=parent, how="left")
        .join(judged, on=["tenant_id", "child_session_id"], how="left")
        .with_columns(selected=(pl.col("winner") == pl.col("child_session_id")).fill_null(False))
        .with_columns(
            children_cost_usd=pl.col("cost_usd").sum().over(parent),
            selected_cost_usd=pl.col("cost_usd").filter(pl.col("selected")).sum().over(parent),
        )
        .with_columns(
            selected_cost_usd=pl.when(pl.col("selected").any().over(parent)).then("selected_cost_usd"),
        )
        .select(
            *parent,
            "child_session_id",
            "spawned_at",
            "label",
            "model",
            "harness",
            "compute",
            "runs",
            "status",
            "latency_ms",
            "tokens",
            "cost_usd",
            "selected",
            "judge_score",
            "judge_reason",
            "children_cost_usd",
            "selected_cost_usd",
        )
        .sort(*parent, "spawned_at", "child_session_id")
    )


@pytest.mark.parametrize("parent", ["", "p1", "p2", "s1"])
def test_fanout_comparison(
    wh: warehouse.Warehouse, ev: pl.DataFrame, runs: pl.DataFrame, sessions: pl.DataFrame, parent: str
) -> None:
    expected = _fanouts(ev, runs, sessions)
    if parent:
        expected = expected.filter(pl.col("parent_session_id") == parent)
    assert_rows(queries.run(wh, "fanout_comparison", {"parent": parent}), expected)


def test_fanout_by_hand(hand_wh: warehouse.Warehouse) -> None:
    rows = queries.run(hand_wh, "fanout_comparison", {"parent": "p1"}).to_pylist()
    assert [(r["child_session_id"], r["model"], r["status"], r["selected"]) for r in rows] == [
        ("c1", OPUS, "ok", False),
        ("c2", SONNET, "ok", True),
        ("c3", GPT, "error", False),
    ]
    assert [(r["label"], r["judge_score"], r["judge_reason"]) for r in rows] == [
        ("deep", 6.0, "thorough but slow"),
        ("fast", 7.5, "right and quick"),
        (None, None, None),
    ]
    assert [(r["children_cost_usd"], r["selected_cost_usd"]) for r in rows] == [
        (pytest.approx(0.23), 0.03)
    ] * 3
    no_winner = queries.run(hand_wh, "fanout_comparison", {"parent": "p2"}).to_pylist()
    assert [r["selected_cost_usd"] for r in no_winner] == [None, None]


def test_daily_active_users(wh: warehouse.Warehouse, ev: pl.DataFrame) -> None:
    expected = (
        ev.filter(pl.col("user_id").is_not_null())
        .with_columns(day=pl.col("ts").dt.date())
        .group_by("day", "tenant_id")
        .agg(
            users=pl.col("user_id").n_unique(),
            sessions=pl.col("session_id").n_unique(),
            runs=pl.col("type").is_in(ENDS).sum(),
            cost_usd=pl.col("cost_usd").sum(),
        )
        .sort("day", "tenant_id")
    )
    table = queries.run(wh, "daily_active_users")
    assert_rows(table, expected)


@pytest.mark.parametrize("values", [{}, {"limit": "3"}, {"limit": 3, "since": "2026-11-02"}])
def test_top_sessions_by_cost(
    wh: warehouse.Warehouse, sessions: pl.DataFrame, values: dict[str, Any]
) -> None:
    chosen = sessions.filter(pl.col("created_at") >= DAY2.replace(hour=0)) if "since" in values else sessions
    expected = (
        chosen.sort(["cost_usd", "tenant_id", "session_id"], descending=[True, False, False])
        .head(int(values.get("limit", 10)))
        .select(
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
    )
    assert_rows(queries.run(wh, "top_sessions_by_cost", values), expected)


# -- what if --------------------------------------------------------------------------------------


def _what_if(runs: pl.DataFrame, target: str) -> pl.DataFrame:
    """Each run re-priced by litellm itself (cost_per_token), summed per model."""
    tokens = ["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"]
    repriced = runs.with_columns(
        what_if=pl.struct(tokens).map_elements(
            lambda r: price(target, *(r[t] for t in tokens)), return_dtype=pl.Float64
        )
    )
    return (
        repriced.group_by("model")
        .agg(
            what_if_model=pl.lit(target),
            runs=pl.len(),
            **{t: pl.col(t).sum() for t in tokens},
            cost_usd=pl.col("cost_usd").sum(),
            what_if_cost_usd=pl.col("what_if").sum(),
        )
        .with_columns(difference_usd=pl.col("what_if_cost_usd") - pl.col("cost_usd"))
        .sort(["cost_usd", "model"], descending=[True, False])
    )


@pytest.mark.parametrize("target", [SONNET, GPT, OPUS])
def test_what_if_cost_prices_as_litellm_does(
    wh: warehouse.Warehouse, runs: pl.DataFrame, target: str
) -> None:
    assert_rows(queries.run(wh, "what_if_cost", {"model": target}), _what_if(runs, target))


def test_what_if_cost_of_one_model_over_a_range(wh: warehouse.Warehouse, runs: pl.DataFrame) -> None:
    model = runs["model"].drop_nulls().mode().sort()[0]
    since = runs["started_at"].sort()[runs.height // 2]
    values = {"model": SONNET, "from_model": model, "since": since.isoformat()}
    chosen = runs.filter((pl.col("model") == model) & (pl.col("started_at") >= since))
    assert_rows(queries.run(wh, "what_if_cost", values), _what_if(chosen, SONNET))


def test_what_if_cost_by_hand(hand_wh: warehouse.Warehouse) -> None:
    values = {"model": SONNET, "from_model": OPUS, "since": "2026-11-03"}
    table = queries.run(hand_wh, "what_if_cost", values)
    # c1 and c4's Opus runs on Sonnet: uncached input at $3/M, cache reads at $0.30/M, output at $15/M
    by_hand = (2000 + 2000 + 1000) * 3e-6 + 1000 * 0.3e-6 + (1000 + 1500 + 500) * 15e-6
    assert table.to_pylist()[0]["what_if_cost_usd"] == pytest.approx(by_hand)


def test_what_if_cost_on_a_model_without_a_price(wh: warehouse.Warehouse, runs: pl.DataFrame) -> None:
    rows = queries.run(wh, "what_if_cost", {"model": "nowhere/no-such-model"}).to_pylist()
    models = runs.filter(pl.col("model").is_not_null())["model"].n_unique()
    assert len(rows) == models and all(r["what_if_cost_usd"] is None for r in rows)


def test_run_returns_polars_when_asked(wh: warehouse.Warehouse) -> None:
    frame = queries.run(wh, "cost_by_model", polars=True)
    assert isinstance(frame, pl.DataFrame) and frame.height == queries.run(wh, "cost_by_model").num_rows


def test_queries_on_an_empty_warehouse_return_no_rows(tmp_path: Path) -> None:
    """Each query runs with only the views and the tables it declares (so it uses nothing else)."""
    with warehouse.open(tmp_path / "empty", policy=MANUAL) as empty:
        for query in queries.catalog():
            values = {p.name: "x" for p in query.params if p.required}
            assert queries.run(empty, query.name, values).num_rows == 0, query.name


def test_errors_by_hand(hand_wh: warehouse.Warehouse) -> None:
    gpt = queries.run(hand_wh, "errors_by_model").to_pylist()[0]
    assert (gpt["model"], gpt["runs"], gpt["errors"], gpt["timeouts"]) == (GPT, 7, 3, 1)
    assert gpt["last_error"] == "context length exceeded"


def test_compute_time_by_hand(hand_wh: warehouse.Warehouse) -> None:
    table = queries.run(hand_wh, "compute_time_by_provider")
    assert [(r["compute"], r["execs"], r["failed"], r["total_s"]) for r in table.to_pylist()] == [
        ("relay", 2, 0, 6.0),
        ("e2b", 1, 0, 1.2),
        ("local", 3, 1, pytest.approx(1.04)),
    ]


def test_daily_active_users_by_hand(hand_wh: warehouse.Warehouse) -> None:
    table = queries.run(hand_wh, "daily_active_users")
    assert [(r["day"].day, r["tenant_id"], r["users"]) for r in table.to_pylist()] == [
        (1, "t1", 2),
        (1, "t2", 1),
        (2, "t1", 2),
        (3, "t1", 2),
    ]
