"""Where session state lives: written as events, cached in memory, rebuilt from the warehouse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

import warehouse
from api.sessions.state import SessionState
from api.sessions.writer import BatchWriter

log = logging.getLogger("cerver.sessions")
OnClosed = Callable[[str, str], Awaitable[None]]
_EVENTS_OF_SESSION = "SELECT * FROM events WHERE tenant_id = ? AND session_id = ? ORDER BY ts, event_id"


class SessionStore:
    """A bounded LRU of session states over the warehouse; every change is an appended event."""

    def __init__(self, wh: warehouse.Warehouse, capacity: int = 10_000):
        self.wh = wh
        self.writer = BatchWriter(wh)
        self._cache: OrderedDict[tuple[str, str], SessionState] = OrderedDict()
        self._capacity = capacity
        self._loading = asyncio.Lock()
        self.on_closed: list[OnClosed] = []  # called (in the background) with each closed session
        self._background: set[asyncio.Task[None]] = set()

    async def get(self, tenant_id: str, session_id: str) -> SessionState | None:
        """The session's state, loading it from its events on a miss; None if it has none."""
        key = (tenant_id, session_id)
        if (state := self._cache.get(key)) is not None:
            self._cache.move_to_end(key)
            return state
        async with self._loading:
            return await self._load(tenant_id, session_id)

    async def _load(self, tenant_id: str, session_id: str) -> SessionState | None:
        """Rebuild a state from its events, and the sessions it was forked from (under `_loading`)."""
        if (state := self._cache.get((tenant_id, session_id))) is not None:
            return state
        rows = await run_in_threadpool(self._events, tenant_id, session_id)
        if not rows:
            return None
        state = SessionState(tenant_id, session_id)
        for row in rows:
            state.apply(row)
        if (parent := state.fork_of) is not None:
            state.base = await self._load(tenant_id, parent)  # shared, never copied
        self._remember(state)
        return state

    def _events(self, tenant_id: str, session_id: str) -> list[dict[str, Any]]:
        return self.wh.sql(_EVENTS_OF_SESSION, [tenant_id, session_id]).to_pylist()

    def _remember(self, state: SessionState) -> None:
        self._cache[(state.tenant_id, state.session_id)] = state
        while len(self._cache) > self._capacity:
            key, oldest = next(iter(self._cache.items()))
            if oldest.lock.locked():  # a run is in flight: keep it, stop evicting for now
                break
            del self._cache[key]

    def forget(self, tenant_id: str, session_id: str) -> None:
        """Drop a cached state (events arrived around the service): the next read rebuilds it."""
        state = self._cache.get((tenant_id, session_id))
        if state is not None and not state.lock.locked():
            del self._cache[(tenant_id, session_id)]

    async def write(
        self,
        state: SessionState,
        events: list[dict[str, Any]],
        *,
        alone: bool = False,
        overlap: bool = False,
        sync_later: bool = False,
    ) -> None:
        """Append the events durably, then fold them into the cached state (see BatchWriter for the flags)."""
        await self.write_many([(state, events)], alone=alone, overlap=overlap, sync_later=sync_later)

    async def write_many(
        self,
        changes: list[tuple[SessionState, list[dict[str, Any]]]],
        *,
        alone: bool = False,
        overlap: bool = False,
        sync_later: bool = False,
    ) -> None:
        """Append several sessions' events in one durable append, then fold each into its state.

        Every event of a forked or spawned session carries its parent's id, as the created one does.
        """
        for state, events in changes:
            if state.parent_session_id is not None:
                for e in events:
                    e.setdefault("parent_session_id", state.parent_session_id)
        writes = [e for _, events in changes for e in events]
        await self.writer.append(writes, alone=alone, overlap=overlap, sync_later=sync_later)
        for state, events in changes:
            for e in events:
                state.apply(e)
            self._remember(state)
            if self.on_closed and any(e["type"] == "session.closed" for e in events):
                for hook in self.on_closed:
                    self._spawn(hook(state.tenant_id, state.session_id))

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("a hook on a closed session failed")

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def settle(self) -> None:
        """Wait for the hooks still running (at shut-down, and in tests)."""
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._background)

    def close(self) -> None:
        """Finish queued writes."""
        self.writer.close()

    async def sql(self, query: str, params: list[Any]) -> list[dict[str, Any]]:
        """A read-only query, off the event loop."""
        table = await run_in_threadpool(self.wh.sql, query, params)
        return table.to_pylist()
