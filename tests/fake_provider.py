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
- OpenAI Responses API (provider `"openai-responses"`, what `codex` speaks): `/v1/responses` or `/responses`;
  streams when the body has `"stream": true` (see `tests/fake_responses.py`).
- Anthropic: `/v1/messages` or `/messages`; streams when the body has `"stream": true`.
  `/v1/messages/count_tokens` answers `{"input_tokens": <words>}` (recorded; takes no reply nor fault).
- Gemini: `[/v1beta|/v1alpha|/v1]/models/{model}:generateContent` or `:streamGenerateContent` (SSE). litellm
  joins a custom Gemini api_base with `models/{model}:{method}`, without an API version.

Requests meant for another host, which reach the fake when it is set as a client's `HTTP(S)_PROXY`
(`CONNECT host:443`, or an absolute URL as the path), are refused with a 403 and listed in `foreign_requests`:
a test can point every proxy variable at the fake and assert that nothing tried to leave the machine.

The reply, in order of precedence: the next scripted reply (`script([...])`, one per answered request, any
provider; a failed or malformed answer leaves the queue alone); `responder(request)` when set; otherwise
`"echo: <text of the last user turn>"`. A reply is a string or a `Reply`, which can carry tool calls
(`ToolCall(name, arguments)`, ids generated when absent) and its own token counts. Every answer sent (faults
aside) is in `responses`, with the token counts it reported; its id is also sent as a `request-id` (Anthropic)
or `x-request-id` header, as `req_<rid>`.

Token counts, in order of precedence: `Reply.usage`; the fake's `usage = (input, output)`; else input = the
number of whitespace-separated words in every `text`/`content` string of the transcript (OpenAI `messages`;
Anthropic `system` + `messages`; Gemini `system_instruction` + `contents`; Responses `instructions` + `input`,
a tool output counting as content) and output = the words of the reply text. Anthropic also reports
`cache_read_input_tokens, cache_creation_input_tokens = cache_tokens` (default 0, 0; `Reply.cache` first), the
Responses API `input_tokens_details.cached_tokens = cache_tokens[0]`.

Faults form one FIFO queue; each request takes the first fault meant for its provider (or for any provider),
one per request: `fail_next(status, times=...)` answers with the provider's error JSON (plus `retry-after`
on 429); `delay_next(seconds)` waits before answering; `malformed_next()` sends half of a stream, a `data:`
line of broken JSON, then drops the connection mid-body (a non-streaming request gets a broken JSON body).
Streamed events are spaced `chunk_delay` seconds apart (default 5 ms), the first one included.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import count
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from tests import fake_responses as responses_wire
from tests import fake_wire as wire
from tests.fake_http import DISCONNECTS, Exchange, LoopbackServer
from tests.fake_wire import Provider, Reply, ToolCall

__all__ = ["FakeProvider", "RecordedRequest", "RecordedResponse", "Reply", "ToolCall"]

_GEMINI_PATH = re.compile(r"^(?:/v1beta|/v1alpha|/v1)?/models/(?P<model>[^/:]+):(?P<method>\w+)$")
_ROUTES: dict[str, Provider] = {
    "/v1/chat/completions": "openai",
    "/chat/completions": "openai",
    "/v1/responses": "openai-responses",
    "/responses": "openai-responses",
    "/v1/messages": "anthropic",
    "/messages": "anthropic",
}
_COUNT_TOKENS = ("/v1/messages/count_tokens", "/messages/count_tokens")
# Tool call id prefixes, per provider, for calls scripted without an id.
_CALL_ID_PREFIX: dict[Provider, str] = {"anthropic": "toolu_", "gemini": "call_"}
# Response id as the client sees it, per provider.
_RESPONSE_ID = {"openai": "chatcmpl-{}", "openai-responses": "resp_{}", "anthropic": "msg_{}", "gemini": "{}"}
Responder = Callable[["RecordedRequest"], "str | Reply"]


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


