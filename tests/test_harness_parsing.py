"""The CLI stream parsers on recorded output of the real CLIs (tests/fixtures/harness, made by
`python -m tests.make_harness_fixtures`); the truth is what the fake provider answered (expected.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from api.adapters.harness import HarnessError, ToolCall, ToolResult, TurnResult, context
from api.adapters.harness.claude_stream import ClaudeStream
from api.adapters.harness.codex_stream import CodexStream
from ingest.pricing import price

FIXTURES = Path(__file__).parent / "fixtures" / "harness"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
PARSERS = {"claude-code": ClaudeStream, "codex": CodexStream}


def lines(name: str) -> list[str]:
    """One recorded process's stdout."""
    return (FIXTURES / name).read_text().splitlines()


def parse(harness: str, turn: int, previous: dict[str, Any] | None = None, *, drop: str = "") -> list[Any]:
    """Every item the parser gives for a recorded turn, the result last."""
    parser = PARSERS[harness](EXPECTED[harness]["model"], previous)
    items = [
        item
        for line in lines(f"{harness}-{turn}.jsonl")
        if drop not in line or not drop
        for item in parser.feed(line)
    ]
    assert parser.finish() is items[-1]
    return items


def answers(harness: str, *numbers: int) -> dict[str, int]:
    """What the fake provider said these answers used; input counts the cache, as litellm does."""
    picked = [EXPECTED[harness]["answers"][n] for n in numbers]
    total = {
        k: sum(a[k] for a in picked)
        for k in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    }
    if harness == "claude-code":  # the Messages API counts input without the cache; the Responses API with it
        total["input_tokens"] += total["cache_read_tokens"] + total["cache_write_tokens"]
    return total


def usage_of(result: TurnResult) -> dict[str, int | None]:
    u = result.usage
    return {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_read_tokens": u.cache_read_tokens,
        "cache_write_tokens": u.cache_write_tokens,
    }


def priced(harness: str, tokens: dict[str, int]) -> float | None:
    t = tokens
    return price(
        EXPECTED[harness]["model"],
        t["input_tokens"],
        t["output_tokens"],
        t["cache_read_tokens"],
        t["cache_write_tokens"],
    )


@pytest.mark.parametrize("harness", PARSERS)
def test_a_turn_with_a_tool_call(harness: str) -> None:
    """Text as it streams, the shell call and its output, the final answer, usage, cost and the CLI's id."""
    items = parse(harness, 1)
    result = items[-1]
    said = "".join(i for i in items if isinstance(i, str))
    first, second = (a["text"] for a in EXPECTED[harness]["answers"][:2])
    assert said == f"{first}\n\n{second}"
    assert result.text == second
    calls = [i for i in items if isinstance(i, ToolCall)]
    results = [i for i in items if isinstance(i, ToolResult)]
    assert len(calls) == len(results) == 1
    assert calls[0].call_id == results[0].call_id
    assert "hello.txt" in json.dumps(calls[0].input)
    assert results[0].output.strip() == "hi" and not results[0].is_error
    assert items.index(calls[0]) < items.index(results[0]) < len(items) - 1
    assert usage_of(result) == answers(harness, 0, 1)
    assert result.cost_usd == pytest.approx(priced(harness, answers(harness, 0, 1)), rel=1e-9)
    assert result.model == EXPECTED[harness]["model"]
    assert result.session_ref and result.cli["session_id"] == result.session_ref


@pytest.mark.parametrize("harness", PARSERS)
def test_a_resumed_turn_counts_only_its_own_usage_and_cost(harness: str) -> None:
    """Both CLIs report running totals over the resumed session somewhere; a turn is charged its own share."""
    first = parse(harness, 1)[-1]
    second = parse(harness, 2, first.cli)[-1]
    assert second.session_ref == first.session_ref
    assert second.text == EXPECTED[harness]["answers"][2]["text"]
    assert usage_of(second) == answers(harness, 2)
    assert second.cost_usd == pytest.approx(priced(harness, answers(harness, 2)), rel=1e-9)


def test_codex_reports_the_threads_usage_so_far() -> None:
    """Without the last turn's total a resumed Codex turn is the whole thread: so `cli.usage_total`."""
    second = parse("codex", 2)[-1]
    assert usage_of(second) == answers("codex", 0, 1, 2)


def test_claude_without_partial_messages_streams_whole_blocks() -> None:
    """Without `--include-partial-messages` lines, each text block reaches the caller whole, nothing twice."""
    items = parse("claude-code", 1, drop='"type":"stream_event"')
    first, second = (a["text"] for a in EXPECTED["claude-code"]["answers"][:2])
    assert [i for i in items if isinstance(i, str)] == [first, f"\n\n{second}"]


