"""Claude Code transcripts: `~/.claude/projects/<project>/<session>.jsonl`, and subagents.

Each `user` or `assistant` line becomes a `message` (role `tool` for a line of tool
results), each `tool_use` / `tool_result` block a `tool.call` / `tool.result`. Claude Code
writes one line per content block of a model response and repeats the response's usage
on each (older versions with `output_tokens` growing to its final value on the last): the
lines sharing a `message.id` are one `run.completed`, priced from the line with the most
output. A response seen again in a later import with more output adds a `usage` event
with the difference, so the session's sums stay right. Input tokens count the cache
reads and writes, as litellm does. Latency runs from the `api-request` line the response
answers (newer versions) or else the prompt line, to the response's last line.

Subagents are child sessions (`<session>:agent-<agentId>`): their files
(`<session>/subagents/agent-*.jsonl`, with an `agent-*.meta.json` beside it that the
child's `session.created` keeps, or `agent-*.jsonl` beside the session in 2.0.x) and, in
the oldest versions, `isSidechain` lines inside the session's own file
(`<session>:sidechain-<uuid of the chain's first line>`). Every other line type
(`attachment`, `api-request*`, `queue-operation`, `summary`, `system`, `cost-state`, …)
is counted as skipped, by type.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
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

NAME = "claude-code"
KEEP_COUNTED = 64  # responses whose usage is remembered, in case a later import sees more of them
KEEP_REQUESTS = 8
MAX_PENDING = 1024  # responses held back within one read of a file, before the older ones are settled
_LINE_IDS = ("uuid", "parentUuid", "sessionId", "agentId", "requestId", "isSidechain", "isMeta", "userType")


class ClaudeCode:
    """The `claude-code` source."""

    name = NAME
    creates_sessions = True

    def discover(self, root: Path) -> list[Path]:
        """`*.jsonl` under `root/projects` (for ~/.claude) or under `root`; or `root` itself."""
        if root.is_file():
            return [root]
        base = root / "projects" if (root / "projects").is_dir() else root
        return sorted(p for p in base.rglob("*.jsonl") if p.is_file())

    def whole_document(self, path: Path) -> bool:
        """Claude Code appends lines."""
        return False

    def parser(self, path: Path, origin: Origin, tally: Tally, context: dict[str, Any] | None) -> _Parser:
        """A parser for one transcript file."""
        return _Parser(path, origin, tally, context or {})


@dataclass
class _Response:
    key: str
    session: str
    parent: str | None
    tokens: list[int]  # input (cache included), output, cache read, cache write
    model: str | None
    ts: dt.datetime
    line: int
    uuid: str
    request_ts: dt.datetime | None
    attrs: dict[str, Any]


class _Parser:
    def __init__(self, path: Path, origin: Origin, tally: Tally, context: dict[str, Any]):
        self.events = Events(NAME, path, origin)
        self.tally = tally
        self.subagent = path.name.startswith("agent-")
        self.file_agent = path.stem.removeprefix("agent-")
        self.agent_meta = _agent_meta(path) if self.subagent else None
        # <session>/subagents/agent-x.jsonl names its parent session; older layouts only in lines
        self.file_session = path.parent.parent.name if path.parent.name == "subagents" else path.stem
        self.sessions: list[str] = context.get("sessions", [])
        self.roots: dict[str, str] = context.get("roots", {})
        self.counted: dict[str, list[int]] = context.get("counted", {})
        self.input_ts: str | None = context.get("input_ts")
        self.requests: dict[str, str] = context.get("requests", {})  # api-request id -> when it was sent
        self.pending: dict[str, _Response] = {}

    def context(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "roots": self.roots,
            "counted": self.counted,
            "input_ts": self.input_ts,
            "requests": self.requests,
        }

    def feed(self, record: dict[str, Any], line: int) -> list[dict[str, Any]]:
        kind = record.get("type")
        if kind in ("user", "assistant"):
            return self._entry(record, line, kind)
        if not isinstance(kind, str):
            raise Malformed("no record type")
        if kind == "api-request" and isinstance(record.get("id"), str):
            self._request_sent(record)
        self.tally.skip(f"{kind}:{record['subtype']}" if isinstance(record.get("subtype"), str) else kind)
        return []

    def _entry(self, record: dict[str, Any], line: int, kind: str) -> list[dict[str, Any]]:
        message = record.get("message")
        if not isinstance(message, dict):
            raise Malformed(f"{kind} line without a message object")
        ts = timestamp(record.get("timestamp"))
        uuid = str(record.get("uuid") or f"line-{line}")
        session, parent = self._session(record, uuid)
        content = message.get("content")
        role, text = _role_and_text(kind, content)
        is_response = kind == "assistant"
        model = litellm_model(message.get("model"), "anthropic") if is_response else None
        priced = model is not None and isinstance(message.get("usage"), dict)  # a run.completed will say so
        run_id = str(message.get("id") or f"line:{uuid}") if priced else None
        ids = {k: record[k] for k in _LINE_IDS if record.get(k) is not None}
        if is_response:
            ids |= {"message_id": message.get("id"), "stop_reason": message.get("stop_reason")}
        out = self._created(record, ts, session, parent, line)
        common = {"parent_session_id": parent, "run_id": run_id, "model": model}
        out.append(
            self.events.make(
                "message", f"cc:{session}:{uuid}", ts, session, line, ids, role=role, content=text, **common
            )
        )
        out += self._tools(content, ts, session, uuid, line, common)
        if priced:
            self._track_usage(message, record, ts, session, parent, uuid, line, run_id, model)
            if len(self.pending) > MAX_PENDING:  # a long file: settle all but the latest responses
                out += self._settle(keep=MAX_PENDING // 2)
        else:
            self.input_ts = ts.isoformat()
        return out

    def _request_sent(self, record: dict[str, Any]) -> None:
        """Newer versions log each API request: its time starts the latency of the response to it."""
        if isinstance(record.get("timestamp"), str):
            self.requests[record["id"]] = record["timestamp"]
            for old in list(self.requests)[:-KEEP_REQUESTS]:
                del self.requests[old]

    def _session(self, record: dict[str, Any], uuid: str) -> tuple[str, str | None]:
        """The session a line belongs to, and its parent when it is a subagent's."""
        main = str(record.get("sessionId") or self.file_session)
        agent = record.get("agentId")
        if self.subagent:
            return f"{main}:agent-{agent or self.file_agent}", main
        if not record.get("isSidechain"):
            return main, None
        if agent:
            return f"{main}:agent-{agent}", main
        parent_uuid = record.get("parentUuid")
        root = self.roots.get(parent_uuid, uuid) if isinstance(parent_uuid, str) else uuid
        self.roots[uuid] = root  # a chain starts at a line whose parent is not a sidechain line
        return f"{main}:sidechain-{root}", main

    def _created(
        self, record: dict[str, Any], ts: dt.datetime, session: str, parent: str | None, line: int
    ) -> list[dict[str, Any]]:
        if session in self.sessions:
            return []
        self.sessions.append(session)
        attrs = {k: record.get(k) for k in ("sessionId", "agentId", "cwd", "version", "gitBranch")}
        attrs["agent"] = self.agent_meta if parent is not None else None
        return [
            self.events.make(
                "session.created",
                f"cc:{session}:created",
                ts,
                session,
                line,
                {k: v for k, v in attrs.items() if v is not None},
                parent_session_id=parent,
            )
        ]

    def _tools(
        self, content: Any, ts: dt.datetime, session: str, uuid: str, line: int, common: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if not isinstance(content, list):
            return []
        out = []
        for k, block in enumerate(content):
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "tool_use":
                call = {"name": block.get("name"), "input": block.get("input")}
                attrs = {"tool_use_id": block.get("id"), "name": block.get("name"), "uuid": uuid}
                out.append(
                    self.events.make(
                        "tool.call",
                        f"cc:{session}:{uuid}:{k}",
                        ts,
                        session,
                        line,
                        attrs,
                        content=dumps(call),
                        **common,
                    )
                )
            elif kind == "tool_result":
                result = block.get("content")
                attrs = {"tool_use_id": block.get("tool_use_id"), "uuid": uuid}
                out.append(
                    self.events.make(
                        "tool.result",
                        f"cc:{session}:{uuid}:{k}",
                        ts,
                        session,
                        line,
                        attrs,
                        content=result if isinstance(result, str) else dumps(result),
                        status="error" if block.get("is_error") else "ok",
                        parent_session_id=common["parent_session_id"],
                    )
                )
        return out

    def _track_usage(
        self,
        message: dict[str, Any],
        record: dict[str, Any],
        ts: dt.datetime,
        session: str,
        parent: str | None,
        uuid: str,
        line: int,
        run_id: str | None,
        model: str | None,
    ) -> None:
        usage = message["usage"]
        cache_read, cache_write = (
            count(usage.get("cache_read_input_tokens")),
            count(usage.get("cache_creation_input_tokens")),
        )
        tokens = [
            count(usage.get("input_tokens")) + cache_read + cache_write,
            count(usage.get("output_tokens")),
        ]
        tokens += [cache_read, cache_write]
        key = str(run_id)
        seen = self.pending.get(key)
        if seen is not None and tokens[1] < seen.tokens[1]:
            return  # an earlier snapshot of a response already seen further along
        sent = self.requests.get(str(record.get("requestRef"))) or self.input_ts
        request_ts = seen.request_ts if seen else (timestamp(sent) if sent else None)
        attrs = {
            "message_id": message.get("id"),
            "requestId": record.get("requestId"),
            "uuid": uuid,
            "usage": usage,
        }
        self.pending[key] = _Response(key, session, parent, tokens, model, ts, line, uuid, request_ts, attrs)

    def finish(self) -> list[dict[str, Any]]:
        return self._settle(keep=0)

    def _settle(self, keep: int) -> list[dict[str, Any]]:
        """Runs for the responses held back, but the `keep` latest (still being written, maybe)."""
        settled = list(self.pending)[: max(0, len(self.pending) - keep)]
        out = []
        for key in settled:
            r = self.pending.pop(key)
            before = self.counted.pop(r.key, None)
            if before is None:
                out.append(self._run(r))
                self.counted[r.key] = r.tokens
                continue
            delta = [max(0, now - then) for now, then in zip(r.tokens, before)]
            if any(delta):
                out.append(self._more_usage(r, delta))
            self.counted[r.key] = [max(now, then) for now, then in zip(r.tokens, before)]
        for key in list(self.counted)[:-KEEP_COUNTED]:
            del self.counted[key]
        return out

    def _run(self, r: _Response) -> dict[str, Any]:
        return self.events.make(
            "run.completed",
            f"cc:run:{r.key}",
            r.ts,
            r.session,
            r.line,
            r.attrs,
            parent_session_id=r.parent,
            run_id=r.key,
            model=r.model,
            input_tokens=r.tokens[0],
            output_tokens=r.tokens[1],
            cache_read_tokens=r.tokens[2],
            cache_write_tokens=r.tokens[3],
            latency_ms=latency_ms(r.request_ts, r.ts),
            status="ok",
        )

    def _more_usage(self, r: _Response, delta: list[int]) -> dict[str, Any]:
        """Usage of a response beyond what an earlier import counted (it was cut mid-response)."""
        return self.events.make(
            "usage",
            f"cc:run:{r.key}:usage:{r.uuid}",
            r.ts,
            r.session,
            r.line,
            r.attrs,
            parent_session_id=r.parent,
            run_id=r.key,
            model=r.model,
            input_tokens=delta[0],
            output_tokens=delta[1],
            cache_read_tokens=delta[2],
            cache_write_tokens=delta[3],
        )


def _agent_meta(path: Path) -> dict[str, Any] | None:
    """What a subagent was (type, description, the parent's tool_use id): `agent-<id>.meta.json`, if any."""
    try:
        meta = json.loads(path.with_name(f"{path.stem}.meta.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _role_and_text(kind: str, content: Any) -> tuple[str, str]:
    """The message's role and its content: plain text, or the blocks as JSON when not all text."""
    role = "assistant" if kind == "assistant" else "user"
    if isinstance(content, str):
        return role, content
    if not isinstance(content, list):
        raise Malformed(f"{kind} message content is neither text nor a list of blocks")
    types = {block.get("type") if isinstance(block, dict) else None for block in content}
    if kind == "user" and "tool_result" in types:
        role = "tool"
    if content and types == {"text"}:
        return role, "\n".join(str(block.get("text", "")) for block in content)
    return role, dumps(content)
