"""Fan-out: is a spawn as slow as its slowest variant (not the sum), and what does a child cost in memory?

1. Wall time. A real `cerver serve` and the fake provider (in this process, on loopback) whose five
   models answer after 100, 200, 300, 400 and 500 ms. Each round creates a session and spawns the
   five; the ratio is the spawn's wall time (seen by the client) over its slowest variant's latency
   (as the server measured it). Target: median <= 1.1. For scale, each round also times one
   run-llm on the slowest model alone.
2. Memory per child. In this process, on a warehouse under a temporary folder: a parent with N
   messages spawns children (8 at a time); tracemalloc measures what the children added. Copy on
   write means the figure does not grow with N; a copied transcript is shown beside it.

    python bench/fanout.py [--rounds 20] [--messages 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make `bench` and `tests` importable
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
from bench.procs import start_cerver, stop  # noqa: E402
from bench.results import write_section  # noqa: E402
from tests.fake_provider import FakeProvider, RecordedRequest  # noqa: E402
from tests.fake_wire import last_user_text  # noqa: E402

SECTION = "## Fan-out"
DELAYS = {"gpt-4o-mini": 0.1, "gpt-4o": 0.2, "gpt-4.1-mini": 0.3, "gpt-4.1-nano": 0.4, "gpt-4.1": 0.5}
MODELS = [f"openai/{name}" for name in DELAYS]
TARGET = 1.1


def answer(request: RecordedRequest) -> str:
    """The fake's reply, after the model's delay."""
    time.sleep(DELAYS.get(request.model, 0.0))
    return f"{request.model}: {last_user_text(request.provider, request.body)}"


def wall_times(rounds: int, tmp: Path) -> list[dict[str, float]]:
    """Per round: spawn wall, slowest variant latency, single slowest run-llm wall."""
    procs: list[subprocess.Popen] = []
    with FakeProvider(chunk_delay=0.0) as fake:
        fake.responder = answer
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        provider = {
            "OPENAI_API_KEY": "bench",
            "OPENAI_BASE_URL": fake.base_url + "/v1",
            "CERVER_MODEL_RETRIES": "0",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        try:
            url, token, _ = start_cerver(env, tmp, procs, provider)
            headers = {"Authorization": f"Bearer {token}"}
            out = []
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                for i in range(rounds + 2):  # two warm-up rounds
                    sid = client.post("/v2/sessions", json={"user_id": "bench", "model": MODELS[-1]}).json()
                    began = time.perf_counter()
                    single = client.post(f"/v2/sessions/{sid['session_id']}/run-llm", json={"prompt": "hi"})
                    single_ms = (time.perf_counter() - began) * 1000
                    single.raise_for_status()
                    body = {"prompt": "name a colour", "variants": [{"model": m} for m in MODELS]}
                    began = time.perf_counter()
                    spawned = client.post(f"/v2/sessions/{sid['session_id']}/spawn", json=body)
                    wall_ms = (time.perf_counter() - began) * 1000
                    spawned.raise_for_status()
                    variants = spawned.json()["variants"]
                    assert all(v["status"] == "ok" for v in variants), variants
                    if i >= 2:
                        slowest = max(v["latency_ms"] for v in variants)
                        total = sum(v["latency_ms"] for v in variants)
                        out.append({"wall": wall_ms, "slowest": slowest, "sum": total, "single": single_ms})
            return out
        finally:
            for proc in procs:
                stop(proc)


async def child_memory(messages: int, spawns: int, tmp: Path) -> dict[str, float]:
    """Bytes added per spawned child for a parent with `messages` messages, and a copied transcript's."""
    import warehouse
    from api.schemas import Spawn
    from api.sessions.events import event
    from api.sessions.fanout import FanOut
    from api.sessions.runner import Runner
    from api.sessions.service import SessionService
    from api.sessions.state import SessionState
    from api.sessions.store import SessionStore
    from api.settings import Settings

    wh = warehouse.open(str(tmp / f"memory-{messages}"))
    store = SessionStore(wh)
    try:
        service = SessionService(store)
        settings = Settings()
        fanout = FanOut(service, Runner(service, settings), settings)
        parent = SessionState("bench", "sess_parent")
        created = event("session.created", "bench", parent.session_id, user_id="u", model="offline/echo")
        turns = [
            event(
                "message",
                "bench",
                parent.session_id,
                role=("user", "assistant")[i % 2],
                content=f"m{i} " * 40,
            )
            for i in range(messages)
        ]
        await store.write(parent, [created, *turns])
        body = Spawn(prompt="go", variants=[{"model": "offline/echo"}] * 8)  # type: ignore[list-item]
        children = []
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for _ in range(spawns):
            plan = await fanout.start("bench", parent.session_id, body)
            children += [c.state for c in plan.children]
            parent.lock.release()  # measured before any child runs
        after = tracemalloc.take_snapshot()
        added = sum(s.size_diff for s in after.compare_to(before, "filename"))
        tracemalloc.stop()
        assert all(len(c.transcript) >= messages for c in children)  # each spawn adds its prompt
        copied = copy.deepcopy(parent.transcript)
        tracemalloc.start()
        start = tracemalloc.get_traced_memory()[0]
        copied = copy.deepcopy(parent.transcript)
        copy_bytes = tracemalloc.get_traced_memory()[0] - start
        tracemalloc.stop()
        del copied
        return {
            "messages": messages,
            "children": len(children),
            "per_child": added / len(children),
            "copy": copy_bytes,
        }
    finally:
        store.close()
        wh.close()