@dataclass(frozen=True)
class RecordedResponse:
    """One model answer the fake sent (faults aside): what it said and the token counts it reported.

    Cache counts are those on the wire: Anthropic reports both, the Responses API the read count only,
    the others none (0, 0).
    """

    request: RecordedRequest
    id: str  # as in the body: msg_…, chatcmpl-…, resp_…, or Gemini's responseId
    request_id: str  # the `request-id` (Anthropic) or `x-request-id` header sent with it
    text: str
    tool_calls: tuple[ToolCall, ...]
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_creation_tokens: int

    @property
    def provider(self) -> Provider:
        """The provider whose route answered."""
        return self.request.provider

    @property
    def model(self) -> str:
        """The model the request asked for (the fake answers as that model)."""
        return self.request.model


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
    responses: list[RecordedResponse] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    replies: deque[Reply] = field(default_factory=deque)
    faults: deque[_Fault] = field(default_factory=deque)


def _as_reply(reply: str | Reply) -> Reply:
    return reply if isinstance(reply, Reply) else Reply(text=reply)


class FakeProvider:
    """A loopback HTTP server imitating several LLM provider APIs; see the module docstring for the rules."""

    def __init__(self, *, chunk_delay: float = 0.005) -> None:
        """Configure; the server starts on `start()` or on entering the `with` block."""
        self.chunk_delay = chunk_delay
        self.usage: tuple[int, int] | None = None
        self.cache_tokens: tuple[int, int] = (0, 0)
        self.responder: Responder | None = None
        self._state = _State()
        self._lock = threading.Lock()
        self._ids = count(1)
        self._stopping = threading.Event()
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        """Bind 127.0.0.1 on a free port and serve from a daemon thread. Returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = LoopbackServer(self._handle)
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

    @property
    def responses(self) -> list[RecordedResponse]:
        """Every model answer sent so far (faults aside), oldest first (a copy)."""
        with self._lock:
            return list(self._state.responses)

    @property
    def clients_left(self) -> int:
        """How many answers were cut short because the client went away (closed its connection)."""
        return self._server.clients_left if self._server is not None else 0

    @property
    def foreign_requests(self) -> list[str]:
        """Requests meant for another host, refused (`"CONNECT host:443"`, `"GET http://host/path"`)."""
        with self._lock:
            return list(self._state.foreign)

    def script(self, replies: Iterable[str | Reply]) -> None:
        """Queue replies (texts or `Reply`s), one per request (any provider), ahead of responder or echo."""
        with self._lock:
            self._state.replies.extend(_as_reply(r) for r in replies)

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
        """Forget requests, responses, scripted replies, faults, `usage`, `cache_tokens` and `responder`."""
        with self._lock:
            self._state = _State()
        self.usage, self.cache_tokens, self.responder = None, (0, 0), None

    def _push(self, fault: _Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._state.faults.append(fault)

    # --- serving (called from handler threads) ------------------------------------------------------------

    def _handle(self, exchange: Exchange) -> None:
        """Route one request: a refused foreign one, a model call, count_tokens, or a 404."""
        split = urlsplit(exchange.path)
        if exchange.command == "CONNECT" or split.scheme:
            with self._lock:
                self._state.foreign.append(f"{exchange.command} {exchange.path}")
            exchange.send_refusal(403)
            return
        provider = _ROUTES.get(split.path)
        match = _GEMINI_PATH.match(split.path)
        if match and match["method"] in ("generateContent", "streamGenerateContent"):
            provider = "gemini"
        if exchange.command != "POST" or (provider is None and split.path not in _COUNT_TOKENS):
            where = split.path if exchange.command == "POST" else f"{exchange.command} {exchange.path}"
            exchange.send_json(404, wire.error_body("openai", 404, f"fake provider: no route for {where}"))
            return
        provider = provider or "anthropic"
        try:
            body = json.loads(exchange.raw or b"{}")
        except ValueError:
            exchange.send_json(400, wire.error_body(provider, 400, "fake provider: request body is not JSON"))
            return
        headers = {name.lower(): value for name, value in exchange.headers.items()}
        request = RecordedRequest(provider, "POST", split.path, dict(parse_qsl(split.query)), headers, body)
        if split.path in _COUNT_TOKENS:
            with self._lock:
                self._state.requests.append(request)
            exchange.send_json(200, {"input_tokens": wire.input_words(provider, body)})
            return
        try:
            self._serve(exchange, request)
        except DISCONNECTS:
            raise
        except Exception as exc:  # a test's responder failed: make it loud, as a 500 naming the error
            exchange.send_json(
                500, wire.error_body(provider, 500, f"fake provider: responder raised {exc!r}")
            )

    def _admit(self, request: RecordedRequest) -> tuple[_Fault | None, Reply | None, str]:
        """Record the request; take its fault (if any), its scripted reply (if any) and a response id."""
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
        return fault, scripted, rid

    def _reply_for(self, request: RecordedRequest, scripted: Reply | None) -> Reply:
        if scripted is not None:
            return scripted
        if self.responder is not None:
            return _as_reply(self.responder(request))
        return Reply(text="echo: " + wire.last_user_text(request.provider, request.body))

    def _serve(self, exchange: Exchange, request: RecordedRequest) -> None:
        fault, scripted, rid = self._admit(request)
        if fault is not None and fault.kind == "delay" and self._stopping.wait(fault.seconds):
            exchange.close_connection = True  # stopped while waiting: answer nothing
            return
        provider = request.provider
        if fault is not None and fault.kind == "fail":
            headers = (
                {"retry-after": f"{fault.retry_after:g}"}
                if fault.status == 429 and fault.retry_after is not None
                else {}
            )
            exchange.send_json(fault.status, wire.error_body(provider, fault.status, fault.message), headers)
            return
        reply = self._reply_for(request, scripted)
        calls = wire.tool_call_ids(reply.tool_calls, _CALL_ID_PREFIX.get(provider, "call_"), rid)
        usage = (
            reply.usage or self.usage or (wire.input_words(provider, request.body), len(reply.text.split()))
        )
        cache = reply.cache or self.cache_tokens
        malformed = fault is not None and fault.kind == "malformed"
        if not malformed:
            self._record(request, rid, reply.text, calls, usage, cache)
        payload, events = _render(request, rid, reply.text, calls, usage, cache)
        id_header = {"request-id" if provider == "anthropic" else "x-request-id": f"req_{rid}"}
        if events is None:
            exchange.send_json(200, payload, id_header, broken=malformed)
            return
        frames = wire.sse(events)
        if malformed:
            frames = [*frames[: max(1, len(frames) // 2)], b'data: {"broken": "json\n\n']
        exchange.send_stream(frames, self.chunk_delay, self._stopping, cut=malformed, headers=id_header)

    def _record(
        self,
        request: RecordedRequest,
        rid: str,
        text: str,
        calls: tuple[ToolCall, ...],
        usage: tuple[int, int],
        cache: tuple[int, int],
    ) -> None:
        reported = {"anthropic": cache, "openai-responses": (cache[0], 0)}.get(request.provider, (0, 0))
        response_id = _RESPONSE_ID[request.provider].format(rid)
        answer = RecordedResponse(request, response_id, f"req_{rid}", text, calls, *usage, *reported)
        with self._lock:
            self._state.responses.append(answer)


def _render(
    request: RecordedRequest,
    rid: str,
    text: str,
    calls: tuple[ToolCall, ...],
    usage: tuple[int, int],
    cache: tuple[int, int],
) -> tuple[dict[str, Any], list[wire.SseEvent] | None]:
    """The answer in the request's wire format: (JSON payload, None), or ({}, SSE events) when streaming."""
    provider, model = request.provider, request.model
    if not request.stream:
        if provider == "openai":
            return wire.openai_response(rid, model, text, usage, calls), None
        if provider == "openai-responses":
            return responses_wire.response(rid, model, text, usage, cache, calls), None
        if provider == "anthropic":
            return wire.anthropic_response(rid, model, text, usage, cache, calls), None
        return wire.gemini_response(rid, model, text, usage, calls), None
    if provider == "openai":
        options = request.body.get("stream_options") or {}
        return {}, wire.openai_stream(rid, model, text, usage, bool(options.get("include_usage")), calls)
    if provider == "openai-responses":
        return {}, responses_wire.stream(rid, model, text, usage, cache, calls)
    if provider == "anthropic":
        return {}, wire.anthropic_stream(rid, model, text, usage, cache, calls)
    return {}, wire.gemini_stream(rid, model, text, usage, calls)
