"""A small hand-made workload for the named queries, in the event conventions they read.

Two tenants, four users, three UTC days; runs on three models through four harnesses with
every status (ok, error, timeout, interrupted, one still running); commands on three compute
providers; two fan-outs (one with a winner kept, one without).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import dataclass
from typing import Any

import warehouse

OPUS = "anthropic/claude-opus-4-5"
SONNET = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o"
DAY1 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
DAY2 = DAY1 + dt.timedelta(days=1)
DAY3 = DAY1 + dt.timedelta(days=2)


@dataclass(frozen=True)
class Session:
    tenant_id: str
    user_id: str
    session_id: str


class Workload:
    """Events built session by session; each call moves that session's clock on by a second."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._clocks: dict[str, dt.datetime] = {}
        self._runs = itertools.count(1)

    def _add(self, s: Session, type: str, **fields: Any) -> dict[str, Any]:  # noqa: A002
        ts = self._clocks[s.session_id] = self._clocks[s.session_id] + dt.timedelta(seconds=1)
        event = {
            "event_id": warehouse.new_event_id(),
            "ts": ts,
            "tenant_id": s.tenant_id,
            "user_id": s.user_id,
            "session_id": s.session_id,
            "type": type,
        } | fields
        self.events.append(event)
        return event

    def session(
        self,
        tenant_id: str,
        user_id: str,
        session_id: str,
        at: dt.datetime,
        *,
        harness: str,
        model: str,
        compute: str | None = None,
        parent: str | None = None,
    ) -> Session:
        s = Session(tenant_id, user_id, session_id)
        self._clocks[session_id] = at
        self._add(s, "session.created", harness=harness, model=model, parent_session_id=parent)
        if compute:
            self._add(s, "compute.attached", compute=compute)
        return s

    def run(
        self,
        s: Session,
        model: str,
        *,
        status: str = "ok",
        latency_ms: float | None = None,
        ttft_ms: float | None = None,
        tokens: tuple[int, int, int, int] = (0, 0, 0, 0),
        cost_usd: float | None = None,
        error: str | None = None,
        harness: str | None = None,
        finished: bool = True,
    ) -> str:
        """A user message, then run.started and its end (run.completed if ok, else run.failed)."""
        run_id = f"run-{next(self._runs)}"
        self._add(s, "message", role="user", content="do the thing")
        self._add(s, "run.started", run_id=run_id, model=model, harness=harness)
        if not finished:
            return run_id
        input_tokens, output_tokens, cache_read, cache_write = tokens
        self._add(
            s,
            "run.completed" if status == "ok" else "run.failed",
            run_id=run_id,
            model=model,
            status=status,
            latency_ms=latency_ms,
            ttft_ms=ttft_ms,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            cost_usd=cost_usd,
            error=error,
            attrs={"attempts": 2 if error else 1},
        )
        if status == "ok":
            self._add(s, "message", run_id=run_id, role="assistant", content="done")
        return run_id

    def update(self, s: Session, **config: Any) -> None:
        """Change the session's config (model, harness…): same id, same transcript."""
        self._add(s, "session.updated", **config)

    def exec(self, s: Session, compute: str, latency_ms: float, exit_code: int = 0) -> None:
        self._add(
            s,
            "compute.exec",
            compute=compute,
            latency_ms=latency_ms,
            status="ok" if exit_code == 0 else "error",
            attrs={"command": "pytest -q", "exit_code": exit_code},
        )

    def spawn(
        self,
        parent: Session,
        child_id: str,
        *,
        model: str,
        harness: str,
        compute: str,
        label: str | None = None,
    ) -> Session:
        variant = {"model": model, "harness": harness, "compute": compute}
        attrs = {"child_session_id": child_id, "variant": variant}
        if label is not None:
            attrs["label"] = label
        self._add(parent, "session.spawned", attrs=attrs)
        at = self._clocks[parent.session_id]
        child = self.session(
            parent.tenant_id,
            parent.user_id,
            child_id,
            at,
            harness=harness,
            model=model,
            compute=compute,
            parent=parent.session_id,
        )
        return child

    def select(self, parent: Session, child_id: str) -> None:
        self._add(parent, "session.selected", attrs={"child_session_id": child_id})

    def judge(self, child: Session, score: float, reason: str) -> None:
        verdict = {"score": score, "reason": reason}
        self._add(child, "session.updated", attrs={"judge": verdict, "changed": ["judge"]})


