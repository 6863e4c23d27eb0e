"""What the streaming and idempotent routes share: SSE frames and answers replayed by key."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi.responses import JSONResponse
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from api.errors import ApiError
from api.idempotency import IdempotencyCache


def frame(kind: str, data: dict[str, Any]) -> str:
    """One Server-Sent Event."""
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def refuse_replay(key: str | None) -> None:
    """A stream cannot be replayed: an Idempotency-Key on one is a 400, before anything runs."""
    if key is not None:
        raise ApiError(400, "invalid_request", "Idempotency-Key is for non-streaming requests")


_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # proxies pass it on as it comes
]


class EventStream(Response):
    """An SSE answer: each frame sent as it comes; a caller that leaves cancels the frames.

    What Starlette's StreamingResponse does, without its task group and its wrapped sends,
    which cost about 0.8 ms a streamed turn here (bench/overhead.py). `after()` is awaited
    once the answer ends, however it ends.
    """

    def __init__(self, frames: AsyncIterator[str], after: Callable[[], Awaitable[None]] | None = None):
        self.frames, self.after = frames, after
        self.status_code, self.background = 200, None  # what FastAPI reads of a returned Response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        pump = asyncio.ensure_future(_pump(self.frames, send))
        gone = asyncio.ensure_future(_gone(receive))
        try:
            await asyncio.wait((pump, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            pump.cancel()  # no-op once it has finished; else the frames end as cancelled
            try:
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
            finally:
                if self.after is not None:
                    await self.after()


async def _pump(frames: AsyncIterator[str], send: Send) -> None:
    async with contextlib.aclosing(frames):
        async for frame_text in frames:
            await send({"type": "http.response.body", "body": frame_text.encode(), "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _gone(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


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
