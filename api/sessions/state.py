"""A session's state, derived from its events: config, status, transcript, spend."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SessionState:
    """What the service keeps in memory per session; the events are the truth."""

    tenant_id: str
    session_id: str
    user_id: str | None = None
    model: str | None = None
    harness: str = "litellm"
    compute: str | None = None
    compute_options: dict[str, Any] | None = None  # the latest compute.attached's; None until attached
    metadata: dict[str, Any] = field(default_factory=dict)
    fallbacks: list[str] = field(default_factory=list)
    budget_usd: float | None = None
    fingerprint: str | None = None
    created_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    transcript: list[dict[str, Any]] = field(default_factory=list)
    cost_usd: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)

    @property
    def closed(self) -> bool:
        """Closed sessions refuse writes."""
        return self.closed_at is not None

    def apply(self, e: dict[str, Any]) -> None:
        """Fold one event into the state."""
        kind = e["type"]
        attrs = json.loads(e["attrs"]) if e.get("attrs") else {}
        if kind == "session.created":
            self.user_id, self.created_at = e.get("user_id"), e["ts"]
            self.model, self.harness, self.compute = (
                e.get("model"),
                e.get("harness") or "litellm",
                e.get("compute"),
            )
            self.metadata = attrs.get("metadata", {})
            self.fallbacks = attrs.get("fallbacks", [])
            self.budget_usd = attrs.get("budget_usd")
            self.fingerprint = attrs.get("fingerprint")
        elif kind == "session.updated":
            self.model = e.get("model") or self.model
            self.harness = e.get("harness") or self.harness
            for key in ("metadata", "fallbacks", "budget_usd"):
                if key in attrs:
                    setattr(self, key, attrs[key])
        elif kind == "message":
            self.transcript.append(message_of(e, attrs))
        elif kind == "compute.attached":
            self.compute = e.get("compute") or attrs.get("provider")
            self.compute_options = attrs.get("options", {})
        elif kind == "session.closed":
            self.closed_at = e["ts"]
        if e.get("cost_usd") is not None:
            self.cost_usd += e["cost_usd"]

    def config(self) -> dict[str, Any]:
        """The session's switchable configuration."""
        return {
            "model": self.model,
            "harness": self.harness,
            "compute": self.compute,
            "metadata": self.metadata,
            "fallbacks": self.fallbacks,
            "budget_usd": self.budget_usd,
        }


def message_of(e: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any]:
    """A message event back in chat format (tool fields and structured content restored)."""
    content: Any = e.get("content")
    if attrs.get("structured") and content is not None:
        content = json.loads(content)
    return {"role": e.get("role") or "user", "content": content, **attrs.get("message", {})}


def message_fields(message: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """A chat message as an event's content and attrs."""
    content = message.get("content")
    extra = {k: v for k, v in message.items() if k not in ("role", "content") and v is not None}
    attrs: dict[str, Any] = {"message": extra} if extra else {}
    if content is not None and not isinstance(content, str):
        content = json.dumps(content, separators=(",", ":"))
        attrs["structured"] = True
    return content, attrs
