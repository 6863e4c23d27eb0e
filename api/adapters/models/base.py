"""The model adapter protocol: a reply to a transcript, streamed or whole, with usage and cost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

Message = dict[str, Any]  # OpenAI chat format: {"role", "content", ...}; adapters translate


@dataclass
class Usage:
    """Tokens as the provider reported them (None where it reported nothing)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None


@dataclass
class ModelResult:
    """The end of a reply: the whole text, usage and cost (None when the model has no price)."""

    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None


@dataclass(frozen=True)
class CallOptions:
    """How to call a model: sampling, length and how long to wait (None: the provider's default)."""

    temperature: float | None = None
    max_tokens: int | None = None
    timeout_s: float = 60.0


class UnknownModel(ValueError):
    """No adapter can serve this model name."""


class ModelError(Exception):
    """A provider call failed; `retryable` for rate limits, 5xx, timeouts and lost connections."""

    def __init__(
        self, message: str, *, status: int | None = None, retryable: bool = False, timeout: bool = False
    ):
        super().__init__(message)
        self.status, self.retryable, self.timeout = status, retryable, timeout
        self.retry_after: float | None = None


class ModelAdapter(Protocol):
    """One family of models. Declares what it supports as data; heavy SDKs load on first use."""

    name: str
    needs_key: bool

    def handles(self, model: str) -> bool:
        """Whether this adapter serves `model` (by its name alone, without calling out)."""
        ...

    def check(self, model: str) -> None:
        """Raise UnknownModel if `model` cannot be served; called before anything is written."""
        ...

    def stream(
        self,
        model: str,
        messages: list[Message],
        options: CallOptions,
    ) -> AsyncIterator[str | ModelResult]:
        """Yield text deltas, then exactly one ModelResult. Raises ModelError."""
        ...

    async def complete(
        self,
        model: str,
        messages: list[Message],
        options: CallOptions,
    ) -> ModelResult:
        """The whole reply at once, for callers that wait for all of it. Raises ModelError."""
        ...
