"""The relay process (`cerver relay`): dials the server, registers, and runs its requests in local workspaces.

Workspaces live under `root/<session_id>` on this machine and are served by the `local`
adapter's code (same process groups, timeouts, output caps and scrubbed environment: nothing
of this process's environment, its token included, reaches a command). Agent CLIs (claude,
codex) are found on this machine — the path it was given (`--claude-bin`, `--codex-bin`), else
PATH — and each session's CLI home is `homes/<tenant>/<session>/<harness>`, beside the
workspaces (default `<root>-homes`); the CLIs it has are named in its hello. When the connection
drops, running commands are killed and the relay dials again with backoff; a refused token
ends it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from api.adapters.compute.base import CHUNK, BadOptions, ComputeError, ExecResult
from api.adapters.compute.local import LocalWorkspace, segment
from api.adapters.harness.machine import find_executable, home_folder, machine_env, prepare_home
from api.relay import protocol

BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
CLIS = ("claude", "codex")  # the agent CLIs a relay finds for harnesses; no other name is looked up


class TokenRefused(Exception):
    """The server refused the relay's token."""


class Replaced(Exception):
    """Another relay connected under this name: dialling again would only push it off in turn."""


class RelaySession:
    """One connection's worth of requests, each in its own task."""

    def __init__(
        self,
        socket: Any,
        root: Path,
        homes: Path | None = None,
        tenant: str = "",
        bins: Mapping[str, str | None] | None = None,
    ):
        self.socket, self.root = socket, root
        self.homes, self.tenant = homes or homes_beside(root), tenant
        self.bins = {name: (bins or {}).get(name) for name in CLIS}
        self._tasks: dict[int, asyncio.Task] = {}
        self._uploads: dict[int, asyncio.Queue[bytes]] = {}
        self._send_lock = asyncio.Lock()

    async def run(self) -> None:
        """Serve requests until the connection closes; then cancel what still runs (killing its commands)."""
        try:
            async for frame in self.socket:
                if isinstance(frame, bytes):
                    request_id, chunk = protocol.parse_data_frame(frame)
                    if (queue := self._uploads.get(request_id)) is not None:
                        queue.put_nowait(chunk)
                else:
                    self._start(json.loads(frame))
        finally:
            for task in list(self._tasks.values()):
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def _start(self, message: dict[str, Any]) -> None:
        request_id = message["id"]
        if message.get("op") == "cancel":
            if (task := self._tasks.get(request_id)) is not None:
                task.cancel()
            return
        if message.get("op") in ("write_file", "restore"):
            self._uploads[request_id] = asyncio.Queue()
        task = asyncio.create_task(self._handle(request_id, message))
        self._tasks[request_id] = task
        task.add_done_callback(lambda _: self._forget(request_id))

    def _forget(self, request_id: int) -> None:
        self._tasks.pop(request_id, None)
        self._uploads.pop(request_id, None)

    async def _send(self, frame: str | bytes) -> None:
        async with self._send_lock:
            await self.socket.send(frame)

    async def _handle(self, request_id: int, message: dict[str, Any]) -> None:
        try:
            handler = _OPS.get(message.get("op", ""))
            if handler is None:
                raise ComputeError(f"unknown operation {message.get('op')!r}")
            workspace = LocalWorkspace(self.root / segment(str(message.get("ws", ""))))
            value = await handler(self, request_id, workspace, message)
            await self._send(protocol.encode(id=request_id, type="result", value=value))
        except asyncio.CancelledError:
            raise
        except FileNotFoundError as exc:
            await self._error(request_id, "file_not_found", f"no such file: {exc.filename or exc}")
        except ComputeError as exc:
            await self._error(request_id, exc.code, str(exc))
        except Exception as exc:  # reported to the caller; the relay keeps serving
            await self._error(request_id, "relay_error", f"{type(exc).__name__}: {exc}")

    async def _error(self, request_id: int, code: str, message: str) -> None:
        with contextlib.suppress(Exception):
            await self._send(protocol.encode(id=request_id, type="error", code=code, message=message))

    async def _upload(self, request_id: int) -> AsyncIterator[bytes]:
        queue = self._uploads[request_id]
        while chunk := await queue.get():
            yield chunk

    async def _download(self, request_id: int, chunks: AsyncIterator[bytes]) -> int:
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            await self._send(protocol.data_frame(request_id, chunk))
        return size

    # --- operations: each returns the result's value -------------------------------------------------

    async def _exec(self, request_id: int, ws: LocalWorkspace, m: dict[str, Any]) -> dict[str, Any]:
        stdin = base64.b64decode(m["stdin"]) if m.get("stdin") is not None else None
        result = await ws.exec(m["command"], float(m["timeout_s"]), m.get("env") or {}, stdin)
        return result.as_json()

    async def _exec_lines(self, request_id: int, ws: LocalWorkspace, m: dict[str, Any]) -> dict[str, Any]:
        async with contextlib.aclosing(
            ws.exec_lines(m["command"], float(m["timeout_s"]), m.get("env"))
        ) as items:
            async for item in items:
                if isinstance(item, ExecResult):
                    return item.as_json()
                await self._send(protocol.encode(id=request_id, type="line", line=item))
        raise ComputeError("the command ended without a result")

    async def _write_file(self, request_id: int, ws: LocalWorkspace, m: dict[str, Any]) -> None:
        data = b"".join([chunk async for chunk in self._upload(request_id)])
        await ws.write_file(m["path"], data)

    async def _read_file(self, request_id: int, ws: LocalWorkspace, m: dict[str, Any]) -> int:
        data = await ws.read_file(m["path"])
        return await self._download(request_id, _split(data))

    async def _snapshot(self, request_id: int, ws: LocalWorkspace, m: dict[str, Any]) -> int:
        return await self._download(request_id, await ws.snapshot())

    async def _restore(self, request_id: int, ws: LocalWorkspace, m: dict[str, Any]) -> None:
        await ws.restore(self._upload(request_id))

    async def _stop(self, request_id: int, ws: LocalWorkspace, m: dict[str, Any]) -> None:
        await ws.stop()

    async def _cli_home(self, request_id: int, ws: LocalWorkspace, m: dict[str, Any]) -> dict[str, Any]:
        name = m.get("binary")
        if name not in self.bins:
            raise BadOptions(f"this relay runs only the {', '.join(CLIS)} CLIs, not {name!r}")
        binary, why = find_executable(name, self.bins[name])
        if binary is None:
            return {"binary": None, "missing": why}
        try:
            home = home_folder(self.homes, self.tenant, str(m.get("ws", "")), str(m.get("harness", "")))
            files = {str(k): str(v) for k, v in (m.get("files") or {}).items()}
            resumable = await asyncio.to_thread(prepare_home, home, files, m.get("glob"))
        except ValueError as exc:
            raise BadOptions(str(exc)) from None
        env = machine_env(binary, str(home))
        return {"binary": binary, "home": str(home), "env": env, "resumable": resumable}


