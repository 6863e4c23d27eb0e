"""One contract suite over every compute adapter: local, relay, and e2b.

- `local` runs for real under tmp_path.
- `relay` is a real `cerver relay` process on loopback, registered with the real hub and relay
  route (served by uvicorn in this process, so the workspaces under test share its event loop).
- `e2b` runs the real adapter against tests/e2b_double.py, an in-process double of the e2b SDK's
  `AsyncSandbox` surface (E2B needs an account and the internet). `test_live_e2b` checks the real
  service when E2B_API_KEY is set, and says it was skipped otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.adapters.compute import ComputeConfig, ComputeUnavailable, ExecResult, PathEscapes, compute_for
from api.adapters.compute.base import OUTPUT_CAP, Capabilities, Workspace
from tests.compute_support import SECRETS, HubServer, LoopThread, RelayProcess, wait_until
from tests.e2b_double import DoubleSandbox

PROVIDERS = ("local", "relay", "e2b")
TENANT = "acme"
_sessions = itertools.count(1)


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    """The event loop every workspace of this module runs on."""
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture(scope="module")
def relay_hub(loop: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    """The hub with one real `cerver relay` process connected as `contract` for tenant acme."""
    tmp = tmp_path_factory.mktemp("relay")
    hub = HubServer(loop, tmp / "data").start()
    relay = RelayProcess(
        hub.url, hub.tokens.create(TENANT), "contract", tmp / "relay-root", tmp / "relay.log"
    )
    relay.start()
    try:
        wait_until(lambda: hub.hub.get(TENANT, "contract") is not None, what=f"the relay:\n{relay.output()}")
        yield hub
    finally:
        relay.stop()
        hub.stop()


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> str:
    """Each adapter in turn."""
    return request.param


@pytest.fixture
def make(
    provider: str,
    loop: LoopThread,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """`make()` opens a fresh session's workspace on the adapter under test; returns (compute, workspace)."""
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)  # in the server's environment: must not reach commands
    hub = request.getfixturevalue("relay_hub").hub if provider == "relay" else None
    config = ComputeConfig(tmp_path / "workspaces", hub=hub, extra={"e2b_sandbox": DoubleSandbox})
    compute = compute_for(provider, config)

    def options() -> dict[str, Any]:
        if provider == "relay":
            return {"name": "contract"}
        if provider == "e2b":
            return {"root": str(tmp_path / f"sandbox-{next(_sessions)}" / "workspace")}
        return {}

    def make_one(opts: dict[str, Any] | None = None) -> tuple[Any, Workspace]:
        checked = compute.check_options(TENANT, options() if opts is None else opts)
        return compute, loop.run(compute.open(TENANT, f"sess_{next(_sessions)}", checked))

    return make_one


def test_declares_capabilities_as_data(make: Any) -> None:
    compute, ws = make()
    assert isinstance(compute.capabilities, Capabilities)
    assert set(compute.capabilities.as_dict()) >= {"streams_lines", "supports_pause", "persistent", "remote"}
    assert isinstance(ws, Workspace) and isinstance(ws.root, str)


def test_exec_a_shell_line_and_an_argv(make: Any, loop: LoopThread) -> None:
    _, ws = make()
    shell = loop.run(ws.exec("echo hello; echo oops >&2; exit 3", 10))
    assert (shell.exit_code, shell.stdout, shell.stderr) == (3, "hello\n", "oops\n")
    assert shell.duration_ms > 0 and not shell.timed_out and not shell.truncated
    argv = loop.run(ws.exec(["printf", "%s|", "a b", "$HOME"], 10))
    assert argv.stdout == "a b|$HOME|", "an argv is not split or expanded by a shell"


def test_runs_in_the_workspace_with_home_there(make: Any, loop: LoopThread) -> None:
    _, ws = make()
    result = loop.run(ws.exec('pwd -P; cd "$HOME" && pwd -P', 10))
    here, home = result.stdout.split()
    assert here == home == os.path.realpath(ws.root)


def test_environment_is_scrubbed_and_extended(make: Any, loop: LoopThread) -> None:
    _, ws = make()
    result = loop.run(ws.exec("env", 10, env={"EXTRA_SETTING": "given"}))
    assert result.exit_code == 0
    for name, value in SECRETS.items():
        assert value not in result.stdout and f"{name}=" not in result.stdout
    assert "EXTRA_SETTING=given" in result.stdout
    assert "PATH=" in result.stdout and "LANG=C.UTF-8" in result.stdout


def test_stdin_reaches_the_command(make: Any, loop: LoopThread) -> None:
    _, ws = make()
    assert loop.run(ws.exec(["cat"], 10, stdin=b"from stdin\n")).stdout == "from stdin\n"


