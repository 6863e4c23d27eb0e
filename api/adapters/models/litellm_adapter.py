"""Every provider litellm knows (OpenAI, Anthropic, xAI, Gemini, OpenAI-compatible servers).

Keys and base URLs come from the environment as litellm reads them (OPENAI_API_KEY,
OPENAI_BASE_URL, ANTHROPIC_API_KEY, ANTHROPIC_API_BASE, GEMINI_API_KEY, …). litellm is
imported on first use, with its price map read from the package, never fetched.
Retries are Cerver's (api/sessions/runner.py), so litellm's own are switched off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from api.adapters.models.base import Message, ModelError, ModelResult, UnknownModel, Usage
from ingest.pricing import litellm, price


def warm() -> None:
    """Import litellm now (it takes seconds), so the first request does not wait for it."""
    litellm()


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

    def handles(self, model: str) -> bool:
        """Every name: litellm is the catch-all, registered last."""
        return True

    def check(self, model: str) -> None:
        """Refuse names litellm cannot route to a provider."""
        try:
            litellm().get_llm_provider(model)
        except Exception as exc:
            raise UnknownModel(
                f"unknown model {model!r}: name it as provider/model, e.g. openai/gpt-4o"
            ) from exc

    async def stream(
        self,
        model: str,
        messages: list[Message],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout_s: float = 60.0,
    ) -> AsyncIterator[str | ModelResult]:
        """Stream through litellm.acompletion; usage arrives with the last chunk."""
        lib = litellm()
        options: dict[str, Any] = {
            "stream_options": {"include_usage": True},
            "num_retries": 0,
            "timeout": timeout_s,
        }
        if temperature is not None:
            options["temperature"] = temperature
        if max_tokens is not None:
            options["max_tokens"] = max_tokens
        parts: list[str] = []
        usage = Usage()
        try:
            response = await lib.acompletion(model=model, messages=messages, stream=True, **options)
            async for chunk in response:
                if getattr(chunk, "usage", None) is not None:
                    usage = _usage(chunk.usage)
                for choice in chunk.choices or ():
                    text = getattr(choice.delta, "content", None)
                    if text:
                        parts.append(text)
                        yield text
        except ModelError:
            raise
        except Exception as exc:
            raise _as_model_error(exc) from exc
        cost = price(
            model, usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens
        )
        yield ModelResult(text="".join(parts), model=model, usage=usage, cost_usd=cost)
