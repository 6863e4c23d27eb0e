"""`local`: a folder per session on this machine, commands as subprocesses of the server.

The workspace is `<data>/workspaces/<tenant>/<session>` (or under `$CERVER_WORKSPACES`). Commands
run with the workspace as their working directory and HOME, in a scrubbed environment
(`base.base_env`), each in its own process group (see `process.py`). The relay process serves
its workspaces with this same class on its own machine.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import IO, Any

from api.adapters.compute import process
from api.adapters.compute.base import (
    CHUNK,
    BadOptions,
    Capabilities,
    Command,
    ComputeConfig,
    ExecResult,
    TarStream,
    argv_of,
    base_env,
    chunks_of,
    inside,
)

_SEGMENT = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
SPOOL_BYTES = 8 << 20  # tarballs larger than this spill from memory to a temporary file


def segment(name: str) -> str:
    """A tenant or session id fit to be one folder name (no separators, no `..`)."""
    if not _SEGMENT.match(name) or name in (".", ".."):
        raise BadOptions(f"{name!r} cannot name a workspace folder")
    return name


class LocalWorkspace:
    """A folder on this machine; see the module docstring."""

    def __init__(self, root: Path):
        self.path = root.absolute()
        self.root = str(self.path)

    def _env(self, env: Mapping[str, str] | None) -> dict[str, str]:
        self.path.mkdir(parents=True, exist_ok=True)
        return {**base_env(self.root), **(env or {})}

    async def exec(
        self,
        command: Command,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> ExecResult:
        """Run the command in the workspace; see `process.run`."""
        return await process.run(argv_of(command), self.path, self._env(env), timeout_s, stdin)

    async def exec_lines(
        self, argv: Command, timeout_s: float, env: Mapping[str, str] | None = None
    ) -> AsyncIterator[str | ExecResult]:
        """Stdout lines as they are written, then the ExecResult."""
        async for item in process.stream_lines(argv_of(argv), self.path, self._env(env), timeout_s):
            yield item

    async def write_file(self, path: str, data: bytes) -> None:
        """Write a file under the workspace."""
        target = inside(self.path, path)
        await asyncio.to_thread(_write, target, data)

    async def read_file(self, path: str) -> bytes:
        """Read a file under the workspace (FileNotFoundError when absent)."""
        target = inside(self.path, path)
        return await asyncio.to_thread(target.read_bytes)

    async def snapshot(self) -> AsyncIterator[bytes]:
        """The workspace as a tar, in chunks (symlinks are stored as links, never followed)."""
        self.path.mkdir(parents=True, exist_ok=True)
        spool = await asyncio.to_thread(_pack, self.path)
        return _read_chunks(spool)

    async def restore(self, tar: TarStream) -> None:
        """Replace the workspace's files with the tar's (members that would land outside are refused)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as spool:
            async for chunk in chunks_of(tar):
                await asyncio.to_thread(spool.write, chunk)
            spool.seek(0)
            await asyncio.to_thread(_unpack, spool, self.path)

    async def stop(self) -> None:
        """Remove the workspace folder (its files have moved, or the session is done with them)."""
        await asyncio.to_thread(shutil.rmtree, self.path, True)


class LocalCompute:
    """Workspaces under one folder of this machine."""

    name = "local"
    capabilities = Capabilities(streams_lines=True, persistent=True)

    def __init__(self, config: ComputeConfig):
        self.base = config.workspaces

    def check_options(self, tenant_id: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """`local` takes no options."""
        if options:
            raise BadOptions(f"local compute takes no options (got {', '.join(sorted(options))})")
        return {}

    async def open(self, tenant_id: str, session_id: str, options: Mapping[str, Any]) -> LocalWorkspace:
        """The session's folder (created when first used)."""
        return LocalWorkspace(self.base / segment(tenant_id) / segment(session_id))

    def recorded_options(self, workspace: Any, options: Mapping[str, Any]) -> dict[str, Any]:
        """Nothing to record: the folder follows from the ids."""
        return {}


def _write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def _pack(root: Path) -> IO[bytes]:
    spool = tempfile.SpooledTemporaryFile(SPOOL_BYTES)  # noqa: SIM115 - the caller reads and closes it
    with tarfile.open(fileobj=spool, mode="w") as tar:
        for entry in sorted(os.listdir(root)):
            tar.add(root / entry, arcname=entry)
    spool.seek(0)
    return spool


async def _read_chunks(spool: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(spool.read, CHUNK):
            yield chunk
    finally:
        spool.close()


def _unpack(source: IO[bytes], root: Path) -> None:
    """Extract into a fresh sibling folder, then swap it in: a bad tar leaves the old files as they were."""
    fresh = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        with tarfile.open(fileobj=source, mode="r:*") as tar:
            tar.extractall(fresh, filter="data")
    except (tarfile.TarError, OSError) as exc:
        shutil.rmtree(fresh, ignore_errors=True)
        raise BadOptions(f"not a workspace tarball: {exc}") from None
    fresh.chmod(0o755)
    old = root.with_name(f".{root.name}.old")
    if root.exists():
        shutil.rmtree(old, ignore_errors=True)
        root.rename(old)
    fresh.rename(root)
    shutil.rmtree(old, ignore_errors=True)
