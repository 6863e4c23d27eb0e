"""Wire formats for the fake LLM provider: request parsing and response payloads per provider.

Pure functions, no I/O. `tests/fake_provider.py` serves what these build. Shapes follow the public APIs:

- OpenAI chat completions (`/v1/chat/completions`): a `chat.completion` object, or `chat.completion.chunk`
  SSE data lines ending with `data: [DONE]`.
- Anthropic messages (`/v1/messages`): a `message` object, or the event sequence `message_start`,
  `content_block_start`, `ping`, `content_block_delta` x N, `content_block_stop`, `message_delta`,
  `message_stop`, each as `event: <type>` + `data: {...}`.
- Gemini (`/v1beta/models/{model}:generateContent` / `:streamGenerateContent?alt=sse`): a
  `GenerateContentResponse`, or one per SSE data line, `usageMetadata` on each, `finishReason` on the last.

A reply may carry tool calls (`Reply.tool_calls`, ids already resolved by the caller): Anthropic `tool_use`
blocks after the text block (streamed as `input_json_delta`s, `stop_reason: "tool_use"`), OpenAI
`message.tool_calls` (streamed as `delta.tool_calls`, `finish_reason: "tool_calls"`), Gemini `functionCall`
parts. The OpenAI Responses API lives in `tests/fake_responses.py`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Provider = Literal["openai", "anthropic", "gemini", "openai-responses"]

# An SSE event as (event name or None, data text).
SseEvent = tuple[str | None, str]

_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_ANTHROPIC_ERROR_TYPE = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_OPENAI_ERROR = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


@dataclass(frozen=True)
class ToolCall:
    """A tool call in a scripted reply; `id` is generated per provider when None."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    @property
    def arguments_json(self) -> str:
        """The arguments as the JSON text OpenAI puts on the wire."""
        return json.dumps(self.arguments)


@dataclass(frozen=True)
class Reply:
    """A scripted reply: text, tool calls, and optionally its own token counts.

    `usage` is (input, output) and `cache` is (read, creation) tokens; None defers to the fake's settings.
    """

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: tuple[int, int] | None = None
    cache: tuple[int, int] | None = None


def tool_call_ids(calls: Sequence[ToolCall], prefix: str, rid: str) -> tuple[ToolCall, ...]:
    """The calls with missing ids filled in as `{prefix}{rid}_{n}` (n from 1)."""
    return tuple(
        call if call.id else ToolCall(call.name, call.arguments, f"{prefix}{rid}_{n}")
        for n, call in enumerate(calls, 1)
    )


def _texts(node: Any) -> Iterator[str]:
    """Every string under a `text` or `content` key, at any depth, in document order (a bare string too)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                if key in ("text", "content"):
                    yield value
            else:
                yield from _texts(value)


def transcript(provider: Provider, body: dict[str, Any]) -> list[Any]:
    """The transcript part of a request body: system prompt and messages, in the provider's own shape."""
    if provider == "openai":
        return list(body.get("messages") or [])
    if provider == "anthropic":
        system = body.get("system")
        return ([{"role": "system", "content": system}] if system else []) + list(body.get("messages") or [])
    if provider == "openai-responses":
        return _responses_transcript(body)
    system = body.get("systemInstruction") or body.get("system_instruction")
    return ([system] if system else []) + list(body.get("contents") or [])


def _responses_transcript(body: dict[str, Any]) -> list[Any]:
    """Responses API `instructions` + `input` items; a tool's output counts as a user turn's content."""
    items = body.get("input") or []
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    turns = [{"role": "system", "content": body["instructions"]}] if body.get("instructions") else []
    for item in items:
        if isinstance(item, dict) and item.get("type") == "function_call_output":
            turns.append({"role": "user", "content": item.get("output")})
        else:
            turns.append(item)
    return turns


def input_words(provider: Provider, body: dict[str, Any]) -> int:
    """Whitespace-separated words in every text of the transcript (system prompt included)."""
    return sum(len(text.split()) for text in _texts(transcript(provider, body)))


def last_user_text(provider: Provider, body: dict[str, Any]) -> str:
    """Text of the last user turn (for Anthropic/Gemini tool results, the result text), or ""."""
    if provider == "openai-responses":
        turns = _responses_transcript(body)
    else:
        turns = body.get("contents") if provider == "gemini" else body.get("messages")
    for turn in reversed(turns or []):
        if isinstance(turn, dict) and turn.get("role") == "user":
            return " ".join(_texts(turn.get("parts") if provider == "gemini" else turn.get("content")))
    return ""


def split_reply(text: str) -> list[str]:
    """The reply in streamed pieces: one word plus its trailing whitespace each; joined they are `text`."""
    return re.findall(r"\s*\S+\s*", text) or [text]


def split_json(text: str) -> list[str]:
    """A JSON text in two streamed pieces (one when it is short); joined they are `text`."""
    half = len(text) // 2
    return [text[:half], text[half:]] if half else [text]


def sse(events: list[SseEvent]) -> list[bytes]:
    """Encode events as SSE frames (`event:` line when named, `data:` line, blank line)."""
    out = []
    for name, data in events:
        head = f"event: {name}\n" if name else ""
        out.append(f"{head}data: {data}\n\n".encode())
    return out


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


# --- OpenAI chat completions ------------------------------------------------------------------------------


def _openai_usage(usage: tuple[int, int]) -> dict[str, int]:
    return {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}


def _openai_tool_call(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments_json},
    }


