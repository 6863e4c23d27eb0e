"""run-llm answered beneath the framework: the turn every client makes, at the cost of a turn.

FastAPI's per-request machinery (routing through every route, dependencies, middleware that
wraps each message, the request object) costs about as much as Cerver's own work on a turn
(bench/overhead.py). This ASGI middleware answers `POST /v2/sessions/{id}/run-llm` itself
when the request is plainly good: a known bearer token, a JSON body under the size limit
that validates as `RunLLM`, and no `Idempotency-Key`. It runs the turn with the route's own
`turn_answer` and `turn_stream`, so both answer alike.

It only accepts. Anything else (a bad token, a body that does not validate, a key to
remember the answer by) goes on to the FastAPI route with the body it read replayed, and
the route answers as it always does, error shapes and all.
"""

from __future__ import annotations

import json
import re

from pydantic import ValidationError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import warehouse
from api import errors
from api.auth import bearer
from api.errors import ApiError
from api.routes.sessions import turn_answer, turn_stream
from api.schemas import RunLLM
from api.sessions.runner import Runner

_RUN_LLM = re.compile(r"/v2/sessions/([^/]+)/run-llm")


class HotPath:
    """Answers plainly good run-llm requests; passes every other request on, untouched."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _RUN_LLM.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if match is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, more = await _read(receive, self.max_bytes)
        accepted = None if more or len(body) > self.max_bytes else _accept(scope, body)
        if accepted is None:
            await self.app(scope, _replay(body, more, receive), send)
            return
        tenant, request = accepted
        runner: Runner = scope["app"].state.runner
        try:
            if request.stream:
                run = await runner.start(tenant, match.group(1), request)
            else:
                status, answer = await turn_answer(runner, tenant, match.group(1), request)
        except (ApiError, warehouse.StorageError) as exc:
            await errors.response_for(exc)(scope, receive, send)
            return
        response = turn_stream(runner, run) if request.stream else JSONResponse(answer, status)
        await response(scope, receive, send)


def _accept(scope: Scope, body: bytes) -> tuple[str, RunLLM] | None:
    """The tenant and the request, if the hot path can take it; None leaves it to the route."""
    headers = dict(scope["headers"])
    if b"idempotency-key" in headers or not headers.get(b"content-type", b"").startswith(b"application/json"):
        return None
    token = bearer(headers.get(b"authorization", b"").decode("latin-1"))
    tenant = scope["app"].state.tokens.tenant_for(token) if token is not None else None
    if tenant is None:
        return None
    try:
        return tenant, RunLLM.model_validate(json.loads(body))  # as FastAPI reads a body
    except (ValueError, ValidationError):
        return None


async def _read(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The request body, up to just past `limit` bytes; and whether more of it is still to come."""
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client left: let the app see it
            return b"".join(parts), True
        chunk = message.get("body", b"")
        parts.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(parts), False
        if size > limit:
            return b"".join(parts), True


def _replay(body: bytes, more: bool, receive: Receive) -> Receive:
    """`receive` as if nothing had been read: the body read so far, then whatever follows."""
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": more}

    return again
