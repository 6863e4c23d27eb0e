"""Compute routes: attach or move a session's compute, exec in it, and the socket relays dial into."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, WebSocket
from pydantic import Field, field_validator

from api.deps import ComputeDep, TenantDep
from api.relay.hub import tenant_relays
from api.schemas import Strict

router = APIRouter(tags=["compute"])

Provider = Annotated[str, Field(min_length=1, max_length=64)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]


class AttachCompute(Strict):
    """POST /v2/sessions/{id}/compute."""

    provider: Provider
    options: dict[str, Any] = Field(default_factory=dict)
    move_files: bool = True  # false: start empty, leave the old workspace alone (e.g. its relay is gone)


class ExecCommand(Strict):
    """POST /v2/sessions/{id}/exec: a shell line (run by `sh -c`) or an argv list."""

    command: (
        Annotated[str, Field(min_length=1, max_length=100_000)]
        | Annotated[list[Annotated[str, Field(max_length=100_000)]], Field(min_length=1, max_length=1000)]
    )
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    env: dict[EnvName, Annotated[str, Field(max_length=100_000)]] | None = Field(default=None, max_length=200)
    stdin: str | None = None

    @field_validator("command")
    @classmethod
    def _not_blank(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str) and not value.strip():
            raise ValueError("command is blank")
        if isinstance(value, list) and not value[0]:
            raise ValueError("argv[0] is empty")
        return value


@router.post("/v2/sessions/{session_id}/compute")
async def attach_compute(
    session_id: str, body: AttachCompute, tenant: TenantDep, compute: ComputeDep
) -> dict[str, Any]:
    """Attach compute to the session, or move it there: the workspace's files move with it."""
    return await compute.attach(tenant, session_id, body.provider, body.options, body.move_files)


@router.post("/v2/sessions/{session_id}/exec")
async def exec_command(
    session_id: str, body: ExecCommand, tenant: TenantDep, compute: ComputeDep
) -> dict[str, Any]:
    """Run a command in the session's compute: exit code, capped output, duration, timed out or not."""
    stdin = body.stdin.encode() if body.stdin is not None else None
    return await compute.exec(tenant, session_id, body.command, body.timeout_s, body.env, stdin)


@router.get("/v2/relays")
async def list_relays(tenant: TenantDep, compute: ComputeDep) -> dict[str, Any]:
    """The caller's tenant's connected relays."""
    return {"relays": tenant_relays(compute.config.hub, tenant)}


@router.websocket("/v2/relay")
async def relay_socket(socket: WebSocket) -> None:
    """Where `cerver relay` connects; its bearer token decides the tenant it serves."""
    scheme, _, token = socket.headers.get("authorization", "").partition(" ")
    tenant = socket.app.state.tokens.tenant_for(token.strip()) if scheme.lower() == "bearer" else None
    if tenant is None:
        await socket.close(code=1008, reason="unknown token")  # before accept: the handshake gets 403
        return
    await socket.app.state.compute.config.hub.serve(socket, tenant)