def render(walls: list[dict[str, float]], memory: list[dict[str, float]], rounds: int) -> str:
    ratios = [w["wall"] / w["slowest"] for w in walls]
    med = statistics.median
    q = statistics.quantiles
    with open("/proc/cpuinfo") as info:
        cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), "?")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    verdict = "met" if med(ratios) <= TARGET else "NOT met"
    lines = [
        SECTION,
        "",
        f"`python bench/fanout.py --rounds {rounds}` — five variants whose fake latencies are 100–500 ms, "
        "spawned through `cerver serve`; medians over the rounds (after two warm-up rounds).",
        "",
        "| figure | median | p90 |",
        "|---|---:|---:|",
        f"| spawn wall time, ms (client) | {med(w['wall'] for w in walls):.1f} | "
        f"{q([w['wall'] for w in walls], n=10)[-1]:.1f} |",
        f"| slowest variant's latency, ms (server) | {med(w['slowest'] for w in walls):.1f} | "
        f"{q([w['slowest'] for w in walls], n=10)[-1]:.1f} |",
        f"| **wall / slowest** (target ≤ {TARGET}: {verdict}) | **{med(ratios):.3f}** | "
        f"{q(ratios, n=10)[-1]:.3f} |",
        f"| sum of the five latencies, ms (what a serial fan-out would take) | "
        f"{med(w['sum'] for w in walls):.1f} | |",
        f"| one run-llm on the slowest model alone, ms (client) | {med(w['single'] for w in walls):.1f} | |",
        "",
        "Memory per child (tracemalloc, bytes a spawned child adds before it runs: its state, events and "
        "the parent's `session.spawned`), beside what copying the parent's transcript would cost:",
        "",
        "| parent's messages | children | bytes per child | a copied transcript, bytes |",
        "|---:|---:|---:|---:|",
    ]
    for m in memory:
        lines.append(f"| {m['messages']:,} | {m['children']} | {m['per_child']:,.0f} | {m['copy']:,.0f} |")
    lines += [
        "",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}; nproc: {os.cpu_count()}; cpu: {cpu}; "
        f"python {platform.python_version()}; commit {commit.stdout.strip()}",
        f"- load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Measure both, print the section and write it into bench/RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cerver-fanout-") as tmp:
        walls = wall_times(args.rounds, Path(tmp))
        memory = [asyncio.run(child_memory(n, 5, Path(tmp))) for n in (10, args.messages)]
    section = render(walls, memory, args.rounds)
    print(section)
    if not args.no_write:
        write_section(ROOT / "bench" / "RESULTS.md", SECTION, section)


if __name__ == "__main__":
    main()
