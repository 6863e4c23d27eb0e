"""The relay under failure: real `cerver serve` and `cerver relay` processes, killed and restarted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.compute_support import RelayProcess, wait_until
from tests.server import Server, mint_token


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server, a token of tenant acme, and a way to start relays (stopped at the end)."""
    tmp = tmp_path_factory.mktemp("relay")
    data = tmp / "cerver-data"
    data.mkdir()
    token = mint_token(data, "acme")
    server = Server(data, {"CERVER_DEFAULT_MODEL": "offline/echo"}).start()
    relays: list[RelayProcess] = []

    def relay(name: str, root: str | None = None) -> RelayProcess:
        log = tmp / f"relay-{name}-{len(relays)}.log"
        proc = RelayProcess(server.url, token, name, tmp / (root or f"root-{name}"), log).start()
        relays.append(proc)
        return proc

    try:
        with server.client(token) as client:
            yield {"server": server, "client": client, "relay": relay, "tmp": tmp, "token": token}
    finally:
        for proc in relays:
            proc.stop()
        server.stop()


def _connected(client: httpx.Client, name: str) -> bool:
    try:
        return any(r["name"] == name for r in client.get("/v2/relays").json()["relays"])
    except httpx.HTTPError:
        return False


def _session_on(client: httpx.Client, relay: str) -> str:
    sid = client.post("/v2/sessions", json={"user_id": "u1"}).json()["session_id"]
    attached = client.post(
        f"/v2/sessions/{sid}/compute", json={"provider": "relay", "options": {"name": relay}}
    )
    assert attached.status_code == 200, attached.text
    return sid


def _exec(client: httpx.Client, sid: str, command: str, **body: Any) -> httpx.Response:
    return client.post(f"/v2/sessions/{sid}/exec", json={"command": command, **body}, timeout=120)


def _in_background(client: httpx.Client, sid: str, command: str) -> dict[str, Any]:
    """Start an exec in a thread; the dict gets `response` and `finished` (monotonic) when it returns."""
    out: dict[str, Any] = {}

    def run() -> None:
        out["response"] = _exec(client, sid, command, timeout_s=90)
        out["finished"] = time.monotonic()

    out["thread"] = threading.Thread(target=run, daemon=True)
    out["thread"].start()
    return out


def _pids_running(pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(pid) for pid in found.split()]


def test_a_relay_killed_mid_exec_fails_it_cleanly_and_a_new_one_serves_again(world: dict[str, Any]) -> None:
    client, tmp = world["client"], world["tmp"]
    first = world["relay"]("box")
    wait_until(lambda: _connected(client, "box"), what="the relay")
    sid = _session_on(client, "box")
    assert _exec(client, sid, "echo v1 > kept.txt").status_code == 200

    marker = "sleep 37.31"
    running = _in_background(client, sid, f"touch started; {marker}")
    wait_until(lambda: (tmp / "root-box" / sid / "started").exists(), what="the command to start")
    first.kill()
    killed = time.monotonic()
    running["thread"].join(30)
    try:
        response = running["response"]
        assert response.status_code == 502, response.text
        assert "disconnected" in response.json()["error"]["message"]
        assert running["finished"] - killed < 5, (
            "the exec fails as soon as the relay is gone, not at its timeout"
        )
    finally:
        for pid in _pids_running(marker):  # orphaned by the SIGKILL: ours to clean up
            os.kill(pid, signal.SIGKILL)

    wait_until(lambda: not _connected(client, "box"), what="the hub to forget the relay")
    gone = _exec(client, sid, "true")
    assert gone.status_code == 502 and "cerver relay" in gone.json()["error"]["message"]
    failed = client.post(
        "/v2/query",
        json={
            "sql": "SELECT status, error FROM events WHERE session_id = ? AND type = 'compute.exec'",
            "params": [sid],
        },
    ).json()["rows"]
    assert [row[0] for row in failed] == ["ok", "error", "error"]

    world["relay"]("box")  # same name, same folder: the session's files are there again
    wait_until(lambda: _connected(client, "box"), what="the relay to come back")
    again = _exec(client, sid, "cat kept.txt")
    assert again.status_code == 200 and again.json()["stdout"] == "v1\n"


