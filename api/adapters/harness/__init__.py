"""Harnesses: what writes a session's turns. `harness_for(name)` finds one; see base.py."""

from __future__ import annotations

from api.adapters.harness.base import (
    NAMES,
    Capabilities,
    Harness,
    HarnessError,
    HarnessUnavailable,
    ToolCall,
    ToolResult,
    TurnRequest,
    TurnResult,
    UnknownHarness,
    harness_for,
)

__all__ = [
    "NAMES",
    "Capabilities",
    "Harness",
    "HarnessError",
    "HarnessUnavailable",
    "ToolCall",
    "ToolResult",
    "TurnRequest",
    "TurnResult",
    "UnknownHarness",
    "harness_for",
]
