"""Compute through the API, end to end: a real `cerver serve` and real `cerver relay` processes on loopback.

The server's environment holds secrets (OPENAI_API_KEY, CERVER_API_TOKEN) that no command may see.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.compute_support import SECRETS, RelayProcess, wait_until
from tests.server import Server, mint_token


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with tokens of two tenants, and where relays keep their workspaces."""
    tmp = tmp_path_factory.mktemp("compute-api")
    data = tmp / "cerver-data"
    data.mkdir()
    acme, globex = mint_token(data, "acme"), mint_token(data, "globex")
    server = Server(data, {"CERVER_DEFAULT_MODEL": "offline/echo", **SECRETS}).start()
    relays: list[RelayProcess] = []

    def relay(token: str, name: str) -> RelayProcess:
        proc = RelayProcess(server.url, token, name, tmp / f"relay-{name}", tmp / f"relay-{name}.log").start()
        relays.append(proc)
        return proc

    try:
        with server.client(acme) as a, server.client(globex) as g:
            yield {
                "server": server,
                "acme": a,
                "globex": g,
                "tokens": (acme, globex),
                "relay": relay,
                "tmp": tmp,
            }
    finally:
        for proc in relays:
            proc.stop()
        server.stop()


def _session(client: httpx.Client, compute: str | None = None) -> str:
    body: dict[str, Any] = {"user_id": "u1"}
    if compute:
        body["compute"] = compute
    response = client.post("/v2/sessions", json=body)
    assert response.status_code == 201, response.text
    return response.json()["session_id"]


def _attach(
    client: httpx.Client, sid: str, provider: str, status: int = 200, **options: Any
) -> dict[str, Any]:
    response = client.post(f"/v2/sessions/{sid}/compute", json={"provider": provider, "options": options})
    assert response.status_code == status, response.text
    return response.json()


def _exec(client: httpx.Client, sid: str, command: Any, status: int = 200, **body: Any) -> dict[str, Any]:
    response = client.post(f"/v2/sessions/{sid}/exec", json={"command": command, **body}, timeout=120)
    assert response.status_code == status, response.text
    return response.json()


def _rows(client: httpx.Client, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    answer = client.post("/v2/query", json={"sql": sql, "params": params}).json()
    names = [c["name"] for c in answer["columns"]]
    return [dict(zip(names, row, strict=True)) for row in answer["rows"]]


def _events(client: httpx.Client, sid: str, kind: str) -> list[dict[str, Any]]:
    sql = "SELECT compute, status, latency_ms, run_id, attrs FROM events WHERE session_id = ? AND type = ?"
    sql += " ORDER BY ts"
    return _rows(client, sql, [sid, kind])


def _connected(client: httpx.Client, name: str) -> bool:
    return any(r["name"] == name for r in client.get("/v2/relays").json()["relays"])


def test_a_session_keeps_its_files_and_transcript_across_a_move(world: dict[str, Any]) -> None:
    acme, data = world["acme"], world["server"].data
    sid = _session(acme)
    refused = _exec(acme, sid, "true", status=409)["error"]
    assert (
        refused["code"] == "no_compute"
        and f'POST /v2/sessions/{sid}/compute {{"provider": "local"}}' in (refused["message"])
    )

    attached = _attach(acme, sid, "local")
    assert (attached["compute"], attached["from"], attached["moved_files"]) == ("local", None, 0)
    made = _exec(acme, sid, "echo kept > note.txt && mkdir -p d && head -c 200000 /dev/urandom > d/blob")
    assert made["exit_code"] == 0 and made["exec_id"].startswith("exec_")
    assert (data / "workspaces" / "acme" / sid / "note.txt").read_text() == "kept\n"
    assert acme.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "before the move"}).status_code == 200

    world["relay"](world["tokens"][0], "laptop")
    wait_until(lambda: _connected(acme, "laptop"), what="the relay to connect")
    moved = _attach(acme, sid, "relay", name="laptop")
    assert (moved["compute"], moved["from"], moved["moved_files"]) == ("relay", "local", 2)
    assert moved["moved_bytes"] >= 200_000 and moved["options"] == {"name": "laptop"}
    assert not (data / "workspaces" / "acme" / sid).exists(), "the old workspace stops once the files moved"

    there = _exec(acme, sid, "cat note.txt; wc -c < d/blob; pwd -P")
    assert there["stdout"].split() == ["kept", "200000", str((world["tmp"] / "relay-laptop" / sid).resolve())]
    ran = acme.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "after the move"})
    assert ran.status_code == 200, ran.text
    transcript = acme.get(f"/v2/sessions/{sid}").json()["transcript"]
    assert [m["content"] for m in transcript if m["role"] == "user"] == ["before the move", "after the move"]
    assert acme.get(f"/v2/sessions/{sid}").json()["compute"] == "relay"

    back = _attach(acme, sid, "local")
    assert (back["from"], back["moved_files"]) == ("relay", 2)
    assert (data / "workspaces" / "acme" / sid / "note.txt").read_text() == "kept\n"
    assert _attach(acme, sid, "local")["from"] is None, "attaching what is attached changes nothing"

    metrics = acme.get(f"/v2/sessions/{sid}/metrics").json()
    assert metrics["execs"] == 2 and metrics["compute_seconds"] > 0
    moves = [(e["compute"], json.loads(e["attrs"])) for e in _events(acme, sid, "compute.attached")]
    assert [(c, a["from"], a["moved_files"]) for c, a in moves] == [
        ("local", None, 0),
        ("relay", "local", 2),
        ("local", "relay", 2),
    ]
    execs = _events(acme, sid, "compute.exec")
    assert [e["compute"] for e in execs] == ["local", "relay"] and all(e["status"] == "ok" for e in execs)
    assert [json.loads(e["attrs"])["exec_id"] for e in execs] == [made["exec_id"], there["exec_id"]]
    assert all(e["run_id"] is None for e in execs), "a standalone exec is not a model run"
    assert json.loads(execs[0]["attrs"])["command"].startswith("echo kept")
    runs = _rows(acme, "SELECT count(*) AS n FROM runs WHERE session_id = ?", [sid])
    assert runs == [{"n": 2}] and metrics["runs"] == 2
    assert metrics["compute_seconds"] == pytest.approx(sum(e["latency_ms"] for e in execs) / 1000)


