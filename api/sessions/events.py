"""Building a session's events: ids, strictly increasing timestamps, JSON attrs."""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

import warehouse

_lock = threading.Lock()
_last = dt.datetime.min.replace(tzinfo=dt.UTC)


def now() -> dt.datetime:
    """UTC now, strictly after every earlier call: events of one run sort in the order written."""
    global _last
    with _lock:
        t = max(dt.datetime.now(dt.UTC), _last + dt.timedelta(microseconds=1))
        _last = t
        return t


def new_id(prefix: str) -> str:
    """A time-sortable id with a readable prefix, e.g. sess_0190…"""
    return prefix + warehouse.new_event_id().replace("-", "")


def event(type: str, tenant_id: str, session_id: str, **fields: Any) -> dict[str, Any]:  # noqa: A002
    """One event of the session; `attrs` may be a dict (kept as JSON text)."""
    attrs = fields.pop("attrs", None)
    out = {
        "event_id": warehouse.new_event_id(),
        "ts": now(),
        "tenant_id": tenant_id,
        "session_id": session_id,
        "type": type,
        **{k: v for k, v in fields.items() if v is not None},
    }
    if attrs:
        out["attrs"] = json.dumps(attrs, separators=(",", ":"), default=str)
    return out
