"""Realistic events for tests: a few sessions with messages and runs."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import warehouse

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
_clock = itertools.count()


def event(type: str = "message", **fields: Any) -> dict[str, Any]:  # noqa: A002
    """One valid event; any field may be overridden."""
    base: dict[str, Any] = {
        "event_id": warehouse.new_event_id(),
        "ts": T0 + dt.timedelta(milliseconds=next(_clock)),
        "tenant_id": "t1",
        "user_id": "u1",
        "session_id": "s1",
        "type": type,
    }
    if type == "message":
        base |= {"role": "user", "content": "hello"}
    return base | fields


def conversation(session_id: str, turns: int = 2, **fields: Any) -> list[dict[str, Any]]:
    """session.created, then per turn a user message, a run and an assistant message."""
    out = [
        event("session.created", session_id=session_id, model="openai/gpt-4o", harness="litellm", **fields)
    ]
    for turn in range(turns):
        run = f"{session_id}-r{turn}"
        out += [
            event("message", session_id=session_id, role="user", content=f"q{turn}", **fields),
            event("run.started", session_id=session_id, run_id=run, model="openai/gpt-4o", **fields),
            event(
                "run.completed",
                session_id=session_id,
                run_id=run,
                model="openai/gpt-4o",
                input_tokens=100,
                output_tokens=20,
                cost_usd=0.01,
                latency_ms=500.0,
                ttft_ms=120.0,
                status="ok",
                **fields,
            ),
            event(
                "message", session_id=session_id, run_id=run, role="assistant", content=f"a{turn}", **fields
            ),
        ]
    return out
