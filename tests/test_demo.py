"""`cerver demo`: deterministic, idempotent, and holding the conventions other queries rely on.

Everything runs on a real warehouse under tmp_path; the CLI runs as a real process.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import statistics
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import warehouse
from ingest.demo import DEFAULT_END, DemoSummary, generate
from ingest.demo.prices import resolve
from ingest.pricing import price

CERVER = str(Path(sys.executable).with_name("cerver"))
SESSIONS = 300
SEED = 11


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[warehouse.Warehouse, DemoSummary]]:
    """One demo of SESSIONS sessions, flushed to Parquet, shared by the module's read-only tests."""
    wh = warehouse.open(tmp_path_factory.mktemp("demo") / "cerver-data")
    summary = generate(wh, sessions=SESSIONS, seed=SEED)
    wh.flush()
    yield wh, summary
    wh.close()


def rows(wh: warehouse.Warehouse, query: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    return wh.sql(query, params).to_pylist()


def one(wh: warehouse.Warehouse, query: str) -> Any:
    return next(iter(rows(wh, query)[0].values()))


def events_of(wh: warehouse.Warehouse, kind: str) -> list[dict[str, Any]]:
    return rows(wh, "select * from events where type = ? order by session_id, ts", [kind])


# -- determinism and idempotency ------------------------------------------------------------


def test_the_same_seed_makes_the_same_events_and_another_seed_others(tmp_path: Path) -> None:
    tables = []
    for folder, seed in (("a", 3), ("b", 3), ("c", 4)):
        with warehouse.open(tmp_path / folder) as wh:
            generate(wh, sessions=80, seed=seed)
            tables.append(wh.sql("select * from events order by event_id"))
    assert tables[0].num_rows > 1_000
    assert tables[0].equals(tables[1])
    assert not tables[0].equals(tables[2])
    first, other = (
        set(tables[0].column("event_id").to_pylist()),
        set(tables[2].column("event_id").to_pylist()),
    )
    assert not first & other


def test_a_second_run_adds_nothing(demo: tuple[warehouse.Warehouse, DemoSummary]) -> None:
    wh, first = demo
    assert first.added == first.events and first.duplicates == 0
    again = generate(wh, sessions=SESSIONS, seed=SEED)
    assert (again.added, again.duplicates, again.events) == (0, first.events, first.events)
    assert one(wh, "select count(*) from events") == first.events


def test_every_event_is_one_tenants_with_a_unique_id(demo: tuple[warehouse.Warehouse, DemoSummary]) -> None:
    wh, summary = demo
    counts = rows(
        wh, "select count(*) n, count(distinct event_id) ids, count(distinct tenant_id) t from events"
    )
    assert counts == [{"n": summary.events, "ids": summary.events, "t": 1}]
    assert one(wh, "select any_value(tenant_id) from events") == "default"
    for e in rows(wh, "select event_id, ts from events using sample 50 rows"):
        u = uuid.UUID(e["event_id"])  # UUIDv7, its time the event's millisecond: ids sort by time
        assert u.version == 7 and u.int >> 80 == int(e["ts"].timestamp() * 1000)


# -- the shape of sessions, users and time ----------------------------------------------------


def test_sessions_and_users(demo: tuple[warehouse.Warehouse, DemoSummary]) -> None:
    wh, summary = demo
    top = rows(wh, "select user_id, count(*) n from sessions where parent_session_id is null group by 1")
    assert len(top) == summary.users == SESSIONS // 4
    assert sum(r["n"] for r in top) == SESSIONS
    per_user = sorted(r["n"] for r in top)
    assert per_user[0] >= 1 and per_user[-1] >= 4 * statistics.median(per_user)  # a few power users
    ids = rows(wh, "select session_id, user_id from sessions")
    assert all(r["session_id"].startswith("sess_") and r["user_id"].startswith("user_") for r in ids)


def test_timestamps_increase_within_each_session_and_fit_the_window(
    demo: tuple[warehouse.Warehouse, DemoSummary],
) -> None:
    wh, _ = demo
    ties = """
        select count(*) from (
            select ts <= lag(ts) over (partition by session_id order by ts, event_id) as tied from events
        ) where tied"""
    assert one(wh, ties) == 0
    span = rows(wh, "select min(ts) first, max(ts) last from events")[0]
    assert DEFAULT_END - dt.timedelta(weeks=6) <= span["first"] and span["last"] < DEFAULT_END
    ends = """
        select count(*) from sessions s where
            (select min(ts) from events e where e.session_id = s.session_id and e.type = 'session.created')
                <> (select min(ts) from events e where e.session_id = s.session_id)
            or (s.closed_at is not null and s.closed_at <> s.last_event_at)"""
    assert one(wh, ends) == 0  # created first, closed last
    assert one(wh, "select count(*) from events where type = 'session.created'") == one(
        wh, "select count(*) from sessions"
    )
    weekdays = rows(
        wh, "select isodow(created_at) > 5 weekend, count(*) n from sessions group by 1 order by 1"
    )
    assert weekdays[1]["n"] / 2 < weekdays[0]["n"] / 5  # quieter weekends


def test_most_sessions_close(demo: tuple[warehouse.Warehouse, DemoSummary]) -> None:
    wh, _ = demo
    closed = one(wh, "select avg((status = 'closed')::int) from sessions")
    assert 0.7 < closed < 0.97


def test_runs_follow_the_models_switched_to(demo: tuple[warehouse.Warehouse, DemoSummary]) -> None:
    wh, _ = demo
    switches = events_of(wh, "session.updated")
    assert switches and all(json.loads(e["attrs"]) == {"changed": ["model"]} for e in switches)
    started = defaultdict(list)
    for e in events_of(wh, "run.started"):
        started[e["session_id"]].append(e)
    followed = 0
    for switch in switches:
        later = [e for e in started[switch["session_id"]] if e["ts"] > switch["ts"]]
        assert all(e["model"] == switch["model"] for e in later)
        followed += bool(later)  # (a switch before a fan-out turn may have no run of its own after it)
    assert followed > len(switches) / 2


# -- the mix -----------------------------------------------------------------------------------


def test_every_harness_compute_and_model_is_present(demo: tuple[warehouse.Warehouse, DemoSummary]) -> None:
    wh, _ = demo
    created = rows(wh, "select distinct harness, compute from events where type = 'session.created'")
    assert {r["harness"] for r in created} == {"litellm", "claude-code", "codex"}
    assert {r["compute"] for r in created} == {None, "local", "relay", "e2b"}
    chat = {r["compute"] for r in created if r["harness"] == "litellm"}
    assert None in chat and {r["compute"] for r in created if r["harness"] != "litellm"} <= {
        "local",
        "relay",
        "e2b",
    }
    models = {r["model"] for r in rows(wh, "select distinct model from runs")}
    assert models == set(resolve().names)
    statuses = {r["status"] for r in rows(wh, "select distinct status from runs")}
    assert statuses == {"ok", "error", "timeout", "budget_exceeded"}


def test_latency_differs_per_model_and_ttft_is_part_of_it(
    demo: tuple[warehouse.Warehouse, DemoSummary],
) -> None:
    wh, _ = demo
    medians = {
        r["model"]: r["p50"]
        for r in rows(
            wh,
            "select model, median(latency_ms) p50 from runs "
            "where harness = 'litellm' and status = 'ok' group by 1",
        )
    }
    assert medians["openai/gpt-5"] > 2 * medians["openai/gpt-4o-mini"]
    assert len({round(m, -1) for m in medians.values()}) == len(medians)
    runs = rows(wh, "select latency_ms, ttft_ms, status from runs where status <> 'budget_exceeded'")
    assert all(r["latency_ms"] > 0 for r in runs)
    timed = [r for r in runs if r["ttft_ms"] is not None]
    assert timed and all(0 < r["ttft_ms"] <= r["latency_ms"] for r in timed)
    assert all(r["status"] == "ok" for r in timed)
    assert any(r["ttft_ms"] is None for r in runs if r["status"] == "ok")  # runs answered in one piece


def test_costs_are_litellm_prices(demo: tuple[warehouse.Warehouse, DemoSummary]) -> None:
    wh, _ = demo
    completed = events_of(wh, "run.completed")
    assert all(e["cost_usd"] > 0 and e["input_tokens"] > 0 and e["output_tokens"] > 0 for e in completed)
    cached = [e for e in completed if e["cache_read_tokens"] is not None]
    assert 0 < len(cached) < len(completed)
    for e in completed[::17] + cached[::29]:
        expected = price(e["model"], e["input_tokens"], e["output_tokens"], e["cache_read_tokens"])
        assert e["cost_usd"] == pytest.approx(expected, rel=1e-9)
    failed = events_of(wh, "run.failed")
    assert all(e["cost_usd"] is None and e["input_tokens"] is None and e["error"] for e in failed)


def test_retries_fallbacks_and_failures_record_their_attempts(
    demo: tuple[warehouse.Warehouse, DemoSummary],
) -> None:
    wh, _ = demo
    started = {e["run_id"]: e["model"] for e in events_of(wh, "run.started")}
    retried = fell_back = 0
    for e in events_of(wh, "run.completed"):
        if e["attrs"] is None:
            assert e["model"] == started[e["run_id"]]
            continue
        attempts = json.loads(e["attrs"])["attempts"]
        assert [a["ok"] for a in attempts] == [False] * (len(attempts) - 1) + [True]
        assert attempts[-1]["model"] == e["model"] and all(a["ms"] > 0 for a in attempts)
        assert all(a["model"] == started[e["run_id"]] and a["error"] for a in attempts[:-1])
        retried += 1
        fell_back += e["model"] != started[e["run_id"]]
    assert retried > fell_back > 0
    for e in events_of(wh, "run.failed"):
        if e["status"] == "budget_exceeded" or e["harness"] != "litellm":
            assert e["attrs"] is None and (e["latency_ms"] is None) == (e["status"] == "budget_exceeded")
            continue
        attempts = json.loads(e["attrs"])["attempts"]
        assert attempts and not any(a["ok"] for a in attempts)
        assert (e["status"] == "timeout") == (attempts[-1]["status"] is None and "Timeout" in e["error"])


# -- compute and tools ---------------------------------------------------------------------------


def test_compute_execs_and_moves(demo: tuple[warehouse.Warehouse, DemoSummary]) -> None:
    wh, _ = demo
    execs = events_of(wh, "compute.exec")
    assert execs
    for e in execs:
        attrs = json.loads(e["attrs"])
        assert e["compute"] in {"local", "relay", "e2b"} and e["latency_ms"] > 0 and attrs["command"]
        assert (attrs["exit_code"] == 0) == (e["status"] == "ok")
    assert {e["status"] for e in execs} == {"ok", "error"}
    by_compute = defaultdict(list)
    for e in execs:
        by_compute[e["compute"]].append(e["latency_ms"])
    assert statistics.median(by_compute["e2b"]) > statistics.median(by_compute["local"])

    attached = defaultdict(list)
    for e in events_of(wh, "compute.attached"):
        attached[e["session_id"]].append(e)
    created = {e["session_id"]: e for e in events_of(wh, "session.created")}
    moved = {s: a for s, a in attached.items() if len(a) == 2}
    assert moved
    for session, (first, second) in moved.items():
        assert first["compute"] == created[session]["compute"] != second["compute"]
        assert json.loads(second["attrs"]) == {"provider": second["compute"], "from": first["compute"]}
        later = [e for e in execs if e["session_id"] == session and e["ts"] > second["ts"]]
        assert all(e["compute"] == second["compute"] for e in later)
    assert all(len(a) <= 2 and created[s]["compute"] is not None for s, a in attached.items())


def test_tool_calls_belong_to_agent_runs_and_pair_with_results(
    demo: tuple[warehouse.Warehouse, DemoSummary],
) -> None:
    wh, _ = demo
    harnesses = rows(
        wh,
        "select distinct s.harness from events e join sessions s using (session_id) "
        "where e.type like 'tool.%'",
    )
    assert {r["harness"] for r in harnesses} == {"claude-code", "codex"}
    calls = {json.loads(e["attrs"])["call_id"]: e for e in events_of(wh, "tool.call")}
    results = {json.loads(e["attrs"])["call_id"]: e for e in events_of(wh, "tool.result")}
    assert calls and calls.keys() == results.keys()
    for call_id, call in calls.items():
        result = results[call_id]
        assert result["run_id"] == call["run_id"] and result["ts"] > call["ts"]
        assert json.loads(call["content"])["name"] == json.loads(call["attrs"])["name"]
        assert call_id.startswith("toolu_" if call["harness"] == "claude-code" else "call_")


# -- fan-outs ----------------------------------------------------------------------------------


def test_fanouts_spawn_children_and_select_one(demo: tuple[warehouse.Warehouse, DemoSummary]) -> None:
    wh, summary = demo
    sessions = {r["session_id"]: r for r in rows(wh, "select * from sessions")}
    created = {e["session_id"]: e for e in events_of(wh, "session.created")}
    children = {s: r for s, r in sessions.items() if r["parent_session_id"] is not None}
    assert len(children) == summary.children > 0
    spawned = defaultdict(dict)
    for e in events_of(wh, "session.spawned"):
        attrs = json.loads(e["attrs"])
        spawned[e["session_id"]][attrs["child_session_id"]] = (e, attrs["variant"])
    assert sum(len(v) for v in spawned.values()) == len(children)
    for child_id, child in children.items():
        parent = sessions[child["parent_session_id"]]
        assert parent["parent_session_id"] is None and parent["user_id"] == child["user_id"]
        event, variant = spawned[parent["session_id"]][child_id]
        c = created[child_id]
        assert variant == {"model": c["model"], "harness": c["harness"], "compute": c["compute"]}
        assert event["ts"] < c["ts"] and child["runs"] == 1
    orphans = "select count(*) from events where session_id in (select session_id from sessions where parent_session_id is not null) and parent_session_id is null"  # noqa: E501
    assert one(wh, orphans) == 0
    for kids in spawned.values():
        assert 2 <= len(kids) <= 5
        assert len({v["model"] for _, v in kids.values()}) == len(kids)

    last_child_ts = {s: r["last_event_at"] for s, r in children.items()}
    answers = {(e["session_id"], e["ts"]): e for e in events_of(wh, "message") if e["role"] == "assistant"}
    child_answer = {e["session_id"]: e["content"] for e in answers.values() if e["session_id"] in children}
    selected = events_of(wh, "session.selected")
    assert 0 < len(selected) <= len(spawned)
    for e in selected:
        winner = json.loads(e["attrs"])["child_session_id"]
        assert winner in spawned[e["session_id"]]
        assert e["ts"] > max(last_child_ts[c] for c in spawned[e["session_id"]])
        after = rows(
            wh,
            "select role, content from events where session_id = ? and ts > ? order by ts limit 1",
            [e["session_id"], e["ts"]],
        )
        assert after == [{"role": "assistant", "content": child_answer[winner]}]


# -- the views -----------------------------------------------------------------------------------


def test_the_views_agree_with_each_other_and_the_summary(
    demo: tuple[warehouse.Warehouse, DemoSummary],
) -> None:
    wh, summary = demo
    totals = rows(
        wh,
        """select (select count(*) from sessions) sessions, (select count(*) from runs) runs,
                  (select sum(cost_usd) from sessions) session_cost,
                  (select sum(cost_usd) from runs) run_cost,
                  (select sum(runs) from sessions) session_runs,
                  (select count(*) from messages) messages""",
    )[0]
    assert totals["sessions"] == summary.sessions and totals["runs"] == totals["session_runs"] == summary.runs
    assert totals["session_cost"] == pytest.approx(totals["run_cost"], rel=1e-9)
    assert totals["run_cost"] == pytest.approx(summary.cost_usd, rel=1e-9)
    assert totals["messages"] == summary.by_type["message"]
    assert one(wh, "select count(*) from runs where status = 'running'") == 0


# -- the command -------------------------------------------------------------------------------


def cerver(*args: str, **streams: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    streams = streams or {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    return subprocess.run([CERVER, *args], text=True, timeout=120, env=env, **streams)


def test_the_command_prints_a_summary_and_adds_nothing_the_second_time(data_dir: Path) -> None:
    args = (
        "demo",
        "--sessions",
        "40",
        "--seed",
        "5",
        "--tenant",
        "acme",
        "--end",
        "2026-03-01",
        "--weeks",
        "2",
    )
    first, drawn = on_a_terminal(*args)
    assert first.returncode == 0, drawn
    assert b"\rdemo: [" in drawn and b"40/40 sessions" in drawn  # the bar, on the terminal
    assert first.stdout.startswith("demo: 40 sessions") and "\r" not in first.stdout  # the summary, plain
    assert "tenant 'acme', seed 5" in first.stdout and "2026-02-15 to 2026-03-01" in first.stdout
    events = first.stdout.split("; ")[1].split(" events")[0]
    assert f"({events} added, 0 already stored)" in first.stdout
    second = cerver(*args)
    assert f"(0 added, {events} already stored)" in second.stdout
    assert second.stderr == ""  # not a terminal: no bar
    with warehouse.open(data_dir, read_only=True) as wh:
        assert rows(wh, "select distinct tenant_id from events") == [{"tenant_id": "acme"}]
        assert one(wh, "select max(ts) from events") < dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def on_a_terminal(*args: str) -> tuple[subprocess.CompletedProcess[str], bytes]:
    """Run the command with its stderr on a pseudo-terminal; return it and what the terminal showed."""
    controller, terminal = pty.openpty()
    try:
        result = cerver(*args, stderr=terminal, stdout=subprocess.PIPE)
        os.close(terminal)
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(controller)
    return result, drawn


def test_the_command_refuses_bad_options(data_dir: Path) -> None:
    for bad in (["--sessions", "0"], ["--end", "2026-13-01"], ["--seed", "-1"]):
        result = cerver("demo", *bad)
        assert result.returncode == 2 and "cerver demo" in result.stderr, bad
    assert not data_dir.exists()  # refused before the warehouse was opened