def build() -> list[dict[str, Any]]:
    """The workload's events, in the order they happened per session."""
    w = Workload()

    s1 = w.session("t1", "u1", "s1", DAY1, harness="claude-code", model=OPUS, compute="local")
    w.run(s1, OPUS, latency_ms=1200.0, ttft_ms=300.0, tokens=(1000, 200, 400, 100), cost_usd=0.05)
    w.run(s1, OPUS, latency_ms=2000.0, tokens=(3000, 500, 0, 0), cost_usd=0.09)
    w.exec(s1, "local", 150.0)
    w.exec(s1, "local", 850.0)
    w.exec(s1, "local", 40.0, exit_code=1)

    s4 = w.session("t1", "u3", "s4", DAY1, harness="import:claude-code", model=SONNET)
    w.run(s4, SONNET, latency_ms=900.0, tokens=(5000, 300, 4000, 500), cost_usd=0.012)
    w.run(s4, SONNET, latency_ms=1100.0, tokens=(6000, 400, 5000, 0), cost_usd=0.011)

    s5 = w.session("t2", "u1", "s5", DAY1, harness="litellm", model=GPT)  # another tenant's u1
    w.run(s5, GPT, latency_ms=500.0, ttft_ms=100.0, tokens=(200, 50, 0, 0), cost_usd=0.001)

    s2 = w.session("t1", "u1", "s2", DAY2, harness="litellm", model=GPT)
    w.run(s2, GPT, latency_ms=700.0, ttft_ms=150.0, tokens=(400, 100, 0, 0), cost_usd=0.002)
    w.run(s2, GPT, status="error", latency_ms=3000.0, cost_usd=0.0, error="rate limited")
    w.run(s2, GPT, status="timeout", latency_ms=60000.0, error="timed out after 60s")

    s3 = w.session("t1", "u2", "s3", DAY2, harness="codex", model=GPT, compute="relay")
    w.run(s3, GPT, latency_ms=800.0, ttft_ms=200.0, tokens=(800, 80, 200, 0), cost_usd=0.0025)
    w.update(s3, model=SONNET)  # same session, another model from here on
    w.run(s3, SONNET, latency_ms=1500.0, ttft_ms=400.0, tokens=(1200, 300, 0, 0), cost_usd=0.008)
    w.run(s3, SONNET, status="interrupted", latency_ms=400.0, tokens=(100, 5, 0, 0), cost_usd=0.0004)
    w.exec(s3, "relay", 2500.0)
    w.exec(s3, "relay", 3500.0)

    p1 = w.session("t1", "u2", "p1", DAY3, harness="litellm", model=SONNET)
    c1 = w.spawn(p1, "c1", model=OPUS, harness="claude-code", compute="e2b", label="deep")
    c2 = w.spawn(p1, "c2", model=SONNET, harness="litellm", compute="relay", label="fast")
    c3 = w.spawn(p1, "c3", model=GPT, harness="codex", compute="local")
    w.run(c1, OPUS, latency_ms=4000.0, ttft_ms=800.0, tokens=(2000, 1000, 0, 0), cost_usd=0.2)
    w.exec(c1, "e2b", 1200.0)
    w.run(c2, SONNET, latency_ms=2500.0, ttft_ms=500.0, tokens=(2000, 900, 0, 0), cost_usd=0.03)
    w.run(c3, GPT, status="error", latency_ms=100.0, error="context length exceeded")
    w.judge(c1, 6, "thorough but slow")
    w.judge(c2, 7.5, "right and quick")
    w.select(p1, "c2")

    p2 = w.session("t1", "u3", "p2", DAY3, harness="litellm", model=SONNET)
    c4 = w.spawn(p2, "c4", model=OPUS, harness="claude-code", compute="e2b")
    c5 = w.spawn(p2, "c5", model=GPT, harness="litellm", compute="local")
    w.run(c4, OPUS, latency_ms=5000.0, ttft_ms=900.0, tokens=(3000, 1500, 1000, 0), cost_usd=0.25)
    w.run(c4, OPUS, latency_ms=3000.0, ttft_ms=700.0, tokens=(1000, 500, 0, 0), cost_usd=0.1)
    w.run(c5, GPT, latency_ms=1000.0, tokens=(1500, 600, 0, 0), cost_usd=0.01)
    w.run(p2, SONNET, finished=False)  # still running
    return w.events


def load(wh: warehouse.Warehouse, events: list[dict[str, Any]]) -> None:
    """Half the events into Parquet parts, the rest left in the tail: the queries must read both."""
    half = len(events) // 2
    wh.append([dict(e) for e in events[:half]])
    wh.flush()
    wh.append([dict(e) for e in events[half:]])


def as_json(event: dict[str, Any]) -> dict[str, Any]:
    """The event as the table stores it: attrs as JSON text."""
    out = dict(event)
    if isinstance(out.get("attrs"), dict):
        out["attrs"] = json.dumps(out["attrs"])
    return out
