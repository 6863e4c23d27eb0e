"""A fake LLM provider on a loopback port, speaking the OpenAI, Anthropic and Gemini wire formats.

litellm's real HTTP code path (its clients, SSE parsing, error mapping) runs against it; nothing leaves
127.0.0.1. Use it as a context manager (or `start()` / `stop()`) and point litellm at `base_url`::

    with FakeProvider() as fake:
        fake.script(["first answer"])                  # optional; the default reply echoes the user
        litellm.completion(model="openai/gpt-4o-mini", api_base=fake.base_url + "/v1", api_key="test", ...)
        litellm.completion(model="anthropic/claude-3-5-haiku-20241022", api_base=fake.base_url, ...)
        litellm.completion(model="gemini/gemini-2.5-flash", api_base=fake.base_url, api_key="test", ...)
        fake.requests[-1].body                         # exactly what the provider received

(Prefer model names in litellm's local model map: for `gemini/gemini-2.0-flash`, which it lacks, litellm folds
the system prompt into the first user turn and computes no cost; `claude-3-5-haiku-20241022` gets no cost.)

Routes (POST; anything else is a 404 in the OpenAI error shape):

- OpenAI: `/v1/chat/completions` or `/chat/completions`; streams when the body has `"stream": true`.
- Anthropic: `/v1/messages` or `/messages`; streams when the body has `"stream": true`.
- Gemini: `[/v1beta|/v1alpha|/v1]/models/{model}:generateContent` or `:streamGenerateContent` (SSE). litellm
  joins a custom Gemini api_base with `models/{model}:{method}`, without an API version.

Reply text, in order of precedence: the next scripted reply (`script([...])`, one per answered request, any
provider; a failed or malformed answer leaves the queue alone); `responder(request)` when set; otherwise
`"echo: <text of the last user turn>"`.

Token counts: input = `usage[0]` when `usage` is set, else the number of whitespace-separated words in every
`text`/`content` string of the transcript (OpenAI `messages`; Anthropic `system` + `messages`; Gemini
`system_instruction` + `contents`). Output = `usage[1]` when set, else the words of the reply. Anthropic also
reports `cache_read_input_tokens, cache_creation_input_tokens = cache_tokens` (default 0, 0).

Faults form one FIFO queue; each request takes the first fault meant for its provider (or for any provider),
one per request: `fail_next(status, times=...)` answers with the provider's error JSON (plus `retry-after`
on 429); `delay_next(seconds)` waits before answering; `malformed_next()` sends half of a stream, a `data:`
line of broken JSON, then drops the connection mid-body (a non-streaming request gets a broken JSON body).
Streamed events are spaced `chunk_delay` seconds apart (default 5 ms), the first one included.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from tests import fake_wire as wire
from tests.fake_wire import Provider

_GEMINI_PATH = re.compile(r"^(?:/v1beta|/v1alpha|/v1)?/models/(?P<model>[^/:]+):(?P<method>\w+)$")
_OPENAI_PATHS = ("/v1/chat/completions", "/chat/completions")
_ANTHROPIC_PATHS = ("/v1/messages", "/messages")
_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it. Header names are lower-cased."""

    provider: Provider
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def model(self) -> str:
        """The model asked for: from the body (OpenAI, Anthropic) or the URL path (Gemini)."""
        match = _GEMINI_PATH.match(self.path)
        return match["model"] if match else str(self.body.get("model", ""))

    @property
    def stream(self) -> bool:
        """Whether the client asked for a streaming (SSE) response."""
        return self.path.endswith(":streamGenerateContent") or self.body.get("stream") is True


@dataclass
class _Fault:
    kind: Literal["fail", "delay", "malformed"]
    provider: Provider | None
    remaining: int
    status: int = 500
    message: str = ""
    retry_after: float | None = None
    seconds: float = 0.0


@dataclass
class _State:
    requests: list[RecordedRequest] = field(default_factory=list)
    replies: deque[str] = field(default_factory=deque)
    faults: deque[_Fault] = field(default_factory=deque)


