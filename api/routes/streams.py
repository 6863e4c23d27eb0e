"""What the streaming and idempotent routes share: SSE frames and answers replayed by key."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from api.errors import ApiError
from api.idempotency import IdempotencyCache


def frame(kind: str, data: dict[str, Any]) -> str:
    """One Server-Sent Event."""
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def refuse_replay(key: str | None) -> None:
    """A stream cannot be replayed: an Idempotency-Key on one is a 400, before anything runs."""
    if key is not None:
        raise ApiError(400, "invalid_request", "Idempotency-Key is for non-streaming requests")


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # proxies pass it on as it comes


def event_stream(
    frames: AsyncIterator[str], after: Callable[[], Awaitable[None]] | None = None
) -> StreamingResponse:
    """An SSE answer that proxies pass on as it comes; `after()` is awaited once it ends, however it ends."""
    return StreamingResponse(
        frames,
        media_type="text/event-stream",
        headers=SSE_HEADERS,
        background=BackgroundTask(after) if after is not None else None,
    )


async def idempotent(
    idem: IdempotencyCache,
    tenant: str,
    key: str | None,
    request: list[Any],
    produce: Callable[[], Awaitable[tuple[int, Any]]],
) -> JSONResponse:
    """`produce`'s answer, or the first answer given to the same Idempotency-Key and request."""
    status, answer = await idem.answer(tenant, key, request, produce)
    return JSONResponse(answer, status)
