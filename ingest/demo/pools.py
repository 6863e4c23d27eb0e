"""Every fixed string an event column can hold, as Arrow arrays indexed by small integers.

An event carries an index into its column's pool; the table is built with one `take` per
column, so no string is made per event in Python.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow as pa

from ingest.demo import texts
from ingest.demo.catalog import COMMANDS, COMPUTES, HARNESSES

TYPES = (
    "session.created",
    "session.updated",
    "session.closed",
    "message",
    "run.started",
    "run.completed",
    "run.failed",
    "tool.call",
    "tool.result",
    "compute.attached",
    "compute.exec",
    "session.spawned",
    "session.selected",
)
ROLES = ("user", "assistant")
STATUSES = ("ok", "error", "timeout", "budget_exceeded")
OK, ERROR, TIMEOUT, BUDGET = range(4)


def type_code(name: str) -> int:
    """The index of an event type in TYPES."""
    return TYPES.index(name)


@dataclass
class Pool:
    """Strings appended in named sections; `at(section)` is where a section starts."""

    strings: list[str] = field(default_factory=list)
    starts: dict[str, int] = field(default_factory=dict)

    def add(self, section: str, strings: tuple[str, ...] | list[str]) -> None:
        self.starts[section] = len(self.strings)
        self.strings.extend(strings)

    def at(self, section: str) -> int:
        return self.starts[section]

    def array(self) -> pa.StringArray:
        return pa.array(self.strings, type=pa.string())


def _content() -> Pool:
    pool = Pool()
    pool.add("chat_prompts", texts.CHAT_PROMPTS)
    pool.add("code_prompts", texts.CODE_PROMPTS)
    pool.add("chat_answers", texts.CHAT_ANSWERS)
    pool.add("code_answers", texts.CODE_ANSWERS)
    pool.add("tool_calls", texts.TOOL_CALLS)
    pool.add("tool_outputs", texts.TOOL_OUTPUTS)
    pool.add("shell_outputs", texts.SHELL_OUTPUTS)
    pool.add("shell_failed_outputs", texts.SHELL_FAILED_OUTPUTS)
    return pool


def _errors() -> Pool:
    pool = Pool()
    for status, messages in texts.RUN_ERRORS.items():
        pool.add(f"run:{status}", messages)
    for status, messages in texts.AGENT_ERRORS.items():
        pool.add(f"agent:{status}", messages)
    return pool


def _attrs() -> Pool:
    """Fixed attrs: session metadata, model switches, compute attach and move, exec commands."""
    pool = Pool()
    pool.add("metadata", texts.METADATA)
    pool.add("switch", [_json({"changed": ["model"]})])
    pool.add("attach", [_json({"provider": c}) for c in COMPUTES])
    pool.add("move", [_json({"provider": to, "from": src}) for src in COMPUTES for to in COMPUTES])
    pool.add(
        "exec",
        [_json({"command": c[0], "exit_code": code}) for c in COMMANDS for code in range(EXIT_CODES)],
    )
    return pool


EXIT_CODES = 138  # exit codes 0..137 each have their exec attrs entry


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


CONTENT = _content()
ERRORS = _errors()
ATTRS = _attrs()
NAMES = {
    "type": TYPES,
    "role": ROLES,
    "status": STATUSES,
    "harness": HARNESSES,
    "compute": COMPUTES,
}