class FakeProvider:
    """A loopback HTTP server imitating three LLM providers; see the module docstring for the rules."""

    def __init__(self, *, chunk_delay: float = 0.005) -> None:
        """Configure; the server starts on `start()` or on entering the `with` block."""
        self.chunk_delay = chunk_delay
        self.usage: tuple[int, int] | None = None
        self.cache_tokens: tuple[int, int] = (0, 0)
        self.responder: Callable[[RecordedRequest], str] | None = None
        self._state = _State()
        self._lock = threading.Lock()
        self._ids = count(1)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        """Bind 127.0.0.1 on a free port and serve from a daemon thread. Returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-provider",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and interrupt pending delays. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the server must be started)."""
        if self._server is None:
            raise RuntimeError("FakeProvider is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`, without a trailing slash or API version."""
        return f"http://127.0.0.1:{self.port}"

    # --- scripting ----------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._state.requests)

    def requests_for(self, provider: Provider) -> list[RecordedRequest]:
        """The requests received by one provider's routes."""
        return [r for r in self.requests if r.provider == provider]

    def script(self, replies: Iterable[str]) -> None:
        """Queue reply texts, one per request (any provider), ahead of the responder or the echo."""
        with self._lock:
            self._state.replies.extend(replies)

    def fail_next(
        self,
        status: int = 500,
        *,
        times: int = 1,
        provider: Provider | None = None,
        message: str | None = None,
        retry_after: float | None = 1,
    ) -> None:
        """Answer the next `times` requests with `status` and the provider's error JSON.

        `retry_after` (seconds) is sent as the `retry-after` header on a 429; None leaves it out.
        """
        text = message or f"fake provider: injected HTTP {status}"
        self._push(_Fault("fail", provider, times, status=status, message=text, retry_after=retry_after))

    def delay_next(self, seconds: float, *, times: int = 1, provider: Provider | None = None) -> None:
        """Wait `seconds` before answering the next `times` requests (then answer normally)."""
        self._push(_Fault("delay", provider, times, seconds=seconds))

    def malformed_next(self, *, times: int = 1, provider: Provider | None = None) -> None:
        """Break the next `times` responses: a stream cut off mid-body after a broken `data:` line."""
        self._push(_Fault("malformed", provider, times))

    def reset(self) -> None:
        """Forget requests, scripted replies, pending faults, `usage`, `cache_tokens` and `responder`."""
        with self._lock:
            self._state = _State()
        self.usage, self.cache_tokens, self.responder = None, (0, 0), None

    def _push(self, fault: _Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._state.faults.append(fault)

    # --- serving (called from handler threads) ------------------------------------------------------------

    def _admit(self, request: RecordedRequest) -> tuple[_Fault | None, str, str]:
        """Record the request; take its fault (if any), its reply text and a response id."""
        with self._lock:
            self._state.requests.append(request)
            fault = next(
                (f for f in self._state.faults if f.provider in (None, request.provider)),
                None,
            )
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._state.faults.remove(fault)
            answered = fault is None or fault.kind == "delay"
            scripted = self._state.replies.popleft() if answered and self._state.replies else None
            rid = f"fake{next(self._ids):06d}"
        if scripted is not None:
            return fault, scripted, rid
        if self.responder is not None:
            return fault, self.responder(request), rid
        return fault, "echo: " + wire.last_user_text(request.provider, request.body), rid

    def _serve(self, handler: _Handler, request: RecordedRequest) -> None:
        fault, text, rid = self._admit(request)
        if fault is not None and fault.kind == "delay" and self._stopping.wait(fault.seconds):
            handler.close_connection = True  # stopped while waiting: answer nothing
            return
        if fault is not None and fault.kind == "fail":
            headers = (
                {"retry-after": f"{fault.retry_after:g}"}
                if fault.status == 429 and fault.retry_after is not None
                else {}
            )
            handler.send_json(
                fault.status, wire.error_body(request.provider, fault.status, fault.message), headers
            )
            return
        provider, model = request.provider, request.model
        words = wire.input_words(provider, request.body)
        usage = self.usage or (words, len(text.split()))
        malformed = fault is not None and fault.kind == "malformed"
        if not request.stream:
            if provider == "openai":
                payload = wire.openai_response(rid, model, text, usage)
            elif provider == "anthropic":
                payload = wire.anthropic_response(rid, model, text, usage, self.cache_tokens)
            else:
                payload = wire.gemini_response(rid, model, text, usage)
            handler.send_json(200, payload, broken=malformed)
            return
        if provider == "openai":
            options = request.body.get("stream_options") or {}
            events = wire.openai_stream(rid, model, text, usage, bool(options.get("include_usage")))
        elif provider == "anthropic":
            events = wire.anthropic_stream(rid, model, text, usage, self.cache_tokens)
        else:
            events = wire.gemini_stream(rid, model, text, usage)
        frames = wire.sse(events)
        if malformed:
            frames = [*frames[: max(1, len(frames) // 2)], b'data: {"broken": "json\n\n']
        handler.send_stream(frames, self.chunk_delay, self._stopping, cut=malformed)


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that can cut its open (keep-alive) connections on stop."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, fake: FakeProvider) -> None:
        self.fake = fake
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that went away (timeouts, cancelled streams)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes; no 40 ms delayed-ACK stalls
    server: _Server
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's parameter name
        """No access log."""

    def do_POST(self) -> None:
        split = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        provider: Provider | None = None
        if split.path in _OPENAI_PATHS:
            provider = "openai"
        elif split.path in _ANTHROPIC_PATHS:
            provider = "anthropic"
        elif (match := _GEMINI_PATH.match(split.path)) and match["method"] in (
            "generateContent",
            "streamGenerateContent",
        ):
            provider = "gemini"
        if provider is None:
            self.send_json(404, wire.error_body("openai", 404, f"fake provider: no route for {split.path}"))
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self.send_json(400, wire.error_body(provider, 400, "fake provider: request body is not JSON"))
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        query = dict(parse_qsl(split.query))
        request = RecordedRequest(provider, "POST", split.path, query, headers, body)
        try:
            self.server.fake._serve(self, request)
        except _DISCONNECTS:
            self.close_connection = True
        except Exception as exc:  # a test's responder failed: make it loud, as a 500 naming the error
            self.send_json(500, wire.error_body(provider, 500, f"fake provider: responder raised {exc!r}"))

    def do_GET(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_json(404, wire.error_body("openai", 404, f"fake provider: no route for GET {self.path}"))

    def send_json(
        self,
        status: int,
        payload: dict[str, Any],
        headers: dict[str, str] | None = None,
        broken: bool = False,
    ) -> None:
        data = json.dumps(payload).encode()
        if broken:
            data = data[: len(data) // 2]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_stream(self, frames: list[bytes], delay: float, stopping: threading.Event, cut: bool) -> None:
        """Send SSE frames in chunked encoding; with `cut`, drop the connection before the final chunk."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
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
