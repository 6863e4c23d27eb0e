"""A real `cerver serve` process on a loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

CERVER = str(Path(sys.executable).with_name("cerver"))


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mint_token(data: Path, tenant: str) -> str:
    """`cerver tokens create`, as a user would run it."""
    out = subprocess.run(
        [CERVER, "tokens", "create", "--tenant", tenant, "--data", str(data)],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


class Server:
    """Starts `cerver serve` on `data` with `env` added; `client(token)` talks to it."""

    def __init__(self, data: Path, env: dict[str, str] | None = None):
        self.data, self.port = data, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data.parent / f"server-{self.port}.log"
        self._env = {**os.environ, "CERVER_BACKOFF_S": "0.01", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        """Start and wait until /healthz answers."""
        self.data.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [CERVER, "serve", "--data", str(self.data), "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.url + "/healthz", timeout=1).raise_for_status()
                return self
            except httpx.HTTPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start:\n{self.log.read_text()}") from None
                time.sleep(0.05)

    def wait_warm(self, timeout_s: float = 120) -> None:
        """Wait until the server has loaded the model library (healthz `warm`): its memory is settled."""
        deadline = time.monotonic() + timeout_s
        while not httpx.get(self.url + "/healthz", timeout=5).json()["warm"]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not warm after {timeout_s} s:\n{self.log.read_text()}")
            time.sleep(0.1)

    def client(self, token: str | None) -> httpx.Client:
        """An HTTP client that sends `token` as a bearer token."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop it (SIGKILL to crash it) and wait."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
