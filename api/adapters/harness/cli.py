"""What the agent CLI harnesses share: finding the executable, the run's environment, driving the process.

A CLI turn is one process in the session's compute workspace (`Workspace.exec_lines`): its
stdout lines go to the harness's stream parser as they come; its stderr is kept for errors.
The process gets the workspace's scrubbed environment plus only what the CLI needs: a HOME
of its own (this session's CLI home, outside the workspace, so its settings, credentials and
session files never mix with another session's or land in the workspace), the provider key
and base URL from the server's environment, the server's proxy settings, and switches that
turn off telemetry and update checks. A non-zero exit, a malformed line or a missing result
is a HarnessError with the stderr's tail; a timeout kills the process group (the compute
layer does that) and is a HarnessError with status `timeout`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from api.adapters.harness.base import (
    Capabilities,
    HarnessError,
    HarnessUnavailable,
    TurnItem,
    TurnRequest,
    TurnResult,
    bare_model,
    provider_of,
)
from api.adapters.models.base import UnknownModel

STDERR_TAIL = 4000  # characters of stderr kept with a failed run
PASSED_THROUGH = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")  # and their lower-case spellings


class StreamParser(Protocol):
    """Turns one CLI process's stdout lines into turn items."""

    def feed(self, line: str) -> list[TurnItem]:
        """Items from one line; HarnessError when the line is malformed or reports a failed turn."""
        ...

    def finish(self) -> TurnResult:
        """The result once stdout ended; HarnessError when the CLI never gave one."""
        ...


def tail(text: str, limit: int = STDERR_TAIL) -> str:
    """The end of a long text, as kept with an error."""
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


class CliHarness:
    """A harness that runs an agent CLI; subclasses give its argv, environment and parser."""

    name: str
    capabilities: Capabilities
    session_files: str  # glob under the CLI home of a CLI session's files, `{ref}` its id

    def can_resume(self, home: Path, ref: str | None) -> bool:
        """Whether this home still holds the files of CLI session `ref` (a resume needs them)."""
        return bool(ref) and any(home.glob(self.session_files.format(ref=glob.escape(str(ref)))))

    def locate(self) -> str:
        """The executable: `$<binary_env>` if set, else the first on PATH; HarnessUnavailable if none."""
        caps = self.capabilities
        assert caps.binary is not None and caps.binary_env is not None
        explicit = os.environ.get(caps.binary_env)
        if explicit:
            if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
                return os.path.abspath(explicit)
            where = f"{caps.binary_env}={explicit} is not an executable file"
        else:
            found = shutil.which(caps.binary)
            if found is not None:
                return found
            where = f"`{caps.binary}` is not on PATH"
        raise HarnessUnavailable(
            f"the {self.name} harness needs the {caps.binary} CLI ({where}): install it with "
            f"`npm i -g {caps.package}`, or set {caps.binary_env} to its executable"
        )

    def check(self, model: str | None) -> None:
        """HarnessUnavailable when the CLI is missing; UnknownModel when it cannot drive `model`."""
        self.locate()
        providers = self.capabilities.providers
        provider = provider_of(model) if model else None
        if providers is not None and provider is not None and provider not in providers:
            raise UnknownModel(f"the {self.name} harness drives {', '.join(providers)} models, not {model!r}")

    async def turn(self, request: TurnRequest) -> AsyncIterator[TurnItem]:
        """Run the CLI once in the workspace; yield what its stdout says as it says it."""
        if request.workspace is None or request.home is None:
            raise HarnessError(f"the {self.name} harness runs in a workspace, and none was given")
        binary = self.locate()
        home = request.home
        for folder in (home, home / "tmp"):
            folder.mkdir(parents=True, exist_ok=True)
        self.prepare(home, request)
        argv = self.argv(binary, request)
        env = {**self.base_env(binary, home), **self.env(home)}
        parser = self.parser(request)
        failure: HarnessError | None = None
        result = None
        lines = request.workspace.exec_lines(argv, request.options.timeout_s, env)
        async with contextlib.aclosing(lines):  # the caller leaving kills the process at once
            async for item in lines:
                if not isinstance(item, str):
                    result = item
                    continue
                if failure is not None:
                    continue  # drain to the end, so stderr is complete
                try:
                    items = parser.feed(item)
                except HarnessError as exc:
                    failure = exc
                    continue
                for out in items:
                    yield out
        stderr = tail(getattr(result, "stderr", "") or "")
        if result is not None and result.timed_out:
            raise HarnessError(
                f"{self.capabilities.binary} ran past the run timeout of {request.options.timeout_s:g}s "
                "and was killed",
                status="timeout",
                stderr=stderr,
            )
        if failure is not None:
            failure.stderr = stderr
            raise failure
        if result is None or result.exit_code != 0:
            code = getattr(result, "exit_code", None)
            raise HarnessError(f"{self.capabilities.binary} exited with status {code}", stderr=stderr)
        try:
            parser.finish()
        except HarnessError as exc:
            exc.stderr = stderr
            raise

    def base_env(self, binary: str, home: Path) -> dict[str, str]:
        """HOME and XDG folders in this session's CLI home; the executable's folder first on PATH; proxies."""
        path = [str(Path(binary).parent)]
        node = shutil.which("node")  # the npm CLIs are Node scripts (`#!/usr/bin/env node`)
        if node:
            path.append(str(Path(node).parent))
        path += (os.environ.get("PATH") or "/usr/local/bin:/usr/bin:/bin").split(os.pathsep)
        env = {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_STATE_HOME": str(home / ".local" / "state"),
            "TMPDIR": str(home / "tmp"),
            "PATH": os.pathsep.join(dict.fromkeys(p for p in path if p)),
            "TERM": "dumb",
            "NO_COLOR": "1",
        }
        for name in PASSED_THROUGH:
            for spelling in (name, name.lower()):
                if os.environ.get(spelling):
                    env[spelling] = os.environ[spelling]
        return env

    def model_arg(self, request: TurnRequest) -> str:
        """The session's model as the CLI names it (no provider prefix)."""
        return bare_model(request.model)

    def prepare(self, home: Path, request: TurnRequest) -> None:
        """Write what the CLI reads from its home before it starts (nothing by default)."""

    def argv(self, binary: str, request: TurnRequest) -> list[str]:
        """The command line of this turn."""
        raise NotImplementedError

    def env(self, home: Path) -> dict[str, str]:
        """The CLI's own variables: provider key and base URL, telemetry off."""
        raise NotImplementedError

    def parser(self, request: TurnRequest) -> StreamParser:
        """A fresh parser for this turn's stdout."""
        raise NotImplementedError


def server_env(*names: str) -> str | None:
    """The first of these variables the server has set (how the CLI's keys and URLs are found)."""
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def keep(values: dict[str, Any]) -> dict[str, str]:
    """The entries that have a value."""
    return {k: str(v) for k, v in values.items() if v is not None}
