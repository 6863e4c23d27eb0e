"""Compute adapters: the registry. A provider is one module with one class; its SDK loads when first used."""

from __future__ import annotations

import importlib

from api.adapters.compute.base import (
    Capabilities,
    Compute,
    ComputeConfig,
    ComputeError,
    ComputeUnavailable,
    ExecResult,
    PathEscapes,
    UnknownProvider,
    Workspace,
)

# name -> "module:Class"; imported only when the provider is used, so `cerver --help` stays fast.
PROVIDERS: dict[str, str] = {
    "local": "api.adapters.compute.local:LocalCompute",
    "relay": "api.adapters.compute.relay:RelayCompute",
    "e2b": "api.adapters.compute.e2b:E2BCompute",
}

__all__ = [
    "PROVIDERS",
    "Capabilities",
    "Compute",
    "ComputeConfig",
    "ComputeError",
    "ComputeUnavailable",
    "ExecResult",
    "PathEscapes",
    "UnknownProvider",
    "Workspace",
    "compute_for",
]


def compute_for(provider: str, config: ComputeConfig) -> Compute:
    """The adapter serving `provider`, built with the server's config; UnknownProvider (422) if none does."""
    target = PROVIDERS.get(provider)
    if target is None:
        raise UnknownProvider(
            f"unknown compute provider {provider!r}; available: {', '.join(sorted(PROVIDERS))}"
        )
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)(config)
