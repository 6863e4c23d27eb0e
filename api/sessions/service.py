"""The session service: create, read, list, switch, close and measure. Routes stay thin."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
from typing import Any

from api.adapters.compute import UnknownProvider, check_provider
from api.adapters.harness import NAMES, HarnessUnavailable, UnknownHarness, harness_for
from api.adapters.models import UnknownModel, adapter_for
from api.errors import ApiError, not_found
from api.schemas import CreateSession, UpdateSession
from api.sessions.events import event, new_id
from api.sessions.state import SessionState
from api.sessions.store import SessionStore
from api.settings import default_model

HARNESSES = NAMES

_ROW = "SELECT * FROM sessions WHERE tenant_id = ? AND session_id = ?"
_RUN_TOTALS = """
SELECT count(*) AS runs,
       quantile_cont(latency_ms, 0.5) AS p50, quantile_cont(latency_ms, 0.95) AS p95,
       max(latency_ms) AS max, quantile_cont(ttft_ms, 0.5) AS ttft_p50
FROM runs WHERE tenant_id = ? AND session_id = ? AND status <> 'running'
"""
_BY_MODEL = """
SELECT model, count(*) AS runs, coalesce(sum(cost_usd), 0) AS cost_usd,
       coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens,
       coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens,
       quantile_cont(latency_ms, 0.5) AS latency_p50_ms
