"""Fan-out and branch routes under /v2/sessions: spawn children on one prompt, keep a winner, fork."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

import warehouse
from api.deps import BranchesDep, FanOutDep, IdempotencyDep, IdempotencyKey, TenantDep
from api.routes.streams import EventStream, frame, idempotent, refuse_replay
from api.schemas import Fork, Select, Spawn
from api.sessions.fanout import FanOut, Plan

router = APIRouter(prefix="/v2/sessions", tags=["fan-out"])


@router.post("/{session_id}/spawn", response_model=None)
async def spawn_children(
    session_id: str,
    body: Spawn,
    tenant: TenantDep,
    fanout: FanOutDep,
    idem: IdempotencyDep,
    key: IdempotencyKey = None,
) -> JSONResponse | EventStream:
    """Answer one prompt with every variant, each in a child session, side by side (SSE with `stream`)."""
    if body.stream:
        refuse_replay(key)
        return EventStream(_sse(fanout, await fanout.start(tenant, session_id, body)))

    async def produce() -> tuple[int, Any]:
        plan = await fanout.start(tenant, session_id, body)
        async with contextlib.aclosing(fanout.execute(plan)) as items:
            async for kind, item in items:
                if kind == "done":
                    return 200, item
        raise AssertionError("a spawn ends with its answer")

    return await idempotent(idem, tenant, key, ["spawn", session_id, body.model_dump()], produce)


@router.post("/{session_id}/select")
async def select_child(
    session_id: str,
    body: Select,
    tenant: TenantDep,
    branches: BranchesDep,
    idem: IdempotencyDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Keep a child's answer in this session's transcript; its spawn siblings are closed."""

    async def produce() -> tuple[int, Any]:
        return 200, await branches.select(tenant, session_id, body)

    return await idempotent(idem, tenant, key, ["select", session_id, body.model_dump()], produce)


@router.post("/{session_id}/fork", status_code=201)
async def fork_session(
    session_id: str,
    body: Fork,
    tenant: TenantDep,
    branches: BranchesDep,
    idem: IdempotencyDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """A new session over this one's transcript, up to `at_event_id` (default: all of it)."""

    async def produce() -> tuple[int, Any]:
        return 201, await branches.fork(tenant, session_id, body)

    return await idempotent(idem, tenant, key, ["fork", session_id, body.model_dump()], produce)


async def _sse(fanout: FanOut, plan: Plan) -> AsyncIterator[str]:
    try:
        async with contextlib.aclosing(fanout.execute(plan)) as items:
            async for kind, item in items:
                yield frame(kind, item)
    except warehouse.StorageError as exc:
        yield frame("error", {"error": {"code": "storage_unavailable", "message": str(exc)}, "status": 503})
