"""The fake provider's tool calls, Responses API, recorded answers and proxy trap, through real clients.

litellm and the openai SDK parse what the fake sends (so a shape they reject fails here); raw httpx checks the
exact event sequences. Everything goes to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import litellm

from tests.fake_provider import FakeProvider, Reply, ToolCall

litellm.suppress_debug_info = True

WEATHER = ToolCall("weather", {"city": "Paris", "days": 2})
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
LITELLM_MODELS = {
    "openai": ("openai/gpt-4o-mini", "/v1"),
    "anthropic": ("anthropic/claude-haiku-4-5", ""),
    "gemini": ("gemini/gemini-2.5-flash", ""),
}


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy may intercept loopback traffic."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider(chunk_delay=0) as server:
        yield server


def sse_events(text: str) -> list[tuple[str | None, Any]]:
    """(event name, parsed data) for each SSE frame."""
    out = []
    for frame in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        data = lines["data"]
        out.append((lines.get("event"), data if data == "[DONE]" else json.loads(data)))
    return out


def litellm_call(fake: FakeProvider, provider: str, **kwargs: Any) -> Any:
    model, suffix = LITELLM_MODELS[provider]
    return litellm.completion(
        model=model,
        api_base=fake.base_url + suffix,
        api_key="test",
        num_retries=0,
        max_retries=0,
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=TOOLS,
        **kwargs,
    )


# --- chat wire formats ------------------------------------------------------------------------------------


def test_anthropic_stream_sends_text_then_tool_use_blocks(fake: FakeProvider) -> None:
    fake.script([Reply("Let me check.", (WEATHER,), usage=(40, 9), cache=(30, 5))])
    body = {"model": "claude-haiku-4-5", "max_tokens": 50, "stream": True, "messages": []}
    response = httpx.post(fake.base_url + "/v1/messages?beta=true", json=body)
    assert response.headers["request-id"] == "req_fake000001"
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    starts = [data["content_block"] for name, data in events if name == "content_block_start"]
    assert starts == [
        {"type": "text", "text": ""},
        {"type": "tool_use", "id": "toolu_fake000001_1", "name": "weather", "input": {}},
    ]
    deltas = [data["delta"] for name, data in events if name == "content_block_delta" and data["index"] == 1]
    assert {d["type"] for d in deltas} == {"input_json_delta"} and len(deltas) == 2
    assert json.loads("".join(d["partial_json"] for d in deltas)) == WEATHER.arguments
    assert names.count("content_block_stop") == 2
    message_start, message_delta = events[0][1]["message"], events[-2][1]
    assert (
        message_start["usage"]["input_tokens"] == 40
        and message_start["usage"]["cache_read_input_tokens"] == 30
    )
    assert (
        message_delta["delta"]["stop_reason"] == "tool_use" and message_delta["usage"]["output_tokens"] == 9
    )


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_tool_calls_parse_in_litellm(fake: FakeProvider, provider: str, stream: bool) -> None:
    fake.script([Reply("", (WEATHER,), usage=(12, 6))])
    options = {"stream_options": {"include_usage": True}} if stream else {}
    response = litellm_call(fake, provider, stream=stream, **options)
    if stream:
        response = litellm.stream_chunk_builder(list(response))
    [call] = response.choices[0].message.tool_calls
    assert call.function.name == "weather" and json.loads(call.function.arguments) == WEATHER.arguments
    assert response.choices[0].finish_reason == "tool_calls"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (12, 6)


def test_scripted_ids_are_kept_and_missing_ones_generated(fake: FakeProvider) -> None:
    fake.script([Reply("", (ToolCall("a", {}, id="call_mine"), ToolCall("b", {"x": 1})))])
    response = litellm_call(fake, "openai")
    assert [c.id for c in response.choices[0].message.tool_calls] == ["call_mine", "call_fake000001_2"]


# --- Responses API ----------------------------------------------------------------------------------------


@pytest.fixture
def client(fake: FakeProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url + "/v1", api_key="test", max_retries=0)


def test_responses_stream_event_sequence(fake: FakeProvider) -> None:
    fake.script([Reply("On it.", (WEATHER,), usage=(50, 7), cache=(20, 0))])
    body = {"model": "gpt-5.5", "stream": True, "input": [{"role": "user", "content": "hi"}]}
    response = httpx.post(fake.base_url + "/responses", json=body)
    assert response.headers["x-request-id"] == "req_fake000001"
    events = sse_events(response.text)
    assert all(name == data["type"] for name, data in events)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert [name for name, _ in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    call = events[13][1]["item"]
    assert (
        call["type"] == "function_call"
        and call["call_id"] == "call_fake000001_1"
        and call["name"] == "weather"
    )
    assert json.loads(call["arguments"]) == WEATHER.arguments
    assert events[-1][1]["response"]["usage"] == {
        "input_tokens": 50,
        "input_tokens_details": {"cached_tokens": 20},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 57,
    }


def test_responses_stream_in_the_openai_sdk(fake: FakeProvider, client: openai.OpenAI) -> None:
    fake.script([Reply("Checking the weather.", (WEATHER,), usage=(50, 7), cache=(20, 0))])
    with client.responses.stream(model="gpt-5.5", input="weather in Paris?") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "Checking the weather."
    [message, call] = final.output
    assert message.type == "message" and call.type == "function_call"
    assert json.loads(call.arguments) == WEATHER.arguments and call.call_id == "call_fake000001_1"
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (50, 7)
    assert final.usage.input_tokens_details.cached_tokens == 20


def test_responses_json_and_echo_of_a_tool_output(fake: FakeProvider, client: openai.OpenAI) -> None:
    items: Any = [
        {"role": "user", "content": [{"type": "input_text", "text": "run it"}]},
        {"type": "function_call", "call_id": "c1", "name": "sh", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "three words here"},
    ]
    response = client.responses.create(model="gpt-5.5", instructions="Be brief.", input=items)
    assert response.output_text == "echo: three words here"
    assert response.usage is not None
    # "Be brief." + "run it" + "three words here": 7 words in; "echo: three words here": 4 out
    assert (response.usage.input_tokens, response.usage.output_tokens) == (7, 4)
    [request] = fake.requests
    assert request.provider == "openai-responses" and request.model == "gpt-5.5"


# --- what the fake records --------------------------------------------------------------------------------


def test_responses_record_what_was_reported(fake: FakeProvider) -> None:
    fake.cache_tokens = (3, 2)
    fake.script(["plain words", Reply("own counts", usage=(100, 10), cache=(60, 40))])
    fake.responder = lambda request: Reply("", (WEATHER,))
    fake.fail_next(500, provider="gemini")
    for provider in ("anthropic", "anthropic", "openai"):
        litellm_call(fake, provider)
    with pytest.raises(litellm.InternalServerError):
        litellm_call(fake, "gemini")
    first, second, third = fake.responses
    assert (first.provider, first.id, first.request_id, first.text) == (
        "anthropic",
        "msg_fake000001",
        "req_fake000001",
        "plain words",
    )
    assert (first.input_tokens, first.output_tokens) == (3, 2)  # "weather in Paris?" in, "plain words" out
    assert (first.cache_read_tokens, first.cache_creation_tokens) == (3, 2)
    assert (second.input_tokens, second.output_tokens, second.cache_read_tokens) == (100, 10, 60)
    assert third.id == "chatcmpl-fake000003" and third.tool_calls[0].name == "weather"
    assert (third.cache_read_tokens, third.cache_creation_tokens) == (0, 0)  # OpenAI chat reports none
    assert len(fake.requests) == 4


def test_count_tokens_takes_no_reply_nor_fault(fake: FakeProvider) -> None:
    fake.script(["kept"])
    fake.fail_next(500)
    body = {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "one two three"}]}
    response = httpx.post(fake.base_url + "/v1/messages/count_tokens?beta=true", json=body)
    assert response.status_code == 200 and response.json() == {"input_tokens": 3}
    assert fake.responses == [] and fake.requests[0].path == "/v1/messages/count_tokens"
    assert httpx.post(fake.base_url + "/v1/messages", json=body).status_code == 500


def test_requests_for_other_hosts_are_refused_and_listed(fake: FakeProvider) -> None:
    with httpx.Client(proxy=fake.base_url) as via_fake:
        assert via_fake.get("http://example.invalid/ping").status_code == 403
        with pytest.raises(httpx.ProxyError):
            via_fake.get("https://example.invalid/ping")
    assert fake.foreign_requests == ["GET http://example.invalid/ping", "CONNECT example.invalid:443"]
    assert fake.requests == [] and fake.responses == []