def openai_response(
    rid: str, model: str, text: str, usage: tuple[int, int], tool_calls: Sequence[ToolCall] = ()
) -> dict[str, Any]:
    """A `chat.completion` object."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if tool_calls:
        message.update(content=text or None, tool_calls=[_openai_tool_call(c) for c in tool_calls])
    return {
        "id": f"chatcmpl-{rid}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            }
        ],
        "usage": _openai_usage(usage),
    }


def openai_stream(
    rid: str,
    model: str,
    text: str,
    usage: tuple[int, int],
    include_usage: bool,
    tool_calls: Sequence[ToolCall] = (),
) -> list[SseEvent]:
    """`chat.completion.chunk` events: role, content and tool call deltas, finish, usage chunk, `[DONE]`."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None) -> str:
        body: dict[str, Any] = {
            "id": f"chatcmpl-{rid}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            body["usage"] = None
        return _dump(body)

    events: list[SseEvent] = [(None, chunk({"role": "assistant", "content": "", "refusal": None}, None))]
    if text or not tool_calls:
        events += [(None, chunk({"content": piece}, None)) for piece in split_reply(text)]
    for index, call in enumerate(tool_calls):
        head = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        events.append((None, chunk({"tool_calls": [head]}, None)))
        for piece in split_json(call.arguments_json):
            part = {"index": index, "function": {"arguments": piece}}
            events.append((None, chunk({"tool_calls": [part]}, None)))
    events.append((None, chunk({}, "tool_calls" if tool_calls else "stop")))
    if include_usage:
        tail = {
            "id": f"chatcmpl-{rid}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [],
            "usage": _openai_usage(usage),
        }
        events.append((None, _dump(tail)))
    events.append((None, "[DONE]"))
    return events


# --- Anthropic --------------------------------------------------------------------------------------------


def _anthropic_usage(usage: tuple[int, int], cache: tuple[int, int]) -> dict[str, Any]:
    return {
        "input_tokens": usage[0],
        "cache_creation_input_tokens": cache[1],
        "cache_read_input_tokens": cache[0],
        "output_tokens": usage[1],
    }


def _anthropic_blocks(text: str, tool_calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """A text block (left out when empty and there are tool calls), then one `tool_use` block per call."""
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text or not tool_calls else []
    blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in tool_calls]
    return blocks


def anthropic_response(
    rid: str,
    model: str,
    text: str,
    usage: tuple[int, int],
    cache: tuple[int, int],
    tool_calls: Sequence[ToolCall] = (),
) -> dict[str, Any]:
    """A `message` object: a text block and any `tool_use` blocks."""
    return {
        "id": f"msg_{rid}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _anthropic_blocks(text, tool_calls),
        "stop_reason": "tool_use" if tool_calls else "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(usage, cache),
    }


def anthropic_stream(
    rid: str,
    model: str,
    text: str,
    usage: tuple[int, int],
    cache: tuple[int, int],
    tool_calls: Sequence[ToolCall] = (),
) -> list[SseEvent]:
    """The Messages streaming event sequence; input tokens at `message_start`, output at `message_delta`."""
    start = anthropic_response(rid, model, "", (usage[0], 1), cache)
    start.update(content=[], stop_reason=None)
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]
    for index, block in enumerate(_anthropic_blocks(text, tool_calls)):
        if block["type"] == "text":
            opening, deltas = (
                {"type": "text", "text": ""},
                [{"type": "text_delta", "text": p} for p in split_reply(text)],
            )
        else:
            opening = {**block, "input": {}}
            pieces = split_json(json.dumps(block["input"]))
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": opening})
        )
        if index == 0:
            events.append(("ping", {"type": "ping"}))
        for delta in deltas:
            events.append(
                ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events += [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use" if tool_calls else "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": usage[1]},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return [(name, _dump(data)) for name, data in events]


# --- Gemini -----------------------------------------------------------------------------------------------


def _gemini_body(
    rid: str, model: str, text: str, usage: tuple[int, int], finish: bool, tool_calls: Sequence[ToolCall] = ()
) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": text}] if text or not tool_calls else []
    parts += [{"functionCall": {"name": c.name, "args": c.arguments}} for c in tool_calls]
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = "STOP"
    return {
        "candidates": [candidate],
        "usageMetadata": {
            "promptTokenCount": usage[0],
            "candidatesTokenCount": usage[1],
            "totalTokenCount": sum(usage),
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": usage[0]}],
        },
        "modelVersion": model,
        "responseId": rid,
    }


def gemini_response(
    rid: str, model: str, text: str, usage: tuple[int, int], tool_calls: Sequence[ToolCall] = ()
) -> dict[str, Any]:
    """A `GenerateContentResponse` with one candidate (`functionCall` parts for tool calls)."""
    return _gemini_body(rid, model, text, usage, True, tool_calls)


def gemini_stream(
    rid: str, model: str, text: str, usage: tuple[int, int], tool_calls: Sequence[ToolCall] = ()
) -> list[SseEvent]:
    """One response per piece; candidate tokens cumulative, `usage[1]` and any tool calls on the last one."""
    pieces = split_reply(text)
    events: list[SseEvent] = []
    for i, piece in enumerate(pieces, 1):
        last = i == len(pieces)
        so_far = usage[1] if last else min(i, usage[1])
        body = _gemini_body(rid, model, piece, (usage[0], so_far), last, tool_calls if last else ())
        events.append((None, _dump(body)))
    return events


# --- Errors -----------------------------------------------------------------------------------------------


def error_body(provider: Provider, status: int, message: str) -> dict[str, Any]:
    """The provider's error JSON for an HTTP status."""
    if provider in ("openai", "openai-responses"):
        kind, code = _OPENAI_ERROR.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None)
        )
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}
    if provider == "anthropic":
        kind = _ANTHROPIC_ERROR_TYPE.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    return {"error": {"code": status, "message": message, "status": _GEMINI_STATUS.get(status, "UNKNOWN")}}