def test_a_command_that_never_ends_times_out_with_its_children(make: Any, loop: LoopThread) -> None:
    _, ws = make()
    marker = f"{30 + next(_sessions) / 1000:.3f}"
    started = time.monotonic()
    result = loop.run(ws.exec(f"sleep {marker} & sleep {marker}", 0.5))
    assert result.timed_out and result.exit_code == 124
    assert time.monotonic() - started < 8
    time.sleep(0.3)
    left = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True).stdout
    assert left == "", "the command's background child outlived its timeout"


def test_output_is_capped_while_read(make: Any, loop: LoopThread) -> None:
    _, ws = make()
    result = loop.run(ws.exec("head -c 3000000 /dev/zero | tr '\\0' a; echo done >&2", 30))
    assert result.exit_code == 0 and result.truncated
    assert len(result.stdout.encode()) == OUTPUT_CAP and set(result.stdout) == {"a"}
    assert result.stdout_bytes == 3_000_000 and result.stderr == "done\n"


def test_binary_output_stays_valid_text(make: Any, loop: LoopThread) -> None:
    _, ws = make()
    result = loop.run(ws.exec("head -c 4096 /dev/urandom; printf '\\377\\376'", 10))
    assert result.exit_code == 0 and "\ufffd" in result.stdout
    json.loads(json.dumps(result.as_json()))


def test_files_round_trip_and_commands_see_them(make: Any, loop: LoopThread) -> None:
    _, ws = make()
    payload = bytes(range(256)) * 5000  # binary, over one chunk
    loop.run(ws.write_file("deep/er/blob.bin", payload))
    assert loop.run(ws.read_file("deep/er/blob.bin")) == payload
    assert loop.run(ws.exec("wc -c < deep/er/blob.bin", 10)).stdout.strip() == str(len(payload))
    loop.run(ws.exec("echo made by a command > made.txt", 10))
    assert loop.run(ws.read_file("made.txt")) == b"made by a command\n"
    with pytest.raises(FileNotFoundError):
        loop.run(ws.read_file("missing.txt"))


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/passwd", "a/../../outside.txt", ""])
def test_paths_escaping_the_workspace_are_refused(make: Any, loop: LoopThread, path: str) -> None:
    _, ws = make()
    with pytest.raises(PathEscapes):
        loop.run(ws.write_file(path, b"x"))
    with pytest.raises(PathEscapes):
        loop.run(ws.read_file(path))
    assert not (Path(ws.root).parent / "outside.txt").exists()


def test_snapshot_restores_into_another_workspace_exactly(make: Any, loop: LoopThread) -> None:
    _, source = make()
    loop.run(source.write_file("src/app.py", b"print('hi')\n"))
    loop.run(source.exec("mkdir -p empty && ln -s src/app.py link && chmod +x src/app.py", 10))
    _, target = make()
    loop.run(target.write_file("stale.txt", b"old"))
    loop.run(target.restore(loop.run(_bytes(source.snapshot()))))
    listing = loop.run(target.exec("find . -mindepth 1 | sort; test -x src/app.py && echo exec", 10)).stdout
    assert listing.split() == ["./empty", "./link", "./src", "./src/app.py", "exec"]
    assert loop.run(target.read_file("link")) == b"print('hi')\n"


def test_exec_lines_yields_lines_then_one_result(make: Any, loop: LoopThread) -> None:
    compute, ws = make()

    async def collect() -> list[tuple[float, Any]]:
        started, seen = time.monotonic(), []
        async for item in ws.exec_lines(["sh", "-c", "echo first; sleep 1; echo second; echo err >&2"], 10):
            seen.append((time.monotonic() - started, item))
        return seen

    seen = loop.run(collect())
    lines = [item for _, item in seen if isinstance(item, str)]
    results = [item for _, item in seen if isinstance(item, ExecResult)]
    assert lines == ["first", "second"] and len(results) == 1 and isinstance(seen[-1][1], ExecResult)
    assert results[0].exit_code == 0 and results[0].stdout == "" and results[0].stderr == "err\n"
    if compute.capabilities.streams_lines:
        assert seen[0][0] < 0.8, "a streaming adapter yields the first line before the command ends"


def test_reopening_finds_the_same_files(make: Any, loop: LoopThread) -> None:
    compute, ws = make()
    loop.run(ws.write_file("kept.txt", b"still here"))
    session_id = getattr(ws, "session_id", None) or Path(ws.root).name
    recorded = compute.recorded_options(ws, compute.check_options(TENANT, _opts_of(compute, ws)))
    again = loop.run(compute.open(TENANT, session_id, recorded))
    assert loop.run(again.read_file("kept.txt")) == b"still here"


