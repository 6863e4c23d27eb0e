"""The FastAPI application: wires the warehouse's lifetime, services and routers, nothing else."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

import warehouse
from api import errors
from api.adapters.compute import ComputeConfig
from api.adapters.models import workers
from api.adapters.models.litellm_adapter import warm
from api.auth import DEFAULT_TENANT, TokenStore
from api.group import GroupWorker
from api.hot_path import HotPath
from api.idempotency import IdempotencyCache
from api.limits import BodyLimit
from api.relay.hub import RelayHub
from api.routes import compute as compute_routes
from api.routes import events, fanout, health, query, sessions, traces
from api.sessions.branches import Branches
from api.sessions.compute import ComputeService, workspaces_folder
from api.sessions.fanout import FanOut
from api.sessions.runner import Runner, interrupt_unfinished
from api.sessions.service import SessionService
from api.sessions.store import SessionStore
from api.settings import Settings
from ingest import rest
from ingest.rest import MAX_BODY_BYTES

log = logging.getLogger("cerver.api")


def _warm(done: threading.Event) -> None:
    """Import litellm now, then exempt everything loaded so far from garbage collection.

    litellm and the rest leave a few million long-lived objects; every full collection walks
    them all: under steady ingest that stalled answers for up to a third of a second every
    several seconds (bench/ingest.py). Frozen, they are never walked; new objects are collected as usual.
    """
    warm()
    gc.collect()
    gc.freeze()
    done.set()


def create_app(data: str | None = None, settings: Settings | None = None) -> FastAPI:
    """An app serving the warehouse at `data` (default `$CERVER_DATA` or ./cerver-data)."""
    settings = settings or Settings(data=data)
    workers.configured_size()  # a bad CERVER_MODEL_WORKERS stops the server here, not a turn later

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        wh = warehouse.open(data, wal=settings.wal, auto_compact=settings.compact)
        app.state.warm = threading.Event()
        threading.Thread(target=_warm, args=(app.state.warm,), name="warm-litellm", daemon=True).start()
        app.state.warehouse = wh
        app.state.tokens = TokenStore(wh.root)
        if not app.state.tokens.any():
            token = app.state.tokens.create(DEFAULT_TENANT)
            print(f"No API token existed: minted one for tenant '{DEFAULT_TENANT}' (shown once):\n  {token}")
        app.state.service = SessionService(SessionStore(wh))
        app.state.ingest = GroupWorker(partial(rest.ingest_many, wh), "cerver-ingest")
        app.state.runner = Runner(app.state.service, settings)
        app.state.fanout = FanOut(app.state.service, app.state.runner, settings)
        app.state.branches = Branches(app.state.service)
        app.state.idempotency = IdempotencyCache()
        app.state.compute = ComputeService(
            app.state.service, ComputeConfig(workspaces_folder(wh.root), hub=RelayHub())
        )
        app.state.runner.compute = app.state.compute  # agent CLI harnesses run in session workspaces
        await interrupt_unfinished(app.state.service)
        try:
            yield
        finally:
            await workers.close()
            await app.state.service.store.settle()
            app.state.ingest.close()
            app.state.service.store.close()
            wh.close()

    app = FastAPI(title="Cerver", version="0.1.0", lifespan=lifespan)
    errors.install(app)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        per_path={"/v2/events": MAX_BODY_BYTES, "/v1/traces": MAX_BODY_BYTES},
    )
    app.add_middleware(HotPath, max_bytes=settings.max_body_bytes)  # outermost: before BodyLimit
    app.include_router(health.router)
    app.include_router(sessions.router)
    app.include_router(fanout.router)
    app.include_router(compute_routes.router)
    app.include_router(events.router)
    app.include_router(traces.router)
    app.include_router(query.router)
    return app
