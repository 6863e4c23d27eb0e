"""Session events are appended by one thread (writes that arrive together share one append),
or, for a lone run, right on the event loop.

Every event here was made by `api.sessions.events.event`, with an id it just minted, so the
warehouse is told so (`minted`) and skips its duplicate check.

A run writes twice (its start, its end). Under load, many runs write at once; funnelling
them through one GroupWorker turns N small appends (N validations, encodings and fsyncs)
into one, and keeps the event loop free of blocking I/O.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import warehouse
from api.group import GroupWorker

Events = list[dict[str, Any]]
SYNC_LATER_S = 0.05  # how long a `sync_later` batch waits for another append's fsync to cover it
log = logging.getLogger("cerver.writer")


class BatchWriter:
    """Appends events durably for coroutines, grouping concurrent writes."""

    def __init__(self, wh: warehouse.Warehouse):
        self.wh = wh
        self._worker: GroupWorker[Events, None] = GroupWorker(self._write, "cerver-writer")
        self._syncer = ThreadPoolExecutor(1, thread_name_prefix="cerver-sync")

    async def append(
        self, events: Events, *, alone: bool = False, overlap: bool = False, sync_later: bool = False
    ) -> None:
        """Return once `events` are durable (with `sync_later`, in the log); raises what the warehouse raised.

        `alone`: nothing else is in flight, so the write is done here, on the event loop: the
        hop to the writer thread and back would be pure delay, with nothing to group it with.
        `overlap` (with `alone`): the caller has work to go on with while the disk syncs (a
        turn's start, written as its model call begins), so the events are written here and
        their fsync is waited for on a thread of its own, while the event loop goes on.
        `sync_later` (with `overlap`): nothing is answered until the caller's next append, and
        the log syncs in order, so that append's fsync covers these events too: return once they
        are in the log, not yet durable. A kill -9 keeps them (the log is written); so that a
        long turn's start is visible to queries before its end, they are synced within
        SYNC_LATER_S anyway.
        """
        if alone and self._worker.idle:
            if overlap:
                pending = self.wh.write_minted(events)
                if sync_later:
                    asyncio.get_running_loop().call_later(SYNC_LATER_S, self._sync, pending)
                    return
                await asyncio.get_running_loop().run_in_executor(self._syncer, pending.wait)
                return
            if (failed := self._write([events])[0]) is not None:
                raise failed
            return
        await self._worker.submit(events)

    def _sync(self, pending: warehouse.PendingAppend) -> None:
        """Sync a batch written with `sync_later` on the sync thread, unless a later append's fsync did."""
        if pending.durable:
            return
        try:
            future = self._syncer.submit(pending.wait)
        except RuntimeError:  # shut down: closing the warehouse syncs its log
            return
        future.add_done_callback(_report)

    def _write(self, group: list[Events]) -> list[BaseException | None]:
        try:
            self.wh.append([e for events in group for e in events], minted=True)
        except warehouse.ValidationError:
            return [self._alone(events) for events in group]  # name the culprit
        return [None] * len(group)

    def _alone(self, events: Events) -> BaseException | None:
        try:
            self.wh.append(events, minted=True)
        except Exception as exc:
            return exc
        return None

    def close(self) -> None:
        """Finish what is queued, then stop."""
        self._worker.close()
        self._syncer.shutdown()


def _report(future: Future[Any]) -> None:
    """A deferred sync that failed broke the log: the turn's own next append raises it; say so here too."""
    if (error := future.exception()) is not None:
        log.error("syncing a turn's start failed: %s", error)
