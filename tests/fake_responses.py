"""The OpenAI Responses API wire format (`POST /v1/responses`), as recent `codex` versions speak it.

Pure functions, no I/O; `tests/fake_provider.py` serves what these build. The shapes are those codex's SSE
parser reads (codex-rs `codex-api/src/sse/responses.rs`): every event is `event: <type>` + `data: {"type":
<type>, ...}`; codex acts on `response.created`, `response.output_item.added`, `response.output_text.delta`,
`response.output_item.done` (the finished item: an assistant `message` or a `function_call`) and
`response.completed`, whose `response.usage` it turns into token counts, and it fails a stream that ends
without `response.completed`. The other events (`response.in_progress`, `content_part.*`,
`output_text.done`, `function_call_arguments.*`) are sent as the real API sends them.

Usage: `input_tokens` (cached ones included, as OpenAI counts them), `input_tokens_details.cached_tokens`
(the fake's cache read count), `output_tokens`, `output_tokens_details.reasoning_tokens` (always 0) and
`total_tokens` = input + output.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from tests.fake_wire import SseEvent, ToolCall, split_json, split_reply


def usage_object(usage: tuple[int, int], cache: tuple[int, int]) -> dict[str, Any]:
    """A Responses API `usage` object."""
    return {
        "input_tokens": usage[0],
        "input_tokens_details": {"cached_tokens": cache[0]},
        "output_tokens": usage[1],
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": sum(usage),
    }


def _message_item(rid: str, text: str) -> dict[str, Any]:
    return {
        "id": f"msg_{rid}",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def _function_call_item(index: int, rid: str, call: ToolCall) -> dict[str, Any]:
    return {
        "id": f"fc_{rid}_{index}",
        "type": "function_call",
        "status": "completed",
        "name": call.name,
        "arguments": call.arguments_json,
        "call_id": call.id,
    }


def output_items(rid: str, text: str, tool_calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """The `output` list: an assistant message (left out when empty and there are calls), then the calls."""
    items = [_message_item(rid, text)] if text or not tool_calls else []
    return items + [_function_call_item(n, rid, call) for n, call in enumerate(tool_calls, 1)]


def _response(
    rid: str, model: str, status: str, output: list[Any], usage: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "id": f"resp_{rid}",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }


def response(
    rid: str,
    model: str,
    text: str,
    usage: tuple[int, int],
    cache: tuple[int, int],
    tool_calls: Sequence[ToolCall] = (),
) -> dict[str, Any]:
    """A completed `response` object (the non-streaming answer)."""
    return _response(rid, model, "completed", output_items(rid, text, tool_calls), usage_object(usage, cache))


def _item_events(index: int, item: dict[str, Any]) -> list[dict[str, Any]]:
    """The events that stream one output item, from `output_item.added` to `output_item.done`."""
    if item["type"] == "message":
        text = item["content"][0]["text"]
        empty_part = {"type": "output_text", "text": "", "annotations": []}
        at = {"item_id": item["id"], "output_index": index, "content_index": 0}
        events = [
            {"type": "response.output_item.added", "output_index": index, "item": {**item, "content": []}},
            {"type": "response.content_part.added", **at, "part": empty_part},
        ]
        events += [{"type": "response.output_text.delta", **at, "delta": p} for p in split_reply(text)]
        events += [
            {"type": "response.output_text.done", **at, "text": text},
            {"type": "response.content_part.done", **at, "part": item["content"][0]},
        ]
    else:
        at = {"item_id": item["id"], "output_index": index}
        opening = {**item, "status": "in_progress", "arguments": ""}
        events = [{"type": "response.output_item.added", "output_index": index, "item": opening}]
        events += [
            {"type": "response.function_call_arguments.delta", **at, "delta": piece}
            for piece in split_json(item["arguments"])
        ]
        events.append({"type": "response.function_call_arguments.done", **at, "arguments": item["arguments"]})
    return [*events, {"type": "response.output_item.done", "output_index": index, "item": item}]


def stream(
    rid: str,
    model: str,
    text: str,
    usage: tuple[int, int],
    cache: tuple[int, int],
    tool_calls: Sequence[ToolCall] = (),
) -> list[SseEvent]:
    """The streamed events: created, in_progress, each output item's events, completed (with usage)."""
    items = output_items(rid, text, tool_calls)
    pending = _response(rid, model, "in_progress", [], None)
    events = [
        {"type": "response.created", "response": pending},
        {"type": "response.in_progress", "response": pending},
    ]
    for index, item in enumerate(items):
        events += _item_events(index, item)
    events.append(
        {"type": "response.completed", "response": response(rid, model, text, usage, cache, tool_calls)}
    )
    return [
        (event["type"], json.dumps({**event, "sequence_number": n}, separators=(",", ":")))
        for n, event in enumerate(events)
    ]
