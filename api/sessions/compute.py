"""The compute service: a session's workspace, attaching and moving it, and exec with its events.

The session→workspace map is a cache: the truth is the session's latest `compute.attached`
event (provider and recorded options), so after a restart the workspace is reopened on first
use. Moving compute snapshots the old workspace, restores the tar into the new one, records
`compute.attached` and only then stops the old one: a move that fails leaves the session where
it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from api.adapters.compute import Compute, ComputeConfig, ComputeError, ExecResult, Workspace, compute_for
from api.adapters.compute.base import CHUNK, ComputeUnavailable, chunks_of, public_options, shell_line
from api.errors import ApiError
from api.sessions.events import event, new_id
from api.sessions.service import SessionService
from api.sessions.state import SessionState

log = logging.getLogger("cerver.compute")
COMMAND_IN_EVENT = 1000  # characters of a command kept in its compute.exec event
_SPOOL = 8 << 20

Key = tuple[str, str]


def workspaces_folder(data_root: Path) -> Path:
    """Where `local` workspaces live: `$CERVER_WORKSPACES`, else `<data>/workspaces`."""
    explicit = os.environ.get("CERVER_WORKSPACES")
    return Path(explicit).expanduser().absolute() if explicit else data_root / "workspaces"


def api_error(exc: ComputeError) -> ApiError:
    """A compute failure as the API answers it (422 bad provider or options, 400 path, 502 unreachable)."""
    return ApiError(exc.status, exc.code, str(exc))


def no_compute(session_id: str) -> ApiError:
    """409 for a session without compute, saying how to attach some."""
    return ApiError(
        409,
        "no_compute",
        f"session {session_id} has no compute; attach some first: "
        f'POST /v2/sessions/{session_id}/compute {{"provider": "local"}}',
    )


class ComputeService:
    """Library-first: the routes, the harness runner and tests call these methods."""

    def __init__(self, sessions: SessionService, config: ComputeConfig):
        self.sessions, self.config = sessions, config
        self._adapters: dict[str, Compute] = {}
        self._open: dict[Key, tuple[str, Workspace]] = {}
        self._locks: dict[Key, asyncio.Lock] = {}
        self._running: Counter[Key] = Counter()
        sessions.store.on_closed.append(self.release)  # a closed session lets go of its workspace

    def adapter(self, provider: str) -> Compute:
        """The adapter of `provider` (422 when unknown)."""
        if provider not in self._adapters:
            try:
                self._adapters[provider] = compute_for(provider, self.config)
            except ComputeError as exc:
                raise api_error(exc) from None
        return self._adapters[provider]

    def _lock(self, key: Key) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def workspace(self, tenant_id: str, session_id: str) -> Workspace | None:
        """The session's workspace, opened (or reconnected) on first use; None without compute."""
        state = await self.sessions.session(tenant_id, session_id)
        if state.compute is None:
            return None
        key = (tenant_id, session_id)
        async with self._lock(key):
            return await self._current(state)

    async def _current(self, state: SessionState) -> Workspace | None:
        """Under the session's compute lock: the open workspace, opening it from the events if needed."""
        key, provider = (state.tenant_id, state.session_id), state.compute
        if provider is None:
            return None
        cached = self._open.get(key)
        if cached is not None and cached[0] == provider:
            return cached[1]
        adapter = self.adapter(provider)
        options = state.compute_options
        try:
            workspace = await adapter.open(state.tenant_id, state.session_id, options or {})
        except ComputeError as exc:
            raise api_error(exc) from None
        if options is None:  # named when the session was created, never attached: record it now
            await self._record(state, provider, adapter.recorded_options(workspace, {}), None, 0, 0)
        self._open[key] = (provider, workspace)
        return workspace

    async def release(self, tenant_id: str, session_id: str) -> None:
        """A closed session's workspace: paused where the provider can (a sandbox stops running), forgotten.

        Its files stay where they are (a local folder, a relay's folder, a paused sandbox); only
        this server's handle on them goes, so the map of open workspaces does not grow forever.
        """
        key = (tenant_id, session_id)
        async with self._lock(key):
            opened = self._open.pop(key, None)
        if opened is None:
            return
        provider, workspace = opened
        if self.adapter(provider).capabilities.supports_pause:
            try:
                await workspace.pause()  # type: ignore[attr-defined]
            except Exception as exc:  # the session is closed either way; say why the sandbox runs on
                log.warning("could not pause %s's %s workspace: %s", session_id, provider, exc)

    async def ensure(self, tenant_id: str, session_id: str, state: SessionState) -> Workspace:
        """The session's workspace; attaches `local` first when it has no compute."""
        workspace = await self.workspace(tenant_id, session_id)
        if workspace is None:
            await self.attach(tenant_id, session_id, "local", {})
            workspace = await self.workspace(tenant_id, session_id)
        assert workspace is not None
        return workspace

    @contextlib.asynccontextmanager
    async def in_use(self, tenant_id: str, session_id: str, state: SessionState) -> AsyncIterator[Workspace]:
        """The session's workspace (as `ensure`), held: compute cannot move while a harness runs in it."""
        await self.ensure(tenant_id, session_id, state)
        key = (tenant_id, session_id)
        async with self._lock(key):  # waits for a move in progress
            workspace = await self._current(state)
            assert workspace is not None
            self._running[key] += 1
        try:
            yield workspace
        finally:
            self._running[key] -= 1

    async def attach(
        self,
        tenant_id: str,
        session_id: str,
        provider: str,
        options: Mapping[str, Any],
        move_files: bool = True,
    ) -> dict[str, Any]:
        """Attach compute, or move the session's workspace to it (files and all).

        With `move_files=False` the new workspace starts empty and the old one is left as it is
        (not even reached): the way off compute that is gone for good, e.g. a relay that never returns.
        """
        started = time.perf_counter()
        state = await self.sessions.writable(tenant_id, session_id)
        adapter = self.adapter(provider)
        try:
            checked = adapter.check_options(tenant_id, options)
        except ComputeError as exc:
            raise api_error(exc) from None
        key = (tenant_id, session_id)
        async with self._lock(key):
            if self._running[key]:
                raise ApiError(
                    409, "exec_in_flight", "commands are running in this session; move it when they end"
                )
            old_provider = state.compute
            if old_provider == provider and _same(state, checked):
                return self._view(state, provider, None, 0, 0, started, adapter)
            old = await self._current(state) if old_provider is not None and move_files else None
            try:
                new = await adapter.open(tenant_id, session_id, checked)
                moved_bytes, moved_files = await _move(old, new) if old is not None else (0, 0)
            except ComputeError as exc:
                raise api_error(exc) from None
            recorded = public_options(adapter.recorded_options(new, checked))
            await self._record(state, provider, recorded, old_provider, moved_bytes, moved_files)
            self._open[key] = (provider, new)
            if old is not None:
                try:
                    await old.stop()
                except (ComputeError, OSError) as exc:  # the files are already in the new workspace
                    log.warning(
                        "could not stop the old %s workspace of %s: %s", old_provider, session_id, exc
                    )
        return self._view(state, provider, old_provider, moved_bytes, moved_files, started, adapter)

    def _view(
        self,
        state: SessionState,
        provider: str,
        old: str | None,
        moved_bytes: int,
        moved_files: int,
        started: float,
        adapter: Compute,
    ) -> dict[str, Any]:
        return {
            "session_id": state.session_id,
            "compute": provider,
            "options": state.compute_options or {},
            "from": old,
            "moved_bytes": moved_bytes,
            "moved_files": moved_files,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "capabilities": adapter.capabilities.as_dict(),
        }

    async def _record(
        self,
        state: SessionState,
        provider: str,
        options: dict[str, Any],
        old: str | None,
        moved_bytes: int,
        moved_files: int,
    ) -> None:
        attrs = {
            "provider": provider,
            "from": old,
            "options": options,
            "moved_bytes": moved_bytes,
            "moved_files": moved_files,
        }
        attached = event(
            "compute.attached",
            state.tenant_id,
            state.session_id,
            user_id=state.user_id,
            parent_session_id=getattr(state, "parent_session_id", None),
            compute=provider,
            attrs=attrs,
        )
        await self.sessions.store.write(state, [attached])

    async def exec(
        self,
        tenant_id: str,
        session_id: str,
        command: str | Sequence[str],
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """Run a command in the session's compute and record it as a `compute.exec` event.

        `run_id` is for commands run inside a run (a harness's); a standalone exec has none, so the
        `runs` view does not mistake it for a model run that never finished.
        """
        state = await self.sessions.writable(tenant_id, session_id)
        key = (tenant_id, session_id)
        async with self._lock(key):  # waits for a move in progress
            workspace = await self._current(state)
            if workspace is None:
                raise no_compute(session_id)
            provider = state.compute or ""
            self._running[key] += 1
        exec_id = new_id("exec_")
        try:
            result = await workspace.exec(command, timeout_s, env, stdin)
        except ComputeError as exc:
            await self.record_exec(state, provider, command, None, exec_id, run_id, error=str(exc))
            raise api_error(exc) from None
        finally:
            self._running[key] -= 1
        await self.record_exec(state, provider, command, result, exec_id, run_id)
        return {"exec_id": exec_id, **result.as_json()}

    async def record_exec(
        self,
        state: SessionState,
        provider: str,
        command: str | Sequence[str],
        result: ExecResult | None,
        exec_id: str | None = None,
        run_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Write one `compute.exec` event (also for commands a harness ran through `workspace()`)."""
        attrs: dict[str, Any] = {"command": shell_line(command)[:COMMAND_IN_EVENT], "exec_id": exec_id}
        if result is not None:
            attrs |= {
                "exit_code": result.exit_code,
                "timed_out": result.timed_out,
                "truncated": result.truncated,
                "stdout_bytes": result.stdout_bytes,
                "stderr_bytes": result.stderr_bytes,
            }
            status = "timeout" if result.timed_out else ("ok" if result.exit_code == 0 else "error")
        else:
            status = "error"
        executed = event(
            "compute.exec",
            state.tenant_id,
            state.session_id,
            user_id=state.user_id,
            run_id=run_id,
            compute=provider,
            latency_ms=result.duration_ms if result is not None else None,
            status=status,
            error=error,
            attrs={k: v for k, v in attrs.items() if v is not None},
        )
        await self.sessions.store.write(state, [executed])


def _same(state: SessionState, checked: Mapping[str, Any]) -> bool:
    """Whether the checked options name the workspace the session already has."""
    recorded = state.compute_options or {}
    return all(recorded.get(k) == v for k, v in public_options(checked).items())


async def _move(old: Workspace, new: Workspace) -> tuple[int, int]:
    """Copy the old workspace's files into the new one. Returns (tar bytes, files)."""
    with tempfile.SpooledTemporaryFile(_SPOOL) as spool:
        size = 0
        async for chunk in chunks_of(await old.snapshot()):
            size += len(chunk)
            await asyncio.to_thread(spool.write, chunk)
        spool.seek(0)
        files = await asyncio.to_thread(_count_files, spool)
        spool.seek(0)
        await new.restore(_read(spool))
    return size, files


async def _read(spool: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(spool.read, CHUNK):
        yield chunk


def _count_files(spool: IO[bytes]) -> int:
    try:
        with tarfile.open(fileobj=spool, mode="r|*") as tar:
            return sum(1 for member in tar if member.isfile())
    except tarfile.TarError as exc:
        raise ComputeUnavailable(f"the old workspace's snapshot is not a tar: {exc}") from None
