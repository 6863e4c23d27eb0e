"""Run the real `claude` (Claude Code) and `codex` (OpenAI Codex) CLIs offline, against the fake provider.

The CLIs are pinned in `tests/clis/package.json` (install them with `cd tests/clis && npm ci`). Each run gets
an environment built from scratch: a temporary HOME (and XDG folders, CODEX_HOME), dummy API keys, the model
base URL on the fake, and every proxy variable pointing at the fake too, so that anything the CLI tries to
send to another host is refused and shows in `fake.foreign_requests` (see `tests/fake_provider.py`). No
variable of the parent process (its keys, tokens, user name) reaches the CLI.

    with FakeProvider() as fake:
        fake.script([...])
        run = run_claude(fake, tmp_path / "home", ["list the files"], cwd=tmp_path / "work")
        run.transcript          # $HOME/.claude/projects/<escaped cwd>/<session id>.jsonl
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.fake_provider import FakeProvider

CLIS_DIR = Path(__file__).parent / "clis"
INSTALL_HINT = "cd tests/clis && npm ci"
CLAUDE_MODEL = "claude-sonnet-4-6"
CODEX_MODEL = "gpt-5.5"
# What Claude Code may run without asking: the tools the fixture conversations use.
CLAUDE_TOOLS = "Bash,Read,Write,Agent"
CODEX_PROVIDER = "fake"
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


class AgentCliError(RuntimeError):
    """A CLI run failed (exit status, timeout, or no transcript); the message carries its output."""


@dataclass(frozen=True)
class AgentRun:
    """What one conversation left behind: its session id, transcript file(s) and the CLI's final answers."""

    cli: str
    version: str
    session_id: str
    transcript: Path
    subagent_transcripts: tuple[Path, ...]
    outputs: tuple[str, ...]
    commands: tuple[tuple[str, ...], ...]


def cli_path(name: str) -> Path:
    """The pinned CLI's executable, or a FileNotFoundError saying how to install it."""
    path = CLIS_DIR / "node_modules" / ".bin" / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: install the pinned agent CLIs with `{INSTALL_HINT}`")
    return path


def cli_version(name: str) -> str:
    """The pinned CLI's version, from its npm package (no process started)."""
    package = {"claude": "@anthropic-ai/claude-code", "codex": "@openai/codex"}[name]
    manifest = CLIS_DIR / "node_modules" / package / "package.json"
    return str(json.loads(manifest.read_text())["version"])


