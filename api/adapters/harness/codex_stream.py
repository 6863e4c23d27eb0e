"""`codex exec --json` lines → turn items.

The lines: `thread.started` (`thread_id`, the id `codex exec resume` takes), `turn.started`,
`item.started` / `item.updated` / `item.completed` (`item.type`: `agent_message` with its
`text`, `reasoning`, `command_execution` with `command`, `aggregated_output`, `exit_code`,
`status`; `file_change` with `changes`; `mcp_tool_call`; `web_search`; `todo_list`; `error`),
then `turn.completed` (`usage`: `input_tokens` (cached included), `cached_input_tokens`,
`cache_write_input_tokens`, `output_tokens`, `reasoning_output_tokens`) or `turn.failed`
(`error.message`); a fatal problem may also come as a top-level `error` line.

Codex 0.171.0 reports the THREAD's usage so far in `turn.completed` (cumulative over every
`resume`), so a turn's own usage is the difference from the total the session's last turn
saw (kept in `cli.usage_total`); a total below that one means the count restarted, and it
is all this turn's. Codex reports no cost: the turn is priced with litellm's price map.
"""

from __future__ import annotations

from typing import Any

from api.adapters.harness.base import HarnessError, ToolCall, ToolResult, TurnItem, TurnResult
from api.adapters.harness.stream import Said, record, text_of
from api.adapters.models.base import Usage
from ingest.importers.base import count
from ingest.pricing import price

CLI = "codex"
USAGE = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "reasoning_output_tokens",
)
# item type → the tool name recorded for it
TOOLS = {"command_execution": "shell", "file_change": "apply_patch", "web_search": "web_search"}


class CodexStream:
    """Parses one `codex exec` process's stdout; `previous` is the `cli` of the session's last turn."""

    def __init__(self, model: str, previous: dict[str, Any] | None = None):
        self.model = model
        self.previous = previous or {}
        self.session_ref: str | None = self.previous.get("session_id")
        self.said = Said()
        self.started: set[str] = set()  # tool items whose call was already given
        self.answer = ""
        self.messages = 0
        self.warnings: list[str] = []
        self.result: TurnResult | None = None

    def feed(self, line: str) -> list[TurnItem]:
        """The items one stdout line adds; HarnessError for a malformed line or a failed turn."""
        r = record(line, CLI)
        if r is None:
            return []
        kind = r["type"]
        if kind == "thread.started":
            self.session_ref = str(r.get("thread_id") or "") or self.session_ref
        elif kind == "item.started":
            return self._call(r.get("item") or {})
        elif kind == "item.completed":
            return self._completed(r.get("item") or {})
        elif kind == "turn.completed":
            self.result = self._result(r.get("usage") or {})
            return [self.result]
        elif kind == "turn.failed":
            raise HarnessError(f"{CLI}: {(r.get('error') or {}).get('message') or 'turn failed'}")
        elif kind == "error":
            self.warnings.append(str(r.get("message", "")))
        return []

    def finish(self) -> TurnResult:
        """The turn's result, once stdout is done; HarnessError if the turn never completed."""
        if self.result is None:
            last = f": {self.warnings[-1]}" if self.warnings else ""
            raise HarnessError(f"{CLI} ended without turn.completed{last}")
        return self.result

    def _call(self, item: dict[str, Any]) -> list[TurnItem]:
        kind, item_id = item.get("type"), str(item.get("id"))
        if kind == "mcp_tool_call":
            name, arguments = f"{item.get('server')}.{item.get('tool')}", item.get("arguments")
        elif kind in TOOLS:
            name = TOOLS[kind]
            arguments = {k: item[k] for k in ("command", "changes", "query") if k in item}
        else:
            return []
        self.started.add(item_id)
        return [ToolCall(item_id, name, arguments)]

    def _completed(self, item: dict[str, Any]) -> list[TurnItem]:
        kind, item_id = item.get("type"), str(item.get("id"))
        if kind == "agent_message":
            self.answer, self.messages = str(item.get("text", "")), self.messages + 1
            self.said.new_text()
            return list(self.said.delta(self.answer))
        if kind == "error":
            self.warnings.append(str(item.get("message", "")))
            return []
        items = [] if item_id in self.started else self._call(item)
        if not items and item_id not in self.started:
            return []  # reasoning, todo lists: not tool calls
        status = item.get("status")
        exit_code = item.get("exit_code")
        failed = status == "failed" or (isinstance(exit_code, int) and exit_code != 0)
        output = item.get("aggregated_output")
        if output is None:
            output = item.get("result") if kind == "mcp_tool_call" else {"status": status}
        attrs = {k: item[k] for k in ("exit_code", "status") if item.get(k) is not None}
        return [*items, ToolResult(item_id, text_of(output), failed, attrs)]

    def _result(self, usage: dict[str, Any]) -> TurnResult:
        total = [count(usage.get(k)) for k in USAGE]
        before = self.previous.get("usage_total")
        grew = (
            isinstance(before, list)
            and len(before) == len(total)
            and all(now >= then for now, then in zip(total, before))
        )
        turn = [now - then for now, then in zip(total, before)] if grew else total
        tokens = Usage(
            input_tokens=turn[0], output_tokens=turn[3], cache_read_tokens=turn[1], cache_write_tokens=turn[2]
        )
        cost = price(self.model, tokens.input_tokens, tokens.output_tokens, turn[1], turn[2])
        return TurnResult(
            text=self.answer,
            model=self.model,
            usage=tokens,
            cost_usd=cost,
            session_ref=self.session_ref,
            cli={"session_id": self.session_ref, "usage_total": total},
            attrs={"reasoning_output_tokens": turn[4], "agent_messages": self.messages},
        )
