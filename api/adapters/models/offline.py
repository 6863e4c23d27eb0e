"""`offline/echo`: a model that needs no key and no network, for demos and the quickstart.

It answers "echo: <the last user message>", a word at a time. Tokens are counted as
whitespace-separated words; it costs nothing. Never the default when a provider key
is configured (see api/settings.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from api.adapters.models.base import CallOptions, Message, ModelResult, UnknownModel, Usage

MODELS = ("offline/echo",)


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # structured parts: keep the text ones
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class OfflineAdapter:
    """Serves `offline/*` models locally."""

    name = "offline"
    needs_key = False

    def handles(self, model: str) -> bool:
        """`offline/…` names."""
        return model.startswith("offline/")

    def check(self, model: str) -> None:
        """Only the models listed in MODELS exist."""
        if model not in MODELS:
            raise UnknownModel(f"unknown offline model {model!r}; offline models: {', '.join(MODELS)}")

    async def stream(
        self,
        model: str,
        messages: list[Message],
        options: CallOptions,
    ) -> AsyncIterator[str | ModelResult]:
        """Echo the last user message back, word by word."""
        last = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
        words = ["echo:", *last.split()]
        if options.max_tokens is not None:
            words = words[: options.max_tokens]
        for i, word in enumerate(words):
            yield word if i == 0 else " " + word
            await asyncio.sleep(0)
        prompt = sum(len(_text(m.get("content")).split()) for m in messages)
        usage = Usage(input_tokens=prompt, output_tokens=len(words))
        yield ModelResult(text=" ".join(words), model=model, usage=usage, cost_usd=0.0)

    async def complete(
        self,
        model: str,
        messages: list[Message],
        options: CallOptions,
    ) -> ModelResult:
        """The same echo, whole."""
        async for item in self.stream(model, messages, options):
            if isinstance(item, ModelResult):
                return item
        raise AssertionError("the echo always ends with a result")
