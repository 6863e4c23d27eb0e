"""An event loop on a thread of its own, with a pool of model workers on it, for synchronous tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from api.adapters.models.workers import Worker, WorkerPool

T = TypeVar("T")


class LoopThread:
    """`run(coroutine)` runs it on the loop and returns its result; `pool` has `workers` started."""

    def __init__(self, workers: int = 1):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-loop", daemon=True)
        self._size = workers
        self.pool: WorkerPool

    def __enter__(self) -> LoopThread:
        self._thread.start()
        self.pool = self.run(self._make_pool(), timeout=120)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.pool.close(), timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()

    async def _make_pool(self) -> WorkerPool:
        pool = WorkerPool(self._size)
        live = await pool.started()
        assert live == self._size, f"{live} of {self._size} model workers started"
        return pool

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def worker(self) -> Worker:
        """The pool's least-loaded live worker (one must be)."""
        worker = self.pool.pick()
        assert worker is not None, "no model worker is live"
        return worker
