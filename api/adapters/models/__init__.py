"""Model adapters: `adapter_for(model)` finds the one that serves a model name."""

from __future__ import annotations

from api.adapters.models.base import (
    CallOptions,
    ModelAdapter,
    ModelError,
    ModelResult,
    UnknownModel,
    Usage,
)
from api.adapters.models.litellm_adapter import LiteLLMAdapter
from api.adapters.models.offline import OfflineAdapter

REGISTRY: list[ModelAdapter] = [OfflineAdapter(), LiteLLMAdapter()]

__all__ = [
    "REGISTRY",
    "CallOptions",
    "ModelAdapter",
    "ModelError",
    "ModelResult",
    "UnknownModel",
    "Usage",
    "adapter_for",
]


def adapter_for(model: str) -> ModelAdapter:
    """The first registered adapter that serves `model`; raises UnknownModel."""
    for adapter in REGISTRY:
        if adapter.handles(model):
            adapter.check(model)
            return adapter
    raise UnknownModel(f"no adapter serves the model {model!r}")
