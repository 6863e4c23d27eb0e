"""Harnesses, measured side by side in one run against the fake provider (its own process, loopback).

1. The litellm path: `run-llm` on `cerver serve` at this tree vs the same tree with the runner as it was
   before harnesses (`--before REV`, default the commit before them), JSON and SSE, sequential requests
   interleaved between the two servers: does the fast path pay for the harness registry?
2. An agent CLI turn: the pinned `claude` / `codex` run directly (the same argv and environment the
   harness builds, in a fresh folder) vs the same turn through `run-llm` on a claude-code / codex session,
   interleaved. Every timed turn resumes the CLI's session. What Cerver adds to an agent's turn.

    .venv/bin/python bench/harness.py                  # writes the "## Harnesses" section of bench/RESULTS.md
    .venv/bin/python bench/harness.py --requests 50 --turns 3 --results ''
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
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.procs import start, start_cerver, stop  # noqa: E402
from bench.results import write_section  # noqa: E402

SECTION = "## Harnesses"
BEFORE = "9f2c4be"  # the runner before harnesses (api/sessions/runner.py)
MODELS = {
    "litellm": "openai/gpt-4o-mini",
    "claude-code": "anthropic/claude-sonnet-4-6",
    "codex": "openai/gpt-5.5",
}
FAKE = (
    "import sys\nfrom tests.fake_provider import FakeProvider\n"
    "fake = FakeProvider(chunk_delay=0.0).start()\nprint(fake.base_url, flush=True)\nsys.stdin.read()\n"
)


def provider_env(base: str) -> dict[str, str]:
    """The server environment: keys, base URLs on the fake, proxies trapped, the pinned CLIs."""
    bins = ROOT / "tests" / "clis" / "node_modules" / ".bin"
    return {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": base + "/v1",
        "ANTHROPIC_API_KEY": "sk-ant-bench",
        "ANTHROPIC_BASE_URL": base,
        "ANTHROPIC_API_BASE": base,
        "HTTP_PROXY": base,
        "HTTPS_PROXY": base,
        "NO_PROXY": "127.0.0.1,localhost",
        "CERVER_CLAUDE_BIN": str(bins / "claude"),
        "CERVER_CODEX_BIN": str(bins / "codex"),
    }


def old_tree(rev: str, tmp: Path) -> Path:
    """This tree's `api` package with the runner as it was at `rev` (served through PYTHONPATH)."""
    tree = tmp / "before-code"
    tree.mkdir()
    subprocess.run(["cp", "-r", str(ROOT / "api"), str(tree)], check=True)
    runner = subprocess.run(
        ["git", "show", f"{rev}:api/sessions/runner.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    (tree / "api" / "sessions" / "runner.py").write_text(runner)
    return tree


def session(client: httpx.Client, harness: str) -> str:
    r = client.post("/v2/sessions", json={"user_id": "bench", "harness": harness, "model": MODELS[harness]})
    r.raise_for_status()
    return r.json()["session_id"]


def turn(client: httpx.Client, sid: str, prompt: str, stream: bool) -> float:
    """One run-llm, read to the end; its wall time in ms."""
    began = time.perf_counter()
    body = {"prompt": prompt, "stream": stream}
    with client.stream("POST", f"/v2/sessions/{sid}/run-llm", json=body) as r:
        for _ in r.iter_bytes():
            pass
        r.raise_for_status()
    return (time.perf_counter() - began) * 1000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def litellm_part(args: argparse.Namespace, tmp: Path, env: dict[str, str], procs: list) -> list[str]:
    """run-llm on the litellm harness: this tree vs the runner before harnesses, interleaved."""
    servers = {}
    for name, extra in (("now", {}), ("before", {"PYTHONPATH": str(old_tree(args.before, tmp))})):
        folder = tmp / name
        folder.mkdir()
        url, token, _ = start_cerver(env, folder, procs, extra)
        servers[name] = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    times: dict[tuple[str, bool], list[float]] = {(n, s): [] for n in servers for s in (False, True)}
    sids = {n: session(c, "litellm") for n, c in servers.items()}
    for i in range(args.requests + 20):
        for stream in (False, True):
            for name, client in servers.items():
                if i % 20 == 0:
                    sids[name] = session(client, "litellm")  # short transcripts, alike on both sides
                took = turn(client, sids[name], "Say hello in a few words.", stream)
                if i >= 20:  # after the warm-up
                    times[(name, stream)].append(took)
    lines = [
        "### The litellm path: run-llm now vs the runner before harnesses",
        "",
        f"{args.requests} sequential runs per row after 20 warm-up; the two servers take turns, run by run.",
        "",
        "| mode | before p50 ms | now p50 ms | before p99 ms | now p99 ms | now / before p50 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for stream in (False, True):
        before, now = times[("before", stream)], times[("now", stream)]
        b50, n50 = statistics.median(before), statistics.median(now)
        lines.append(
            f"| {'SSE' if stream else 'JSON'} | {b50:.2f} | {n50:.2f} | {pct(before, 0.99):.2f} | "
            f"{pct(now, 0.99):.2f} | {n50 / b50:.3f} |"
        )
    for client in servers.values():
        client.close()
    return [*lines, ""]


def cli_part(args: argparse.Namespace, tmp: Path, env: dict[str, str], procs: list) -> list[str]:
    """An agent CLI turn run directly vs through run-llm, interleaved; every timed turn resumes."""
    from api.adapters.compute.base import base_env
    from api.adapters.harness import TurnRequest, harness_for
    from api.adapters.models import CallOptions

    folder = tmp / "cli"
    folder.mkdir()
    url, token, _ = start_cerver(env, folder, procs)
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=300)
    lines = [
        "### An agent CLI turn: the CLI run directly vs through run-llm",
        "",
        f"{args.turns} timed turns per row (after one untimed first turn), direct and Cerver interleaved; "
        "direct = the same argv and environment the harness builds, `subprocess.run` in a fresh folder; "
        "Cerver = JSON `run-llm` (workspace, CLI home, parsing, events fsynced).",
        "",
        "| harness | direct p50 ms | through Cerver p50 ms | added p50 ms | Cerver / direct |",
        "|---|---:|---:|---:|---:|",
    ]
    saved = dict(os.environ)
    os.environ.update(env)  # the harness reads keys and binaries from the environment, as the server does
    try:
        for name in ("codex", "claude-code"):
            harness = harness_for(name)
            work, home = folder / f"{name}-work", folder / f"{name}-home"
            work.mkdir()
            resume = None
            direct, through = [], []
            sid = session(client, name)
            for i in range(args.turns + 1):
                request = TurnRequest(
                    MODELS[name], [], CallOptions(), False, f"turn {i}", home=home, resume=resume
                )
                binary = harness.locate()
                (home / "tmp").mkdir(parents=True, exist_ok=True)
                harness.prepare(home, request)
                run_env = {**base_env(str(work)), **harness.base_env(binary, home), **harness.env(home)}
                began = time.perf_counter()
                done = subprocess.run(
                    harness.argv(binary, request),
                    env=run_env,
                    cwd=work,
                    capture_output=True,
                    text=True,
                    stdin=subprocess.DEVNULL,
                    check=True,
                )
                took = (time.perf_counter() - began) * 1000
                parser = harness.parser(request)
                for line in done.stdout.splitlines():
                    parser.feed(line)
                resume = parser.finish().cli
                cerver = turn(client, sid, f"turn {i}", False)
                if i:
                    direct.append(took)
                    through.append(cerver)
            d50, c50 = statistics.median(direct), statistics.median(through)
            lines.append(f"| {name} | {d50:.0f} | {c50:.0f} | {c50 - d50:+.0f} | {c50 / d50:.3f} |")
    finally:
        os.environ.clear()
        os.environ.update(saved)
        client.close()
    return lines


def machine(args: argparse.Namespace) -> list[str]:
    """The machine block, as the other sections have it."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return [
        "### Machine",
        "",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; nproc: {os.cpu_count()}",
        f"- load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (cores shared)",
        f"- python {platform.python_version()}; claude 2.1.332, codex 0.171.0 (tests/clis)",
        f"- commit {commit.stdout.strip()} plus the working tree; before = runner.py at {args.before}",
        f"- parameters: --requests {args.requests} --turns {args.turns}",
    ]


def main() -> None:
    """Run both parts and print (and write) the figures."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", default=BEFORE, help="the commit whose runner is the 'before' server")
    p.add_argument("--requests", type=int, default=200, help="timed litellm runs per server and mode")
    p.add_argument(
        "--turns", type=int, default=5, help="timed CLI turns per harness, direct and through Cerver"
    )
    p.add_argument("--results", default=str(ROOT / "bench/RESULTS.md"), help="where to write; '' for nowhere")
    args = p.parse_args()
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="cerver-bench-harness-") as tmp_name:
        tmp = Path(tmp_name)
        fake_env = {**os.environ, "PYTHONPATH": str(ROOT)}
        fake = start([sys.executable, "-c", FAKE], tmp / "fake.log", fake_env, pipes=True)
        procs.append(fake)
        base = fake.stdout.readline().decode().strip() if fake.stdout else ""
        env = provider_env(base)
        try:
            lines = litellm_part(args, tmp, env, procs) + cli_part(args, tmp, env, procs)
        finally:
            for proc in procs:
                stop(proc)
    section = "\n".join([SECTION, "", *lines, "", *machine(args)])
    print(section)
    if args.results:
        write_section(Path(args.results), SECTION, section)


if __name__ == "__main__":
    main()