def offline_env(fake: FakeProvider, home: Path) -> dict[str, str]:
    """A from-scratch environment: temp HOME and XDG dirs, UTC, no colour, every proxy on the fake."""
    node = shutil.which("node")
    path_dirs = [str(Path(node).parent)] if node else []
    path_dirs += ["/usr/local/bin", "/usr/bin", "/bin"]
    env = {
        "PATH": ":".join(dict.fromkeys(path_dirs)),
        "HOME": str(home),
        "USER": "tester",
        "LOGNAME": "tester",
        "SHELL": "/bin/bash",
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "TMPDIR": str(home / "tmp"),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    env.update(dict.fromkeys(_PROXY_VARS, fake.base_url))
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return env


def claude_env(fake: FakeProvider, home: Path) -> dict[str, str]:
    """`offline_env` plus Claude Code's: the fake as the Anthropic API, no telemetry, updates or reports."""
    return {
        **offline_env(fake, home),
        "ANTHROPIC_BASE_URL": fake.base_url,
        "ANTHROPIC_API_KEY": "sk-ant-fake-key",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_BUG_COMMAND": "1",
        "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }


def codex_env(fake: FakeProvider, home: Path) -> dict[str, str]:
    """`offline_env` plus CODEX_HOME (under `home`) and the fake provider's dummy key."""
    return {
        **offline_env(fake, home),
        "CODEX_HOME": str(home / ".codex"),
        "FAKE_PROVIDER_API_KEY": "sk-fake-key",
    }


def codex_config(fake: FakeProvider, model: str) -> str:
    """`config.toml` for CODEX_HOME: the fake as a Responses API provider, no analytics, no update checks."""
    return f"""\
model = "{model}"
model_provider = "{CODEX_PROVIDER}"
check_for_update_on_startup = false

[analytics]
enabled = false

[feedback]
enabled = false

[features]
plugins = false
apps = false

[model_providers.{CODEX_PROVIDER}]
name = "Fake provider"
base_url = "{fake.base_url}/v1"
wire_api = "responses"
env_key = "FAKE_PROVIDER_API_KEY"
request_max_retries = 0
stream_max_retries = 0
stream_idle_timeout_ms = 20000
"""


def _run(command: list[str], env: dict[str, str], cwd: Path, timeout: float) -> str:
    """Run one CLI command; its stdout, or an AgentCliError with both streams."""
    try:
        done = subprocess.run(
            command,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise AgentCliError(
            f"{command[0]} timed out after {timeout:g}s\nstdout:\n{exc.stdout}\nstderr:\n{exc.stderr}"
        ) from None
    if done.returncode != 0:
        raise AgentCliError(
            f"{Path(command[0]).name} exited {done.returncode}: {command[1:]}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done.stdout


def run_claude(
    fake: FakeProvider,
    home: Path,
    prompts: Sequence[str],
    cwd: Path,
    *,
    model: str = CLAUDE_MODEL,
    session_id: str | None = None,
    timeout: float = 60,
) -> AgentRun:
    """One Claude Code conversation: `claude -p` for the first prompt, `--resume <id>` for each next one."""
    claude = cli_path("claude")
    home.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    env = claude_env(fake, home)
    session_id = session_id or str(uuid.uuid4())
    common = ["--model", model, "--output-format", "json", "--allowedTools", CLAUDE_TOOLS]
    outputs, commands = [], []
    for n, prompt in enumerate(prompts):
        session = ["--session-id", session_id] if n == 0 else ["--resume", session_id]
        command = [str(claude), "-p", prompt, *session, *common]
        result = json.loads(_run(command, env, cwd, timeout))
        if result.get("is_error") or result.get("session_id") != session_id:
            raise AgentCliError(f"claude turn {n + 1} failed: {json.dumps(result)[:2000]}")
        outputs.append(str(result.get("result", "")))
        commands.append(tuple(["claude", *command[1:]]))
    projects = home / ".claude" / "projects"
    found = sorted(projects.glob(f"*/{session_id}.jsonl"))
    if not found:
        raise AgentCliError(f"claude wrote no transcript for session {session_id} under {projects}")
    subagents = tuple(sorted(found[0].parent.glob(f"{session_id}/**/*.jsonl")))
    return AgentRun(
        "claude", cli_version("claude"), session_id, found[0], subagents, tuple(outputs), tuple(commands)
    )


def run_codex(
    fake: FakeProvider,
    home: Path,
    prompts: Sequence[str],
    cwd: Path,
    *,
    model: str = CODEX_MODEL,
    timeout: float = 60,
) -> AgentRun:
    """One Codex conversation: `codex exec` for the first prompt, `codex exec resume <id>` for the next."""
    codex = cli_path("codex")
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(codex_config(fake, model))
    env = codex_env(fake, home)
    flags = ["--json", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox"]
    session_id = ""
    outputs, commands = [], []
    for n, prompt in enumerate(prompts):
        head = [str(codex), "exec", *flags] if n == 0 else [str(codex), "exec", "resume", *flags, session_id]
        command = [*head, prompt]
        events = [
            json.loads(line) for line in _run(command, env, cwd, timeout).splitlines() if line.startswith("{")
        ]
        started = [e["thread_id"] for e in events if e.get("type") == "thread.started"]
        session_id = started[0] if started else session_id
        failures = [e for e in events if e.get("type") in ("turn.failed", "error")]
        if failures or not session_id:
            raise AgentCliError(f"codex turn {n + 1} failed: {json.dumps(failures or events)[:2000]}")
        messages = [
            e["item"].get("text", "")
            for e in events
            if e.get("type") == "item.completed" and e.get("item", {}).get("type") == "agent_message"
        ]
        outputs.append(messages[-1] if messages else "")
        commands.append(tuple(["codex", *command[1:]]))
    found = sorted((codex_home / "sessions").glob(f"*/*/*/rollout-*-{session_id}.jsonl"))
    if not found:
        raise AgentCliError(
            f"codex wrote no rollout for session {session_id} under {codex_home / 'sessions'}"
        )
    return AgentRun("codex", cli_version("codex"), session_id, found[0], (), tuple(outputs), tuple(commands))
