"""Route dependencies as Annotated aliases: the caller's tenant and the services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from api.auth import bearer
from api.errors import ApiError
from api.idempotency import IdempotencyCache
from api.sessions.branches import Branches
from api.sessions.compute import ComputeService
from api.sessions.fanout import FanOut
from api.sessions.runner import Runner
from api.sessions.service import SessionService


async def _tenant(request: Request) -> str:
    token = bearer(request.headers.get("authorization", ""))
    if token is None:
        raise ApiError(
            401, "unauthorized", "send Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"}
        )
    tenant = request.app.state.tokens.tenant_for(token)
    if tenant is None:
        raise ApiError(401, "unauthorized", "unknown token", {"WWW-Authenticate": "Bearer"})
    return tenant


async def _service(request: Request) -> SessionService:
    return request.app.state.service


async def _runner(request: Request) -> Runner:
    return request.app.state.runner


async def _fanout(request: Request) -> FanOut:
    return request.app.state.fanout


async def _compute(request: Request) -> ComputeService:
    return request.app.state.compute


async def _branches(request: Request) -> Branches:
    return request.app.state.branches


async def _idempotency(request: Request) -> IdempotencyCache:
    return request.app.state.idempotency


TenantDep = Annotated[str, Depends(_tenant)]
ServiceDep = Annotated[SessionService, Depends(_service)]
RunnerDep = Annotated[Runner, Depends(_runner)]
FanOutDep = Annotated[FanOut, Depends(_fanout)]
BranchesDep = Annotated[Branches, Depends(_branches)]
IdempotencyDep = Annotated[IdempotencyCache, Depends(_idempotency)]
ComputeDep = Annotated[ComputeService, Depends(_compute)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
