"""The model adapter contract, held against every adapter: streamed and whole replies agree.

The litellm adapter runs its real HTTP path against the fake provider in each wire format
(OpenAI, Anthropic, Gemini); the offline adapter needs nothing. The litellm adapter is held to
it twice: as a lone call runs (in this process) and as a busy server's calls run, in a model
worker process (api/adapters/models/workers.py), so both ends of the worker's pipe are in it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from api.adapters.models import CallOptions, ModelAdapter, ModelError, ModelResult, adapter_for
from api.adapters.models.base import Message
from ingest.pricing import litellm
from tests.fake_provider import FakeProvider
from tests.loop_thread import LoopThread
from tests.test_api_providers import ANTHROPIC, GEMINI, OPENAI, providers_here

T = TypeVar("T")
MODELS = ["offline/echo", OPENAI, ANTHROPIC, GEMINI]
WAYS = [(model, "here") for model in MODELS] + [(model, "worker") for model in MODELS[1:]]
TRANSCRIPT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "one two"},
    {"role": "assistant", "content": "echo: one two"},
    {"role": "user", "content": "three four five"},
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with providers_here(chunk_delay=0.0) as f:
        yield f


@pytest.fixture(scope="module")
def workers(fake: FakeProvider) -> Iterator[LoopThread]:
    """One model worker (started with the fake's environment) on an event loop of its own."""
    with LoopThread(workers=1) as loop:
        yield loop


class InWorker:
    """The litellm adapter's calls as a busy server makes them: through its pool, in a worker process."""

    name, needs_key = "litellm (in a model worker)", True

    def __init__(self, loop: LoopThread):
        self.loop = loop

    def handles(self, model: str) -> bool:
        return adapter_for(model).name == "litellm"

    def check(self, model: str) -> None:
        adapter_for(model).check(model)

    async def stream(self, model: str, messages: list[Message], options: CallOptions) -> AsyncIterator[Any]:
        async for item in self.loop.pool.stream(self.loop.worker(), model, messages, options):
            yield item

    async def complete(self, model: str, messages: list[Message], options: CallOptions) -> ModelResult:
        return await self.loop.pool.complete(model, messages, options)


def run(way: str, request: pytest.FixtureRequest, call: Callable[[Any], Awaitable[T]], model: str) -> T:
    """`call(adapter)` made the `way` asked: here, in a fresh loop, or through a model worker."""
    if way == "here":
        return asyncio.run(call(adapter_for(model)))
    loop: LoopThread = request.getfixturevalue("workers")
    return loop.run(call(InWorker(loop)))


OPTIONS = CallOptions(timeout_s=5.0)


async def _streamed(adapter: ModelAdapter, model: str) -> tuple[list[str], ModelResult]:
    deltas, results = [], []
    async for item in adapter.stream(model, TRANSCRIPT, OPTIONS):
        (results if isinstance(item, ModelResult) else deltas).append(item)
    assert len(results) == 1, "a stream ends with exactly one result"
    assert isinstance(results[0], ModelResult) and all(isinstance(d, str) for d in deltas)
    return deltas, results[0]


@pytest.mark.parametrize(("model", "way"), WAYS)
def test_a_stream_is_deltas_then_one_result_that_joins_them(
    model: str, way: str, fake: FakeProvider, request: pytest.FixtureRequest
) -> None:
    fake.reset()
    deltas, result = run(way, request, lambda adapter: _streamed(adapter, model), model)
    assert len(deltas) > 1, "streamed in pieces"
    assert "".join(deltas) == result.text == "echo: three four five"
    assert result.model == model
    assert result.usage.output_tokens == 4
    assert result.usage.input_tokens and result.usage.input_tokens > 0


@pytest.mark.parametrize(("model", "way"), WAYS)
def test_a_whole_reply_matches_the_streamed_one(
    model: str, way: str, fake: FakeProvider, request: pytest.FixtureRequest
) -> None:
    fake.reset()
    _, streamed = run(way, request, lambda adapter: _streamed(adapter, model), model)
    fake.reset()
    whole = run(way, request, lambda adapter: adapter.complete(model, TRANSCRIPT, OPTIONS), model)
    assert (whole.text, whole.model, whole.usage) == (streamed.text, streamed.model, streamed.usage)
    assert whole.cost_usd == pytest.approx(streamed.cost_usd)
    if not model.startswith("offline/"):
        assert [r.stream for r in fake.requests] == [False], "one request, not streamed"


@pytest.mark.parametrize(("model", "way"), WAYS[1:])
@pytest.mark.parametrize("status", [429, 500, 400])
def test_provider_errors_become_model_errors_that_say_whether_to_retry(
    model: str, way: str, status: int, fake: FakeProvider, request: pytest.FixtureRequest
) -> None:
    for call in ("stream", "complete"):
        fake.reset()
        fake.fail_next(status, retry_after=2)
        with pytest.raises(ModelError) as info:
            if call == "stream":
                run(way, request, lambda adapter: _streamed(adapter, model), model)
            else:
                run(way, request, lambda adapter: adapter.complete(model, TRANSCRIPT, OPTIONS), model)
        assert info.value.status == status, call
        assert info.value.retryable is (status != 400), call
        assert not info.value.timeout, call
        if status == 429 and model == OPENAI:  # litellm keeps the header for OpenAI's errors
            assert info.value.retry_after == 2, call


@pytest.mark.parametrize(("model", "way"), [(OPENAI, "here"), (OPENAI, "worker")])
def test_a_provider_that_does_not_answer_in_time_is_a_timeout(
    model: str, way: str, fake: FakeProvider, request: pytest.FixtureRequest
) -> None:
    fake.reset()
    fake.delay_next(3.0)
    short = CallOptions(timeout_s=0.5)
    with pytest.raises(ModelError) as info:
        run(way, request, lambda adapter: adapter.complete(model, TRANSCRIPT, short), model)
    assert info.value.timeout and info.value.retryable


class SlowEnd:
    """litellm's real stream, with its end (where litellm does its own success logging) held back."""

    HOLD_S = 5.0

    def __init__(self, inner: Any, ends: list[str]):
        self.inner, self.ends = inner, ends

    def __aiter__(self) -> SlowEnd:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.inner.__anext__()
        except StopAsyncIteration:
            await asyncio.sleep(self.HOLD_S)
            self.ends.append("read to its end")
            raise

    async def aclose(self) -> None:
        self.ends.append("closed")
        await self.inner.aclose()


@pytest.fixture
def slow_ends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """litellm's streams in this process end `SlowEnd.HOLD_S` late; how each ended is listed."""
    lib, ends = litellm(), []
    real = lib.acompletion

    async def acompletion(**kwargs: Any) -> Any:
        answer = await real(**kwargs)
        return SlowEnd(answer, ends) if kwargs.get("stream") else answer

    monkeypatch.setattr(lib, "acompletion", acompletion)
    return ends


async def _timed_stream(model: str) -> tuple[float, ModelResult]:
    began = time.perf_counter()
    _, result = await _streamed(adapter_for(model), model)
    return time.perf_counter() - began, result


@pytest.mark.parametrize("model", [OPENAI, ANTHROPIC, GEMINI])
def test_a_streamed_reply_ends_at_its_usage(model: str, fake: FakeProvider, slow_ends: list[str]) -> None:
    """litellm gives a stream's usage once the provider's events are all in, then logs for its
    callbacks before the stream ends. The adapter closes the stream at the usage: the turn
    does not wait for that end (held back by seconds here)."""
    fake.reset()
    took, result = asyncio.run(_timed_stream(model))
    assert took < SlowEnd.HOLD_S / 2 and slow_ends == ["closed"]
    assert result.text == "echo: three four five"
    sent = fake.responses[-1]
    assert (result.usage.input_tokens, result.usage.output_tokens) == (sent.input_tokens, sent.output_tokens)


@pytest.mark.parametrize("way", ["here", "worker"])
def test_a_caller_that_leaves_mid_stream_closes_the_providers_stream(
    way: str, fake: FakeProvider, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A turn whose caller went away ends the provider's stream too, so the provider stops
    writing (and billing) an answer no one reads: the fake sees its client leave mid-answer."""
    fake.reset()
    monkeypatch.setattr(fake, "chunk_delay", 0.05)
    fake.script([" ".join(["word"] * 200)])
    left = fake.clients_left

    async def leave(adapter: ModelAdapter) -> tuple[str, int]:
        stream = adapter.stream(OPENAI, TRANSCRIPT, OPTIONS)
        first = await anext(aiter(stream))
        await stream.aclose()
        for _ in range(100):  # on the running loop: an ended loop would close every connection
            if fake.clients_left > left:
                break
            await asyncio.sleep(0.02)
        return first, fake.clients_left - left

    assert run(way, request, leave, OPENAI) == ("word ", 1), "the provider's stream was left open"
