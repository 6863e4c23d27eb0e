"""Two `cerver serve` instances on loopback writing one table, one of them killed mid-way.

Real processes, real HTTP, real Delta commits racing on one table folder; each instance
has its own local log. Sessions are routed by `warehouse.routing.Ring`, as a load balancer
would; a batch that fails is retried to the same instance until it is acknowledged.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
from deltalake import DeltaTable

import warehouse
from bench.procs import wait_ready
from tests.conftest import MANUAL
from tests.server import CERVER, free_port
from warehouse.routing import Ring

TOKEN = "cvr_instances-test-token"
EVENTS, SESSIONS, BATCH = 20_000, 200, 20
FAST_FLUSH = {"CERVER_FLUSH_AGE_S": "0.2", "CERVER_REFRESH_S": "0.2"}


class Instance:
    """`cerver serve --data <shared> --wal <own folder>` on a loopback port, restartable on that port."""

    def __init__(self, name: str, shared: Path, tmp: Path, compact: bool = False):
        self.name, self.shared, self.wal = name, shared, tmp / name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"{name}.log"
        self.compact = compact
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self) -> Instance:
        """Start the process; `ready` waits for it to answer."""
        cmd = [CERVER, "serve", "--data", str(self.shared), "--wal", str(self.wal), "--port", str(self.port)]
        env = {**os.environ, "CERVER_API_TOKEN": TOKEN, **FAST_FLUSH}
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [*cmd, *([] if self.compact else ["--no-compact"])], stdout=out, stderr=out, env=env
            )
        return self

    def ready(self) -> Instance:
        assert self.process is not None
        wait_ready(self.url + "/healthz", self.process, self.log, 60)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=60)


def _batches() -> list[list[dict[str, object]]]:
    """EVENTS events in batches of one session each, sessions interleaved."""
    t0 = dt.datetime.now(dt.UTC)
    out = []
    for n in range(EVENTS // BATCH):
        session = f"sess-{n % SESSIONS:03d}"
        out.append(
            [
                {
                    "event_id": warehouse.new_event_id(),
                    "ts": (t0 + dt.timedelta(microseconds=n * BATCH + i)).isoformat(),
                    "user_id": "u1",
                    "session_id": session,
                    "type": "message",
                    "role": "user",
                    "content": f"event {i} of batch {n}",
                }
                for i in range(BATCH)
            ]
        )
    return out


def _send(instance: Instance, batches: list[list[dict[str, object]]], acked: list[str]) -> None:
    """Post each batch to its owner until it answers; only a 200 acknowledges the batch's events."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=instance.url, headers=headers, timeout=10) as client:
        for batch in batches:
            while True:
                try:
                    response = client.post("/v2/events", json=batch)
                except httpx.TransportError:  # down or restarting: the same instance, again
                    time.sleep(0.05)
                    continue
                if response.status_code == 200:
                    acked.extend(e["event_id"] for e in batch)  # type: ignore[misc]
                    break
                assert response.status_code >= 500, response.text
                time.sleep(0.05)


def test_two_instances_one_killed_store_every_acknowledged_event_once(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    a, b = Instance("a", shared, tmp_path).launch(), Instance("b", shared, tmp_path).launch()
    a.ready(), b.ready()
    instances = {"a": a, "b": b}
    ring = Ring(instances)
    by_owner: dict[str, list[list[dict[str, object]]]] = {"a": [], "b": []}
    for batch in _batches():
        by_owner[ring.owner(str(batch[0]["session_id"]))].append(batch)
    assert min(len(v) for v in by_owner.values()) > 300, "the ring should spread 200 sessions evenly"

    acked: list[str] = []
    senders = [  # two clients per instance, each with half of its batches
        threading.Thread(target=_send, args=(instances[name], batches[k::2], acked))
        for name, batches in by_owner.items()
        for k in range(2)
    ]
    try:
        for t in senders:
            t.start()
        while len(acked) < EVENTS // 3:
            time.sleep(0.01)
        b.stop(signal.SIGKILL)  # mid-flight: some batches written but not answered, some unflushed
        killed_at = len(acked)
        b.launch().ready()  # replays its own log; its clients retry their batch to it
        compactor = subprocess.run(  # compaction in one place, while both instances write
            [CERVER, "compact", "--data", str(shared), "--wal", str(tmp_path / "compactor")],
            capture_output=True,
            text=True,
            env={**os.environ, **FAST_FLUSH},
            timeout=120,
        )
        assert compactor.returncode == 0, compactor.stderr
        for t in senders:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in senders)
    finally:
        for instance in instances.values():
            if instance.process is not None and instance.process.poll() is None:
                instance.stop()
    assert EVENTS // 3 <= killed_at < EVENTS

    assert len(acked) == EVENTS == len(set(acked))
    with warehouse.open(shared, read_only=True) as reader:
        stored = reader.sql("select event_id from events").column(0).to_pylist()
    repeated = [i for i, n in collections.Counter(stored).items() if n > 1]
    assert not repeated, f"{len(repeated)} events stored twice, e.g. {repeated[:3]}"
    missing = set(acked) - set(stored)
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
    assert len(stored) == EVENTS

    table = DeltaTable(str(shared / "events"))
    operations = [c.get("cerver.operation") for c in table.history()]
    assert "compact" in operations, "the compactor's commit is in the table"
    assert all(Path(f.removeprefix("file://")).exists() for f in table.file_uris())
    for name in instances:  # nothing left behind in either log: every flush committed
        with warehouse.open(shared, wal=tmp_path / name, policy=MANUAL) as again:
            assert again.info()["tail_events"] == 0
    for instance in instances.values():
        assert "flush failed" not in instance.log.read_text()
