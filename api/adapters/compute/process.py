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

READ_SIZE = 1 << 16
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


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """The stream protocol, plus a future set when the process exits (before its pipes close).

    `Process.wait()` also waits for the pipes, which a backgrounded grandchild can hold open.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop):
        super().__init__(limit=READ_SIZE, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


async def _start(
    argv: list[str], cwd: Path, env: Mapping[str, str], stdin: bytes | None
) -> tuple[asyncio.SubprocessTransport, _Protocol] | FileNotFoundError:
    loop = asyncio.get_running_loop()
    try:
        return await loop.subprocess_exec(
            lambda: _Protocol(loop),
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError as exc:  # argv[0] is not on PATH: the shell's answer, not a server error
        return exc
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
    started_process = await _start(argv, cwd, env, stdin)
    if isinstance(started_process, FileNotFoundError):
        message = f"{argv[0]}: command not found\n".encode()
        return ExecResult(127, "", decode(message), _ms(started), stderr_bytes=len(message))
    transport, protocol = started_process
    out: _Capture | _Lines = _Lines(on_line) if on_line is not None else _Capture()
    err = _Capture()
    assert protocol.stdout is not None and protocol.stderr is not None
    tasks = [
        asyncio.create_task(_pump(protocol.stdout, out)),
        asyncio.create_task(_pump(protocol.stderr, err)),
    ]
    if stdin is not None and protocol.stdin is not None:
        tasks.append(asyncio.create_task(_feed(protocol.stdin, stdin)))
    timed_out = False
    try:
        await asyncio.wait_for(asyncio.shield(protocol.exited), timeout_s)
    except TimeoutError:
        timed_out = True
    finally:
        _kill_group(transport.get_pid())  # at the timeout, on cancellation, after exit: nothing outlives it
        await asyncio.shield(_settle(transport, protocol, tasks))
    stdout = out.kept if isinstance(out, _Capture) else b""
    exit_code = TIMEOUT_EXIT_CODE if timed_out else _exit_code(transport.get_returncode())
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


async def _settle(
    transport: asyncio.SubprocessTransport, protocol: _Protocol, tasks: list[asyncio.Task]
) -> None:
    """After the kill: reap, let the pipes drain, cancel what still waits (a process that left the group)."""
    _, pending = await asyncio.wait([protocol.exited, *tasks], timeout=_DRAIN_S)
    for task in pending - {protocol.exited}:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    transport.close()


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
