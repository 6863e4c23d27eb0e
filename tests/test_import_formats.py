"""Each transcript format, old and new, imported into a real warehouse: exact counts per session.

The hand-made cases (tests/fixtures/import/<source>/<case>/, each with an expected.json
saying what it holds and why) cover the versions and edge cases; the real transcripts in
tests/fixtures/claude-code and tests/fixtures/codex were written by the real CLIs against a
fake provider, and their expected.json lists every model response they made.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import warehouse
from ingest.pricing import price
from tests.importing import CASES, FIXTURES, data_lines, expected, run, sessions, without_message_count

CASE_NAMES = sorted(str(p.parent.relative_to(CASES)) for p in CASES.glob("*/*/expected.json"))


@pytest.mark.parametrize("case", CASE_NAMES)
def test_hand_made_case(wh: warehouse.Warehouse, case: str) -> None:
    want = expected(case)
    root = CASES / case
    summary = run(wh, want["source"], root / want.get("path", "."))
    assert without_message_count(sessions(wh)) == want["sessions"]
    assert dict(summary.skipped) == want["skipped"]
    assert sorted([str(Path(p.file).relative_to(root)), p.line] for p in summary.problems) == sorted(
        want["malformed"]
    )
    assert summary.malformed == len(want["malformed"])
    running = wh.sql("SELECT count(*) AS n FROM runs WHERE status = 'running'").to_pylist()
    assert running == [{"n": 0}]  # every run_id on a message belongs to a run that ended


@pytest.mark.parametrize("case", CASE_NAMES)
def test_costs_are_priced_from_the_litellm_map(wh: warehouse.Warehouse, case: str) -> None:
    want = expected(case)
    run(wh, want["source"], CASES / case / want.get("path", "."))
    costs = {
        r["session_id"]: r["cost_usd"]
        for r in wh.sql("SELECT session_id, cost_usd FROM sessions").to_pylist()
    }
    for session, fact in want["sessions"].items():
        if not fact["models"]:
            assert costs[session] == 0
            continue
        (model,) = fact["models"]  # one model per session here, so the cost is the price of the sums
        tokens = [
            fact[k] for k in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
        ]
        assert costs[session] == pytest.approx(price(model, *tokens)), session
        assert costs[session] > 0


def test_every_event_says_where_it_came_from(wh: warehouse.Warehouse) -> None:
    run(wh, "claude-code", CASES / "claude-code" / "v2")
    rows = wh.sql("SELECT event_id, harness, user_id, attrs FROM events").to_pylist()
    assert {r["harness"] for r in rows} == {"import:claude-code"} and {r["user_id"] for r in rows} == {"u1"}
    for row in rows:
        where = json.loads(row["attrs"])["source"]
        assert Path(where["file"]).is_file() and where["line"] >= 1
    message = wh.sql("SELECT attrs FROM messages WHERE content = 'Two files.'").to_pylist()[0]
    attrs = json.loads(message["attrs"])
    assert (
        attrs["uuid"] == "u-1005" and attrs["message_id"] == "msg_v2_2" and attrs["requestId"] == "req_v2_2"
    )


def test_claude_code_response_lines_share_one_usage(wh: warehouse.Warehouse) -> None:
    """Three lines of msg_old_1 carry output_tokens 1, 1, 40: one run, 40 output tokens."""
    run(wh, "claude-code", CASES / "claude-code" / "v1")
    rows = wh.sql(
        "SELECT run_id, input_tokens, output_tokens, cache_write_tokens, latency_ms FROM runs "
        "WHERE run_id = 'msg_old_1'"
    ).to_pylist()
    assert rows == [
        {
            "run_id": "msg_old_1",
            "input_tokens": 110,
            "output_tokens": 40,
            "cache_write_tokens": 100,
            "latency_ms": 3000.0,  # from the prompt (10:00:00) to the response's last line (10:00:03)
        }
    ]
    assistant = wh.sql("SELECT count(*) AS n FROM messages WHERE run_id = 'msg_old_1'").to_pylist()[0]["n"]
    assert assistant == 3


def test_codex_legacy_lines_keep_their_order(wh: warehouse.Warehouse) -> None:
    run(wh, "codex", CASES / "codex" / "legacy")
    contents = [r["content"] for r in wh.sql("SELECT content FROM messages ORDER BY ts").to_pylist()]
    assert contents[0] == "hello" and contents[1] == "hi there" and "a.txt" in contents[3]


def test_codex_token_counts_without_last_usage_are_differences_of_totals(wh: warehouse.Warehouse) -> None:
    run(wh, "codex", CASES / "codex" / "v0.20")
    rows = wh.sql(
        "SELECT input_tokens, cache_read_tokens, output_tokens FROM events WHERE type = 'run.completed' "
        "AND session_id LIKE '%c0d2' ORDER BY ts"
    ).to_pylist()
    assert rows == [
        {"input_tokens": 1000, "cache_read_tokens": 200, "output_tokens": 50},
        {"input_tokens": 1300, "cache_read_tokens": 900, "output_tokens": 30},
    ]


def test_gemini_tokens_split_into_input_and_output(wh: warehouse.Warehouse) -> None:
    run(wh, "gemini", CASES / "gemini" / "json")
    row = wh.sql(
        "SELECT input_tokens, output_tokens, cache_read_tokens FROM runs WHERE run_id = 'm2'"
    ).to_pylist()
    assert row == [
        {"input_tokens": 1005, "output_tokens": 50, "cache_read_tokens": 400}
    ]  # input+tool, output+thoughts


# -- the real CLIs' transcripts --------------------------------------------------------------

REAL = ["claude-code", "codex"]  # committed fixtures (python -m tests.make_fixtures); missing ones fail


@pytest.mark.parametrize("name", REAL)
def test_real_transcripts_match_what_the_cli_did(wh: warehouse.Warehouse, name: str) -> None:
    want = json.loads((FIXTURES / name / "expected.json").read_text())
    summary = run(wh, name, FIXTURES / name)
    assert summary.malformed == 0 and summary.files == len(want["transcripts"])
    facts = sessions(wh)
    main = facts[want["session_id"]]
    children = {s: f for s, f in facts.items() if f["parent"] == want["session_id"]}
    assert set(facts) == {want["session_id"], *children}
    assert main["runs"] + sum(f["runs"] for f in children.values()) == want["model_responses"]
    assert sum(f["runs"] for f in children.values()) == want["subagent_responses"]
    assert main["roles"]["user"] == want["user_prompts"]
    assert sum(f["tool_calls"] for f in facts.values()) == want["tool_calls"]
    assert sum(f["tool_results"] for f in facts.values()) == want["tool_results"]
    models = {m for f in facts.values() for m in f["models"]}
    provider = "anthropic" if name == "claude-code" else "openai"
    assert models == {f"{provider}/{m}" for m in want["models"]}

    texts = wh.sql(
        "SELECT content FROM messages WHERE role = 'assistant' AND NOT starts_with(content, '[') ORDER BY ts"
    ).column("content")
    assert texts.to_pylist() == [r["text"] for r in want["responses"] if r["text"]]
    calls = wh.sql("SELECT attrs FROM events WHERE type = 'tool.call'").column("attrs").to_pylist()
    call_ids = {json.loads(a).get("tool_use_id") or json.loads(a).get("call_id") for a in calls}
    assert call_ids == {c["id"] for r in want["responses"] for c in r["tool_calls"]}


@pytest.mark.parametrize("name", REAL)
def test_real_transcripts_count_each_response_once(wh: warehouse.Warehouse, name: str) -> None:
    """Tokens per model response, as the provider reported them; input counts cache reads and writes."""
    want = json.loads((FIXTURES / name / "expected.json").read_text())
    run(wh, name, FIXTURES / name)
    rows = wh.sql(
        "SELECT run_id, attrs, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens "
        "FROM events WHERE type = 'run.completed'"
    ).to_pylist()
    runs = {}
    for row in rows:
        response = row["run_id"] if name == "claude-code" else json.loads(row["attrs"])["response_id"]
        runs[response] = (
            row["input_tokens"],
            row["output_tokens"],
            row["cache_read_tokens"],
            row["cache_write_tokens"],
        )
    reported = {}
    for r in want["responses"]:
        cache = (
            r["cache_read_input_tokens"],
            r["cache_creation_input_tokens"] if name == "claude-code" else None,
        )
        # Anthropic reports input without the cache; OpenAI's input already includes cached tokens
        total_input = r["input_tokens"] + (sum(cache) if name == "claude-code" else 0)
        reported[r["id"]] = (total_input, r["output_tokens"], *cache)
    assert runs == reported
    totals = want["usage_totals"]
    sums = wh.sql("SELECT sum(input_tokens) AS i, sum(output_tokens) AS o FROM sessions").to_pylist()[0]
    assert sums["o"] == totals["output_tokens"]
    cache = totals["cache_read_input_tokens"] + totals["cache_creation_input_tokens"]
    assert sums["i"] == totals["input_tokens"] + (cache if name == "claude-code" else 0)


def test_claude_code_response_cut_between_imports_is_completed_by_a_usage_event(
    wh: warehouse.Warehouse, tmp_path: Path
) -> None:
    source = CASES / "claude-code" / "v1" / "projects" / "-home-ada-calc"
    path = tmp_path / "5e551011-0000-4000-8000-000000000001.jsonl"
    lines = data_lines(source / path.name)
    path.write_text("".join(lines[:3]))  # the first line of msg_old_1: output_tokens 1 so far
    run(wh, "claude-code", path)
    path.write_text("".join(lines))
    run(wh, "claude-code", path)
    rows = wh.sql(
        "SELECT type, output_tokens FROM events "
        "WHERE run_id = 'msg_old_1' AND output_tokens IS NOT NULL ORDER BY ts"
    ).to_pylist()
    assert rows == [{"type": "run.completed", "output_tokens": 1}, {"type": "usage", "output_tokens": 39}]
    assert wh.sql("SELECT output_tokens FROM runs WHERE run_id = 'msg_old_1'").to_pylist() == [
        {"output_tokens": 40}
    ]


def test_a_rewritten_gemini_json_chat_adds_only_its_new_parts(
    wh: warehouse.Warehouse, tmp_path: Path
) -> None:
    original = (
        CASES / "gemini" / "json" / "tmp" / "0f1e2d3c" / "chats" / "session-2025-07-01T10-00-5e551011.json"
    )
    path = tmp_path / "chats" / original.name
    path.parent.mkdir()
    doc = json.loads(original.read_text())
    path.write_text(json.dumps(doc, indent=2))
    first = run(wh, "gemini", path)
    unchanged = run(wh, "gemini", path)
    assert (unchanged.files_unchanged, unchanged.events) == (1, 0)
    doc["messages"].append(
        {
            "id": "m5",
            "timestamp": "2025-07-01T10:00:09.000Z",
            "type": "gemini",
            "content": "Anything else?",
            "model": "gemini-2.5-pro",
            "tokens": {"input": 1200, "output": 4, "cached": 1100, "thoughts": 0, "tool": 0, "total": 1204},
        }
    )
    path.write_text(json.dumps(doc))  # rewritten whole, as the CLI does
    again = run(wh, "gemini", path)
    assert (again.events, again.duplicates, again.malformed) == (2, 0, 0)  # m5's message and run
    assert first.events + 2 == wh.sql("SELECT count(*) AS n FROM events").to_pylist()[0]["n"]


def test_a_gemini_json_chat_caught_mid_write_is_read_once_whole(
    wh: warehouse.Warehouse, tmp_path: Path
) -> None:
    original = (
        CASES / "gemini" / "json" / "tmp" / "0f1e2d3c" / "chats" / "session-2025-07-01T10-00-5e551011.json"
    )
    path = tmp_path / "chats" / original.name
    path.parent.mkdir()
    text = original.read_text()
    path.write_text(text[: len(text) // 2])
    half = run(wh, "gemini", path)
    assert (half.events, half.malformed, half.problems[0].line) == (0, 1, 1)
    assert "still being written" in half.problems[0].reason
    path.write_text(text)
    whole = run(wh, "gemini", path)
    assert whole.events > 0 and whole.malformed == 0


def test_a_claude_code_subagent_session_names_the_call_that_spawned_it(wh: warehouse.Warehouse) -> None:
    want = json.loads((FIXTURES / "claude-code" / "expected.json").read_text())
    run(wh, "claude-code", FIXTURES / "claude-code")
    (child,) = wh.sql(
        "SELECT session_id, parent_session_id, attrs FROM events WHERE type = 'session.created' "
        "AND parent_session_id IS NOT NULL"
    ).to_pylist()
    agent = json.loads(child["attrs"])["agent"]
    spawned_by = [c["id"] for r in want["responses"] for c in r["tool_calls"] if c["name"] == "Agent"]
    assert child["parent_session_id"] == want["session_id"] and [agent["toolUseId"]] == spawned_by
    assert child["session_id"] == f"{want['session_id']}:agent-{agent_id(want)}"


def agent_id(want: dict) -> str:
    """The subagent's id, from its transcript's file name."""
    (name,) = [Path(t).stem for t in want["transcripts"] if "/subagents/" in t]
    return name.removeprefix("agent-")


def test_a_long_claude_code_file_settles_its_responses_as_it_goes(
    wh: warehouse.Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest.importers import claude_code

    run(wh, "claude-code", CASES / "claude-code" / "v1", "whole")
    monkeypatch.setattr(claude_code, "MAX_PENDING", 2)  # settle all but the latest response every few
    run(wh, "claude-code", CASES / "claude-code" / "v1", "settled")
    assert sessions(wh, "settled") == sessions(wh, "whole")
    assert wh.sql("SELECT count(*) AS n FROM events WHERE type = 'usage'").to_pylist() == [{"n": 0}]
