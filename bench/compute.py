"""Compute overhead: `exec` of `true` through the API (local, relay) beside `true` run directly; a 50 MB move.

Everything runs side by side in one run, on this machine:

- direct: `subprocess.run(["true"])` in this process, the floor any exec pays;
- local: `POST /v2/sessions/{id}/exec {"command": ["true"]}` on a `local` session of a real
  `cerver serve` (HTTP, auth, a subprocess in its own process group, one durable event);
- relay: the same on a session whose compute is a real `cerver relay` on loopback (plus a
  WebSocket round trip and the relay's own subprocess).

The three are interleaved request by request so load on the shared cores hits them alike.
Then a workspace of 50 files of 1 MiB (random, so nothing compresses) moves local → relay and
relay → local a few times, timed as the client sees the `POST /compute`.

    .venv/bin/python bench/compute.py [--requests 300] [--moves 3] [--megabytes 50]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.procs import CERVER, ROOT, start, start_cerver, stop
from bench.results import write_section

HEADING = "## Compute"


def percentiles(ms: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    return statistics.median(ms), statistics.quantiles(ms, n=100, method="inclusive")[98]


def timed(call: object) -> float:
    """Milliseconds one call takes."""
    started = time.perf_counter()
    call()  # type: ignore[operator]
    return (time.perf_counter() - started) * 1000


def exec_true(client: httpx.Client, sid: str) -> None:
    """One exec of `true`; fails loudly on anything but success."""
    answer = client.post(f"/v2/sessions/{sid}/exec", json={"command": ["true"], "timeout_s": 30})
    if answer.status_code != 200 or answer.json()["exit_code"] != 0:
        raise RuntimeError(f"exec failed: {answer.status_code} {answer.text}")


def attach(client: httpx.Client, sid: str, provider: str, **options: object) -> tuple[float, dict]:
    """Attach (or move) compute; (client-side ms, answer)."""
    started = time.perf_counter()
    answer = client.post(
        f"/v2/sessions/{sid}/compute", json={"provider": provider, "options": options}, timeout=600
    )
    took = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise RuntimeError(f"attach {provider} failed: {answer.status_code} {answer.text}")
    return took, answer.json()


def session(client: httpx.Client, provider: str, **options: object) -> str:
    """A new session with that compute attached."""
    sid = client.post("/v2/sessions", json={"user_id": "bench"}).json()["session_id"]
    attach(client, sid, provider, **options)
    return sid


def wait_for_relay(client: httpx.Client, name: str, timeout_s: float = 30) -> None:
    """Until the server lists the relay."""
    deadline = time.monotonic() + timeout_s
    while not any(r["name"] == name for r in client.get("/v2/relays").json()["relays"]):
        if time.monotonic() > deadline:
            raise RuntimeError("the relay did not connect")
        time.sleep(0.1)


def overhead(client: httpx.Client, local: str, relayed: str, n: int, warmup: int) -> dict[str, list[float]]:
    """Interleaved timings of the three ways to run `true`."""
    ways = {
        "direct subprocess": lambda: subprocess.run(["true"], check=True),
        "API exec, local": lambda: exec_true(client, local),
        "API exec, relay": lambda: exec_true(client, relayed),
    }
    for _ in range(warmup):
        for call in ways.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(n):
        for name, call in ways.items():
            times[name].append(timed(call))
    return times


def moves(client: httpx.Client, megabytes: int, rounds: int) -> dict[str, list[tuple[float, dict]]]:
    """Move a workspace of `megabytes` files of 1 MiB back and forth between local and the relay."""
    sid = session(client, "local")
    fill = f"for i in $(seq {megabytes}); do head -c 1048576 /dev/urandom > f$i; done"
    made = client.post(f"/v2/sessions/{sid}/exec", json={"command": fill, "timeout_s": 300}, timeout=400)
    if made.status_code != 200 or made.json()["exit_code"] != 0:
        raise RuntimeError(f"could not fill the workspace: {made.text}")
    out: dict[str, list[tuple[float, dict]]] = {"local → relay": [], "relay → local": []}
    for _ in range(rounds):
        out["local → relay"].append(attach(client, sid, "relay", name="bench"))
        out["relay → local"].append(attach(client, sid, "local"))
    return out


def machine(args: argparse.Namespace) -> list[str]:
    """The machine block."""
    with open("/proc/cpuinfo") as info:
        cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), "?")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("fastapi", "uvicorn", "websockets"))
    return [
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}; nproc: {os.cpu_count()}; cpu: {cpu}",
        f"- load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- python {platform.python_version()}; {versions}",
        f"- commit {commit.stdout.strip() or '?'} plus the working tree; data and workspaces under "
        f"{tempfile.gettempdir()}; server, relay and this client on one machine (loopback)",
        f"- parameters: --requests {args.requests} (after {args.warmup} warm-up) --moves {args.moves}"
        f" --megabytes {args.megabytes}",
    ]


def render(info: list[str], times: dict[str, list[float]], moved: dict[str, list[tuple[float, dict]]]) -> str:
    """The RESULTS.md section."""
    base50, base99 = percentiles(times["direct subprocess"])
    rows = [
        "| way to run `true` | p50 ms | p99 ms | p50 / direct | p99 / direct |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, ms in times.items():
        p50, p99 = percentiles(ms)
        rows.append(f"| {name} | {p50:.2f} | {p99:.2f} | {p50 / base50:.1f}x | {p99 / base99:.1f}x |")
    local50 = percentiles(times["API exec, local"])[0]
    relay50 = percentiles(times["API exec, relay"])[0]
    move_rows = [
        "| move | bytes moved | files | median s | min s | MB/s (median) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, runs in moved.items():
        seconds = [ms / 1000 for ms, _ in runs]
        size, files = runs[0][1]["moved_bytes"], runs[0][1]["moved_files"]
        median = statistics.median(seconds)
        move_rows.append(
            f"| {name} | {size:,} | {files} | {median:.2f} | {min(seconds):.2f} | {size / 1e6 / median:.0f} |"
        )
    return "\n".join(
        [
            HEADING,
            "",
            "Written by `bench/compute.py`: `exec` of `true` through the API beside `true` run directly, "
            "interleaved request by request; then a workspace moved between `local` and a `cerver relay` on "
            "loopback (snapshot as tar, restore, stop the old).",
            "",
            "### Machine",
            "",
            *info,
            "",
            "### Exec overhead",
            "",
            *rows,
            "",
            f"Added by the API over a direct subprocess, at the median: local +{local50 - base50:.2f} ms, "
            f"relay +{relay50 - base50:.2f} ms (relay over local: +{relay50 - local50:.2f} ms). "
            "Each API exec also writes one `compute.exec` event durably (fsync) before it answers.",
            "",
            "### Moving a workspace",
            "",
            *move_rows,
            "",
        ]
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="execs per way (default 300)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up execs per way (default 20)")
    parser.add_argument("--moves", type=int, default=3, help="moves each way (default 3)")
    parser.add_argument("--megabytes", type=int, default=50, help="workspace size in MiB (default 50)")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print the section, leave RESULTS.md alone")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its section."""
    args = parse_args(argv)
    env = {**os.environ, "CERVER_DEFAULT_MODEL": "offline/echo", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="cerver-bench-compute-") as folder:
        tmp = Path(folder)
        try:
            url, token, _ = start_cerver(env, tmp, procs)
            relay_cmd = [CERVER, "relay", "--server", url, "--token", token, "--name", "bench"]
            procs.append(start([*relay_cmd, "--root", str(tmp / "relay")], tmp / "relay.log", env))
            with httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
            ) as client:
                wait_for_relay(client, "bench")
                local, relayed = session(client, "local"), session(client, "relay", name="bench")
                print(f"exec overhead: {args.requests} x 3 ...", flush=True)
                times = overhead(client, local, relayed, args.requests, args.warmup)
                print(f"moving {args.megabytes} MiB x {args.moves} each way ...", flush=True)
                moved = moves(client, args.megabytes, args.moves)
        finally:
            for proc in reversed(procs):
                stop(proc)
    section = render(machine(args), times, moved)
    print(section)
    if not args.no_write:
        write_section(args.results, HEADING, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