def test_commands_that_misbehave_get_answers_not_errors(world: dict[str, Any]) -> None:
    acme, server = world["acme"], world["server"]
    sid = _session(acme)
    _attach(acme, sid, "local")

    started = time.monotonic()
    endless = _exec(acme, sid, "sleep 100", timeout_s=0.5)
    assert endless["timed_out"] is True and endless["exit_code"] == 124 and time.monotonic() - started < 10

    server.wait_warm()  # litellm's import, in the background since start-up, grows the server by ~70 MB
    before = _peak_rss(server)
    flood = _exec(acme, sid, "head -c 100000000 /dev/zero", timeout_s=60)
    assert flood["truncated"] is True and flood["stdout_bytes"] == 100_000_000
    assert len(flood["stdout"]) == 1 << 20
    assert _peak_rss(server) - before < 64 << 20, "100 MB of output must not be held in memory"

    binary = _exec(acme, sid, "head -c 4096 /dev/urandom")
    assert binary["exit_code"] == 0 and "\ufffd" in binary["stdout"]

    env = _exec(acme, sid, "env", env={"GIVEN": "yes"})["stdout"]
    assert "GIVEN=yes" in env
    for name, value in SECRETS.items():
        assert value not in env and f"{name}=" not in env

    assert _exec(acme, sid, ["no-such-program-here"])["exit_code"] == 127
    assert _exec(acme, sid, ["cat"], stdin="piped")["stdout"] == "piped"
    statuses = [e["status"] for e in _events(acme, sid, "compute.exec")]
    assert statuses[0] == "timeout" and statuses[-2] == "error" and statuses[-1] == "ok"


def _peak_rss(server: Server) -> int:
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def test_bad_requests_are_refused_and_change_nothing(world: dict[str, Any]) -> None:
    acme, globex = world["acme"], world["globex"]
    sid = _session(acme)
    assert _attach(acme, sid, "warp-drive", status=422)["error"]["code"] == "unknown_provider"
    assert _attach(acme, sid, "local", status=422, disk="10G")["error"]["code"] == "invalid_options"
    missing = _attach(acme, sid, "relay", status=502, name="nowhere")["error"]
    assert missing["code"] == "compute_unavailable" and "'nowhere' is not connected" in missing["message"]
    assert acme.get(f"/v2/sessions/{sid}").json()["compute"] is None
    assert _events(acme, sid, "compute.attached") == []

    _attach(acme, sid, "local")
    for body in (
        {"command": ""},
        {"command": []},
        {"command": "true", "timeout_s": 0},
        {"command": "true", "timeout_s": 100_000},
        {"command": "true", "env": {"1BAD": "x"}},
        {"command": "true", "shell": True},
        {"command": 42},
    ):
        response = acme.post(f"/v2/sessions/{sid}/exec", json=body)
        assert response.status_code == 422, (body, response.text)
        assert set(response.json()["error"]) == {"code", "message"}
    assert acme.get(f"/v2/sessions/{sid}/metrics").json()["execs"] == 0

    assert globex.post(f"/v2/sessions/{sid}/exec", json={"command": "true"}).status_code == 404
    assert globex.post(f"/v2/sessions/{sid}/compute", json={"provider": "local"}).status_code == 404
    assert acme.post("/v2/sessions/sess_nope/exec", json={"command": "true"}).status_code == 404

    assert acme.post(f"/v2/sessions/{sid}/close").status_code == 200
    assert _exec(acme, sid, "true", status=409)["error"]["code"] == "session_closed"
    assert _attach(acme, sid, "local", status=409)["error"]["code"] == "session_closed"


def test_compute_named_at_creation_attaches_on_first_use(world: dict[str, Any]) -> None:
    acme = world["acme"]
    sid = _session(acme, compute="local")
    assert _exec(acme, sid, "echo ready")["stdout"] == "ready\n"
    assert [e["compute"] for e in _events(acme, sid, "compute.attached")] == ["local"]


def test_a_relay_of_another_tenant_is_never_usable(world: dict[str, Any]) -> None:
    acme, globex = world["acme"], world["globex"]
    world["relay"](world["tokens"][1], "globex-box")
    wait_until(lambda: _connected(globex, "globex-box"), what="globex's relay")
    assert not _connected(acme, "globex-box")
    sid = _session(acme)
    refused = _attach(acme, sid, "relay", status=502, name="globex-box")["error"]
    assert "'globex-box' is not connected" in refused["message"]
    theirs = _session(globex)
    assert _attach(globex, theirs, "relay")["options"] == {"name": "globex-box"}  # their only relay
    assert _exec(globex, theirs, "echo theirs")["stdout"] == "theirs\n"


def test_a_relay_with_a_bad_token_is_turned_away(world: dict[str, Any]) -> None:
    proc = world["relay"]("cvr_not_a_token", "intruder").process
    assert proc is not None
    assert proc.wait(30) == 2
    assert not _connected(world["acme"], "intruder")
