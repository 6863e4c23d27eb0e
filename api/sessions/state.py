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
    fork: dict[str, Any] | None = None  # session.created's `fork`: session_id, messages, at_event_id
    created_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    cost_usd: float = 0.0
    # Copy on write: a fork or spawned child reads the first `base_len` messages of `base`
    # (append-only, so that prefix never changes) and keeps only its own messages.
    parent_session_id: str | None = None
    base: SessionState | None = field(default=None, repr=False)
    base_len: int = 0
    own: list[dict[str, Any]] = field(default_factory=list, repr=False)
    own_ids: list[str] = field(default_factory=list, repr=False)
    spawn: dict[str, Any] | None = None  # on a spawned child: spawn_id, label, variant index
    children: dict[str, dict[str, Any]] = field(default_factory=dict)  # child id → how it was made
    selected: dict[str, str] = field(default_factory=dict)  # spawn_id (or fork's id) → the kept child
    # harness → its CLI session as the last run.completed left it (id, running totals, messages seen)
    cli: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)

    @property
    def closed(self) -> bool:
        """Closed sessions refuse writes."""
        return self.closed_at is not None

    @property
    def transcript(self) -> list[dict[str, Any]]:
        """The whole conversation: the forked-from prefix, then this session's own messages."""
        if self.base is None:
            return list(self.own)
        return self.base.transcript[: self.base_len] + self.own

    @property
    def message_ids(self) -> list[str]:
        """The event id of each transcript message, in the same order."""
        if self.base is None:
            return list(self.own_ids)
        return self.base.message_ids[: self.base_len] + self.own_ids

    @property
    def length(self) -> int:
        """How many messages the transcript has (without building it)."""
        return self.base_len + len(self.own)

    @property
    def fork_of(self) -> str | None:
        """The session whose transcript prefix this one reads, if it was forked or spawned."""
        fork = self.fork
        return fork["session_id"] if fork else None

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
            self.parent_session_id = e.get("parent_session_id")
            self.fork = attrs.get("fork")
            self.base_len = self.fork["messages"] if self.fork else 0
            self.spawn = attrs.get("spawn")
        elif kind == "session.updated":
            self.model = e.get("model") or self.model
            self.harness = e.get("harness") or self.harness
            for key in ("metadata", "fallbacks", "budget_usd"):
                if key in attrs:
                    setattr(self, key, attrs[key])
        elif kind == "message":
            self.own.append(message_of(e, attrs))
            self.own_ids.append(e["event_id"])
        elif kind == "session.spawned":
            child = attrs.get("child_session_id")
            if child:
                self.children[child] = {k: v for k, v in attrs.items() if k != "child_session_id"}
        elif kind == "session.selected":
            child = attrs.get("child_session_id")
            if child:
                self.selected[attrs.get("spawn_id") or child] = child
        elif kind == "compute.attached":
            self.compute = e.get("compute") or attrs.get("provider")
            self.compute_options = attrs.get("options", {})
        elif kind == "run.completed" and "cli" in attrs:
            self.cli[e.get("harness") or ""] = attrs["cli"]
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
