"""Model worker processes: litellm calls made beside the server's process, when it is busy.

A litellm call costs several milliseconds of CPU in Python (building the request, parsing the
answer, its own logging and pricing), and a server is one process under one GIL: when many
turns run at once, each waits for the others' litellm work. So a call made while another is
in flight goes to a worker process instead, over a pipe, and a busy server spreads litellm's
CPU over the machine's cores. A lone call stays in the server: a hop to a worker would only
add to it.

The pool starts on the first overlap (a worker imports litellm, which takes seconds, so none
is started for a server that never runs two turns at once); until a worker is ready, calls
run in the server. `CERVER_MODEL_WORKERS` sets how many (default: the cores, at most 4; 0:
none). A worker inherits the server's environment (the provider keys and base URLs litellm
reads), runs one litellm call per request and nothing else, and exits when the server's end
of its pipe closes, so a server killed with -9 leaves none behind.

Whole (JSON) calls are admitted in the order they come: a worker runs at most SLOTS of them at
once, and the rest wait in the server for a slot. Inside a worker, calls share one event loop,
so each new call slows every call already there; when the provider answers fast and litellm's
CPU is the work, letting every call in at once made the slowest turns wait twice as long as the
median (bench/overhead.py, 16 clients). A call that has waited on its provider for WAIT_S no
longer holds its slot (as Go's scheduler hands a thread's processor on when the thread blocks in
a system call), so calls to slow providers are never queued behind each other; nor is any call
held past HOLD_S, whatever it waits for. Streams are not queued: one can last minutes.

The protocol, both ends of it here: frames of a 4-byte big-endian length and a pickle.
  server -> worker: (call_id, "complete" | "stream", model, messages, CallOptions), (call_id, "cancel"),
                    (call_id, "running")
  worker -> server: (call_id, "delta", text), (call_id, "result", ModelResult | calls running),
                    (call_id, "error", (message, status, retryable, timeout, retry_after)),
                    (call_id, "waiting", None): a whole call has waited WAIT_S on its provider
A worker that dies fails its calls with a retryable ModelError, and the runner retries them;
one that sends nothing for GRACE_S past a call's own timeout fails that call as a timeout.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import gc
import itertools
import logging
import os
import pickle
import struct
import sys
import time
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

from api.adapters.models.base import CallOptions, Message, ModelError, ModelResult
from ingest.pricing import litellm

log = logging.getLogger("cerver.models")
_HEADER = struct.Struct(">I")
_LIMIT = 1 << 30  # a frame longer than this is a broken pipe, not a transcript
_START_TIMEOUT_S = 120.0
_RETRY_START_S = 30.0  # after a worker failed to start, calls run in the server this long
GRACE_S = 5.0  # a worker silent this long past a call's own timeout is stuck: the call fails
SLOTS = 2  # whole calls a worker runs at once: one on the CPU while another waits on its provider
WAIT_S = 0.005  # a call waiting this long on its provider frees its slot (litellm's CPU is ~4 ms)
HOLD_S = 0.05  # and no call holds a slot longer, whatever it waits for
# How a worker is started (not `-m`: the package imports this module, and runpy would warn).
COMMAND = (sys.executable, "-c", "from api.adapters.models.workers import main; main()")
_call_ids = itertools.count(1)


def configured_size() -> int:
    """`CERVER_MODEL_WORKERS`, else the machine's cores (at most 4); ValueError if it is not a count."""
    raw = (os.environ.get("CERVER_MODEL_WORKERS") or "").strip()
    if not raw:
        return min(os.cpu_count() or 1, 4)
    if not raw.isdigit():
        raise ValueError(f"CERVER_MODEL_WORKERS must be a count of processes (0 for none), not {raw!r}")
    return int(raw)


def _frame(message: tuple[Any, ...]) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


