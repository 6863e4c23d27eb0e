"""Helpers for the compute tests: a loop in a thread, an in-process relay hub, `cerver relay` processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

from tests.server import CERVER, free_port

T = TypeVar("T")
SECRETS = {"OPENAI_API_KEY": "sk-must-not-leak", "CERVER_API_TOKEN": "cvr_must_not_leak"}


class LoopThread:
    """One event loop in a background thread; tests hand it coroutines and wait for their results."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="compute-tests", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run `coro` on the loop and return its result (or raise its exception)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


class HubServer:
    """The real relay route and hub (api.routes.compute, api.relay.hub) served by uvicorn on a loopback port.

    Runs on the LoopThread's loop, so the test's workspaces and the hub share one event loop.
    """

    def __init__(self, loop: LoopThread, data: Path):
        from fastapi import FastAPI

        from api.auth import TokenStore
        from api.relay.hub import RelayHub
        from api.routes import compute as compute_routes

        self.loop, self.port = loop, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.hub = RelayHub()
        self.tokens = TokenStore(data)
        app = FastAPI()
        app.include_router(compute_routes.router)
        app.state.tokens = self.tokens
        app.state.compute = SimpleNamespace(config=SimpleNamespace(hub=self.hub))
        self.app = app
        self._server: Any = None

    def start(self) -> HubServer:
        """Serve until `stop`."""
        import uvicorn

        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self.loop.loop.call_soon_threadsafe(lambda: self.loop.loop.create_task(self._server.serve()))
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the relay hub did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.should_exit = True
            time.sleep(0.3)


class RelayProcess:
    """A real `cerver relay` child process (its environment holds secrets that must not reach commands)."""

    def __init__(self, server_url: str, token: str, name: str, root: Path, log: Path):
        self.args = [
            CERVER,
            "relay",
            "--server",
            server_url,
            "--token",
            token,
            "--name",
            name,
            "--root",
            str(root),
        ]
        self.log, self.name = log, name
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RelayProcess:
        """Start it (it connects by itself)."""
        env = {**os.environ, **SECRETS}
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, env=env)
        return self

    def kill(self) -> None:
        """SIGKILL it, as a crash or a pulled cable would end it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """End it politely."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        """What it printed."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def wait_until(check: Any, timeout: float = 20, what: str = "condition") -> None:
    """Poll `check()` until it is truthy."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