def test_stop_ends_the_workspace(make: Any, loop: LoopThread) -> None:
    compute, ws = make()
    loop.run(ws.write_file("gone.txt", b"x"))
    session_id = getattr(ws, "session_id", None) or Path(ws.root).name
    recorded = compute.recorded_options(ws, compute.check_options(TENANT, _opts_of(compute, ws)))
    loop.run(ws.stop())
    try:
        again = loop.run(compute.open(TENANT, session_id, recorded))
    except ComputeUnavailable:
        return  # the sandbox is gone for good
    with pytest.raises(FileNotFoundError):
        loop.run(again.read_file("gone.txt"))


def test_pause_keeps_files_when_supported(make: Any, loop: LoopThread) -> None:
    compute, ws = make()
    if not compute.capabilities.supports_pause:
        assert not hasattr(ws, "pause")
        return
    loop.run(ws.write_file("paused.txt", b"kept"))
    recorded = compute.recorded_options(ws, compute.check_options(TENANT, _opts_of(compute, ws)))
    loop.run(ws.pause())
    resumed = loop.run(compute.open(TENANT, "ignored", recorded))
    assert loop.run(resumed.read_file("paused.txt")) == b"kept"


@pytest.mark.skipif(not os.environ.get("E2B_API_KEY"), reason="live E2B test: set E2B_API_KEY to run it")
def test_live_e2b(loop: LoopThread, tmp_path: Path) -> None:
    """The real SDK against the real service: exec, files, snapshot/restore, timeout, stop."""
    compute = compute_for("e2b", ComputeConfig(tmp_path))
    ws = loop.run(compute.open(TENANT, "live", compute.check_options(TENANT, {})), timeout=180)
    try:
        assert loop.run(ws.exec("echo live", 60)).stdout == "live\n"
        loop.run(ws.write_file("a/b.txt", b"data"))
        assert loop.run(ws.read_file("a/b.txt")) == b"data"
        tar = loop.run(_bytes(ws.snapshot()), timeout=120)
        loop.run(ws.restore(tar), timeout=120)
        assert loop.run(ws.exec("cat a/b.txt", 60)).stdout == "data"
        assert loop.run(ws.exec("sleep 30", 1), timeout=60).timed_out
    finally:
        loop.run(ws.stop())


def _opts_of(compute: Any, ws: Any) -> dict[str, Any]:
    if compute.name == "relay":
        return {"name": ws.name}
    if compute.name == "e2b":
        return {"root": ws.root}
    return {}


async def _bytes(snapshot: Any) -> bytes:
    from api.adapters.compute.base import collect

    return await collect(await snapshot)


def test_local_spawns_through_the_loop_where_there_are_no_pidfds(
    loop: LoopThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """macOS has no pidfds (a relay may run there): the loop's own subprocess_exec serves instead."""
    from api.adapters.compute import spawn

    monkeypatch.setattr(spawn, "_pidfds", False)
    ws = loop.run(compute_for("local", ComputeConfig(tmp_path)).open(TENANT, "no-pidfd", {}))
    result = loop.run(ws.exec("echo out; echo err >&2; exit 4", 10))
    assert (result.exit_code, result.stdout, result.stderr) == (4, "out\n", "err\n")
    assert loop.run(ws.exec(["cat"], 10, stdin=b"in")).stdout == "in"
    slow = loop.run(ws.exec("sleep 5 & sleep 5", 0.3))
    assert slow.timed_out and slow.duration_ms < 4000
    assert loop.run(ws.exec(["no-such-program-here"], 10)).exit_code == 127


def test_a_command_cancelled_while_it_starts_does_not_outlive_it(
    loop: LoopThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller that goes away (a relay stopped, a client gone) just after the process started, while its
    pipes are attached to the loop, kills it too: here the attaching is held until the caller is cancelled."""
    from api.adapters.compute import spawn

    started: list[int] = []
    real_reader = spawn._reader

    async def held(event_loop: Any, pipe: Any, child: Any) -> Any:
        started.append(child.pid)
        await asyncio.sleep(60)
        return await real_reader(event_loop, pipe, child)

    monkeypatch.setattr(spawn, "_reader", held)
    ws = loop.run(compute_for("local", ComputeConfig(tmp_path)).open(TENANT, "cancelled-start", {}))

    async def cancelled() -> None:
        task = asyncio.ensure_future(ws.exec("sleep 39.13", 60))
        while not started:
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    loop.run(cancelled(), timeout=30)
    wait_until(lambda: not _alive(started[0]), timeout=10, what="the command to die with its cancelled start")


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone, before or while /proc was read
        return False
