"""One thread doing blocking work for coroutines, in groups: what arrives together is done together.

Requests that each append a few events would otherwise each validate, encode and fsync alone,
in as many threads, queueing behind one another for the GIL. Here one thread takes everything
queued, hands it to `work` as one list, and answers each caller with its own result.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_MAX_GROUP = 512


class GroupWorker(Generic[T, R]):
    """`await worker.submit(item)` returns `work([..., item, ...])`'s result for `item`.

    `work` returns one result per item, or an exception instance for an item that failed;
    if `work` itself raises, every item of the group gets that exception.
    """

    def __init__(self, work: Callable[[list[T]], list[R | BaseException]], name: str):
        self._work = work
        self._busy = 0  # items submitted and not yet done
        self._queue: queue.SimpleQueue[tuple[T, asyncio.Future[R]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def submit(self, item: T) -> R:
        """The result of `item`, once its group is done (raises what failed it)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._busy += 1
        self._queue.put((item, future))
        try:
            return await future
        finally:
            self._busy -= 1

    @property
    def idle(self) -> bool:
        """Nothing submitted from this event loop is queued or in progress."""
        return self._busy == 0

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            group = [first]
            while len(group) < _MAX_GROUP:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # finish this group, then stop
                    break
                group.append(item)
            try:
                outcomes: list[R | BaseException] = self._work([item for item, _ in group])
            except Exception as exc:
                outcomes = [exc] * len(group)
            settle = [(future, outcome) for (_, future), outcome in zip(group, outcomes, strict=True)]
            loops = {future.get_loop() for future, _ in settle}
            for loop in loops:  # one wake-up of each event loop for the whole group
                mine = [(f, o) for f, o in settle if f.get_loop() is loop]
                loop.call_soon_threadsafe(_settle_all, mine)

    def close(self) -> None:
        """Finish what is queued, then stop."""
        self._queue.put(None)
        self._thread.join()


def _settle_all(settle: list[tuple[asyncio.Future, object]]) -> None:
    for future, outcome in settle:
        if future.done():  # the caller gave up (cancelled); the work is done all the same
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
