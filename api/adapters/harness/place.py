"""Where a CLI turn runs: the machine of the session's compute, with the CLI's executable and home there.

- `local` compute is the server's machine: the CLI is found on the server (`$CERVER_CLAUDE_BIN` /
  `$CERVER_CODEX_BIN`, else PATH) and its home is `<harness homes>/<tenant>/<session>/<harness>`.
- `relay` compute is the relay's machine: one `cli_home` request asks the relay to find the CLI
  there (its `--claude-bin` / `--codex-bin`, its `CERVER_*_BIN`, else its PATH), make the
  session's home beside its workspaces, write the harness's files (Codex's config.toml) into it
  and say whether the CLI session to resume has its files there.
- Other compute (e2b) cannot run a CLI turn yet: HarnessUnavailable, saying why.

Either way the answer is a `CliPlace`: the executable, the home, the machine's part of the
environment, and whether a resume can find its session.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.adapters.harness.base import HarnessUnavailable
from api.adapters.harness.machine import machine_env, prepare_home

if TYPE_CHECKING:
    from api.adapters.harness.cli import CliHarness


@dataclass(frozen=True)
class CliPlace:
    """A CLI's place on the machine a turn runs on (paths as that machine sees them)."""

    binary: str
    home: str
    env: dict[str, str] = field(default_factory=dict)  # HOME, XDG, TMPDIR, PATH, proxies of that machine
    resumable: bool = False  # the home holds the files of the CLI session asked about


async def place_cli(
    harness: CliHarness,
    workspace: Any,
    *,
    provider: str,
    local_home: Path | None,
    model: str,
    resume_ref: str | None = None,
) -> CliPlace:
    """Find the CLI and prepare its home where `workspace` runs commands; HarnessUnavailable if it cannot."""
    from api.adapters.compute.local import LocalWorkspace  # the compute adapters stay out of `cerver --help`

    files = harness.home_files(model)
    pattern = harness.session_glob(resume_ref) if resume_ref else None
    if hasattr(workspace, "cli_home"):  # a relay: its machine finds the CLI and keeps the home
        answer = await workspace.cli_home(harness.name, harness.capabilities.binary, files, pattern)
        return _remote(harness, answer, getattr(workspace, "name", provider))
    if isinstance(workspace, LocalWorkspace) and local_home is not None:
        binary = harness.locate()
        resumable = await asyncio.to_thread(prepare_home, local_home, files, pattern)
        return CliPlace(binary, str(local_home), machine_env(binary, str(local_home)), resumable)
    caps = harness.capabilities
    raise HarnessUnavailable(
        f"the {harness.name} harness runs its CLI on local or relay compute, not on {provider}: "
        f"{provider} would need the {caps.binary} CLI ({caps.package}) installed in its sandbox, which "
        "Cerver does not set up; move the session to local or relay compute (POST /v2/sessions/{id}/compute)"
    )


def _remote(harness: CliHarness, answer: dict[str, Any], relay: str) -> CliPlace:
    caps = harness.capabilities
    if not answer.get("binary"):
        why = answer.get("missing") or f"`{caps.binary}` was not found"
        raise HarnessUnavailable(
            f"the {harness.name} harness needs the {caps.binary} CLI on relay {relay!r} ({why}): install it "
            f"there with `npm i -g {caps.package}`, or start the relay with --{caps.binary}-bin PATH "
            f"(or {caps.binary_env}=PATH)"
        )
    return CliPlace(
        str(answer["binary"]),
        str(answer["home"]),
        {str(k): str(v) for k, v in (answer.get("env") or {}).items()},
        bool(answer.get("resumable")),
    )
