"""The FastAPI application: wires the warehouse's lifetime and the routers, nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import warehouse
from api.routes import health


def create_app(data: str | None = None) -> FastAPI:
    """An app serving the warehouse at `data` (default `$CERVER_DATA` or ./cerver-data)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.warehouse = warehouse.open(data)
        try:
            yield
        finally:
            app.state.warehouse.close()

    app = FastAPI(title="Cerver", version="0.1.0", lifespan=lifespan)
    app.include_router(health.router)
    return app
