"""Every provider litellm knows (OpenAI, Anthropic, xAI, Gemini, OpenAI-compatible servers).

Keys and base URLs come from the environment as litellm reads them (OPENAI_API_KEY,
OPENAI_BASE_URL, ANTHROPIC_API_KEY, ANTHROPIC_API_BASE, GEMINI_API_KEY, …). litellm is
imported on first use, with its price map read from the package, never fetched.
Retries are Cerver's (api/sessions/runner.py), so litellm's own are switched off.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Any

from api.adapters.models import workers
from api.adapters.models.base import CallOptions, Message, ModelError, ModelResult, UnknownModel, Usage
from ingest.pricing import litellm, price

log = logging.getLogger("cerver.models")


def warm() -> None:
    """Import litellm now (it takes seconds), so the first request does not wait for it."""
    litellm()


@lru_cache(maxsize=4096)
def _routes(model: str) -> bool:
    """Whether litellm routes `model` to a provider: asked once per name (twice a turn otherwise)."""
    try:
        litellm().get_llm_provider(model)
    except Exception:
        return False
    return True


def _usage(raw: Any) -> Usage:
    if raw is None:
        return Usage()
    details = getattr(raw, "prompt_tokens_details", None)
    cache_read = getattr(raw, "cache_read_input_tokens", None) or getattr(details, "cached_tokens", None)
    return Usage(
        input_tokens=getattr(raw, "prompt_tokens", None),
        output_tokens=getattr(raw, "completion_tokens", None),
        cache_read_tokens=cache_read,
        cache_write_tokens=getattr(raw, "cache_creation_input_tokens", None),
    )


def _as_model_error(exc: Exception) -> ModelError:
    lib = litellm()
    status = getattr(exc, "status_code", None)
    timeout = isinstance(exc, lib.Timeout)
    retryable = (
        timeout
        or isinstance(exc, lib.APIConnectionError)
        or status in (408, 409, 429)
        or (isinstance(status, int) and status >= 500)
    )
    error = ModelError(f"{type(exc).__name__}: {exc}", status=status, retryable=retryable, timeout=timeout)
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        error.retry_after = float(headers.get("retry-after")) if headers.get("retry-after") else None
    except (TypeError, ValueError):
        error.retry_after = None
    return error


class LiteLLMAdapter:
    """Serves any model name litellm can route."""

    name = "litellm"
    needs_key = True

    def __init__(self) -> None:
        self.active = 0  # calls in flight, here or in model workers

    def _worker(self) -> tuple[workers.WorkerPool, workers.Worker] | None:
        """Where a call made now runs: here (None) when it is alone, else a ready model worker if any."""
        if self.active == 0 or (pool := workers.pool()) is None:
            return None
        worker = pool.pick()
        return None if worker is None else (pool, worker)

    def handles(self, model: str) -> bool:
        """Every name: litellm is the catch-all, registered last."""
        return True

    def check(self, model: str) -> None:
        """Refuse names litellm cannot route to a provider."""
        if not _routes(model):
            raise UnknownModel(f"unknown model {model!r}: name it as provider/model, e.g. openai/gpt-4o")

    def stream(
        self,
        model: str,
        messages: list[Message],
        options: CallOptions,
    ) -> AsyncIterator[str | ModelResult]:
        """Stream through litellm.acompletion; usage arrives with the last chunk."""
        placed = self._worker()
        if placed is None:
            return self.stream_here(model, messages, options)  # not wrapped: a lone turn's deltas
        return self._counted(placed[0].stream(placed[1], model, messages, options))

    async def _counted(self, items: AsyncIterator[str | ModelResult]) -> AsyncIterator[str | ModelResult]:
        self.active += 1
        try:
            async with contextlib.aclosing(items):
                async for item in items:
                    yield item
        finally:
            self.active -= 1

    async def stream_here(
        self, model: str, messages: list[Message], options: CallOptions
    ) -> AsyncIterator[str | ModelResult]:
        """The stream, made in this process."""
        parts: list[str] = []
        usage = Usage()
        finished = False  # the provider gave a finish reason
        response, ended = None, False
        self.active += 1
        try:
            response = await litellm().acompletion(
                model=model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                **_kwargs(options),
            )
            async for chunk in response:
                for choice in chunk.choices or ():
                    text = getattr(choice.delta, "content", None)
                    if text:
                        parts.append(text)
                        yield text
                    finished = finished or getattr(choice, "finish_reason", None) is not None
                if getattr(chunk, "usage", None) is not None:
                    usage = _usage(chunk.usage)
                    if finished:
                        # The answer is whole. All litellm does after the usage is its own success
                        # logging, for litellm callbacks: 2-3 ms of CPU a streamed turn here
                        # (bench/overhead.py), which the turn would wait for. Cerver registers no
                        # litellm callbacks and records the turn itself, so the stream ends here.
                        break
            else:
                ended = True  # read to its end: litellm closed it
        except ModelError:
            raise
        except Exception as exc:
            raise _as_model_error(exc) from exc
        finally:
            self.active -= 1
            if response is not None and not ended:  # also when the caller left: the provider stops
                await _close(response)
        yield _result(model, "".join(parts), usage)

    async def complete(
        self,
        model: str,
        messages: list[Message],
        options: CallOptions,
    ) -> ModelResult:
        """One litellm.acompletion without streaming: a third of the CPU of a streamed call."""
        placed = self._worker()
        self.active += 1
        try:
            if placed is not None:  # the pool queues it for a worker's slot (workers.py)
                return await placed[0].complete(model, messages, options)
            return await self.complete_here(model, messages, options)
        finally:
            self.active -= 1

    async def complete_here(self, model: str, messages: list[Message], options: CallOptions) -> ModelResult:
        try:
            response = await litellm().acompletion(model=model, messages=messages, **_kwargs(options))
        except Exception as exc:
            raise _as_model_error(exc) from exc
        choices = response.choices or ()
        text = (getattr(choices[0].message, "content", None) if choices else None) or ""
        return _result(model, text, _usage(getattr(response, "usage", None)))


async def _close(response: Any) -> None:
    """Close litellm's stream, and with it the provider's connection (its body may be read, or not)."""
    try:
        await response.aclose()
    except Exception:  # nothing is lost: the answer is whole, or its caller has gone
        log.debug("closing a model's stream failed", exc_info=True)


def _kwargs(options: CallOptions) -> dict[str, Any]:
    """litellm's arguments; its own retries are off (Cerver retries, recording each attempt)."""
    kwargs: dict[str, Any] = {"num_retries": 0, "timeout": options.timeout_s}
    if options.temperature is not None:
        kwargs["temperature"] = options.temperature
    if options.max_tokens is not None:
        kwargs["max_tokens"] = options.max_tokens
    return kwargs


def _result(model: str, text: str, usage: Usage) -> ModelResult:
    u = usage
    cost = price(model, u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens)
    return ModelResult(text=text, model=model, usage=usage, cost_usd=cost)
