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
    "check_provider",
    "compute_for",
]


def check_provider(provider: str) -> None:
    """UnknownProvider (422) unless `provider` is registered; nothing is imported."""
    if provider not in PROVIDERS:
        raise UnknownProvider(
            f"unknown compute provider {provider!r}; available: {', '.join(sorted(PROVIDERS))}"
        )


def compute_for(provider: str, config: ComputeConfig) -> Compute:
    """The adapter serving `provider`, built with the server's config; UnknownProvider (422) if none does."""
    check_provider(provider)
    module, _, cls = PROVIDERS[provider].partition(":")
    return getattr(importlib.import_module(module), cls)(config)