def test_a_session_can_leave_a_relay_that_is_gone_without_its_files(world: dict[str, Any]) -> None:
    client = world["client"]
    relay = world["relay"]("lost")
    wait_until(lambda: _connected(client, "lost"), what="the relay")
    sid = _session_on(client, "lost")
    assert _exec(client, sid, "echo only-there > f.txt").status_code == 200
    relay.kill()
    wait_until(lambda: not _connected(client, "lost"), what="the hub to forget the relay")
    url = f"/v2/sessions/{sid}/compute"
    stuck = client.post(url, json={"provider": "local"})
    assert stuck.status_code == 502 and "'lost' is not connected" in stuck.json()["error"]["message"]
    assert client.get(f"/v2/sessions/{sid}").json()["compute"] == "relay", "a failed move changes nothing"
    fresh = client.post(url, json={"provider": "local", "move_files": False})
    assert fresh.status_code == 200, fresh.text
    assert (fresh.json()["from"], fresh.json()["moved_files"]) == ("relay", 0)
    listing = _exec(client, sid, "ls -A")
    assert listing.status_code == 200 and listing.json()["stdout"] == ""


def test_stopping_a_relay_kills_its_running_commands(world: dict[str, Any]) -> None:
    client = world["client"]
    relay = world["relay"]("polite")
    wait_until(lambda: _connected(client, "polite"), what="the relay")
    sid = _session_on(client, "polite")
    marker = "sleep 38.17"
    running = _in_background(client, sid, marker)
    wait_until(lambda: bool(_pids_running(marker)), what="the command to start")
    relay.stop()  # SIGTERM
    running["thread"].join(30)
    assert running["response"].status_code == 502
    wait_until(lambda: not _pids_running(marker), timeout=5, what="the relay's command to be killed")
    assert relay.process is not None and relay.process.returncode == 0


def test_a_second_relay_of_the_same_name_takes_over_and_the_first_stops(world: dict[str, Any]) -> None:
    client = world["client"]
    first = world["relay"]("twin", root="twin-root")
    wait_until(lambda: _connected(client, "twin"), what="the first relay")
    sid = _session_on(client, "twin")
    second = world["relay"]("twin", root="twin-root")
    assert first.process is not None
    assert first.process.wait(30) == 3, first.output()
    assert "another relay connected" in first.output()
    wait_until(lambda: _connected(client, "twin"), what="the second relay")
    assert _exec(client, sid, "echo served").json()["stdout"] == "served\n"
    assert second.process is not None and second.process.poll() is None


def test_after_a_server_restart_relays_redial_and_sessions_find_their_workspaces(
    world: dict[str, Any],
) -> None:
    client, server = world["client"], world["server"]
    world["relay"]("steady")
    wait_until(lambda: _connected(client, "steady"), what="the relay")
    on_relay = _session_on(client, "steady")
    on_local = client.post("/v2/sessions", json={"user_id": "u1"}).json()["session_id"]
    client.post(f"/v2/sessions/{on_local}/compute", json={"provider": "local"}).raise_for_status()
    for sid in (on_relay, on_local):
        assert _exec(client, sid, f"echo {sid} > who.txt").status_code == 200

    server.stop()
    server.start()
    wait_until(lambda: _connected(client, "steady"), timeout=30, what="the relay to dial the new server")
    for sid in (on_relay, on_local):
        answer = _exec(client, sid, "cat who.txt")
        assert answer.status_code == 200 and answer.json()["stdout"] == f"{sid}\n", answer.text


def test_the_hub_refuses_a_bad_hello_and_a_bad_token(world: dict[str, Any]) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    url = world["server"].url.replace("http://", "ws://") + "/v2/relay"

    async def hello(token: str, name: str) -> Any:
        async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as socket:
            await socket.send(json.dumps({"type": "hello", "name": name, "root": "/x"}))
            try:
                return json.loads(await socket.recv())
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None

    assert asyncio.run(hello(world["token"], "no spaces allowed")) == 1008
    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(hello("cvr_wrong", "fine"))
    assert refused.value.response.status_code == 403
    assert asyncio.run(hello(world["token"], "probe"))["tenant"] == "acme"
    assert not _connected(world["client"], "no spaces allowed")


def test_relay_needs_a_token(tmp_path: Path) -> None:
    from tests.server import CERVER

    env = {k: v for k, v in os.environ.items() if k != "CERVER_RELAY_TOKEN"}
    done = subprocess.run(
        [CERVER, "relay", "--server", "http://127.0.0.1:9"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 2 and "--token" in done.stderr
