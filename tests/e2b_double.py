"""A test double of the e2b SDK's `AsyncSandbox`, in-process over a temporary folder.

E2B itself needs an account and the internet, so the contract suite runs the `e2b` adapter
against this double instead. It implements exactly the surface the adapter calls, with the
installed SDK's signatures and its real result and exception classes (`CommandResult`,
`CommandExitException`, `TimeoutException`, `FileNotFoundException`, `SandboxException`):
`AsyncSandbox.create(template, timeout, metadata)`, `AsyncSandbox.connect(sandbox_id, timeout)`,
`sandbox_id`, `commands.run(cmd, envs, cwd, on_stdout, on_stderr, timeout, retain_output)` (run
by `bash -l -c` as in a sandbox, but here on this machine), `files.write(path, bytes | async
iterable)`, `files.read(path, format="bytes")`, `kill()`, and `pause()` (a paused sandbox refuses
commands until `connect` resumes it). A live test (tests/test_compute_contract.py) checks the
same calls against E2B when E2B_API_KEY is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
from collections.abc import AsyncIterable, Callable
from pathlib import Path
from typing import Any, ClassVar

from e2b import CommandExitException, CommandResult, FileNotFoundException, SandboxException, TimeoutException


class _Commands:
    def __init__(self, sandbox: DoubleSandbox):
        self._sandbox = sandbox

    async def run(
        self,
        cmd: str,
        background: bool | None = None,
        envs: dict[str, str] | None = None,
        user: str | None = None,
        cwd: str | None = None,
        on_stdout: Callable[[str], Any] | None = None,
        on_stderr: Callable[[str], Any] | None = None,
        stdin: bool | None = None,
        timeout: float | None = 60,
        request_timeout: float | None = None,
        *,
        retain_output: bool = True,
    ) -> CommandResult:
        self._sandbox.check_running()
        proc = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            cmd,
            cwd=cwd,
            env={"PATH": os.environ["PATH"], **(envs or {})},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        kept: dict[str, list[str]] = {"out": [], "err": []}

        async def pump(stream: asyncio.StreamReader, key: str, handler: Callable[[str], Any] | None) -> None:
            while data := await stream.read(1 << 16):
                text = data.decode("utf-8", "replace")
                if handler is not None:
                    handler(text)
                if retain_output:
                    kept[key].append(text)

        assert proc.stdout is not None and proc.stderr is not None
        pumps = asyncio.gather(pump(proc.stdout, "out", on_stdout), pump(proc.stderr, "err", on_stderr))
        try:
            await asyncio.wait_for(asyncio.gather(proc.wait(), pumps), timeout or None)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise TimeoutException("context deadline exceeded") from None
        stdout = "".join(kept["out"]) if retain_output else None
        stderr = "".join(kept["err"]) if retain_output else None
        if proc.returncode != 0:
            raise CommandExitException(stdout=stdout, stderr=stderr, exit_code=proc.returncode, error=None)
        return CommandResult(stdout=stdout, stderr=stderr, exit_code=0, error=None)


class _Files:
    def __init__(self, sandbox: DoubleSandbox):
        self._sandbox = sandbox

    async def write(self, path: str, data: bytes | str | AsyncIterable[bytes], **_: Any) -> None:
        self._sandbox.check_running()
        if isinstance(data, str):
            data = data.encode()
        elif not isinstance(data, bytes | bytearray):
            data = b"".join([chunk async for chunk in data])
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    async def read(self, path: str, format: str = "text", **_: Any) -> Any:  # noqa: A002 - the SDK's name
        self._sandbox.check_running()
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise FileNotFoundException(f"path '{path}' does not exist") from None
        return bytearray(data) if format == "bytes" else data.decode()


class DoubleSandbox:
    """One sandbox: `commands`, `files`, `kill`, `pause`; the class keeps every sandbox by id."""

    sandboxes: ClassVar[dict[str, DoubleSandbox]] = {}
    _ids = itertools.count(1)

    def __init__(self, template: str | None, metadata: dict[str, str] | None):
        self.sandbox_id = f"double-{next(self._ids)}"
        self.template, self.metadata = template, metadata or {}
        self.state = "running"
        self.commands, self.files = _Commands(self), _Files(self)
        self.sandboxes[self.sandbox_id] = self

    @classmethod
    async def create(
        cls,
        template: str | None = None,
        timeout: int | None = None,
        metadata: dict[str, str] | None = None,
        **_: Any,
    ) -> DoubleSandbox:
        return cls(template, metadata)

    @classmethod
    async def connect(cls, sandbox_id: str, timeout: int | None = None, **_: Any) -> DoubleSandbox:
        sandbox = cls.sandboxes.get(sandbox_id)
        if sandbox is None or sandbox.state == "killed":
            raise SandboxException(f"sandbox {sandbox_id} not found")
        sandbox.state = "running"  # connecting resumes a paused sandbox
        return sandbox

    def check_running(self) -> None:
        if self.state != "running":
            raise SandboxException(f"sandbox {self.sandbox_id} is {self.state}")

    async def kill(self, **_: Any) -> bool:
        self.state = "killed"
        return True

    async def pause(self, **_: Any) -> bool:
        self.state = "paused"
        return True
