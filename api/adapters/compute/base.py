"""The compute protocol: a provider opens a workspace per session; a workspace runs commands and holds files.

Every adapter implements `Compute` (one class per provider, in one file) and returns objects that
satisfy `Workspace`. What a provider can do is declared as data (`Capabilities`), so callers ask
instead of guessing. One contract suite (tests/test_compute_contract.py) runs over every adapter.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

OUTPUT_CAP = 1 << 20  # bytes kept of each of stdout and stderr; the rest is read and dropped
TIMEOUT_EXIT_CODE = 124  # what a command killed at its timeout reports, as GNU timeout(1) does
CHUNK = 1 << 20  # tar and file streams travel in chunks of this size

Command = str | Sequence[str]
TarStream = bytes | AsyncIterable[bytes]

_SECRET_OPTION = re.compile(r"key|token|secret|password|credential", re.IGNORECASE)


class ComputeError(Exception):
    """Something a compute provider could not do; `status` is the HTTP status it maps to."""

    status = 502
    code = "compute_unavailable"


class ComputeUnavailable(ComputeError):
    """The provider cannot be reached (relay not connected, sandbox gone, SDK error): 502."""


class UnknownProvider(ComputeError):
    """No adapter of that name: 422."""

    status, code = 422, "unknown_provider"


class BadOptions(ComputeError):
    """The options do not fit the provider: 422."""

    status, code = 422, "invalid_options"


class PathEscapes(ComputeError):
    """A file path that leaves the workspace: 400."""

    status, code = 400, "path_escapes_workspace"


@dataclass(frozen=True)
class Capabilities:
    """What a provider supports, as data."""

    streams_lines: bool = False  # exec_lines yields lines as they arrive (else all at the end)
    supports_pause: bool = False  # stop() pauses (the workspace can be resumed) instead of ending it
    persistent: bool = True  # files survive a server restart (the workspace can be reopened)
    remote: bool = False  # the workspace lives on another machine

    def as_dict(self) -> dict[str, bool]:
        """The flags as JSON."""
        return asdict(self)


@dataclass(frozen=True)
class ExecResult:
    """The outcome of one command. Output is capped at OUTPUT_CAP bytes each and decoded leniently."""

    exit_code: int | None
    stdout: str
    stderr: str
    duration_ms: float
    truncated: bool = False
    timed_out: bool = False
    stdout_bytes: int = 0  # bytes the command wrote, including what the cap dropped
    stderr_bytes: int = 0

    def as_json(self) -> dict[str, Any]:
        """The JSON answer of an exec."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExecResult:
        """Back from `as_json` (the relay sends results this way)."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@runtime_checkable
class Workspace(Protocol):
    """A session's working folder on some compute, and the commands run in it."""

    root: str  # the workspace path as the compute sees it

    async def exec(
        self,
        command: Command,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> ExecResult:
        """Run `command` (a str through `sh -c`, a sequence as argv) in the workspace."""
        ...

    def exec_lines(
        self, argv: Command, timeout_s: float, env: Mapping[str, str] | None = None
    ) -> AsyncIterator[str | ExecResult]:
        """Yield stdout lines (without newline) as they arrive, then one ExecResult (stdout empty)."""
        ...

    async def write_file(self, path: str, data: bytes) -> None:
        """Write a file relative to the workspace (parents created); escaping paths are refused."""
        ...

    async def read_file(self, path: str) -> bytes:
        """Read a file relative to the workspace; escaping paths are refused."""
        ...

    async def snapshot(self) -> TarStream:
        """The workspace's files as a tar (bytes or chunks)."""
        ...

    async def restore(self, tar: TarStream) -> None:
        """Make the workspace hold exactly the files of `tar`."""
        ...

    async def stop(self) -> None:
        """End the workspace (its files have moved elsewhere or are no longer wanted)."""
        ...


class Compute(Protocol):
    """A provider: opens (starts or reconnects) a session's workspace."""

    name: str
    capabilities: Capabilities

    def check_options(self, tenant_id: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """Validate options before anything starts (BadOptions, ComputeUnavailable); normalised."""
        ...

    async def open(self, tenant_id: str, session_id: str, options: Mapping[str, Any]) -> Workspace:
        """The session's workspace, started or reconnected."""
        ...

    def recorded_options(self, workspace: Workspace, options: Mapping[str, Any]) -> dict[str, Any]:
        """What to record in `compute.attached` to reopen this workspace later (no secrets)."""
        ...


@dataclass
class ComputeConfig:
    """What adapters need from the server: where local workspaces live, the relay hub, SDK overrides."""

    workspaces: Path
    hub: Any = None  # api.relay.hub.RelayHub, for the relay adapter
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. {"e2b_sandbox": <class>} in tests


def public_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options without anything that looks like a secret, fit to record in an event."""
    return {k: v for k, v in options.items() if not _SECRET_OPTION.search(k)}


def shell_line(command: Command) -> str:
    """A command as one shell line (a sequence is quoted as argv)."""
    return command if isinstance(command, str) else shlex.join(command)


def argv_of(command: Command) -> list[str]:
    """A command as argv: a str runs through `sh -c`."""
    if isinstance(command, str):
        return ["sh", "-c", command]
    argv = list(command)
    if not argv or not all(isinstance(a, str) for a in argv):
        raise BadOptions("a command is a non-empty string or a non-empty list of strings")
    return argv


def base_env(home: str, path: str | None = None) -> dict[str, str]:
    """The environment every command starts from: a PATH, a UTF-8 locale and a HOME in the workspace.

    Nothing else of the server's environment (API keys, tokens) is passed on.
    """
    return {
        "PATH": path or os.environ.get("PATH") or "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": home,
        "PWD": home,
    }


def decode(data: bytes) -> str:
    """Output as text; bytes that are not UTF-8 become U+FFFD, so binary output stays valid JSON."""
    return data.decode("utf-8", errors="replace")


def capped(data: bytes, cap: int = OUTPUT_CAP) -> tuple[str, bool]:
    """Output decoded and cut to `cap` bytes; True when cut."""
    return decode(data[:cap]), len(data) > cap


def inside(root: Path, path: str) -> Path:
    """`path` resolved under `root`; PathEscapes when it leaves it (absolute paths, `..`, symlinks out)."""
    if not path or "\x00" in path:
        raise PathEscapes(f"{path!r} is not a file path")
    target = (root / path).resolve()
    base = root.resolve()
    if target != base and base not in target.parents:
        raise PathEscapes(f"{path!r} is outside the workspace")
    if target == base:
        raise PathEscapes(f"{path!r} is the workspace itself, not a file in it")
    return target


async def lines_after_exec(
    workspace: Workspace, argv: Command, timeout_s: float, env: Mapping[str, str] | None
) -> AsyncIterator[str | ExecResult]:
    """exec_lines for adapters that cannot stream: run the command, then yield its lines and the result."""
    result = await workspace.exec(argv, timeout_s, env)
    for line in result.stdout.splitlines():
        yield line
    yield ExecResult(
        result.exit_code,
        "",
        result.stderr,
        result.duration_ms,
        result.truncated,
        result.timed_out,
        result.stdout_bytes,
        result.stderr_bytes,
    )


async def chunks_of(tar: TarStream) -> AsyncIterator[bytes]:
    """A tar given as bytes or as chunks, as chunks."""
    if isinstance(tar, bytes | bytearray | memoryview):
        data = bytes(tar)
        for start in range(0, len(data), CHUNK):
            yield data[start : start + CHUNK]
        return
    async for chunk in tar:
        yield chunk


async def collect(tar: TarStream) -> bytes:
    """A tar given as bytes or as chunks, as bytes."""
    if isinstance(tar, bytes | bytearray | memoryview):
        return bytes(tar)
    return b"".join([chunk async for chunk in tar])