FROM runs WHERE tenant_id = ? AND session_id = ? AND status <> 'running'
GROUP BY model ORDER BY cost_usd DESC, model
"""
_CHILDREN = """
SELECT session_id, model, harness, status, coalesce(cost_usd, 0) AS cost_usd, created_at
FROM sessions WHERE tenant_id = ? AND parent_session_id = ? ORDER BY created_at, session_id
"""
_EXECS = """
SELECT count(*) AS execs, coalesce(sum(latency_ms), 0) / 1000 AS compute_seconds
FROM events WHERE tenant_id = ? AND session_id = ? AND type = 'compute.exec'
"""
_CHILDREN_COST = (
    "SELECT coalesce(sum(cost_usd), 0) AS cost FROM sessions WHERE tenant_id = ? AND parent_session_id = ?"
)
# Each optional filter is a fixed fragment; values always travel as parameters.
_LIST_FILTERS = {
    "user_id": "user_id = ?",
    "status": "status = ?",
    "model": "model = ?",
    "created_after": "created_at >= ?",
    "created_before": "created_at < ?",
}


def fingerprint(body: CreateSession) -> str:
    """What makes two creates with one session_id the same request."""
    fields = body.model_dump(exclude={"session_id"})
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def check_model(model: str) -> None:
    """422 before anything is written when no adapter serves `model`."""
    try:
        adapter_for(model)
    except UnknownModel as exc:
        raise ApiError(422, "unknown_model", str(exc)) from None


def check_compute(provider: str | None) -> None:
    """422 for a compute provider this server does not know (None: no compute)."""
    if provider is not None:
        try:
            check_provider(provider)
        except UnknownProvider as exc:
            raise ApiError(422, exc.code, str(exc)) from None


def check_harness(harness: str, model: str | None = None, compute: str | None = None) -> None:
    """422 for a harness that cannot run (unknown, its CLI not installed) or a model it cannot drive.

    A CLI is looked for on this server only when the turn would run here (`local` compute, or
    none yet); a relay reports its own CLIs, checked when the turn starts.
    """
    try:
        harness_for(harness).check(model, here=compute in (None, "local"))
    except UnknownHarness as exc:
        raise ApiError(422, "unknown_harness", str(exc)) from None
    except HarnessUnavailable as exc:
        raise ApiError(422, "harness_unavailable", str(exc)) from None
    except UnknownModel as exc:
        raise ApiError(422, "unknown_model", str(exc)) from None


class SessionService:
    """Library-first: the HTTP routes and tests call these methods."""

    def __init__(self, store: SessionStore):
        self.store = store
        self._creating = asyncio.Lock()

    async def session(self, tenant_id: str, session_id: str) -> SessionState:
        """The session, or 404 (also for another tenant's)."""
        state = await self.store.get(tenant_id, session_id)
        if state is None:
            raise not_found()
        return state

    async def writable(self, tenant_id: str, session_id: str) -> SessionState:
        """The session, or 409 once it is closed."""
        state = await self.session(tenant_id, session_id)
        if state.closed:
            raise ApiError(409, "session_closed", f"session {session_id} is closed")
        return state

    async def create(self, tenant_id: str, body: CreateSession) -> tuple[dict[str, Any], bool]:
        """Create a session (or return the one created by the same request). Returns (view, created)."""
        model = body.model or default_model()
        check_model(model)
        check_compute(body.compute)
        check_harness(body.harness, model, body.compute)
        for fallback in body.fallbacks:
            check_model(fallback)
        print_ = fingerprint(body)
        async with self._creating:
            if body.session_id is not None:
                existing = await self.store.get(tenant_id, body.session_id)
                if existing is not None:
                    if existing.fingerprint != print_:
                        raise ApiError(409, "conflict", f"session {body.session_id} exists with another body")
                    return await self.read(tenant_id, body.session_id), False
            state = SessionState(tenant_id, body.session_id or new_id("sess_"))
            attrs = {
                "metadata": body.metadata,
                "fallbacks": body.fallbacks,
                "budget_usd": body.budget_usd,
                "fingerprint": print_,
            }
            created = event(
                "session.created",
                tenant_id,
                state.session_id,
                user_id=body.user_id,
                model=model,
                harness=body.harness,
                compute=body.compute,
                attrs=attrs,
            )
            await self.store.write(state, [created])
        return await self.read(tenant_id, state.session_id, new=True), True

    async def read(self, tenant_id: str, session_id: str, *, new: bool = False) -> dict[str, Any]:
        """The session's row (from the `sessions` view), config, transcript and children.

        `new`: just made, by a create or a fork, so its one event is its `session.created` and
        its row is known without a query (which costs ~20 ms): no runs, messages or cost yet,
        nor children. tests/test_api_sessions.py holds the two to the same answer.
        """
        state = await self.session(tenant_id, session_id)
        if new:
            row: dict[str, Any] = {"status": "ready", "last_event_at": state.created_at}
        else:
            rows = await self.store.sql(_ROW, [tenant_id, session_id])
            row = rows[0] if rows else {}
        return {
            "session_id": session_id,
            "status": row.get("status", "closed" if state.closed else "ready"),
            "user_id": state.user_id,
            "parent_session_id": state.parent_session_id,
            **state.config(),
            "created_at": _iso(state.created_at),
            "closed_at": _iso(state.closed_at),
            "last_event_at": _iso(row.get("last_event_at")),
            "messages": row.get("messages", 0),
            "runs": row.get("runs", 0),
            "cost_usd": row.get("cost_usd", 0.0),
            "transcript": state.transcript,
            "message_ids": state.message_ids,
            "children": [] if new else await self.children(state),  # a session just made has none
        }

    async def children(self, state: SessionState) -> list[dict[str, Any]]:
        """The session's spawned and forked children, oldest first, with their cost and the kept ones."""
        rows = await self.store.sql(_CHILDREN, [state.tenant_id, state.session_id])
        kept = set(state.selected.values())
        out = []
        for row in rows:
            made = state.children.get(row["session_id"], {})
            out.append(
                {
                    "session_id": row["session_id"],
                    "kind": "spawn" if made else "fork",
                    "spawn_id": made.get("spawn_id"),
                    "label": made.get("label"),
                    "model": row["model"],
                    "harness": row["harness"],
                    "status": row["status"],
                    "cost_usd": row["cost_usd"],
                    "selected": row["session_id"] in kept,
                    "created_at": _iso(row["created_at"]),
                }
            )
        return out

    async def spent(self, state: SessionState) -> float:
        """What counts against the session's budget: its own runs and its children's."""
        rows = await self.store.sql(_CHILDREN_COST, [state.tenant_id, state.session_id])
        return state.cost_usd + rows[0]["cost"]

    async def list(
        self, tenant_id: str, filters: dict[str, Any], limit: int, cursor: str | None
    ) -> dict[str, Any]:
        """Sessions of the tenant, filtered, oldest first, `limit` a page."""
        where, params = ["tenant_id = ?"], [tenant_id]
        for name, value in filters.items():
            if value is not None:
                where.append(_LIST_FILTERS[name])
                params.append(value)
        if cursor is not None:
            created, session_id = _decode_cursor(cursor)
            where.append("(created_at, session_id) > (?::TIMESTAMPTZ, ?)")
            params += [created, session_id]
        query = (
            "SELECT session_id, user_id, status, model, harness, compute, created_at, closed_at, "
            "last_event_at, messages, runs, cost_usd FROM sessions WHERE "
            + " AND ".join(where)
            + " ORDER BY created_at, session_id LIMIT ?"
        )
        rows = await self.store.sql(query, [*params, limit + 1])
        page, more = rows[:limit], len(rows) > limit
        for row in page:
            for key in ("created_at", "closed_at", "last_event_at"):
                row[key] = _iso(row[key])
        next_cursor = _encode_cursor(page[-1]["created_at"], page[-1]["session_id"]) if more else None
        return {"sessions": page, "next_cursor": next_cursor}

    async def update(self, tenant_id: str, session_id: str, body: UpdateSession) -> dict[str, Any]:
        """Switch model or harness, edit metadata: same id, same transcript."""
        state = await self.writable(tenant_id, session_id)
        if body.model is not None:
            check_model(body.model)
        if body.harness is not None or body.model is not None:
            check_harness(body.harness or state.harness, body.model or state.model, state.compute)
        for fallback in body.fallbacks or []:
            check_model(fallback)
        changes = body.model_dump(exclude_unset=True)
        if not changes:
            raise ApiError(422, "invalid_request", "nothing to change")
        attrs = {k: v for k, v in changes.items() if k in ("metadata", "fallbacks", "budget_usd")}
        attrs["changed"] = sorted(changes)
        updated = event(
            "session.updated",
            tenant_id,
            session_id,
            user_id=state.user_id,
            model=body.model,
            harness=body.harness,
            attrs=attrs,
        )
        async with state.lock:
            await self.store.write(state, [updated])
        return await self.read(tenant_id, session_id)

    async def close(self, tenant_id: str, session_id: str) -> dict[str, Any]:
        """Close the session; later writes get 409."""
        state = await self.writable(tenant_id, session_id)
        if state.lock.locked():
            raise ApiError(409, "run_in_flight", "a run is in flight on this session; close it when it ends")
        async with state.lock:
            await self.store.write(
                state, [event("session.closed", tenant_id, session_id, user_id=state.user_id)]
            )
        return await self.read(tenant_id, session_id)

    async def metrics(self, tenant_id: str, session_id: str) -> dict[str, Any]:
        """Cost, tokens, latency, a by-model breakdown and the children's cost trail, from the views."""
        state = await self.session(tenant_id, session_id)
        key = [tenant_id, session_id]
        totals = (await self.store.sql(_RUN_TOTALS, key))[0]
        row = (await self.store.sql(_ROW, key) or [{}])[0]
        trail = await self.children(state)
        children = sum(child["cost_usd"] for child in trail)
        own = row.get("cost_usd", 0.0)
        execs = (await self.store.sql(_EXECS, key))[0]
        return {
            "session_id": session_id,
            "cost_usd": own,
            "input_tokens": row.get("input_tokens", 0),
            "output_tokens": row.get("output_tokens", 0),
            "runs": totals["runs"],
            "messages": row.get("messages", 0),
            "latency_ms": {"p50": totals["p50"], "p95": totals["p95"], "max": totals["max"]},
            "ttft_ms": {"p50": totals["ttft_p50"]},
            "by_model": await self.store.sql(_BY_MODEL, key),
            "execs": execs["execs"],
            "compute_seconds": execs["compute_seconds"],
            "children_cost_usd": children,
            "total_cost_usd": (own or 0.0) + children,
            "cost_trail": trail,
        }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _encode_cursor(created_at: str, session_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at, session_id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        created, session_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return str(created), str(session_id)
    except (ValueError, TypeError):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API gave out") from None
