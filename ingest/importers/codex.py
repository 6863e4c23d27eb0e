"""Codex CLI rollouts: `~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<session uuid>.jsonl`.

Lines are `{timestamp, type, payload}`: `session_meta` opens the session (`forked_from_id`,
or a sub-agent's `source.subagent.thread_spawn.parent_thread_id`, names a parent),
`turn_context` sets the model for what follows, `response_item` carries messages, reasoning,
tool calls and their outputs, and `event_msg` of type `token_count` closes one model
response with its usage: one `run.completed` each. `total_token_usage` is cumulative, so
a response's tokens are `last_token_usage`, or the difference of totals where an older
rollout has no `last_token_usage`; a `token_count` repeating the previous total (sent when
only rate limits changed) is skipped. Newer versions also write a `token_usage_record`
with the same usage just before: only its `response_id` is kept, as the run's id (else
`<session>:run-<n>`). The
other `event_msg` types, `world_state` and `compacted` repeat what the response items hold
and are skipped. User messages Codex writes itself (`<environment_context>`, instructions;
newer versions tag typed prompts `user.text`) are recorded as system messages.

The oldest rollouts have no envelope: a first line `{id, timestamp, instructions}`, then
bare response items and `{"record_type": "state"}` lines, none with a timestamp (they get
the session's start plus a microsecond per line, to keep their order).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from ingest.importers.base import (
    Events,
    Malformed,
    Origin,
    Tally,
    count,
    dumps,
    latency_ms,
    litellm_model,
    timestamp,
)

NAME = "codex"
ROLLOUT_TYPES = frozenset(
    {"session_meta", "response_item", "compacted", "turn_context", "event_msg", "token_usage_record"}
)
CALLS = frozenset(
    {
        "function_call",
        "custom_tool_call",
        "local_shell_call",
        "web_search_call",
        "tool_search_call",
        "image_generation_call",
    }
)
OUTPUTS = frozenset({"function_call_output", "custom_tool_call_output", "tool_search_output"})
ITEMS = CALLS | OUTPUTS | {"message", "reasoning"}
ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
# Codex's provider ids as litellm spells them; any other id is an OpenAI-compatible endpoint
# configured by the user, which litellm calls `openai/<model>`.
PROVIDERS = {
    "openai": "openai",
    "oss": "ollama",
    "ollama": "ollama",
    "lmstudio": "lm_studio",
    "azure": "azure",
    "openrouter": "openrouter",
    "mistral": "mistral",
    "gemini": "gemini",
    "anthropic": "anthropic",
}
CONTEXT = ("session", "parent", "created", "provider", "model", "total", "runs", "legacy_ts", "response_id")
CONTEXT += ("asked", "started", "answered")
# User messages that Codex writes itself (context it injects), recorded as system messages.
INJECTED = (
    "<environment_context>",
    "<user_instructions>",
    "<skills_instructions>",
    "# AGENTS.md instructions",
)
_UUID = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
_USAGE = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens")


class Codex:
    """The `codex` source."""

    name = NAME
    creates_sessions = True

    def discover(self, root: Path) -> list[Path]:
        """`rollout-*.jsonl` under `root/sessions` and `root/archived_sessions` (for ~/.codex) or `root`."""
        if root.is_file():
            return [root]
        bases = [root / d for d in ("sessions", "archived_sessions") if (root / d).is_dir()] or [root]
        return sorted(p for base in bases for p in base.rglob("rollout-*.jsonl") if p.is_file())

    def whole_document(self, path: Path) -> bool:
        """Codex appends lines."""
        return False

    def parser(self, path: Path, origin: Origin, tally: Tally, context: dict[str, Any] | None) -> _Parser:
        """A parser for one rollout file."""
        return _Parser(path, origin, tally, context or {})


class _Parser:
    def __init__(self, path: Path, origin: Origin, tally: Tally, context: dict[str, Any]):
        self.events = Events(NAME, path, origin)
        self.tally = tally
        match = _UUID.search(path.stem)
        self.session: str = context.get("session") or (match.group(1) if match else path.stem)
        self.parent: str | None = context.get("parent")
        self.created: bool = context.get("created", False)
        self.provider: str = context.get("provider", "openai")
        self.model: str | None = context.get("model")
        self.total: list[int] | None = context.get("total")
        self.runs: int = context.get("runs", 0)
        # For latency: when the latest input arrived, when the open run's first output came, its last.
        self.asked: str | None = context.get("asked")
        self.started: str | None = context.get("started")
        self.answered: str | None = context.get("answered")
        self.legacy_ts: str | None = context.get("legacy_ts")
        self.response_id: str | None = context.get("response_id")

    def context(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in CONTEXT}

    def finish(self) -> list[dict[str, Any]]:
        return []

    def feed(self, record: dict[str, Any], line: int) -> list[dict[str, Any]]:
        kind = record.get("type")
        if "payload" in record and isinstance(kind, str):
            if kind not in ROLLOUT_TYPES:
                self.tally.skip(kind)
                return []
            payload = record["payload"]
            if not isinstance(payload, dict):
                raise Malformed(f"{kind} payload is not an object")
            return self._rollout(kind, payload, timestamp(record.get("timestamp")), line)
        if "record_type" in record:
            self.tally.skip(f"record_type:{record['record_type']}")
            return []
        if kind is None and "id" in record and "timestamp" in record:  # the oldest format's first line
            self.legacy_ts = timestamp(record["timestamp"]).isoformat()
            return self._meta(record, timestamp(record["timestamp"]), line)
        if kind in ITEMS:  # the oldest format: bare response items without timestamps
            if self.legacy_ts is None:
                raise Malformed(f"{kind} item before any session line")
            return self._item(record, timestamp(self.legacy_ts) + dt.timedelta(microseconds=line), line)
        if isinstance(kind, str):
            self.tally.skip(kind)
            return []
        raise Malformed("no record type")

    def _rollout(
        self, kind: str, payload: dict[str, Any], ts: dt.datetime, line: int
    ) -> list[dict[str, Any]]:
        if kind == "session_meta":
            return self._meta(payload, ts, line)
        if kind == "turn_context":
            self.model = payload.get("model") or self.model
            return []
        if kind == "response_item":
            return self._item(payload, ts, line)
        if kind == "event_msg" and payload.get("type") == "token_count":
            return self._tokens(payload, ts, line)
        if kind == "token_usage_record":  # the same usage as the token_count that follows; keep its id
            self.response_id = payload.get("response_id")
        self.tally.skip(f"{kind}:{payload['type']}" if isinstance(payload.get("type"), str) else kind)
        return []

    def _meta(self, meta: dict[str, Any], ts: dt.datetime, line: int) -> list[dict[str, Any]]:
        if not isinstance(meta.get("id"), str):
            raise Malformed("session_meta without an id")
        if self.created:
            self.tally.skip("session_meta:again")
            return []
        self.session = meta["id"]
        self.parent = meta.get("forked_from_id") or _spawned_by(meta.get("source"))
        self.provider = PROVIDERS.get(meta.get("model_provider") or "openai", "openai")
        self.model = meta.get("model") or self.model
        keys = (
            "cwd",
            "originator",
            "cli_version",
            "source",
            "git",
            "forked_from_id",
            "agent_nickname",
            "agent_role",
        )
        attrs = {"session_id": self.session, **{k: meta[k] for k in keys if meta.get(k) is not None}}
        return self._open(timestamp(meta["timestamp"]) if meta.get("timestamp") else ts, line, attrs)

    def _open(self, ts: dt.datetime, line: int, attrs: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        if self.created:
            return []
        self.created = True
        return [
            self.events.make(
                "session.created",
                f"codex:{self.session}:created",
                ts,
                self.session,
                line,
                attrs,
                parent_session_id=self.parent,
            )
        ]

    def _item(self, item: dict[str, Any], ts: dt.datetime, line: int) -> list[dict[str, Any]]:
        kind = item.get("type")
        if kind == "message":
            role = ROLES.get(item.get("role"))  # type: ignore[arg-type]
            if role is None:
                raise Malformed(f"message with an unknown role {item.get('role')!r}")
            text = _text(item.get("content"))
            if role == "user" and _injected(item, text):
                role = "system"
            if role == "user":
                self.asked = ts.isoformat()
            elif role == "assistant":
                self._answering(ts)
            return self._message(ts, line, role, text, item)
        if kind == "reasoning":
            text = _reasoning(item)
            if not text:
                self.tally.skip("response_item:reasoning (encrypted)")
                return []
            self._answering(ts)
            return self._message(ts, line, "assistant", dumps([{"type": "reasoning", "text": text}]), item)
        if kind in CALLS:
            self._answering(ts)
            return [*self._message(ts, line, "assistant", dumps([item]), item), self._call(item, ts, line)]
        if kind in OUTPUTS:
            self.asked = ts.isoformat()
            output = item.get("output")
            text = output if isinstance(output, str) else dumps(output)
            return [*self._message(ts, line, "tool", text, item), self._result(item, text, ts, line)]
        self.tally.skip(f"response_item:{kind}")
        return []

    def _answering(self, ts: dt.datetime) -> None:
        """An output of the open run: its first marks when the model was asked (the latest input)."""
        if self.started is None:
            self.started = self.asked
        self.answered = ts.isoformat()

    def _message(
        self, ts: dt.datetime, line: int, role: str, text: str, item: dict[str, Any]
    ) -> list[dict[str, Any]]:
        attrs = {k: item[k] for k in ("id", "call_id", "type", "phase") if item.get(k) is not None}
        responding = role == "assistant"
        return [
            *self._open(ts, line),
            self.events.make(
                "message",
                f"codex:{self.session}:{line}",
                ts,
                self.session,
                line,
                attrs,
                parent_session_id=self.parent,
                model=self._model() if responding else None,
                role=role,
                content=text,
            ),
        ]

    def _call(self, item: dict[str, Any], ts: dt.datetime, line: int) -> dict[str, Any]:
        call = {k: item[k] for k in ("name", "arguments", "input", "action", "execution") if k in item}
        return self.events.make(
            "tool.call",
            f"codex:{self.session}:{line}:tool",
            ts,
            self.session,
            line,
            {
                "call_id": item.get("call_id") or item.get("id"),
                "name": item.get("name"),
                "type": item.get("type"),
            },
            parent_session_id=self.parent,
            model=self._model(),
            content=dumps(call),
        )

    def _result(self, item: dict[str, Any], text: str, ts: dt.datetime, line: int) -> dict[str, Any]:
        output = item.get("output")
        failed = isinstance(output, dict) and output.get("success") is False
        return self.events.make(
            "tool.result",
            f"codex:{self.session}:{line}:tool",
            ts,
            self.session,
            line,
            {"call_id": item.get("call_id"), "type": item.get("type")},
            parent_session_id=self.parent,
            content=text,
            status="error" if failed else "ok",
        )

    def _tokens(self, payload: dict[str, Any], ts: dt.datetime, line: int) -> list[dict[str, Any]]:
        info = payload.get("info")
        if not isinstance(info, dict):
            self.tally.skip("event_msg:token_count (no usage)")
            return []
        total = _usage(info.get("total_token_usage"))
        last = _usage(info.get("last_token_usage"))
        if total is not None and total == self.total:
            self.tally.skip("event_msg:token_count (repeat)")
            return []
        if last is None:
            if total is None:
                raise Malformed("token_count without total_token_usage or last_token_usage")
            before = self.total or [0] * len(_USAGE)
            grew = all(now >= then for now, then in zip(total, before))
            # a total below the last one means counting restarted (a new process): it is all new
            last = [now - then for now, then in zip(total, before)] if grew else total
        self.total = total or self.total
        if not any(last):
            self.tally.skip("event_msg:token_count (zero)")
            return []
        run_id = self.response_id or f"{self.session}:run-{self.runs}"
        attrs = {
            "response_id": self.response_id,
            "reasoning_output_tokens": last[3],
            "total_tokens": last[4],
            "model_context_window": info.get("model_context_window"),
        }
        took = self._took()
        self.runs += 1
        self.started = self.answered = self.response_id = None
        return [
            *self._open(ts, line),
            self.events.make(
                "run.completed",
                f"codex:{self.session}:{line}",
                ts,
                self.session,
                line,
                attrs,
                parent_session_id=self.parent,
                run_id=run_id,
                model=self._model(),
                input_tokens=last[0],
                cache_read_tokens=last[1],
                output_tokens=last[2],
                latency_ms=took,
                status="ok",
            ),
        ]

    def _took(self) -> float | None:
        """The open run's latency: from the input it answered to its last output."""
        if self.started is None or self.answered is None:
            return None
        return latency_ms(timestamp(self.started), timestamp(self.answered))

    def _model(self) -> str | None:
        return litellm_model(self.model, self.provider)