async def _read(reader: asyncio.StreamReader) -> tuple[Any, ...] | None:
    """The next frame, or None at the end of the pipe."""
    try:
        (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
        if size > _LIMIT:
            raise ValueError(f"a frame of {size} bytes")
        return pickle.loads(await reader.readexactly(size))
    except asyncio.IncompleteReadError:
        return None


def _error_fields(exc: ModelError) -> tuple[str, int | None, bool, bool, float | None]:
    return str(exc), exc.status, exc.retryable, exc.timeout, exc.retry_after


def _error(fields: tuple[str, int | None, bool, bool, float | None]) -> ModelError:
    message, status, retryable, timeout, retry_after = fields
    error = ModelError(message, status=status, retryable=retryable, timeout=timeout)
    error.retry_after = retry_after
    return error


# --- the server's end ---------------------------------------------------------------------------


class Worker:
    """One worker process and the calls it is making for this server."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self.calls: dict[int, asyncio.Queue[tuple[Any, ...]]] = {}
        self.slots: dict[int, asyncio.TimerHandle] = {}  # calls holding a slot, and when they must let go
        self.on_free: Callable[[], None] = lambda: None  # told each time a slot comes free
        self.alive = True
        self._reading = asyncio.create_task(self._read_answers())

    @property
    def load(self) -> int:
        return len(self.calls)

    @property
    def busy(self) -> int:
        """Slots taken (see the module's docstring)."""
        return len(self.slots)

    async def call(
        self, kind: str, *args: Any, wait_s: float | None = None, slot: bool = False
    ) -> AsyncIterator[Any]:
        """What the worker sends for one request: deltas (for "stream"), then one result.

        `wait_s`: how long to wait for each of them before the call fails as a timeout (litellm
        times out the provider inside the worker; this is for a worker that hangs). `slot`: the
        call takes one of the worker's slots until it ends, waits on its provider, or HOLD_S.
        """
        call_id = next(_call_ids)
        answers: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.calls[call_id] = answers
        if slot:
            self.slots[call_id] = asyncio.get_running_loop().call_later(HOLD_S, self._free, call_id)
        ended = False
        try:
            self._send((call_id, kind, *args))
            while True:
                try:
                    _, what, payload = await asyncio.wait_for(answers.get(), wait_s)
                except TimeoutError:
                    raise ModelError(
                        f"the model worker sent nothing for {wait_s:g} s", retryable=True, timeout=True
                    ) from None
                if what == "delta":
                    yield payload
                elif what == "result":
                    ended = True
                    yield payload
                    return
                else:
                    ended = True
                    raise _error(payload)
        finally:
            self.calls.pop(call_id, None)
            self._free(call_id)
            if not ended and self.alive:  # the caller left: stop the worker's call too
                with contextlib.suppress(Exception):
                    self._send((call_id, "cancel"))

    async def running(self) -> int:
        """How many calls the worker process is making now, as it says."""
        async with contextlib.aclosing(self.call("running")) as answers:
            async for count in answers:
                return int(count)
        raise AssertionError("unreachable: a call ends with a result or an error")

    def _free(self, call_id: int) -> None:
        if (deadline := self.slots.pop(call_id, None)) is not None:
            deadline.cancel()
            self.on_free()

    def _send(self, message: tuple[Any, ...]) -> None:
        if not self.alive or self.proc.stdin is None or self.proc.stdin.is_closing():
            raise ModelError("the model worker has exited", retryable=True)
        self.proc.stdin.write(_frame(message))

    async def _read_answers(self) -> None:
        assert self.proc.stdout is not None
        try:
            while (message := await _read(self.proc.stdout)) is not None:
                if message[1] == "waiting":
                    self._free(message[0])
                elif (answers := self.calls.get(message[0])) is not None:
                    answers.put_nowait(message)
        except Exception:
            log.exception("reading a model worker's answers failed")
        finally:
            self.alive = False
            lost = (0, "error", ("ModelError: the model worker exited mid-call", None, True, False, None))
            for answers in self.calls.values():
                answers.put_nowait(lost)
            self.on_free()  # calls queued for a slot look again, at the workers still live

    async def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the worker exits at the end of its input
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self._reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reading


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WorkerPool] = weakref.WeakKeyDictionary()


def pool() -> WorkerPool | None:
    """The running loop's pool (made on first use), or None when workers are switched off."""
    loop = asyncio.get_running_loop()
    if (found := _pools.get(loop)) is None:
        if (size := configured_size()) == 0:
            return None
        found = _pools[loop] = WorkerPool(size)
    return found


def status() -> dict[str, int]:
    """The running loop's workers: how many take calls now, the calls they have taken, and those queued."""
    found = _pools.get(asyncio.get_running_loop())
    if found is None:
        return {"ready": 0, "calls": 0, "queued": 0}
    queued = sum(not waiter.done() for waiter in found.queue)
    return {"ready": sum(w.alive for w in found.workers), "calls": found.calls, "queued": queued}


async def close() -> None:
    """Stop the running loop's workers, waiting for them to exit (the server's shutdown)."""
    found = _pools.pop(asyncio.get_running_loop(), None)
    if found is not None:
        await found.close()


class WorkerPool:
    """The model workers of one server (per event loop): started on first need, least-loaded first."""

    def __init__(self, size: int):
        self.size = size
        self.workers: list[Worker] = []
        self.calls = 0  # taken by a worker, since the pool was made
        self.queue: collections.deque[asyncio.Future[None]] = collections.deque()  # whole calls, for a slot
        self._woken = 0  # queued calls told a slot is free that have not looked yet
        self._starting: asyncio.Task[None] | None = None
        self._failed_at = -_RETRY_START_S

    async def started(self) -> int:
        """Start the missing workers and wait for them; returns how many are live."""
        self.pick()
        if self._starting is not None:
            await asyncio.shield(self._starting)
        return sum(w.alive for w in self.workers)

    def pick(self) -> Worker | None:
        """The least-loaded live worker; starts missing ones (None until one is ready)."""
        live = [w for w in self.workers if w.alive]
        if (
            len(live) < self.size
            and (self._starting is None or self._starting.done())
            and time.monotonic() - self._failed_at >= _RETRY_START_S
        ):
            self._starting = asyncio.create_task(self._start(self.size - len(live)))
        return min(live, key=lambda w: w.load, default=None)

    async def _start(self, count: int) -> None:
        self.workers = [w for w in self.workers if w.alive]
        made = await asyncio.gather(*(self._start_one() for _ in range(count)))
        started = [w for w in made if w is not None]
        self.workers += started
        for worker in started:
            worker.on_free = self._wake
            for _ in range(SLOTS):
                self._wake()
        if len(started) < count:
            self._failed_at = time.monotonic()
        log.info("%d model worker(s) ready", len(self.workers))

    async def _start_one(self) -> Worker | None:
        """A new worker once it is ready, or None (logged) if it did not start."""
        proc = None
        try:
            proc = await asyncio.create_subprocess_exec(
                *COMMAND, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
            )
            assert proc.stdout is not None
            # It says so once litellm is imported (seconds): then it takes calls.
            if await asyncio.wait_for(_read(proc.stdout), _START_TIMEOUT_S) != ("ready",):
                raise RuntimeError(f"the model worker exited at start (code {await proc.wait()})")
        except BaseException as exc:
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()
            if not isinstance(exc, Exception):
                raise
            log.exception("a model worker did not start; calls run in the server")
            return None
        return Worker(proc)

    def stream(
        self, worker: Worker, model: str, messages: list[Message], options: CallOptions
    ) -> AsyncIterator[str | ModelResult]:
        """The reply, streamed from `worker`: deltas, then the result."""
        self.calls += 1
        return worker.call("stream", model, messages, options, wait_s=options.timeout_s + GRACE_S)

    async def complete(self, model: str, messages: list[Message], options: CallOptions) -> ModelResult:
        """The whole reply, made by the first worker with a free slot (calls queue in the order they came)."""
        worker = await self._admit()
        self.calls += 1
        call = worker.call(
            "complete", model, messages, options, wait_s=options.timeout_s + GRACE_S, slot=True
        )
        async with contextlib.aclosing(call) as items:
            async for item in items:
                assert isinstance(item, ModelResult)
                return item
        raise ModelError("the model worker ended the call without a result", retryable=True)

    async def _admit(self) -> Worker:
        """The least busy live worker once one has a free slot, first come first served."""
        looked = False  # this call was queued and woken: its turn, ahead of calls that came later
        while True:
            live = [w for w in self.workers if w.alive]
            if not live:
                self._wake()  # the next queued call finds out too
                raise ModelError("no model worker is live", retryable=True)
            worker = min(live, key=lambda w: (w.busy, w.load))
            if worker.busy < SLOTS and (looked or (not self.queue and not self._woken)):
                return worker
            waiter = asyncio.get_running_loop().create_future()
            if looked:
                self.queue.appendleft(waiter)  # another took the slot first: still this call's turn
            else:
                self.queue.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # woken, then cancelled: pass the slot on
                    self._woken -= 1
                    self._wake()
                raise
            self._woken -= 1
            looked = True

    def _wake(self) -> None:
        """A slot came free: the call queued longest looks for it."""
        while self.queue:
            waiter = self.queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._woken += 1
                return

    async def close(self) -> None:
        """Stop starting workers, and stop the live ones."""
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._starting
        await asyncio.gather(*(w.stop() for w in self.workers), return_exceptions=True)
        self.workers = []


# --- the worker's end ---------------------------------------------------------------------------

_whole_call: contextvars.ContextVar[int | None] = contextvars.ContextVar("cerver_whole_call", default=None)


def _watch_provider_waits(
    loop: asyncio.AbstractEventLoop, tell: Callable[[int], None]
) -> Callable[[int], None]:
    """Call `tell(call_id)` when a whole call has waited WAIT_S on its provider; returns `forget(call_id)`.

    litellm runs its input callbacks just before a request goes to the provider and again when
    the answer is in (`pre_call`/`post_call`, in every provider's handler), on the call's own
    task (or a thread of it, so the timers are set from the loop's side).
    """
    from litellm.integrations.custom_logger import CustomLogger

    timers: dict[int, asyncio.TimerHandle] = {}

    def waited(call_id: int) -> None:
        timers.pop(call_id, None)
        tell(call_id)

    def start(call_id: int) -> None:
        forget(call_id)
        timers[call_id] = loop.call_later(WAIT_S, waited, call_id)

    def forget(call_id: int) -> None:
        if (timer := timers.pop(call_id, None)) is not None:
            timer.cancel()

    class ProviderWaits(CustomLogger):  # litellm calls a logger's hooks when it is a CustomLogger
        def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
            if (call_id := _whole_call.get()) is not None:
                loop.call_soon_threadsafe(start, call_id)

        def log_post_api_call(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
            if (call_id := _whole_call.get()) is not None:
                loop.call_soon_threadsafe(forget, call_id)

    litellm().logging_callback_manager.add_litellm_input_callback(ProviderWaits())
    return forget


async def _serve(answers: Any) -> None:
    from api.adapters.models.litellm_adapter import LiteLLMAdapter, warm

    warm()
    gc.collect()  # as the server does (api/main.py): litellm's millions of long-lived objects
    gc.freeze()  # are never walked again by a full collection, which stalled every call here
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, answers)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    adapter = LiteLLMAdapter()
    running: dict[int, asyncio.Task[None]] = {}
    forget = _watch_provider_waits(loop, lambda call_id: writer.write(_frame((call_id, "waiting", None))))

    async def one(call_id: int, kind: str, model: str, messages: list[Message], options: CallOptions) -> None:
        try:
            if kind == "complete":
                _whole_call.set(call_id)  # this task's context only
                result = await adapter.complete_here(model, messages, options)
                writer.write(_frame((call_id, "result", result)))
                return
            async for item in adapter.stream_here(model, messages, options):
                what = "result" if isinstance(item, ModelResult) else "delta"
                writer.write(_frame((call_id, what, item)))
        except ModelError as exc:
            writer.write(_frame((call_id, "error", _error_fields(exc))))
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # never lose a call silently: the server gets an error to record
            failure = (f"{type(exc).__name__}: {exc}", None, False, False, None)
            writer.write(_frame((call_id, "error", failure)))
        finally:
            running.pop(call_id, None)
            forget(call_id)

    writer.write(_frame(("ready",)))
    while (message := await _read(reader)) is not None:
        if message[1] == "cancel":
            if (task := running.get(message[0])) is not None:
                task.cancel()
            continue
        if message[1] == "running":
            writer.write(_frame((message[0], "result", len(running))))
            continue
        running[message[0]] = asyncio.create_task(one(*message))
    for task in running.values():
        task.cancel()


def main() -> None:
    """The worker process (see COMMAND), spoken to over stdin/stdout."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    answers = os.fdopen(os.dup(1), "wb")  # the protocol's pipe; anything printed goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(answers))
    else:
        uvloop.run(_serve(answers))
