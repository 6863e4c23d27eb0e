"""Gemini CLI chats: `~/.gemini/tmp/<project hash>/chats/session-*.json` and the newer `.jsonl`.

The older `.json` file is one ConversationRecord (`sessionId`, `startTime`, `messages`),
rewritten whole after every change: it is parsed whole whenever it changed. The newer
`.jsonl` starts with a metadata line (`sessionId`, `projectHash`, `startTime`, `kind`), then
appends message records, `{"$set": {...}}` metadata updates (one may replace the whole
`messages` list) and `{"$rewindTo": id}` markers. A message is appended again each time it
changes (its tokens or tool calls filled in): the last copy read wins, and what was
already imported from it is remembered, so each part becomes an event once.

`user` messages become user messages; a `gemini` message an assistant message, one
`run.completed` from its `tokens` (input = prompt + tool-use prompt tokens, output =
candidates + thoughts tokens, cache read = cached tokens) and a `tool.call`, then a
`tool.result` and a tool message, per tool call. `info`, `error` and `warning` messages
(the CLI's own notices) are skipped. Subagent chats (`chats/<parent session>/<id>.jsonl`,
`kind: "subagent"`) are child sessions. A rewind does not remove what was imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingest.importers.base import Events, Malformed, Origin, Tally, count, dumps, litellm_model, timestamp

NAME = "gemini"
DONE = frozenset({"success", "error", "cancelled"})  # tool call states that carry a result


class Gemini:
    """The `gemini` source."""

    name = NAME
    creates_sessions = True

    def discover(self, root: Path) -> list[Path]:
        """Chat files in `chats` folders under `root/tmp` (for ~/.gemini) or `root`; or `root` itself."""
        if root.is_file():
            return [root]
        base = root / "tmp" if (root / "tmp").is_dir() else root
        found = [p for p in base.rglob("*.json*") if p.suffix in (".json", ".jsonl") and p.is_file()]
        return sorted(p for p in found if "chats" in p.relative_to(base).parts or root.name == "chats")

    def whole_document(self, path: Path) -> bool:
        """The older `.json` chats are rewritten whole."""
        return path.suffix == ".json"

    def parser(self, path: Path, origin: Origin, tally: Tally, context: dict[str, Any] | None) -> _Parser:
        """A parser for one chat file."""
        return _Parser(path, origin, tally, context or {})


class _Parser:
    def __init__(self, path: Path, origin: Origin, tally: Tally, context: dict[str, Any]):
        self.events = Events(NAME, path, origin)
        self.tally = tally
        self.folder_parent = path.parent.name if path.parent.name != "chats" else None
        self.file_session = path.stem
        self.session: str | None = context.get("session")
        self.parent: str | None = context.get("parent")
        self.created: bool = context.get("created", False)
        self.done: set[str] = set(context.get("done", []))  # keys of the events already made
        self.latest: dict[str, tuple[dict[str, Any], int]] = {}  # message id -> its last copy, line

    def context(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "parent": self.parent,
            "created": self.created,
            "done": sorted(self.done),
        }

    def feed(self, record: dict[str, Any], line: int) -> list[dict[str, Any]]:
        if "$rewindTo" in record:
            self.tally.skip("$rewindTo")
            return []
        if "$set" in record:
            update = record["$set"]
            if not isinstance(update, dict):
                raise Malformed("$set is not an object")
            self._messages(update.get("messages"), line)
            return self._metadata(update, line) if "sessionId" in update else []
        if isinstance(record.get("id"), str) and "type" in record:
            self._message(record, line)
            return []
        if isinstance(record.get("sessionId"), str):  # the first line, or a whole .json chat
            self._messages(record.get("messages"), line)
            return self._metadata(record, line)
        raise Malformed("neither a chat, a message, nor a $set or $rewindTo line")

    def _metadata(self, record: dict[str, Any], line: int) -> list[dict[str, Any]]:
        if self.session is None or not self.created:
            self.session = str(record["sessionId"])
        if record.get("kind") == "subagent":
            self.parent = self.folder_parent
        if self.created:
            return []
        self.created = True
        attrs = {k: record[k] for k in ("sessionId", "projectHash", "kind", "directories") if k in record}
        ts = timestamp(record.get("startTime") or record.get("lastUpdated"))
        return [
            self.events.make(
                "session.created",
                f"gemini:{self.session}:created",
                ts,
                self.session,
                line,
                attrs,
                parent_session_id=self.parent,
            )
        ]

    def _messages(self, messages: Any, line: int) -> None:
        if messages is None:
            return
        if not isinstance(messages, list):
            raise Malformed("messages is not a list")
        for message in messages:
            if not isinstance(message, dict) or not isinstance(message.get("id"), str):
                raise Malformed("a message without an id")
            self._message(message, line)

    def _message(self, message: dict[str, Any], line: int) -> None:
        self.latest.pop(message["id"], None)  # keep order of the last copy: a rewound id comes back later
        self.latest[message["id"]] = (message, line)

    def finish(self) -> list[dict[str, Any]]:
        self.session = self.session or self.file_session  # messages without a metadata line
        out: list[dict[str, Any]] = []
        for message, line in self.latest.values():
            out += self._convert(message, line)
        self.latest = {}
        return out

    def _convert(self, message: dict[str, Any], line: int) -> list[dict[str, Any]]:
        kind = message.get("type")
        if kind not in ("user", "gemini"):
            if f"skipped:{message['id']}" not in self.done:
                self.done.add(f"skipped:{message['id']}")
                self.tally.skip(f"message:{kind}")
            return []
        try:
            ts = timestamp(message.get("timestamp"))
        except Malformed:
            self.tally.skip("message without a timestamp")
            return []
        out = []
        model = litellm_model(message.get("model"), "gemini")
        tokens = message.get("tokens")
        run_id = message["id"] if kind == "gemini" and isinstance(tokens, dict) else None
        calls = [c for c in message.get("toolCalls") or [] if isinstance(c, dict)]
        text = _text(message.get("content"))
        if not text and calls:
            text = dumps(
                [
                    {"type": "tool_call", "id": c.get("id"), "name": c.get("name"), "args": c.get("args")}
                    for c in calls
                ]
            )
        role = "user" if kind == "user" else "assistant"
        attrs = {"id": message["id"], "thoughts": message.get("thoughts") or None}
        out += self._once(
            "message", message["id"], ts, line, attrs, role=role, content=text, run_id=run_id, model=model
        )
        if run_id is not None:
            out += self._once(
                "run.completed",
                f"{message['id']}:run",
                ts,
                line,
                {"id": message["id"], "tokens": tokens},
                run_id=run_id,
                model=model,
                input_tokens=count(tokens.get("input")) + count(tokens.get("tool")),
                output_tokens=count(tokens.get("output")) + count(tokens.get("thoughts")),
                cache_read_tokens=count(tokens.get("cached")),
                status="ok",
            )
        for call in calls:
            out += self._tool(call, ts, line, run_id, model)
        return out

    def _tool(
        self, call: dict[str, Any], ts: Any, line: int, run_id: str | None, model: str | None
    ) -> list[dict]:
        call_id = str(call.get("id"))
        when = timestamp(call["timestamp"]) if isinstance(call.get("timestamp"), str) else ts
        attrs = {"call_id": call_id, "name": call.get("name"), "status": call.get("status")}
        content = dumps({"name": call.get("name"), "args": call.get("args")})
        out = self._once(
            "tool.call", f"{call_id}:call", when, line, attrs, content=content, run_id=run_id, model=model
        )
        if call.get("status") in DONE:
            result = call.get("result")
            text = result if isinstance(result, str) else dumps(result)
            status = {"success": "ok"}.get(call["status"], call["status"])
            out += self._once(
                "tool.result", f"{call_id}:result", when, line, attrs, content=text, status=status
            )
            out += self._once("message", f"{call_id}:output", when, line, attrs, role="tool", content=text)
        return out

    def _once(self, type: str, key: str, ts: Any, line: int, attrs: dict, **fields: Any) -> list[dict]:  # noqa: A002
        """The event, unless an earlier import (or an earlier copy of its message) made it already."""
        if key in self.done:
            return []
        self.done.add(key)
        event_id = f"gemini:{self.session}:{key}"
        clean = {k: v for k, v in attrs.items() if v is not None}
        return [
            self.events.make(
                type, event_id, ts, self.session, line, clean, parent_session_id=self.parent, **fields
            )
        ]


def _text(content: Any) -> str:
    """Text of a PartListUnion: a string, a part, or a list of them; JSON when there are non-text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else [content]
    if all(isinstance(p, str) or (isinstance(p, dict) and set(p) <= {"text", "thought"}) for p in parts):
        return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in parts)
    return dumps(content)
