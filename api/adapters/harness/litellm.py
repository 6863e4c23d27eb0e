"""`litellm`: the bare model as a harness. It is the model adapters (api/adapters/models), unchanged.

The whole transcript goes to the model each turn; nothing runs in the workspace, so a failed
call may be retried and fall back to other models (the runner does both).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable

from api.adapters.harness.base import Capabilities, TurnItem, TurnRequest
from api.adapters.models import CallOptions, ModelAdapter, ModelResult, adapter_for
from api.adapters.models.base import Message


class LiteLLMHarness:
    """Every model the model adapters serve (litellm's providers, and the offline echo)."""

    name = "litellm"
    capabilities = Capabilities(
        in_workspace=False, resumes=False, retries=True, reports_cost=False, providers=None
    )

    def check(self, model: str | None, *, here: bool = True) -> None:
        """Raise UnknownModel when no model adapter serves `model`."""
        if model is not None:
            adapter_for(model)

    def turn(self, request: TurnRequest) -> AsyncIterator[TurnItem]:
        """The model's reply to the transcript (see `reply`)."""
        model = request.model
        return self.reply(adapter_for(model), model, request.messages, request.options, request.streaming)

    def reply(
        self,
        adapter: ModelAdapter,
        model: str,
        messages: list[Message],
        options: CallOptions,
        streaming: bool,
    ) -> AsyncIterator[TurnItem]:
        """Text deltas then the result for a streaming caller; only the result for a JSON one.

        A JSON caller waits for the whole answer anyway, so the model is asked for it whole:
        a provider's non-streamed answer costs a third of the CPU of a streamed one through
        litellm, which is most of what a turn costs here. Such a run has no time to first token.
        A stream is the adapter's own, not wrapped in one more generator per delta.
        """
        if streaming:
            return adapter.stream(model, messages, options)
        return _whole(adapter.complete(model, messages, options))


async def _whole(answer: Awaitable[ModelResult]) -> AsyncIterator[TurnItem]:
    yield await answer