def _spawned_by(source: Any) -> str | None:
    """The parent thread of a sub-agent: `{"subagent": {"thread_spawn": {"parent_thread_id": …}}}`."""
    if not isinstance(source, dict):
        return None
    spawn = (
        (source.get("subagent") or {}).get("thread_spawn")
        if isinstance(source.get("subagent"), dict)
        else None
    )
    return spawn.get("parent_thread_id") if isinstance(spawn, dict) else None


def _injected(item: dict[str, Any], text: str) -> bool:
    """A user message Codex wrote itself: newer versions tag a typed prompt's content `user.text`."""
    metadata = item.get("internal_chat_message_metadata_passthrough")
    kinds = metadata.get("content_item_kinds") if isinstance(metadata, dict) else None
    if isinstance(kinds, list) and kinds:
        return "user.text" not in kinds
    return text.lstrip().startswith(INJECTED)


def _usage(value: Any) -> list[int] | None:
    return [count(value.get(k)) for k in _USAGE] if isinstance(value, dict) else None


def _text(content: Any) -> str:
    """Text of a message's content items; the items as JSON when any is not text (an image, say)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise Malformed("message content is neither text nor a list of items")
    if all(isinstance(c, dict) and isinstance(c.get("text"), str) for c in content):
        return "\n".join(c["text"] for c in content)
    return dumps(content)


def _reasoning(item: dict[str, Any]) -> str:
    parts = [*(item.get("summary") or []), *(item.get("content") or [])]
    return "\n".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
