"""The real `claude` and `codex` CLIs, run offline against the fake provider (see tests/agent_clis.py).

Nothing is mocked: the pinned CLIs (`cd tests/clis && npm ci`) hold the fixture conversations of
tests/make_fixtures.py in a temp HOME, with every proxy variable on the fake, which lists any request meant
for another host. The last test checks the committed fixtures against their expected.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.agent_clis import CLAUDE_MODEL, CODEX_MODEL, AgentCliError, cli_path, run_claude, run_codex
from tests.fake_provider import FakeProvider
from tests.make_fixtures import FIXTURES, claude_conversation, codex_conversation, is_subagent


@pytest.fixture(scope="module", autouse=True)
def _clis_installed() -> None:
    """Fail (never skip) when the pinned CLIs are missing, saying how to install them."""
    for name in ("claude", "codex"):
        try:
            cli_path(name)
        except FileNotFoundError as exc:
            pytest.fail(str(exc), pytrace=False)


def records(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a transcript."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def blocks_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def test_claude_code_conversation_with_tools_and_a_subagent(tmp_path: Path) -> None:
    cwd = tmp_path / "work"
    cwd.mkdir()
    talk = claude_conversation(cwd)
    with FakeProvider() as fake:
        fake.script(talk.replies)
        run = run_claude(fake, tmp_path / "home", talk.prompts, cwd)
    assert fake.foreign_requests == []
    assert len(fake.responses) == len(talk.replies) == len(fake.requests)
    assert {(r.path, r.model) for r in fake.requests} == {("/v1/messages", CLAUDE_MODEL)}
    assert run.outputs == ("hello.txt says hi.", "The helper found one file, hello.txt.", "You're welcome!")
    assert (cwd / "hello.txt").read_text() == "hi\n"
    # the Write call's result came back to the model in the next request
    last_turn = fake.requests[1].body["messages"][-1]
    assert any(b.get("tool_use_id") == "toolu_fake000001_1" for b in blocks_of(last_turn))

    main, [subagent_file] = records(run.transcript), run.subagent_transcripts
    assert run.transcript.parent.parent.name == "projects" and run.transcript.stem == run.session_id
    assert {"user", "assistant"} <= {r["type"] for r in main}
    reported = {r.id: r for r in fake.responses}
    for name, lines, in_subagent in (("main", main, False), ("subagent", records(subagent_file), True)):
        assistant = [r for r in lines if r["type"] == "assistant"]
        ids = {r["message"]["id"] for r in assistant}
        assert ids == {r.id for r in fake.responses if is_subagent(r.request) == in_subagent}, name
        for line in assistant:
            usage, answer = line["message"]["usage"], reported[line["message"]["id"]]
            assert (usage["input_tokens"], usage["output_tokens"]) == (
                answer.input_tokens,
                answer.output_tokens,
            )
            assert usage["cache_read_input_tokens"] == answer.cache_read_tokens
            assert line["requestId"] == answer.request_id and line["isSidechain"] is in_subagent
    tool_results = [b for r in main if r["type"] == "user" for b in blocks_of(r["message"])]
    assert {b["tool_use_id"] for b in tool_results if b.get("type") == "tool_result"} == {
        "toolu_fake000001_1",
        "toolu_fake000002_1",
        "toolu_fake000004_1",
    }


def test_codex_conversation_with_parallel_tool_calls(tmp_path: Path) -> None:
    talk = codex_conversation()
    with FakeProvider() as fake:
        fake.script(talk.replies)
        run = run_codex(fake, tmp_path / "home", talk.prompts, tmp_path / "work")
    assert fake.foreign_requests == []
    assert len(fake.responses) == len(talk.replies) == len(fake.requests)
    assert {(r.path, r.model, r.stream) for r in fake.requests} == {("/v1/responses", CODEX_MODEL, True)}
    assert run.outputs == ("hello.txt says hi.", "It is 3 bytes, and it is the only file.", "You're welcome!")
    assert (tmp_path / "work" / "hello.txt").read_text() == "hi\n"
    outputs = {
        i["call_id"]: i["output"]
        for i in fake.requests[3].body["input"]
        if i["type"] == "function_call_output"
    }
    assert "3 hello.txt" in outputs["call_fake000003_1"] and "hello.txt" in outputs["call_fake000003_2"]

    lines = records(run.transcript)
    assert run.transcript.name.startswith("rollout-") and run.transcript.stem.endswith(run.session_id)
    assert lines[0]["type"] == "session_meta" and lines[0]["payload"]["id"] == run.session_id
    assert {"session_meta", "turn_context", "response_item", "event_msg"} <= {r["type"] for r in lines}
    items = [r["payload"] for r in lines if r["type"] == "response_item"]
    calls = [i["call_id"] for i in items if i["type"] == "function_call"]
    assert calls == [c.id for r in fake.responses for c in r.tool_calls]
    assert [i["call_id"] for i in items if i["type"] == "function_call_output"] == calls
    counts = [
        r["payload"]["info"]
        for r in lines
        if r["type"] == "event_msg" and r["payload"]["type"] == "token_count"
    ]
    last = [c["last_token_usage"] for c in counts if c]
    assert [(u["input_tokens"], u["cached_input_tokens"], u["output_tokens"]) for u in last] == [
        (r.input_tokens, r.cache_read_tokens, r.output_tokens) for r in fake.responses
    ]
    assert counts[-1]["total_token_usage"]["input_tokens"] == sum(r.input_tokens for r in fake.responses)


@pytest.mark.parametrize("run", [run_claude, run_codex], ids=["claude", "codex"])
def test_a_failed_run_raises_with_the_cli_output(run: Any, tmp_path: Path) -> None:
    with FakeProvider() as fake:
        fake.fail_next(400, times=10, message="the fake says no")
        with pytest.raises(AgentCliError, match="the fake says no"):
            run(fake, tmp_path / "home", ["hi"], tmp_path / "work")
    assert fake.foreign_requests == []


@pytest.mark.parametrize("fixture", ["claude-code", "codex"])
def test_committed_fixtures_match_their_expected_json(fixture: str) -> None:
    folder = FIXTURES / fixture
    truth = json.loads((folder / "expected.json").read_text())
    assert truth["model_responses"] == len(truth["responses"]) and truth["user_prompts"] == len(
        truth["commands"]
    )
    ids = set()
    for name in truth["transcripts"]:
        for line in records(folder / name):
            if line.get("type") == "assistant":
                ids.add(line["message"]["id"])
            elif line.get("type") == "response_item" and line["payload"].get("role") == "assistant":
                ids.add(line["payload"]["id"].replace("msg_", "resp_", 1))
    texts = {r["id"] for r in truth["responses"] if r["text"] or fixture == "claude-code"}
    assert ids == texts
