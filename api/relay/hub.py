"""The server side of relays: who is connected, per tenant and name, and request/response over each socket.

A relay is keyed by (tenant of its token, name); a tenant only ever reaches its own relays. A
relay that reconnects under the same name replaces the old connection. When a connection drops,
every request waiting on it fails at once with RelayGone (502), so no exec hangs on a dead relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import logging
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from api.adapters.compute.base import BadOptions, ComputeUnavailable, PathEscapes
from api.relay import protocol

log = logging.getLogger("cerver.relay")
NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
HELLO_TIMEOUT_S = 10.0
TRANSFER_IDLE_S = 120.0  # a file or tarball transfer that stalls this long has failed

Item = tuple[str, Any]  # ("line", str) | ("chunk", bytes) | ("result", value) | ("error", exception)


class RelayGone(ComputeUnavailable):
    """The relay disconnected (or was replaced) before answering."""


_ERRORS: dict[str, Callable[[str], Exception]] = {
    "path_escapes_workspace": PathEscapes,
    "file_not_found": FileNotFoundError,
    "invalid_options": BadOptions,
}


class RelayConnection:
    """One connected relay: sends requests, routes its answers back to the waiting callers by id."""

    def __init__(
        self, socket: WebSocket, tenant_id: str, name: str, root: str, clis: list[str] | None = None
    ):
        self.socket, self.tenant_id, self.name, self.root = socket, tenant_id, name, root
        self.clis = clis  # the agent CLIs it found when it connected (None: a relay too old to say)
        self.connected_at = dt.datetime.now(dt.UTC)
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Queue[Item]] = {}
        self._send_lock = asyncio.Lock()
        self.gone: str | None = None

    async def exchange(
        self, op: str, args: dict[str, Any], idle_s: float, upload: AsyncIterable[bytes] | None = None
    ) -> AsyncIterator[Item]:
        """Send one request (and its upload); yield what comes back, ending with ("result", value)."""
        if self.gone is not None:
            raise RelayGone(f"relay {self.name!r} {self.gone}")
        request_id = next(self._ids)
        queue: asyncio.Queue[Item] = asyncio.Queue()
        self._pending[request_id] = queue
        finished = False
        try:
            await self._send(protocol.encode(id=request_id, op=op, **args))
            if upload is not None:
                async for chunk in upload:
                    await self._send(protocol.data_frame(request_id, chunk))
                await self._send(protocol.data_frame(request_id, b""))
            while True:
                try:
                    kind, value = await asyncio.wait_for(queue.get(), idle_s)
                except TimeoutError:
                    raise ComputeUnavailable(
                        f"relay {self.name!r} did not answer {op} within {idle_s:.0f}s"
                    ) from None
                if kind == "error":
                    raise value
                if kind == "result":
                    finished = True
                yield kind, value
                if finished:
                    return
        finally:
            self._pending.pop(request_id, None)
            if not finished and self.gone is None:  # abandoned or failed: let the relay stop its work
                with contextlib.suppress(Exception):
                    await self._send(protocol.encode(id=request_id, op="cancel"))

    async def call(
        self,
        op: str,
        args: dict[str, Any],
        idle_s: float = TRANSFER_IDLE_S,
        upload: AsyncIterable[bytes] | None = None,
    ) -> Any:
        """One request whose answer is a single result."""
        async with contextlib.aclosing(self.exchange(op, args, idle_s, upload)) as items:
            async for kind, value in items:
                if kind == "result":
                    return value
        raise RelayGone(f"relay {self.name!r} ended {op} without a result")

    async def _send(self, frame: str | bytes) -> None:
        async with self._send_lock:
            try:
                if isinstance(frame, str):
                    await self.socket.send_text(frame)
                else:
                    await self.socket.send_bytes(frame)
            except (WebSocketDisconnect, RuntimeError, OSError) as exc:
                self.fail("disconnected")
                raise RelayGone(f"relay {self.name!r} disconnected") from exc

    def receive_text(self, text: str) -> None:
        """Route one message from the relay to the request waiting for it."""
        message = json.loads(text)
        queue = self._pending.get(message.get("id"))
        if queue is None:
            return  # an answer to a request that was abandoned
        kind = message.get("type")
        if kind == "line":
            queue.put_nowait(("line", message["line"]))
        elif kind == "result":
            queue.put_nowait(("result", message.get("value")))
        else:
            error = _ERRORS.get(message.get("code", ""), ComputeUnavailable)
            queue.put_nowait(("error", error(f"relay {self.name!r}: {message.get('message', 'failed')}")))

    def receive_bytes(self, frame: bytes) -> None:
        """Route one chunk of a download."""
        request_id, chunk = protocol.parse_data_frame(frame)
        if (queue := self._pending.get(request_id)) is not None:
            queue.put_nowait(("chunk", chunk))

    def fail(self, why: str) -> None:
        """The connection is over: every waiting request fails now."""
        if self.gone is None:
            self.gone = why
        for queue in self._pending.values():
            queue.put_nowait(("error", RelayGone(f"relay {self.name!r} {why} during the request")))

    def describe(self) -> dict[str, Any]:
        """The relay as GET /v2/relays lists it."""
        described = {"name": self.name, "root": self.root, "connected_at": self.connected_at.isoformat()}
        return described | ({"clis": self.clis} if self.clis is not None else {})


class RelayHub:
    """The connected relays of every tenant."""

    def __init__(self) -> None:
        self._relays: dict[tuple[str, str], RelayConnection] = {}

    def get(self, tenant_id: str, name: str) -> RelayConnection | None:
        """The tenant's relay of that name, if connected."""
        return self._relays.get((tenant_id, name))

    def of_tenant(self, tenant_id: str) -> list[RelayConnection]:
        """The tenant's connected relays, by name."""
        return sorted((c for (t, _), c in self._relays.items() if t == tenant_id), key=lambda c: c.name)

    def register(self, conn: RelayConnection) -> RelayConnection | None:
        """Make `conn` the tenant's relay of its name; returns the connection it replaced."""
        key = (conn.tenant_id, conn.name)
        old = self._relays.get(key)
        self._relays[key] = conn
        if old is not None:
            old.fail("was replaced by a new connection of the same name")
        return old

    def unregister(self, conn: RelayConnection) -> None:
        """Forget `conn` (unless a newer connection took its name already)."""
        if self._relays.get((conn.tenant_id, conn.name)) is conn:
            del self._relays[(conn.tenant_id, conn.name)]
        conn.fail("disconnected")

    async def serve(self, socket: WebSocket, tenant_id: str) -> None:
        """Run one relay's socket: the hello, registration, then its answers until it disconnects."""
        await socket.accept()
        try:
            hello = json.loads(await asyncio.wait_for(socket.receive_text(), HELLO_TIMEOUT_S))
            name, root = str(hello.get("name", "")), str(hello.get("root", ""))
        except (TimeoutError, ValueError, AttributeError, WebSocketDisconnect, KeyError):
            await _close(socket, 1002, "expected a hello message")
            return
        if hello.get("type") != "hello" or not NAME.match(name):
            await _close(socket, 1008, "a relay name is 1-64 letters, digits, '.', '_' or '-'")
            return
        clis = hello.get("clis")
        clis = [str(c) for c in clis] if isinstance(clis, list) else None
        conn = RelayConnection(socket, tenant_id, name, root, clis)
        old = self.register(conn)
        if old is not None:
            await _close(old.socket, protocol.REPLACED, "replaced by a new connection of the same name")
        log.info("relay %s connected for tenant %s", name, tenant_id)
        try:
            await socket.send_text(protocol.encode(type="ready", tenant=tenant_id, name=name))
            await _pump(socket, conn)
        finally:
            self.unregister(conn)
            log.info("relay %s of tenant %s disconnected", name, tenant_id)


async def _pump(socket: WebSocket, conn: RelayConnection) -> None:
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            conn.receive_text(message["text"])
        elif message.get("bytes") is not None:
            conn.receive_bytes(message["bytes"])


async def _close(socket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await socket.close(code, reason)


def tenant_relays(hub: RelayHub, tenant_id: str) -> list[dict[str, Any]]:
    """The tenant's connected relays as JSON."""
    return [c.describe() for c in hub.of_tenant(tenant_id)]
