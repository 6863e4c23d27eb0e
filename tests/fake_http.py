"""The HTTP plumbing of the fake provider: a threaded loopback server and its request handler.

`LoopbackServer(handle)` binds 127.0.0.1 on a free port and passes every request (any method) to
`handle(exchange)`; the `Exchange` carries the request and the ways to answer it (JSON, SSE, nothing).
What to answer is `tests/fake_provider.py`'s business.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout)


class LoopbackServer(ThreadingHTTPServer):
    """A threading HTTP server on 127.0.0.1 that can cut its open (keep-alive) connections on stop."""

    daemon_threads = True
    block_on_close = False
    # socketserver listens with a backlog of 5: a burst of new connections (a pool growing under
    # load) overflows it, and each dropped SYN costs its client a 1 s retransmission.
    request_queue_size = 1024

    def __init__(self, handle: Callable[[Exchange], None]) -> None:
        """Bind a free loopback port; `handle` answers every request."""
        self.handle = handle
        self.clients_left = 0  # answers cut short because the client went away
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Exchange)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open connection (their handler threads then end)."""
        with self._conns_lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that went away (timeouts, cancelled streams)."""


class Exchange(BaseHTTPRequestHandler):
    """One request (`command`, `path`, `headers`, `raw` body) and the ways to answer it."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes; no 40 ms delayed-ACK stalls
    server: LoopbackServer
    timeout = 30
    raw: bytes = b""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's parameter name
        """No access log."""

    def _dispatch(self) -> None:
        self.raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            self.server.handle(self)
        except DISCONNECTS:
            self.close_connection = True
            with self.server._conns_lock:
                self.server.clients_left += 1

    do_POST = do_GET = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_CONNECT = _dispatch

    def send_json(
        self,
        status: int,
        payload: dict[str, Any],
        headers: dict[str, str] | None = None,
        broken: bool = False,
    ) -> None:
        """Answer with a JSON body; with `broken`, only its first half."""
        data = json.dumps(payload).encode()
        if broken:
            data = data[: len(data) // 2]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_refusal(self, status: int) -> None:
        """Answer with an empty body and close the connection."""
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def send_stream(
        self,
        frames: list[bytes],
        delay: float,
        stopping: threading.Event,
        cut: bool,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Send SSE frames in chunked encoding; with `cut`, drop the connection before the final chunk."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        for frame in frames:
            if delay > 0 and stopping.wait(delay):
                cut = True
                break
            self.wfile.write(b"%X\r\n%s\r\n" % (len(frame), frame))
        if cut:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(b"0\r\n\r\n")
