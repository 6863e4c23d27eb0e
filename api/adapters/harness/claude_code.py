"""`claude-code`: Anthropic's Claude Code CLI (`claude`, npm `@anthropic-ai/claude-code`), one process a turn.

    claude -p <prompt> --output-format stream-json --verbose --include-partial-messages
           --model <model> --allowedTools <tools> (--session-id <new uuid> | --resume <session id>)

The first turn starts a Claude Code session with an id Cerver picks; later turns resume it
(its files are in this session's CLI home on the compute's machine, `$HOME/.claude/projects/…`).
The key and base URL are the server's ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL (or
ANTHROPIC_API_BASE, as litellm spells it), passed in the process's environment only (and
CLAUDE_CODE_MAX_RETRIES when the server sets it). Tools run without asking: the ones in
CERVER_CLAUDE_TOOLS (default below); the workspace is the agent's sandbox.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from api.adapters.harness.base import Capabilities, TurnRequest
from api.adapters.harness.claude_stream import ClaudeStream
from api.adapters.harness.cli import CliHarness, keep, server_env

DEFAULT_TOOLS = "Bash,Read,Write,Edit,Glob,Grep,NotebookEdit,TodoWrite,Task,Agent"


class ClaudeCodeHarness(CliHarness):
    """Claude Code in the session's workspace; see the module docstring."""

    name = "claude-code"
    capabilities = Capabilities(
        in_workspace=True,
        resumes=True,
        retries=False,
        reports_cost=True,
        providers=("anthropic",),
        package="@anthropic-ai/claude-code",
        binary="claude",
        binary_env="CERVER_CLAUDE_BIN",
    )
    session_files = ".claude/projects/*/{ref}.jsonl"

    def argv(self, binary: str, request: TurnRequest) -> list[str]:
        """`claude -p` with streamed JSON, resuming the session's Claude Code session when it has one."""
        resume = (request.resume or {}).get("session_id")
        session = ["--resume", str(resume)] if resume else ["--session-id", str(uuid.uuid4())]
        tools = os.environ.get("CERVER_CLAUDE_TOOLS") or DEFAULT_TOOLS
        return [
            binary,
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--include-partial-messages",
            "--model",
            self.model_arg(request),
            "--allowedTools",
            tools,
            *session,
            "--",
            request.prompt,
        ]

    def env(self, home: str | Path) -> dict[str, str]:
        """The Anthropic key and base URL from the server's environment; no telemetry, updates or reports."""
        return keep(
            {
                "ANTHROPIC_API_KEY": server_env("ANTHROPIC_API_KEY"),
                "ANTHROPIC_BASE_URL": server_env("ANTHROPIC_BASE_URL", "ANTHROPIC_API_BASE"),
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "DISABLE_TELEMETRY": "1",
                "DISABLE_AUTOUPDATER": "1",
                "DISABLE_ERROR_REPORTING": "1",
                "DISABLE_BUG_COMMAND": "1",
                "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
                "CLAUDE_CODE_MAX_RETRIES": server_env("CLAUDE_CODE_MAX_RETRIES"),
            }
        )

    def parser(self, request: TurnRequest) -> ClaudeStream:
        """A parser that knows the last turn's running cost total."""
        return ClaudeStream(request.model, request.resume)
