"""Child processes for the benchmarks: start, wait for, stop, and `cerver serve` on a fresh data dir."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CERVER = str(Path(sys.executable).with_name("cerver"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(cmd: list[str], log: Path, env: dict[str, str], pipes: bool = False) -> subprocess.Popen:
    """A child logging to `log`; with `pipes`, its stdin and stdout are pipes (stderr goes to the log)."""
    pipe = subprocess.PIPE if pipes else None
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd, stdin=pipe, stdout=pipe or out, stderr=out if pipes else subprocess.STDOUT, env=env, cwd=ROOT
        )


def stop(proc: subprocess.Popen) -> None:
    """Terminate a child we started, then kill it if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout_s: float) -> None:
    """Until `url` answers 200 (and, where it says, `"warm": true`: measure a steady server)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            r = httpx.get(url, timeout=1)
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else None
            if r.status_code == 200 and (not isinstance(body, dict) or body.get("warm", True)):
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise RuntimeError(f"{url} did not come up (exit code {proc.poll()}):\n{tail}")
        time.sleep(0.1)


def start_cerver(
    env: dict[str, str], tmp: Path, procs: list[subprocess.Popen], extra_env: dict[str, str] | None = None
) -> tuple[str, str, Path]:
    """`cerver serve` on a fresh data dir under `tmp`; returns its URL, a token and the data dir."""
    data, port = tmp / "cerver-data", free_port()
    mint = [CERVER, "tokens", "create", "--tenant", "bench", "--data", str(data)]
    token = subprocess.run(mint, capture_output=True, text=True, check=True, env=env).stdout.strip()
    cmd = [CERVER, "serve", "--data", str(data), "--port", str(port)]
    proc = start(cmd, tmp / "cerver.log", {**env, **(extra_env or {})})
    procs.append(proc)
    wait_ready(f"http://127.0.0.1:{port}/healthz", proc, tmp / "cerver.log", 60)
    return f"http://127.0.0.1:{port}", token, data
