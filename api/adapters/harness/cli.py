"""What the agent CLI harnesses share: finding the executable, the run's environment, driving the process.

A CLI turn is one process in the session's compute workspace (`Workspace.exec_lines`), on
that compute's machine: the server for `local`, the relay's machine for `relay` (see
place.py). Its stdout lines go to the harness's stream parser as they come; its stderr is kept
for errors. The process gets the workspace's scrubbed environment plus only what the CLI needs:
a HOME of its own (this session's CLI home on that machine, outside the workspace, so its
settings, credentials and session files never mix with another session's or land in the
workspace), that machine's PATH to the CLI and its proxy settings (machine.py), the provider
key and base URL from the server's environment (in the process's environment only, never in a
file), and switches that turn off telemetry and update checks. A non-zero exit, a malformed
line or a missing result is a HarnessError with the stderr's tail; a timeout kills the process
group (the compute layer does that) and is a HarnessError with status `timeout`.
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from api.adapters.compute.base import ComputeError
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
from api.adapters.harness.machine import find_executable, machine_env, prepare_home
from api.adapters.harness.place import place_cli
from api.adapters.models.base import UnknownModel

STDERR_TAIL = 4000  # characters of stderr kept with a failed run


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

    def session_glob(self, ref: str) -> str:
        """The glob, relative to the CLI home, of CLI session `ref`'s files."""
        return self.session_files.format(ref=glob.escape(str(ref)))

    def can_resume(self, home: Path, ref: str | None) -> bool:
        """Whether this home still holds the files of CLI session `ref` (a resume needs them)."""
        return bool(ref) and any(home.glob(self.session_glob(str(ref))))

    def locate(self) -> str:
        """The executable on the server: `$<binary_env>` if set, else on PATH; HarnessUnavailable if none."""
        caps = self.capabilities
        assert caps.binary is not None and caps.binary_env is not None
        explicit = os.environ.get(caps.binary_env)
        found, why = find_executable(caps.binary, explicit)
        if found is not None:
            return found
        where = f"{caps.binary_env}={why}" if explicit else why
        raise HarnessUnavailable(
            f"the {self.name} harness needs the {caps.binary} CLI ({where}): install it with "
            f"`npm i -g {caps.package}`, or set {caps.binary_env} to its executable"
        )

    def check(self, model: str | None, *, here: bool = True) -> None:
        """HarnessUnavailable when the CLI is missing here; UnknownModel when it cannot drive `model`."""
        if here:
            self.locate()
        providers = self.capabilities.providers
        provider = provider_of(model) if model else None
        if providers is not None and provider is not None and provider not in providers:
            raise UnknownModel(f"the {self.name} harness drives {', '.join(providers)} models, not {model!r}")

    async def turn(self, request: TurnRequest) -> AsyncIterator[TurnItem]:
        """Run the CLI once in the workspace; yield what its stdout says as it says it."""
        if request.workspace is None or (request.home is None and request.place is None):
            raise HarnessError(f"the {self.name} harness runs in a workspace, and none was given")
        place = request.place or await place_cli(
            self, request.workspace, provider="local", local_home=request.home, model=request.model
        )
        argv = self.argv(place.binary, request)
        env = {**place.env, **self.env(place.home)}
        parser = self.parser(request)
        failure: HarnessError | None = None
        result = None
        lines = request.workspace.exec_lines(argv, request.options.timeout_s, env)
        try:
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
        except ComputeError as exc:  # e.g. the relay it ran on hung up mid-turn
            raise HarnessError(f"{self.capabilities.binary} lost its compute mid-turn: {exc}") from None
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
        """The server's part of the environment for a CLI run here (see `machine.machine_env`)."""
        return machine_env(binary, str(home))

    def model_arg(self, request: TurnRequest) -> str:
        """The session's model as the CLI names it (no provider prefix)."""
        return bare_model(request.model)

    def home_files(self, model: str) -> dict[str, str]:
        """Files the CLI reads from its home, by path relative to it (none by default; never a key)."""
        return {}

    def prepare(self, home: Path, request: TurnRequest) -> None:
        """Create `home` on this machine and write `home_files` into it."""
        prepare_home(home, self.home_files(request.model))

    def argv(self, binary: str, request: TurnRequest) -> list[str]:
        """The command line of this turn."""
        raise NotImplementedError

    def env(self, home: str | Path) -> dict[str, str]:
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
