"""`relay`: workspaces on a machine running `cerver relay`, reached over the socket it dialled in with.

Options: `{"name": N}` picks the tenant's relay of that name; without it, the tenant's only
connected relay is used. The relay must be connected when compute is attached (else 502); every
call looks the relay up again, so a relay that reconnects under the same name serves the same
workspaces (they live in its folder on its machine). Agent CLI harnesses run there too: the relay
finds the CLI on its own machine and keeps each session's CLI home beside its workspaces (`cli_home`).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from api.adapters.compute.base import (
    BadOptions,
    Capabilities,
    Command,
    ComputeConfig,
    ComputeUnavailable,
    ExecResult,
    TarStream,
    chunks_of,
)
from api.relay.hub import NAME, TRANSFER_IDLE_S, RelayConnection, RelayHub

EXEC_GRACE_S = 30.0  # how long past a command's timeout the relay may take to answer before we give up


def _how_to_start(name: str) -> str:
    return f"start it with `cerver relay --server URL --token TOKEN --name {name}`"


class RelayWorkspace:
    """A session's folder on a relay's machine."""

    def __init__(self, hub: RelayHub, tenant_id: str, name: str, session_id: str, root: str):
        self.hub, self.tenant_id, self.name, self.session_id = hub, tenant_id, name, session_id
        self.root = root

    def _relay(self) -> RelayConnection:
        conn = self.hub.get(self.tenant_id, self.name)
        if conn is None:
            raise ComputeUnavailable(f"relay {self.name!r} is not connected; {_how_to_start(self.name)}")
        return conn

    def _args(self, **fields: Any) -> dict[str, Any]:
        return {"ws": self.session_id, **fields}

    async def exec(
        self,
        command: Command,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> ExecResult:
        """Run the command on the relay."""
        args = self._args(
            command=command if isinstance(command, str) else list(command),
            timeout_s=timeout_s,
            env=dict(env or {}),
            stdin=base64.b64encode(stdin).decode() if stdin is not None else None,
        )
        value = await self._relay().call("exec", args, idle_s=timeout_s + EXEC_GRACE_S)
        return ExecResult.from_json(value)

    async def exec_lines(
        self, argv: Command, timeout_s: float, env: Mapping[str, str] | None = None
    ) -> AsyncIterator[str | ExecResult]:
        """Stdout lines as the relay sends them, then the ExecResult."""
        args = self._args(
            command=argv if isinstance(argv, str) else list(argv), timeout_s=timeout_s, env=dict(env or {})
        )
        exchange = self._relay().exchange("exec_lines", args, timeout_s + EXEC_GRACE_S)
        async with contextlib.aclosing(exchange) as items:  # leaving early cancels the command on the relay
            async for kind, value in items:
                yield value if kind == "line" else ExecResult.from_json(value)

    async def write_file(self, path: str, data: bytes) -> None:
        """Write a file on the relay (sent in chunks)."""
        await self._relay().call("write_file", self._args(path=path), upload=chunks_of(data))

    async def read_file(self, path: str) -> bytes:
        """Read a file from the relay."""
        return b"".join([chunk async for chunk in self._download("read_file", path=path)])

    async def snapshot(self) -> AsyncIterator[bytes]:
        """The workspace as a tar, streamed from the relay."""
        self._relay()  # fail now, not when the stream is first read
        return self._download("snapshot")

    async def _download(self, op: str, **fields: Any) -> AsyncIterator[bytes]:
        async with contextlib.aclosing(
            self._relay().exchange(op, self._args(**fields), TRANSFER_IDLE_S)
        ) as items:
            async for kind, value in items:
                if kind == "chunk":
                    yield value

    async def restore(self, tar: TarStream) -> None:
        """Send a tar to the relay, which replaces the workspace's files with it."""
        await self._relay().call("restore", self._args(), upload=chunks_of(tar))

    async def stop(self) -> None:
        """Remove the workspace folder on the relay."""
        await self._relay().call("stop", self._args())

    async def cli_home(
        self, harness: str, binary: str | None, files: Mapping[str, str], session_glob: str | None
    ) -> dict[str, Any]:
        """Ask the relay for an agent CLI's place on its machine (see api/adapters/harness/place.py).

        The relay finds `binary`, makes this session's home for `harness` beside its workspaces, writes
        `files` into it and answers `{binary, home, env, resumable}` (`binary` null and `missing` saying
        why when it has no such CLI).
        """
        args = self._args(harness=harness, binary=binary, files=dict(files), glob=session_glob)
        return await self._relay().call("cli_home", args)


class RelayCompute:
    """The tenant's connected relays as compute."""

    name = "relay"
    capabilities = Capabilities(streams_lines=True, persistent=True, remote=True)

    def __init__(self, config: ComputeConfig):
        if config.hub is None:
            raise ComputeUnavailable("this server has no relay hub")
        self.hub: RelayHub = config.hub

    def check_options(self, tenant_id: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """`{"name": N}`, or nothing when exactly one relay of the tenant is connected."""
        unknown = set(options) - {"name"}
        if unknown:
            raise BadOptions(f"relay compute takes only `name` (got {', '.join(sorted(unknown))})")
        name = options.get("name")
        if name is None:
            connected = [c.name for c in self.hub.of_tenant(tenant_id)]
            if len(connected) != 1:
                which = f"connected: {', '.join(connected)}" if connected else "none is connected"
                raise ComputeUnavailable(f"name the relay in options.name ({which}); {_how_to_start('NAME')}")
            name = connected[0]
        if not isinstance(name, str) or not NAME.match(name):
            raise BadOptions("options.name is 1-64 letters, digits, '.', '_' or '-'")
        if self.hub.get(tenant_id, name) is None:
            raise ComputeUnavailable(f"relay {name!r} is not connected; {_how_to_start(name)}")
        return {"name": name}

    async def open(self, tenant_id: str, session_id: str, options: Mapping[str, Any]) -> RelayWorkspace:
        """The session's folder on the named relay (which must be connected)."""
        name = self.check_options(tenant_id, options)["name"]
        conn = self.hub.get(tenant_id, name)
        assert conn is not None
        return RelayWorkspace(self.hub, tenant_id, name, session_id, f"{conn.root.rstrip('/')}/{session_id}")

    def recorded_options(self, workspace: Any, options: Mapping[str, Any]) -> dict[str, Any]:
        """The relay's name, to find it again."""
        return {"name": workspace.name}
