"""Shared fixtures: every test gets its own data folder under tmp_path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import warehouse
from tests.server import Server, mint_token

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

# Flush only when a test asks, so a test controls where the tail ends and the parts begin.
MANUAL = warehouse.FlushPolicy(rows=10**9, bytes=1 << 40, age_s=1e9, compact_files=10**9)


@pytest.fixture(autouse=True)
def _data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point CERVER_DATA at the test's folder so nothing touches ./cerver-data."""
    data = tmp_path / "cerver-data"
    monkeypatch.setenv("CERVER_DATA", str(data))
    return data


@pytest.fixture
def data_dir(_data_home: Path) -> Path:
    """The test's data folder."""
    return _data_home


@pytest.fixture
def wh(data_dir: Path) -> Iterator[warehouse.Warehouse]:
    """A writer over the test's folder that flushes only when told to."""
    w = warehouse.open(data_dir, policy=MANUAL)
    yield w
    w.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, str]]:
    """A real server on loopback (offline model) shared by a module, with tokens of two tenants."""
    data = tmp_path_factory.mktemp("api") / "cerver-data"
    data.mkdir()
    acme, globex = mint_token(data, "acme"), mint_token(data, "globex")
    server = Server(data, {"CERVER_DEFAULT_MODEL": "offline/echo"}).start()
    yield server, acme, globex
    server.stop()


@pytest.fixture
def client(api: tuple[Server, str, str]) -> Iterator[httpx.Client]:
    """A client of `api`, as the first tenant."""
    with api[0].client(api[1]) as c:
        yield c
