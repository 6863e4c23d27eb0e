"""The fake provider, driven through litellm's real clients (and raw httpx for the exact wire shapes).

Everything goes to 127.0.0.1; litellm's own retries are off so injected faults surface as they are.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import litellm

from tests.fake_provider import FakeProvider
from tests.fake_wire import Provider

litellm.suppress_debug_info = True

# provider -> (litellm model name, suffix added to fake.base_url for api_base). Gemini uses 2.5-flash:
# litellm's local model map has no gemini-2.0-flash, and for a model it does not know it folds the system
# prompt into the first user turn instead of sending `system_instruction`
# (see test_gemini_2_0_flash_folds_system_into_user).
MODELS: dict[Provider, tuple[str, str]] = {
    "openai": ("openai/gpt-4o-mini", "/v1"),
    "anthropic": ("anthropic/claude-3-5-haiku-20241022", ""),
    "gemini": ("gemini/gemini-2.5-flash", ""),
}
PROVIDERS: list[Provider] = list(MODELS)
PATHS: dict[Provider, tuple[str, str]] = {
    "openai": ("/v1/chat/completions", "/v1/chat/completions"),
    "anthropic": ("/v1/messages", "/v1/messages"),
    "gemini": ("/models/gemini-2.5-flash:generateContent", "/models/gemini-2.5-flash:streamGenerateContent"),
}
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "hello there world"},
]
# 3 system words + 3 user words in; "echo: hello there world" is 4 words out.
WORDS_IN, WORDS_OUT, ECHO = 6, 4, "echo: hello there world"


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy may intercept loopback traffic."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as server:
        yield server


def call(fake: FakeProvider, provider: Provider, **kwargs: Any) -> Any:
    """litellm.completion against the fake, with litellm's and the SDK's retries off."""
    model, suffix = MODELS[provider]
    kwargs.setdefault("messages", MESSAGES)
    return litellm.completion(
        model=model, api_base=fake.base_url + suffix, api_key="test", num_retries=0, max_retries=0, **kwargs
    )


def drain(stream: Any) -> tuple[list[str], Any]:
    """The content deltas of a litellm stream and the last usage seen on a chunk."""
    parts: list[str] = []
    usage = None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        usage = getattr(chunk, "usage", None) or usage
    return parts, usage


def test_base_url_is_loopback(fake: FakeProvider) -> None:
    assert fake.base_url == f"http://127.0.0.1:{fake.port}"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_completion_echoes_with_word_usage(fake: FakeProvider, provider: Provider) -> None:
    response = call(fake, provider)
    assert response.choices[0].message.content == ECHO
    assert response.choices[0].finish_reason == "stop"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (WORDS_IN, WORDS_OUT)
    assert response.usage.total_tokens == WORDS_IN + WORDS_OUT
    [request] = fake.requests
    assert (request.provider, request.path, request.stream) == (provider, PATHS[provider][0], False)
    assert request.model == MODELS[provider][0].split("/", 1)[1]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stream_deltas_and_usage(fake: FakeProvider, provider: Provider) -> None:
    stream = call(fake, provider, stream=True, stream_options={"include_usage": True})
    parts, usage = drain(stream)
    assert "".join(parts) == ECHO
    assert len(parts) == WORDS_OUT
    assert (usage.prompt_tokens, usage.completion_tokens) == (WORDS_IN, WORDS_OUT)
    [request] = fake.requests
    assert (request.path, request.stream) == (PATHS[provider][1], True)
    if provider == "gemini":
        assert request.query == {"alt": "sse"}
    if provider == "openai":
        assert request.body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_async_stream(fake: FakeProvider, provider: Provider) -> None:
    model, suffix = MODELS[provider]

    async def run() -> tuple[list[str], Any]:
        stream = await litellm.acompletion(
            model=model,
            api_base=fake.base_url + suffix,
            api_key="test",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            num_retries=0,
            max_retries=0,
        )
        parts, usage = [], None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
            usage = getattr(chunk, "usage", None) or usage
        return parts, usage

    parts, usage = asyncio.run(run())
    assert "".join(parts) == ECHO
    assert (usage.prompt_tokens, usage.completion_tokens) == (WORDS_IN, WORDS_OUT)


def test_concurrent_async_streams(fake: FakeProvider) -> None:
    async def one(i: int) -> str:
        stream = await litellm.acompletion(
            model="openai/gpt-4o-mini",
            api_base=fake.base_url + "/v1",
            api_key="test",
            messages=[{"role": "user", "content": f"question {i}"}],
            stream=True,
            num_retries=0,
            max_retries=0,
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    async def run() -> list[str]:
        return await asyncio.gather(*(one(i) for i in range(8)))

    assert asyncio.run(run()) == [f"echo: question {i}" for i in range(8)]
    assert len(fake.requests) == 8


def test_openai_transcript_reaches_provider_verbatim(fake: FakeProvider) -> None:
    tool_call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"q": "x"}'},
    }
    messages = [
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": [tool_call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "result text"},
        {"role": "user", "content": "and now?"},
    ]
    response = call(fake, "openai", messages=messages)
    assert response.choices[0].message.content == "echo: and now?"
    sent = fake.requests[0].body["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "user"]
    assert sent[3] == {"role": "tool", "tool_call_id": "call_1", "content": "result text"}
    assert fake.requests[0].headers["authorization"] == "Bearer test"


def test_anthropic_gets_top_level_system_and_tool_result_blocks(fake: FakeProvider) -> None:
    tool_call = {
        "id": "toolu_1",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"q": "x"}'},
    }
    messages = [
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": [tool_call]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "result text"},
    ]
    call(fake, "anthropic", messages=messages)
    request = fake.requests[0]
    body = request.body
    assert body["system"] == [{"type": "text", "text": "You are terse."}]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"][0]["type"] == "tool_use"
    result = body["messages"][2]["content"][0]
    assert (result["type"], result["tool_use_id"], result["content"]) == (
        "tool_result",
        "toolu_1",
        "result text",
    )
    assert request.headers["x-api-key"] == "test"
    assert "anthropic-version" in request.headers


def test_gemini_gets_system_instruction(fake: FakeProvider) -> None:
    call(fake, "gemini")
    request = fake.requests[0]
    assert request.body["system_instruction"] == {"parts": [{"text": "You are terse."}]}
    assert request.body["contents"] == [{"role": "user", "parts": [{"text": "hello there world"}]}]
    assert request.headers["x-goog-api-key"] == "test"


def test_gemini_2_0_flash_folds_system_into_user(fake: FakeProvider) -> None:
    response = litellm.completion(
        model="gemini/gemini-2.0-flash",
        api_base=fake.base_url,
        api_key="test",
        messages=MESSAGES,
        num_retries=0,
    )
    request = fake.requests[0]
    assert request.path == "/models/gemini-2.0-flash:generateContent"
    assert "system_instruction" not in request.body
    assert request.body["contents"] == [
        {"role": "user", "parts": [{"text": "You are terse."}, {"text": "hello there world"}]}
    ]
    assert response.choices[0].message.content == "echo: You are terse. hello there world"


def test_script_then_echo_and_usage_override(fake: FakeProvider) -> None:
    fake.script(["first answer", "second"])
    assert call(fake, "anthropic").choices[0].message.content == "first answer"
    assert "".join(drain(call(fake, "gemini", stream=True))[0]) == "second"
    assert call(fake, "openai").choices[0].message.content == ECHO
    fake.usage = (100, 7)
    usage = call(fake, "openai").usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (100, 7)


def test_responder(fake: FakeProvider) -> None:
    fake.responder = lambda request: f"{request.provider} saw {len(request.body['messages'])} messages"
    assert call(fake, "openai").choices[0].message.content == "openai saw 2 messages"


def test_responder_error_is_a_500_naming_it(fake: FakeProvider) -> None:
    def broken(request: Any) -> str:
        raise KeyError("oops")

    fake.responder = broken
    with pytest.raises(litellm.InternalServerError, match="responder raised KeyError"):
        call(fake, "openai")


def test_cost_for_models_in_the_local_map(fake: FakeProvider) -> None:
    response = litellm.completion(
        model="anthropic/claude-haiku-4-5", api_base=fake.base_url, api_key="test", messages=MESSAGES
    )
    assert response._hidden_params["response_cost"] == pytest.approx(WORDS_IN * 1e-6 + WORDS_OUT * 5e-6)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_is_rate_limit_error(fake: FakeProvider, provider: Provider) -> None:
    fake.fail_next(status=429, times=2)
    for _ in range(2):
        with pytest.raises(litellm.RateLimitError):
            call(fake, provider)
    assert call(fake, provider).choices[0].message.content == ECHO
    assert len(fake.requests) == 3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_500_is_internal_server_error(fake: FakeProvider, provider: Provider) -> None:
    fake.fail_next(status=500)
    with pytest.raises(litellm.InternalServerError) as caught:
        call(fake, provider)
    assert caught.value.status_code == 500


def test_faults_target_one_provider_and_keep_the_script(fake: FakeProvider) -> None:
    fake.script(["scripted"])
    fake.fail_next(status=500, provider="anthropic")
    assert call(fake, "openai").choices[0].message.content == "scripted"
    fake.script(["kept"])
    with pytest.raises(litellm.InternalServerError):
        call(fake, "anthropic")
    assert call(fake, "anthropic").choices[0].message.content == "kept"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_delay_beyond_timeout_is_timeout(fake: FakeProvider, provider: Provider) -> None:
    fake.delay_next(seconds=2.0)
    started = time.monotonic()
    with pytest.raises(litellm.Timeout):
        call(fake, provider, timeout=0.5)
    assert time.monotonic() - started < 1.5


def test_delay_within_timeout_answers(fake: FakeProvider) -> None:
    fake.delay_next(seconds=0.2)
    started = time.monotonic()
    assert call(fake, "openai", timeout=5).choices[0].message.content == ECHO
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_malformed_stream_raises_during_iteration(fake: FakeProvider, provider: Provider) -> None:
    fake.malformed_next()
    stream = call(fake, provider, stream=True)
    parts: list[str] = []
    with pytest.raises(openai.APIError):  # litellm's exceptions all derive from the OpenAI SDK's
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
    assert parts, "the stream should break off after some content"
    assert call(fake, provider).choices[0].message.content == ECHO


@pytest.mark.parametrize("provider", PROVIDERS)
def test_malformed_body_raises(fake: FakeProvider, provider: Provider) -> None:
    fake.malformed_next()
    with pytest.raises(openai.APIError):
        call(fake, provider)


def test_chunk_delay_makes_first_token_measurable() -> None:
    with FakeProvider(chunk_delay=0.05) as slow:
        started = time.monotonic()
        stream = call(slow, "openai", stream=True)
        first = None
        for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.monotonic() - started
        total = time.monotonic() - started
    assert first is not None and first >= 0.05
    assert total >= 0.05 * 7  # role, 4 words, finish, [DONE]


def test_reset_clears_everything(fake: FakeProvider) -> None:
    fake.script(["x"])
    fake.fail_next(status=500)
    fake.usage = (1, 1)
    fake.reset()
    assert fake.requests == []
    response = call(fake, "openai")
    assert response.choices[0].message.content == ECHO
    assert response.usage.prompt_tokens == WORDS_IN


# --- exact wire shapes, read with raw httpx ------------------------------------------------------------


def sse_events(text: str) -> list[tuple[str | None, str]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines.get("event"), lines["data"]))
    return events


def test_wire_anthropic_event_sequence(fake: FakeProvider) -> None:
    body = {"model": "m", "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "a b"}]}
    response = httpx.post(fake.base_url + "/v1/messages", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    data = [json.loads(d) for _, d in events]
    assert all(d["type"] == name for d, name in zip(data, names, strict=True))
    assert data[0]["message"]["usage"]["input_tokens"] == 2
    assert data[-2]["usage"] == {"output_tokens": 3}
    assert data[-2]["delta"]["stop_reason"] == "end_turn"


def test_wire_openai_stream_ends_with_done_and_usage_only_on_request(fake: FakeProvider) -> None:
    body: dict[str, Any] = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "a"}]}
    plain = sse_events(httpx.post(fake.base_url + "/chat/completions", json=body).text)
    assert plain[-1] == (None, "[DONE]")
    assert all("usage" not in json.loads(d) for _, d in plain[:-1])
    body["stream_options"] = {"include_usage": True}
    with_usage = sse_events(httpx.post(fake.base_url + "/v1/chat/completions", json=body).text)
    last = json.loads(with_usage[-2][1])
    assert last["choices"] == [] and last["usage"]["total_tokens"] == 1 + 2


@pytest.mark.parametrize(
    ("provider", "path", "expected"),
    [
        (
            "openai",
            "/v1/chat/completions",
            {
                "error": {
                    "message": "slow down",
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
        ),
        (
            "anthropic",
            "/v1/messages",
            {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
        ),
        (
            "gemini",
            "/v1beta/models/g:generateContent",
            {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}},
        ),
    ],
)
def test_wire_error_shapes(
    fake: FakeProvider, provider: Provider, path: str, expected: dict[str, Any]
) -> None:
    fake.fail_next(status=429, message="slow down", retry_after=3, provider=provider)
    response = httpx.post(fake.base_url + path, json={"model": "m", "messages": [], "contents": []})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json() == expected


def test_start_stop_without_context_manager() -> None:
    server = FakeProvider().start()
    url = server.base_url
    assert httpx.post(url + "/v1/chat/completions", json={"messages": []}).status_code == 200
    server.stop()
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.post(url + "/v1/chat/completions", json={"messages": []})


def test_wire_unknown_route_is_404(fake: FakeProvider) -> None:
    assert httpx.post(fake.base_url + "/v2/nothing", json={}).status_code == 404
