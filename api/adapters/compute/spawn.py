"""Starting a child process cheaply from a large server, with its pipes and its exit on the event loop.

uvloop (which `cerver serve` runs on) spawns with fork(): in a server holding litellm, that
copies half a gigabyte of page tables and costs ~30 ms per command. CPython's `subprocess`
spawns with vfork (~1 ms). So on Linux the child is started with `subprocess.Popen`, its pipes
are attached to the loop, and its exit is watched through a pidfd (readable when it exits, before
its pipes close). Where there are no pidfds (macOS, where a relay may run) the loop's own
`subprocess_exec` is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

READ_SIZE = 1 << 16
_pidfds = hasattr(os, "pidfd_open")


class Child:
    """A started command: its pid, stdout and stderr readers, a stdin writer, and a future set at its exit."""

    def __init__(self, pid: int, exited: asyncio.Future[None]):
        self.pid, self.exited = pid, exited
        self.stdout = self.stderr = None  # type: ignore[assignment]
        self.stdin: asyncio.StreamWriter | None = None
        self._returncode: Any = lambda: None
        self._closers: list[Any] = []

    @property
    def returncode(self) -> int | None:
        """The exit status (negative: the signal that ended it), once it exited."""
        return self._returncode()

    def close(self) -> None:
        """Release the pipes (and the process transport)."""
        for close in self._closers:
            with contextlib.suppress(Exception):
                close()


async def spawn(argv: list[str], cwd: Path, env: Mapping[str, str], stdin: bool) -> Child:
    """Start argv in a new session (its own process group); FileNotFoundError if argv[0] is not found."""
    global _pidfds
    if _pidfds:
        try:
            return await _spawn_vfork(argv, cwd, env, stdin)
        except OSError as exc:
            if not isinstance(exc, FileNotFoundError | PermissionError | NotADirectoryError):
                _pidfds = False  # e.g. pidfd_open refused by the kernel: use the loop from now on
            else:
                raise
    return await _spawn_loop(argv, cwd, env, stdin)


async def _spawn_vfork(argv: list[str], cwd: Path, env: Mapping[str, str], stdin: bool) -> Child:
    loop = asyncio.get_running_loop()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:
        proc.kill()
        proc.wait()
        raise
    child = Child(proc.pid, loop.create_future())
    child._returncode = lambda: proc.returncode

    def exited() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        proc.wait()  # it has exited: this reaps it at once
        if not child.exited.done():
            child.exited.set_result(None)

    loop.add_reader(pidfd, exited)
    try:
        child.stdout, child.stderr = (
            await _reader(loop, proc.stdout, child),
            await _reader(loop, proc.stderr, child),
        )
        if stdin:
            transport, protocol = await loop.connect_write_pipe(
                lambda: asyncio.streams.FlowControlMixin(loop), proc.stdin
            )
            child.stdin = asyncio.StreamWriter(transport, protocol, None, loop)  # type: ignore[arg-type]
            child._closers.append(transport.close)
    except BaseException:  # cancelled (or failed) while its pipes were attached: it is nobody's now
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group, as every end of a command does
        child.close()  # the pipes attached so far (the others close with `proc`)
        raise  # the pidfd's reader reaps it once it has died
    return child


async def _reader(loop: asyncio.AbstractEventLoop, pipe: Any, child: Child) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=READ_SIZE, loop=loop)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), pipe)
    child._closers.append(transport.close)
    return reader


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """The loop's stream protocol, plus a future set when the process exits (`Process.wait` also waits
    for the pipes, which a backgrounded grandchild can hold open)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        super().__init__(limit=READ_SIZE, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


async def _spawn_loop(argv: list[str], cwd: Path, env: Mapping[str, str], stdin: bool) -> Child:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.subprocess_exec(
        lambda: _Protocol(loop),
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    child = Child(transport.get_pid(), protocol.exited)
    child.stdout, child.stderr, child.stdin = protocol.stdout, protocol.stderr, protocol.stdin
    child._returncode = transport.get_returncode
    child._closers.append(transport.close)  # after the exit, so the loop's watcher has reaped it
    return child
