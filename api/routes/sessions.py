"""The session routes under /v2: thin calls into the session service and runner."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

import warehouse
from api.deps import IdempotencyDep, IdempotencyKey, RunnerDep, ServiceDep, TenantDep
from api.errors import ApiError
from api.routes.streams import EventStream, frame, idempotent, refuse_replay
from api.schemas import CreateSession, RunLLM, UpdateSession
from api.sessions.runner import Outcome, Run, Runner

router = APIRouter(prefix="/v2/sessions", tags=["sessions"])


@router.post("", status_code=201)
async def create_session(
    body: CreateSession,
    tenant: TenantDep,
    service: ServiceDep,
    idem: IdempotencyDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Create a session; with `session_id`, creating it again with the same body returns it (200)."""

    async def produce() -> tuple[int, Any]:
        view, created = await service.create(tenant, body)
        return (201 if created else 200), view

    return await idempotent(idem, tenant, key, ["create", body.model_dump()], produce)


@router.get("")
async def list_sessions(
    tenant: TenantDep,
    service: ServiceDep,
    user_id: str | None = None,
    status: str | None = None,
    model: str | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The tenant's sessions, oldest first; follow `next_cursor` for the next page."""
    filters = {
        "user_id": user_id,
        "status": status,
        "model": model,
        "created_after": created_after,
        "created_before": created_before,
    }
    return await service.list(tenant, filters, limit, cursor)


@router.get("/{session_id}")
async def read_session(session_id: str, tenant: TenantDep, service: ServiceDep) -> dict[str, Any]:
    """The session's row, config and transcript."""
    return await service.read(tenant, session_id)


@router.patch("/{session_id}")
async def update_session(
    session_id: str, body: UpdateSession, tenant: TenantDep, service: ServiceDep
) -> dict[str, Any]:
    """Switch model or harness, edit metadata: same id, same transcript."""
    return await service.update(tenant, session_id, body)


@router.post("/{session_id}/close")
async def close_session(
    session_id: str, tenant: TenantDep, service: ServiceDep, idem: IdempotencyDep, key: IdempotencyKey = None
) -> JSONResponse:
    """Close the session; later writes to it get 409."""

    async def produce() -> tuple[int, Any]:
        return 200, await service.close(tenant, session_id)

    return await idempotent(idem, tenant, key, ["close", session_id], produce)


@router.get("/{session_id}/metrics")
async def read_metrics(session_id: str, tenant: TenantDep, service: ServiceDep) -> dict[str, Any]:
    """Cost, tokens, runs, latency percentiles and a by-model breakdown."""
    return await service.metrics(tenant, session_id)


@router.post("/{session_id}/run-llm", response_model=None)
async def run_llm(
    session_id: str,
    body: RunLLM,
    tenant: TenantDep,
    runner: RunnerDep,
    idem: IdempotencyDep,
    key: IdempotencyKey = None,
) -> JSONResponse | EventStream:
    """One turn: the transcript plus the new message to the model; JSON, or SSE with `stream`.

    A plain well-formed turn is answered by api/hot_path.py before it gets here, by the same
    `turn_answer` and `turn_stream`; this route answers the rest (errors, Idempotency-Key).
    """
    if body.stream:
        refuse_replay(key)
        return turn_stream(runner, await runner.start(tenant, session_id, body))

    def produce() -> Awaitable[tuple[int, Any]]:
        return turn_answer(runner, tenant, session_id, body)

    return await idempotent(idem, tenant, key, ["run-llm", session_id, body.model_dump()], produce)


async def turn_answer(runner: Runner, tenant: str, session_id: str, body: RunLLM) -> tuple[int, Any]:
    """A whole turn as run-llm answers it without `stream`: status and JSON body."""
    run = await runner.start(tenant, session_id, body)
    async with contextlib.aclosing(runner.execute(run)) as items:  # releases the session at once
        async for item in items:
            if isinstance(item, Outcome):
                return 200, item.as_json()
    raise AssertionError("a run ends with an outcome or an error")


def turn_stream(runner: Runner, run: Run) -> EventStream:
    """A started turn as run-llm streams it; a caller that leaves before it begins frees the session."""
    return EventStream(turn_frames(runner, run), after=partial(runner.abandon, run))


async def turn_frames(runner: Runner, run: Run) -> AsyncIterator[str]:
    """A started turn as run-llm streams it: `delta` frames, then `done` (or `error`)."""
    try:
        async with contextlib.aclosing(runner.execute(run)) as items:
            async for item in items:
                if isinstance(item, Outcome):
                    yield frame("done", item.as_json())
                else:
                    yield frame("delta", {"text": item})
    except ApiError as exc:
        yield frame("error", {"error": {"code": exc.code, "message": exc.message}, "status": exc.status})
    except warehouse.StorageError as exc:
        yield frame("error", {"error": {"code": "storage_unavailable", "message": str(exc)}, "status": 503})
