"""`codex`: OpenAI's Codex CLI (`codex`, npm `@openai/codex`), one `codex exec` process a turn.

    codex exec --json --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox -m <model> -- <prompt>
    codex exec resume --json … -m <model> -- <thread id> <prompt>        (later turns)

Codex ignores OPENAI_BASE_URL, so each run writes `$CODEX_HOME/config.toml` (CODEX_HOME is in
this session's CLI home on the compute's machine, never in the workspace) with a
`model_providers.cerver` entry:
`base_url` from the server's OPENAI_BASE_URL (or OPENAI_API_BASE; else OpenAI's), `env_key =
"OPENAI_API_KEY"` (whose value reaches the process through its environment only, never a
file) and `wire_api = "responses"`; analytics, feedback, update checks and plugin sync off.
Commands run without approval or Codex's own sandbox: the workspace is the agent's sandbox.
"""

from __future__ import annotations

import json
from pathlib import Path

from api.adapters.harness.base import Capabilities, TurnRequest, bare_model
from api.adapters.harness.cli import CliHarness, keep, server_env
from api.adapters.harness.codex_stream import CodexStream

PROVIDER = "cerver"
KEY_VARIABLE = "OPENAI_API_KEY"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
FLAGS = ("--json", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox")


def config_toml(model: str, base_url: str) -> str:
    """Codex's config for one run: the provider entry and everything that would phone home off."""
    return f"""\
model = {json.dumps(model)}
model_provider = "{PROVIDER}"
check_for_update_on_startup = false

[analytics]
enabled = false

[feedback]
enabled = false

[features]
plugins = false
apps = false

[model_providers.{PROVIDER}]
name = "Cerver"
base_url = {json.dumps(base_url)}
env_key = "{KEY_VARIABLE}"
wire_api = "responses"
"""


class CodexHarness(CliHarness):
    """Codex in the session's workspace; see the module docstring."""

    name = "codex"
    capabilities = Capabilities(
        in_workspace=True,
        resumes=True,
        retries=False,
        reports_cost=False,
        providers=("openai",),
        package="@openai/codex",
        binary="codex",
        binary_env="CERVER_CODEX_BIN",
    )
    session_files = ".codex/sessions/*/*/*/rollout-*-{ref}.jsonl"

    def home_files(self, model: str) -> dict[str, str]:
        """This run's `config.toml` in the session's CODEX_HOME (the provider entry; no key)."""
        base_url = server_env("OPENAI_BASE_URL", "OPENAI_API_BASE") or DEFAULT_BASE_URL
        return {".codex/config.toml": config_toml(bare_model(model), base_url)}

    def argv(self, binary: str, request: TurnRequest) -> list[str]:
        """`codex exec`, or `codex exec resume <thread>` when the session has a Codex thread."""
        thread = (request.resume or {}).get("session_id")
        head = [binary, "exec", "resume"] if thread else [binary, "exec"]
        model = ["-m", self.model_arg(request)]
        return [*head, *FLAGS, *model, "--", *([str(thread)] if thread else []), request.prompt]

    def env(self, home: str | Path) -> dict[str, str]:
        """CODEX_HOME in the session's CLI home; the OpenAI key from the server's environment."""
        return keep({"CODEX_HOME": f"{home}/.codex", KEY_VARIABLE: server_env(KEY_VARIABLE)})

    def parser(self, request: TurnRequest) -> CodexStream:
        """A parser that knows the thread's usage total after the last turn."""
        return CodexStream(request.model, request.resume)
