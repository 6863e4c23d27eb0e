"""Claude Code's `--output-format stream-json --verbose --include-partial-messages` lines → turn items.

The lines, in order: `system` (`init` carries the session id and model; `status` lines are
progress), `stream_event` (the API's SSE events: `content_block_delta` / `text_delta` is the
text as it is written), `assistant` (one line per finished content block: `text`,
`tool_use`, `thinking`), `user` (the `tool_result`s Claude Code sends back), and one final
`result`: the answer (`result`), `is_error`, `usage` for this process's model calls (input
tokens without the cache ones, which come apart), `model_usage_since_last_result` (per model,
with this process's `costUSD`), `total_cost_usd` (cumulative over every `--resume` of the
session), `duration_ms`, `duration_api_ms`, `ttft_ms`, `num_turns`.

Input tokens are counted with the cache reads and writes, as litellm and the importer
(ingest/importers/claude_code.py) count them. Lines of subagents carry `parent_tool_use_id`:
their tool calls are recorded with it; their text is not the answer and is not streamed.
A failed API call shows as a `<synthetic>` assistant line and an `is_error` result.
"""

from __future__ import annotations

from typing import Any

from api.adapters.harness.base import HarnessError, ToolCall, ToolResult, TurnItem, TurnResult
from api.adapters.harness.stream import Said, record, text_of
from api.adapters.models.base import Usage
from ingest.importers.base import count, litellm_model
from ingest.pricing import price

CLI = "claude"


class ClaudeStream:
    """Parses one `claude -p` process's stdout; `previous` is the `cli` of the session's last turn."""

    def __init__(self, model: str, previous: dict[str, Any] | None = None):
        self.model = model
        self.previous = previous or {}
        self.session_ref: str | None = self.previous.get("session_id")
        self.said = Said()
        self.streamed: set[str] = set()  # message ids whose text arrived as deltas
        self.preface = ""  # the text just before a tool call, kept with the call
        self.result: TurnResult | None = None

    def feed(self, line: str) -> list[TurnItem]:
        """The items one stdout line adds; HarnessError for a malformed line or a failed turn."""
        r = record(line, CLI)
        if r is None:
            return []
        self.session_ref = r.get("session_id") or self.session_ref
        kind = r["type"]
        if kind == "stream_event":
            return self._stream_event(r)
        if kind == "assistant":
            return self._assistant(r)
        if kind == "user":
            return self._tool_results(r)
        if kind == "result":
            self.result = self._result(r)
            return [self.result]
        return []  # system init/status, rate limit notices…

    def finish(self) -> TurnResult:
        """The turn's result, once stdout is done; HarnessError if the CLI never gave one."""
        if self.result is None:
            raise HarnessError(f"{CLI} ended without a result line")
        return self.result

    def _stream_event(self, r: dict[str, Any]) -> list[TurnItem]:
        if r.get("parent_tool_use_id"):
            return []
        event = r.get("event") or {}
        if event.get("type") == "content_block_start":
            self.said.new_text()
            return []
        delta = event.get("delta") or {}
        if event.get("type") != "content_block_delta" or delta.get("type") != "text_delta":
            return []
        self.streamed.add(str(r.get("api_message_id")))
        return list(self.said.delta(str(delta.get("text", ""))))

    def _assistant(self, r: dict[str, Any]) -> list[TurnItem]:
        message = r.get("message") or {}
        if message.get("model") == "<synthetic>" or r.get("is_api_error_message"):
            return []  # Claude Code's own error text; the result line says it too
        parent = r.get("parent_tool_use_id")
        items: list[TurnItem] = []
        for block in message.get("content") or []:
            kind = block.get("type")
            if kind == "text" and not parent:
                self.preface = str(block.get("text", ""))
                if str(message.get("id")) not in self.streamed:  # no partial messages: the block whole
                    self.said.new_text()
                    items += self.said.delta(self.preface)
            elif kind == "tool_use":
                attrs: dict[str, Any] = {"parent_tool_use_id": parent} if parent else {}
                if self.preface and not parent:
                    attrs["preface"], self.preface = self.preface, ""
                items.append(
                    ToolCall(str(block.get("id")), str(block.get("name")), block.get("input"), attrs)
                )
        return items

    def _tool_results(self, r: dict[str, Any]) -> list[TurnItem]:
        content = (r.get("message") or {}).get("content")
        if not isinstance(content, list):
            return []
        parent = r.get("parent_tool_use_id")
        return [
            ToolResult(
                str(block.get("tool_use_id")),
                text_of(block.get("content")),
                bool(block.get("is_error")),
                {"parent_tool_use_id": parent} if parent else {},
            )
            for block in content
            if isinstance(block, dict) and block.get("type") == "tool_result"
        ]

    def _result(self, r: dict[str, Any]) -> TurnResult:
        if r.get("is_error") or r.get("subtype") != "success":
            errors = r.get("errors") or [r.get("result") or r.get("subtype")]
            status = r.get("api_error_status")
            raise HarnessError(
                f"{CLI}: " + "; ".join(str(e) for e in errors) + (f" (API {status})" if status else "")
            )
        usage = r.get("usage") or {}
        cache_read = count(usage.get("cache_read_input_tokens"))
        cache_write = count(usage.get("cache_creation_input_tokens"))
        tokens = Usage(
            input_tokens=count(usage.get("input_tokens")) + cache_read + cache_write,
            output_tokens=count(usage.get("output_tokens")),
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
        )
        models = r.get("model_usage_since_last_result") or r.get("modelUsage") or {}
        model = litellm_model(next(iter(models), None), "anthropic") or self.model
        total = r.get("total_cost_usd")
        cost = self._cost(r, models, total, model, tokens)
        return TurnResult(
            text=str(r.get("result") or ""),
            model=model,
            usage=tokens,
            cost_usd=cost,
            session_ref=self.session_ref,
            cli={"session_id": self.session_ref, "total_cost_usd": total},
            attrs={
                "duration_ms": r.get("duration_ms"),
                "duration_api_ms": r.get("duration_api_ms"),
                "ttft_ms": r.get("ttft_ms"),
                "num_turns": r.get("num_turns"),
                "stop_reason": r.get("stop_reason"),
            },
        )

    def _cost(
        self, r: dict[str, Any], models: dict[str, Any], total: Any, model: str, tokens: Usage
    ) -> float | None:
        """This process's cost: as Claude Code reports it, else from its running total, else priced."""
        if "model_usage_since_last_result" in r and all(isinstance(m, dict) for m in models.values()):
            costs = [m.get("costUSD") for m in models.values()]
            if all(isinstance(c, (int, float)) for c in costs):
                return float(sum(costs))
        before = self.previous.get("total_cost_usd")
        if isinstance(total, (int, float)):
            if isinstance(before, (int, float)) and total >= before:
                return float(total - before)
            if not self.previous:
                return float(total)
        u = tokens
        return price(model, u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens)
