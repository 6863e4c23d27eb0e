"""`e2b`: one E2B sandbox per session, through the `e2b` SDK (imported when first used).

Options: `template` (the sandbox template), `lifetime_s` (how long E2B keeps it alive idle),
`root` (the workspace folder inside the sandbox, default /home/user/workspace) and
`sandbox_id` (connect to an existing sandbox; E2B resumes a paused one). The API key comes from
`E2B_API_KEY` on the server, never from options. Commands run under `timeout` inside the sandbox,
so one that overruns is killed there (exit 124, `timed_out`), not left running.
"""

from __future__ import annotations

import os
import posixpath
import shlex
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from api.adapters.compute.base import (
    OUTPUT_CAP,
    TIMEOUT_EXIT_CODE,
    BadOptions,
    Capabilities,
    Command,
    ComputeConfig,
    ComputeUnavailable,
    ExecResult,
    PathEscapes,
    TarStream,
    base_env,
    chunks_of,
    lines_after_exec,
    shell_line,
)

DEFAULT_ROOT = "/home/user/workspace"
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
OPTIONS = {"template", "lifetime_s", "root", "sandbox_id"}
_SDK_GRACE_S = 10.0  # the SDK's own deadline, past the command's


class _Text:
    """Keeps the first OUTPUT_CAP bytes of a stream that arrives as text, and counts the rest."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.kept = self.total = 0

    def __call__(self, text: str) -> None:
        size = len(text.encode("utf-8", "replace"))
        self.total += size
        if self.kept < OUTPUT_CAP:
            piece = text.encode("utf-8", "replace")[: OUTPUT_CAP - self.kept]
            self.parts.append(piece.decode("utf-8", "replace"))
            self.kept += len(piece)

    @property
    def text(self) -> str:
        return "".join(self.parts)


def inside_posix(root: str, path: str) -> str:
    """`path` joined under the sandbox folder `root`; PathEscapes when it leaves it."""
    if not path or "\x00" in path or posixpath.isabs(path):
        raise PathEscapes(f"{path!r} is outside the workspace")
    target = posixpath.normpath(posixpath.join(root, path))
    if not target.startswith(root.rstrip("/") + "/"):
        raise PathEscapes(f"{path!r} is outside the workspace")
    return target


class E2BWorkspace:
    """A folder in one E2B sandbox."""

    def __init__(self, sandbox: Any, root: str, sdk: Any):
        self.sandbox, self.root, self._sdk = sandbox, root, sdk

    @property
    def sandbox_id(self) -> str:
        """The sandbox's id, to connect to it again."""
        return str(self.sandbox.sandbox_id)

    async def _run(self, line: str, timeout_s: float | None = None) -> Any:
        """Run a shell line of our own (tar, rm); raise if it fails."""
        try:
            return await self.sandbox.commands.run(line, timeout=timeout_s or 600)
        except self._sdk.CommandExitException as exc:
            raise ComputeUnavailable(f"e2b: `{line}` failed ({exc.exit_code}): {exc.stderr}") from None
        except self._sdk.SandboxException as exc:
            raise ComputeUnavailable(f"e2b: {exc}") from None

    async def exec(
        self,
        command: Command,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> ExecResult:
        """Run the command in the sandbox, under `timeout` there."""
        started = time.perf_counter()
        # TERM to the command's process group at its timeout, KILL 2s on: exit 124 (137 if TERM is ignored)
        line = f"timeout -k 2 {timeout_s:g} sh -c {shlex.quote(shell_line(command))}"
        if stdin is not None:
            feed = posixpath.join("/tmp", f"cerver-stdin-{time.monotonic_ns()}")
            await self.sandbox.files.write(feed, stdin)
            line += f" < {feed}; code=$?; rm -f {feed}; exit $code"
        out, err = _Text(), _Text()
        envs = {**base_env(self.root, SANDBOX_PATH), **(env or {})}
        try:
            await self._mkdir_root()
            done = await self.sandbox.commands.run(
                line,
                envs=envs,
                cwd=self.root,
                on_stdout=out,
                on_stderr=err,
                timeout=timeout_s + _SDK_GRACE_S,
                retain_output=False,
            )
            exit_code = done.exit_code
        except self._sdk.CommandExitException as exc:
            exit_code = exc.exit_code
        except self._sdk.TimeoutException:
            exit_code = TIMEOUT_EXIT_CODE
        except self._sdk.SandboxException as exc:
            raise ComputeUnavailable(f"e2b: {exc}") from None
        elapsed = time.perf_counter() - started
        if exit_code == 128 + 9 and elapsed >= timeout_s:
            exit_code = TIMEOUT_EXIT_CODE
        return ExecResult(
            exit_code=exit_code,
            stdout=out.text,
            stderr=err.text,
            duration_ms=round(elapsed * 1000, 3),
            truncated=out.total > OUTPUT_CAP or err.total > OUTPUT_CAP,
            timed_out=exit_code == TIMEOUT_EXIT_CODE,
            stdout_bytes=out.total,
            stderr_bytes=err.total,
        )

    def exec_lines(
        self, argv: Command, timeout_s: float, env: Mapping[str, str] | None = None
    ) -> AsyncIterator[str | ExecResult]:
        """The lines once the command ends (this adapter does not stream)."""
        return lines_after_exec(self, argv, timeout_s, env)

    async def _mkdir_root(self) -> None:
        if not getattr(self, "_made", False):
            await self._run(f"mkdir -p {shlex.quote(self.root)}")
            self._made = True

    async def write_file(self, path: str, data: bytes) -> None:
        """Write a file in the sandbox (the SDK creates the folders)."""
        await self.sandbox.files.write(inside_posix(self.root, path), data)

    async def read_file(self, path: str) -> bytes:
        """Read a file from the sandbox."""
        target = inside_posix(self.root, path)
        try:
            return bytes(await self.sandbox.files.read(target, format="bytes"))
        except self._sdk.NotFoundException:
            raise FileNotFoundError(target) from None

    async def snapshot(self) -> bytes:
        """The workspace as a tar, built in the sandbox and downloaded."""
        await self._mkdir_root()
        tar = f"/tmp/cerver-snapshot-{time.monotonic_ns()}.tar"
        await self._run(f"tar -C {shlex.quote(self.root)} -cf {tar} . ")
        try:
            return bytes(await self.sandbox.files.read(tar, format="bytes"))
        finally:
            await self._run(f"rm -f {tar}")

    async def restore(self, tar: TarStream) -> None:
        """Upload a tar and make the workspace hold exactly its files."""
        path = f"/tmp/cerver-restore-{time.monotonic_ns()}.tar"
        await self.sandbox.files.write(path, chunks_of(tar))
        root = shlex.quote(self.root)
        await self._run(
            f"rm -rf {root} && mkdir -p {root} && tar -C {root} -xf {path}; code=$?; rm -f {path}; exit $code"
        )

    async def pause(self) -> None:
        """Pause the sandbox (E2B resumes it on the next connect)."""
        pause = getattr(self.sandbox, "pause", None) or self.sandbox.beta_pause
        await pause()

    async def stop(self) -> None:
        """Kill the sandbox."""
        try:
            await self.sandbox.kill()
        except self._sdk.SandboxException as exc:
            raise ComputeUnavailable(f"e2b: {exc}") from None


class E2BCompute:
    """E2B sandboxes as compute."""

    name = "e2b"
    capabilities = Capabilities(streams_lines=False, supports_pause=True, persistent=True, remote=True)

    def __init__(self, config: ComputeConfig):
        self._sandbox_cls = config.extra.get("e2b_sandbox")  # a test double of the SDK's AsyncSandbox

    def _sdk(self) -> tuple[Any, Any]:
        import e2b

        return (self._sandbox_cls or e2b.AsyncSandbox), e2b

    def check_options(self, tenant_id: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """Known options with the right types, and a key on the server."""
        unknown = set(options) - OPTIONS
        if unknown:
            raise BadOptions(
                f"e2b compute takes {', '.join(sorted(OPTIONS))} (got {', '.join(sorted(unknown))})"
            )
        root = options.get("root", DEFAULT_ROOT)
        if not isinstance(root, str) or not posixpath.isabs(root) or posixpath.normpath(root) in ("/", "//"):
            raise BadOptions("options.root is an absolute folder other than /")
        lifetime = options.get("lifetime_s", 3600)
        if not isinstance(lifetime, int) or not 60 <= lifetime <= 86_400:
            raise BadOptions("options.lifetime_s is a whole number of seconds from 60 to 86400")
        for key in ("template", "sandbox_id"):
            if key in options and not isinstance(options[key], str):
                raise BadOptions(f"options.{key} is a string")
        if self._sandbox_cls is None and not os.environ.get("E2B_API_KEY"):
            raise ComputeUnavailable("e2b needs E2B_API_KEY in the server's environment")
        return {**options, "root": posixpath.normpath(root), "lifetime_s": lifetime}

    async def open(self, tenant_id: str, session_id: str, options: Mapping[str, Any]) -> E2BWorkspace:
        """Connect to `sandbox_id` when given (resuming it), else create a sandbox."""
        opts = self.check_options(tenant_id, options)
        sandbox_cls, sdk = self._sdk()
        try:
            if opts.get("sandbox_id"):
                sandbox = await sandbox_cls.connect(opts["sandbox_id"], timeout=opts["lifetime_s"])
            else:
                sandbox = await sandbox_cls.create(
                    template=opts.get("template"),
                    timeout=opts["lifetime_s"],
                    metadata={"cerver_tenant": tenant_id, "cerver_session": session_id},
                )
        except (sdk.SandboxException, sdk.AuthenticationException, OSError) as exc:
            raise ComputeUnavailable(f"e2b: could not start or reach the sandbox: {exc}") from None
        return E2BWorkspace(sandbox, opts["root"], sdk)

    def recorded_options(self, workspace: Any, options: Mapping[str, Any]) -> dict[str, Any]:
        """The sandbox id (to reconnect after a restart) with the options it was made with."""
        return {**options, "sandbox_id": workspace.sandbox_id}
