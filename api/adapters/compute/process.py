"""One command as a local subprocess: its own process group, a timeout, capped output, nothing left behind.

The command starts a new session (so it leads its own process group); at its timeout, when its
caller goes away (cancellation), and after it exits, the whole group is killed with SIGKILL, so
neither a forked grandchild nor a `cmd &` outlives the exec. Output is read as it comes: the first
OUTPUT_CAP bytes of each stream are kept and the rest is counted and dropped, so a command that
writes 100 MB costs 1 MiB of memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

from api.adapters.compute.base import OUTPUT_CAP, TIMEOUT_EXIT_CODE, ComputeUnavailable, ExecResult, decode
from api.adapters.compute.spawn import READ_SIZE, Child, spawn

LINE_CAP = 8 << 20  # a stdout line longer than this is yielded in pieces
_DRAIN_S = 2.0  # after the group is killed, how long to wait for the pipes to close


class _Capture:
    """Keeps the first `cap` bytes of a stream and counts all of them."""

    def __init__(self, cap: int = OUTPUT_CAP):
        self.cap, self.kept, self.total = cap, bytearray(), 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.cap - len(self.kept)
        if room > 0:
            self.kept += data[:room]

    @property
    def truncated(self) -> bool:
        return self.total > self.cap


class _Lines:
    """Splits a byte stream into lines for `emit` (awaited: a slow reader slows the command)."""

    def __init__(self, emit: Callable[[str], Awaitable[object]]):
        self.emit, self.pending, self.total = emit, bytearray(), 0

    async def add(self, data: bytes) -> None:
        self.total += len(data)
        self.pending += data
        while (cut := self.pending.find(b"\n")) >= 0 or len(self.pending) >= LINE_CAP:
            end = cut if cut >= 0 else LINE_CAP
            line, self.pending = bytes(self.pending[:end]), self.pending[end + (1 if cut >= 0 else 0) :]
            await self.emit(decode(line))

    async def finish(self) -> None:
        if self.pending:
            line, self.pending = bytes(self.pending), bytearray()
            await self.emit(decode(line))


async def _pump(stream: asyncio.StreamReader, sink: _Capture | _Lines) -> None:
    while data := await stream.read(READ_SIZE):
        if isinstance(sink, _Lines):
            await sink.add(data)
        else:
            sink.add(data)
    if isinstance(sink, _Lines):
        await sink.finish()


async def _feed(stdin: asyncio.StreamWriter, data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stdin.write(data)
        await stdin.drain()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stdin.close()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def _start(argv: list[str], cwd: Path, env: Mapping[str, str], stdin: bytes | None) -> Child | None:
    """The started child; None when argv[0] is not found (the shell's answer, 127, not a server error)."""
    try:
        return await spawn(argv, cwd, env, stdin is not None)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ComputeUnavailable(f"could not start {argv[0]!r}: {exc}") from None


async def run(
    argv: list[str],
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    stdin: bytes | None = None,
    on_line: Callable[[str], Awaitable[object]] | None = None,
) -> ExecResult:
    """Run argv to its end or timeout; with `on_line`, stdout goes there line by line, not in the result."""
    started = time.perf_counter()
    child = await _start(argv, cwd, env, stdin)
    if child is None:
        message = f"{argv[0]}: command not found\n".encode()
        return ExecResult(127, "", decode(message), _ms(started), stderr_bytes=len(message))
    out: _Capture | _Lines = _Lines(on_line) if on_line is not None else _Capture()
    err = _Capture()
    assert child.stdout is not None and child.stderr is not None
    tasks = [asyncio.create_task(_pump(child.stdout, out)), asyncio.create_task(_pump(child.stderr, err))]
    if stdin is not None and child.stdin is not None:
        tasks.append(asyncio.create_task(_feed(child.stdin, stdin)))
    timed_out = False
    try:
        await asyncio.wait_for(asyncio.shield(child.exited), timeout_s)
    except TimeoutError:
        timed_out = True
    finally:
        _kill_group(child.pid)  # at the timeout, on cancellation, after exit: nothing outlives it
        await asyncio.shield(_settle(child, tasks))
    stdout = out.kept if isinstance(out, _Capture) else b""
    exit_code = TIMEOUT_EXIT_CODE if timed_out else _exit_code(child.returncode)
    return ExecResult(
        exit_code=exit_code,
        stdout=decode(bytes(stdout)),
        stderr=decode(bytes(err.kept)),
        duration_ms=_ms(started),
        truncated=err.truncated or (isinstance(out, _Capture) and out.truncated),
        timed_out=timed_out,
        stdout_bytes=out.total,
        stderr_bytes=err.total,
    )


async def _settle(child: Child, tasks: list[asyncio.Task]) -> None:
    """After the kill: reap, let the pipes drain, cancel what still waits (a process that left the group)."""
    _, pending = await asyncio.wait([child.exited, *tasks], timeout=_DRAIN_S)
    for task in pending - {child.exited}:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    child.close()


def _exit_code(returncode: int | None) -> int | None:
    """A signal's death as a shell reports it (128 + signal), else the exit status."""
    if returncode is None:
        return None
    return 128 - returncode if returncode < 0 else returncode


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


async def stream_lines(
    argv: list[str], cwd: Path, env: Mapping[str, str], timeout_s: float
) -> AsyncIterator[str | ExecResult]:
    """Stdout lines as the command writes them, then its ExecResult; closing early kills the command."""
    queue: asyncio.Queue[str | ExecResult] = asyncio.Queue(maxsize=256)

    async def produce() -> None:
        await queue.put(await run(argv, cwd, env, timeout_s, on_line=queue.put))

    task = asyncio.create_task(produce())
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():  # the command failed to run at all
                getter.cancel()
                task.result()
                continue
            item = getter.result()
            yield item
            if isinstance(item, ExecResult):
                return
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
