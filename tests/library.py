"""Sessions in the library, no server: the session service over a real warehouse under tmp_path."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import warehouse
from api.sessions.service import SessionService
from api.sessions.store import SessionStore


@contextlib.asynccontextmanager
async def sessions_at(root: Path) -> AsyncIterator[SessionService]:
    """A session service over the warehouse at `root`; its store and warehouse closed after."""
    wh = warehouse.open(str(root))
    store = SessionStore(wh)
    try:
        yield SessionService(store)
    finally:
        store.close()
        wh.close()