def test_claude_cost_falls_back_to_the_running_total_then_to_the_price_map() -> None:
    """An older CLI without the per-run figures: the difference of totals, else litellm's price."""
    first = parse("claude-code", 1)[-1]
    drop = "model_usage_since_last_result"
    recorded = [json.loads(line) for line in lines("claude-code-2.jsonl")]
    for r in recorded:
        r.pop(drop, None)
    for previous, expect in (
        (first.cli, priced("claude-code", answers("claude-code", 2))),
        ({"session_id": "x"}, None),
    ):
        parser = ClaudeStream("anthropic/claude-sonnet-4-6", previous)
        for r in recorded:
            parser.feed(json.dumps(r))
        cost = parser.finish().cost_usd
        if expect is None:  # no usable total: priced from the tokens
            expect = priced("claude-code", answers("claude-code", 2))
        assert cost == pytest.approx(expect, rel=1e-9)


@pytest.mark.parametrize(("harness", "says"), [("claude-code", "API 500"), ("codex", "failed on purpose")])
def test_a_failed_turn_is_an_error(harness: str, says: str) -> None:
    """The provider refused: Claude Code's `is_error` result, Codex's `turn.failed`."""
    with pytest.raises(HarnessError, match=says) as caught:
        parse(harness, 3)
    assert caught.value.status == "error"


@pytest.mark.parametrize("harness", PARSERS)
def test_a_malformed_line_is_an_error(harness: str) -> None:
    parser = PARSERS[harness]("m", None)
    parser.feed("")  # blank lines are nothing
    for bad in ("not json", "[1, 2]", '{"no": "type"}', '{"type": "result", "broken'):
        with pytest.raises(HarnessError, match="malformed line"):
            parser.feed(bad)


@pytest.mark.parametrize("harness", PARSERS)
def test_output_that_stops_before_the_result_is_an_error(harness: str) -> None:
    recorded = lines(f"{harness}-1.jsonl")
    parser = PARSERS[harness](EXPECTED[harness]["model"], None)
    for line in recorded[:-1]:
        parser.feed(line)
    with pytest.raises(HarnessError, match="without"):
        parser.finish()


def test_codex_usage_that_restarts_counts_whole() -> None:
    """A total below the last one means Codex counted afresh: it is all this turn's."""
    parser = CodexStream("openai/gpt-5.5", {"session_id": "t", "usage_total": [9000, 0, 0, 900, 0]})
    parser.feed('{"type":"item.completed","item":{"id":"i","type":"agent_message","text":"ok"}}')
    parser.feed(
        '{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":2,"output_tokens":3}}'
    )
    result = parser.finish()
    assert usage_of(result) == {
        "input_tokens": 10,
        "output_tokens": 3,
        "cache_read_tokens": 2,
        "cache_write_tokens": 0,
    }


def test_codex_file_changes_and_failed_commands_are_tool_calls() -> None:
    """Items that complete without a start still give a call, then a result; a non-zero exit is an error."""
    parser = CodexStream("openai/gpt-5.5")
    change = {
        "id": "f",
        "type": "file_change",
        "changes": [{"path": "a.py", "kind": "add"}],
        "status": "completed",
    }
    failed = {
        "id": "c",
        "type": "command_execution",
        "command": "false",
        "aggregated_output": "",
        "exit_code": 1,
    }
    items = [*parser.feed(json.dumps({"type": "item.completed", "item": change}))]
    items += parser.feed(json.dumps({"type": "item.started", "item": {**failed, "exit_code": None}}))
    items += parser.feed(json.dumps({"type": "item.completed", "item": failed}))
    items += parser.feed(
        json.dumps({"type": "item.completed", "item": {"id": "r", "type": "reasoning", "text": "hm"}})
    )
    kinds = [(type(i).__name__, i.call_id) for i in items]
    assert kinds == [("ToolCall", "f"), ("ToolResult", "f"), ("ToolCall", "c"), ("ToolResult", "c")]
    assert items[0].name == "apply_patch" and items[2].name == "shell"
    assert not items[1].is_error and items[3].is_error


def test_the_hand_over_prompt() -> None:
    """What a CLI is sent: unseen messages in the documented block, then the turn; newest kept when long."""
    earlier = [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Paris."}]},
    ]
    turn = [{"role": "user", "content": "How many live there?"}]
    assert context.prompt([], turn) == "How many live there?"
    assert context.prompt(earlier, turn) == (
        "<conversation_so_far>\n" + context.INTRO + "\n\n[user]\nWhat is the capital of France?\n\n"
        "[assistant]\nParis.\n</conversation_so_far>\n\nHow many live there?"
    )
    many = [{"role": "user", "content": f"message {n} " + "é" * 10_000} for n in range(30)]
    sent = context.prompt(many, turn)
    assert len(sent.encode()) <= context.MAX_PROMPT_BYTES
    kept = [n for n in range(30) if f"message {n} " in sent]
    assert kept == list(range(30 - len(kept), 30)) and 0 < len(kept) < 30  # the newest, in order
    assert f"({30 - len(kept)} older messages left out.)" in sent
    assert sent.endswith("How many live there?")
    assert not context.too_long(turn)
    assert context.too_long([{"role": "user", "content": "x" * (context.MAX_PROMPT_BYTES + 1)}])
