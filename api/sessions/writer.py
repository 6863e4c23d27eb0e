"""One thread appends for every coroutine: writes that arrive together share one append.

A run writes twice (its start, its end). Under load, many runs write at once; funnelling
them through one thread turns N small appends (N validations, encodings and fsyncs)
into one, and keeps the event loop free of blocking I/O.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any

import warehouse

_MAX_GROUP = 512  # writes folded into one append


class BatchWriter:
    """Appends events durably for coroutines, grouping concurrent writes."""

    def __init__(self, wh: warehouse.Warehouse):
        self.wh = wh
        self._queue: queue.SimpleQueue[tuple[list[dict[str, Any]], asyncio.Future[None]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="cerver-writer", daemon=True)
        self._thread.start()

    async def append(self, events: list[dict[str, Any]]) -> None:
        """Return once `events` are durable; raises what the warehouse raised for them."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put((events, future))
        await future

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
            self._write(group)

    def _write(self, group: list[tuple[list[dict[str, Any]], asyncio.Future[None]]]) -> None:
        try:
            self.wh.append([e for events, _ in group for e in events])
            outcomes: list[BaseException | None] = [None] * len(group)
        except warehouse.ValidationError:
            outcomes = [self._alone(events) for events, _ in group]  # name the culprit
        except Exception as exc:
            outcomes = [exc] * len(group)
        for (_, future), outcome in zip(group, outcomes):
            future.get_loop().call_soon_threadsafe(_settle, future, outcome)

    def _alone(self, events: list[dict[str, Any]]) -> BaseException | None:
        try:
            self.wh.append(events)
        except Exception as exc:
            return exc
        return None

    def close(self) -> None:
        """Finish what is queued, then stop."""
        self._queue.put(None)
        self._thread.join()


def _settle(future: asyncio.Future[None], outcome: BaseException | None) -> None:
    if future.done():  # the caller gave up (cancelled); the events are stored all the same
        return
    if outcome is None:
        future.set_result(None)
    else:
        future.set_exception(outcome)