Op = Callable[[RelaySession, int, LocalWorkspace, dict[str, Any]], Awaitable[Any]]
_OPS: dict[str, Op] = {
    "exec": RelaySession._exec,
    "exec_lines": RelaySession._exec_lines,
    "write_file": RelaySession._write_file,
    "read_file": RelaySession._read_file,
    "snapshot": RelaySession._snapshot,
    "restore": RelaySession._restore,
    "stop": RelaySession._stop,
    "cli_home": RelaySession._cli_home,
}


def homes_beside(root: Path) -> Path:
    """Where CLI homes live by default: a `<root>-homes` folder beside the workspaces folder."""
    return root.with_name(f"{root.name}-homes")


def clis_found(bins: Mapping[str, str | None]) -> list[str]:
    """The agent CLIs this machine has (named in the relay's hello)."""
    return [name for name in CLIS if find_executable(name, bins.get(name))[0] is not None]


async def _split(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


async def connect_once(
    server: str,
    token: str,
    name: str,
    root: Path,
    say: Callable[[str], None],
    homes: Path | None = None,
    bins: Mapping[str, str | None] | None = None,
) -> None:
    """One connection: hello, then serve until it closes. TokenRefused when the server says no."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    headers = {"Authorization": f"Bearer {token}"}
    try:
        socket = await connect(
            protocol.socket_url(server),
            additional_headers=headers,
            max_size=protocol.MAX_FRAME,
            compression=None,  # tarballs are mostly incompressible; deflate would only cost CPU
            open_timeout=10,
        )
    except InvalidStatus as exc:
        if exc.response.status_code in (401, 403):
            raise TokenRefused(f"the server refused the token (HTTP {exc.response.status_code})") from None
        raise
    async with socket:
        clis = clis_found(bins or {})
        hello = protocol.encode(type="hello", name=name, root=str(root), version=protocol.VERSION, clis=clis)
        await socket.send(hello)
        ready = json.loads(await socket.recv())
        if ready.get("type") != "ready":
            raise ConnectionError(f"unexpected answer to hello: {ready}")
        tenant = ready.get("tenant")
        say(
            f"relay {name!r}: connected to {server} as compute for tenant {tenant!r}; workspaces in {root}; "
            f"agent CLIs: {', '.join(clis) or 'none'}"
        )
        with contextlib.suppress(ConnectionClosed):  # a drop; the close code below says whether to redial
            await RelaySession(socket, root, homes, str(tenant or ""), bins).run()
        if socket.close_code == protocol.REPLACED:
            raise Replaced(f"another relay connected as {name!r}")


async def serve(
    server: str,
    token: str,
    name: str,
    root: Path,
    say: Callable[[str], None] = print,
    homes: Path | None = None,
    bins: Mapping[str, str | None] | None = None,
) -> int:
    """Stay connected: dial again with backoff after every drop. Returns an exit code when it must stop.

    SIGTERM and SIGINT end it cleanly: running commands are killed first. `homes` holds the sessions'
    CLI homes (default: beside `root`); `bins` names agent CLIs' executables (else they are found on PATH).
    """
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await _dial(server, token, name, root, say, homes or homes_beside(root), bins or {})
    except asyncio.CancelledError:
        say(f"relay {name!r}: stopped")
        return 0


async def _dial(
    server: str,
    token: str,
    name: str,
    root: Path,
    say: Callable[[str], None],
    homes: Path,
    bins: Mapping[str, str | None],
) -> int:
    from websockets.exceptions import InvalidHandshake, WebSocketException

    root.mkdir(parents=True, exist_ok=True)
    homes.mkdir(parents=True, exist_ok=True, mode=0o700)
    attempt = 0
    while True:
        started = asyncio.get_running_loop().time()
        try:
            await connect_once(server, token, name, root, say, homes, bins)
            reason = "connection closed"
        except TokenRefused as exc:
            say(f"relay {name!r}: {exc}; stopping")
            return 2
        except Replaced as exc:
            say(f"relay {name!r}: {exc}; stopping")
            return 3
        except (OSError, TimeoutError, ConnectionError, InvalidHandshake, WebSocketException) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        if asyncio.get_running_loop().time() - started > 10:
            attempt = 0  # it was up for a while: start the backoff over
        delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
        attempt += 1
        say(f"relay {name!r}: {reason}; dialling again in {delay}s")
        await asyncio.sleep(delay)
