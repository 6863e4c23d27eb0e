"""The model adapter contract, held against every adapter: streamed and whole replies agree.

The litellm adapter runs its real HTTP path against the fake provider in each wire format
(OpenAI, Anthropic, Gemini); the offline adapter needs nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from api.adapters.models import CallOptions, ModelAdapter, ModelError, ModelResult, adapter_for
from tests.fake_provider import FakeProvider
from tests.test_api_providers import ANTHROPIC, GEMINI, OPENAI, provider_env

MODELS = ["offline/echo", OPENAI, ANTHROPIC, GEMINI]
TRANSCRIPT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "one two"},
    {"role": "assistant", "content": "echo: one two"},
    {"role": "user", "content": "three four five"},
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider(chunk_delay=0.0) as f, pytest.MonkeyPatch.context() as mp:
        for name, value in provider_env(f).items():
            mp.setenv(name, value)
        yield f


OPTIONS = CallOptions(timeout_s=5.0)


async def _streamed(adapter: ModelAdapter, model: str) -> tuple[list[str], ModelResult]:
    deltas, results = [], []
    async for item in adapter.stream(model, TRANSCRIPT, OPTIONS):
        (results if isinstance(item, ModelResult) else deltas).append(item)
    assert len(results) == 1, "a stream ends with exactly one result"
    assert isinstance(results[0], ModelResult) and all(isinstance(d, str) for d in deltas)
    return deltas, results[0]


@pytest.mark.parametrize("model", MODELS)
def test_a_stream_is_deltas_then_one_result_that_joins_them(model: str, fake: FakeProvider) -> None:
    fake.reset()
    deltas, result = asyncio.run(_streamed(adapter_for(model), model))
    assert len(deltas) > 1, "streamed in pieces"
    assert "".join(deltas) == result.text == "echo: three four five"
    assert result.model == model
    assert result.usage.output_tokens == 4
    assert result.usage.input_tokens and result.usage.input_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_a_whole_reply_matches_the_streamed_one(model: str, fake: FakeProvider) -> None:
    adapter = adapter_for(model)
    fake.reset()
    _, streamed = asyncio.run(_streamed(adapter, model))
    fake.reset()
    whole = asyncio.run(adapter.complete(model, TRANSCRIPT, OPTIONS))
    assert (whole.text, whole.model, whole.usage) == (streamed.text, streamed.model, streamed.usage)
    assert whole.cost_usd == pytest.approx(streamed.cost_usd)
    if not model.startswith("offline/"):
        assert [r.stream for r in fake.requests] == [False], "one request, not streamed"


@pytest.mark.parametrize("model", MODELS[1:])
@pytest.mark.parametrize("status", [429, 500, 400])
def test_provider_errors_become_model_errors_that_say_whether_to_retry(
    model: str, status: int, fake: FakeProvider
) -> None:
    adapter = adapter_for(model)
    for call in ("stream", "complete"):
        fake.reset()
        fake.fail_next(status)
        with pytest.raises(ModelError) as info:
            if call == "stream":
                asyncio.run(_streamed(adapter, model))
            else:
                asyncio.run(adapter.complete(model, TRANSCRIPT, OPTIONS))
        assert info.value.status == status, call
        assert info.value.retryable is (status != 400), call
