"""The latency Cerver's run-llm adds over calling litellm directly, with a LiteLLM proxy side by side.

Every setup talks to the same fake OpenAI-compatible provider (tests/fake_provider.py, no chunk delay),
run in its own process on loopback. Each is measured two ways, like for like: a caller that wants the
whole answer (JSON) and one that streams (SSE, read to the end):

1. baseline: `litellm.acompletion(...)` in this process; `-sse`: with `stream=True`, consumed fully;
2. cerver: `POST /v2/sessions/{id}/run-llm` on a `cerver serve` subprocess with a temp data dir
   (`-sse`: with `"stream": true`);
3. proxy: `POST /v1/chat/completions` on a `litellm --config` proxy from its own virtualenv
   (created with pip if missing; if it cannot be installed or started, the reason is reported);
4. floor: bench/floor_server.py, a server in front of litellm that does nothing else (transcripts in
   a dict, no token, no events, nothing on disk), driven by the same client code as cerver: what any
   Python server in front of litellm adds here. cerver minus floor is Cerver's own work.

Each is measured sequentially (after a warm-up) and with N concurrent clients, each client on its own
session; a session (or, for baseline and proxy, the transcript sent) is renewed every --session-every runs
so transcripts stay short and alike. Rounds interleave the setups; figures are medians over rounds, and
"added" is the median over rounds of (setup - baseline of the same kind) in that round.

    .venv/bin/python bench/overhead.py                      # full run, writes bench/RESULTS.md
    .venv/bin/python bench/overhead.py --requests 40 --per-client 5 --rounds 1 --skip-proxy
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make `bench.results` importable
from bench.procs import free_port, start, start_cerver, stop, wait_ready  # noqa: E402
from bench.results import write_section  # noqa: E402

SECTION = "## run-llm overhead"
MODEL = "openai/gpt-4o-mini"
PROMPT = "Say hello to the benchmark in a few words."
MASTER_KEY = "sk-bench"
TARGET_P50_MS, TARGET_P99_MS = 3.0, 10.0
QUIET_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False"}
FAKE_CODE = (
    "import sys\nfrom tests.fake_provider import FakeProvider\n"
    "fake = FakeProvider(chunk_delay=0.0).start()\nprint(fake.base_url, flush=True)\nsys.stdin.read()\n"
)
NOTE = (
    "Concurrent rows: the baseline, the floor and the proxy each make their litellm calls in one Python\n"
    "process, CPU-bound at 16 clients, so requests queue behind one another's CPU work (one core's worth,\n"
    "under one GIL). Cerver hands a call that overlaps another to its model workers (processes of their\n"
    "own, api/adapters/models/workers.py), so its concurrent rows use more of the machine's cores: they\n"
    "can be faster than the baseline although each of its turns costs the machine more CPU. The CPU\n"
    "column is the whole machine's busy time per turn (client, fake provider and server together; the\n"
    "machine is shared, so it is noisy)."
)
MODES, FIELDS = (("seq", "sequential"), ("conc", "concurrent")), ("p50", "p99", "mean")
Lane = Callable[[], Awaitable[None]]
Results = dict[str, list[dict[str, "Stats"]]]  # setup -> one {mode: Stats} per round


class ProxyUnavailable(Exception):
    """The LiteLLM proxy could not be installed or started; the message says why."""


@dataclass(frozen=True)
class Stats:
    """Latency figures of one phase, in milliseconds, and the machine's busy CPU time per request."""

    p50: float
    p99: float
    mean: float
    cpu: float

    @classmethod
    def of(cls, ms: list[float], cpu_ms: float) -> Stats:
        return cls(
            statistics.median(ms),
            statistics.quantiles(ms, n=100, method="inclusive")[98],
            statistics.fmean(ms),
            cpu_ms / len(ms),
        )


def busy_ms() -> float:
    """CPU time the whole machine has spent busy (every core, every process), from /proc/stat."""
    with open("/proc/stat") as stat:
        ticks = [int(x) for x in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) * 1000 / os.sysconf("SC_CLK_TCK")  # less idle and iowait


# --- processes ------------------------------------------------------------------------------------------


def start_floor(env: dict[str, str], tmp: Path, procs: list[subprocess.Popen], fake: dict[str, str]) -> str:
    """bench/floor_server.py on a free port, talking to the fake as cerver does; returns its URL."""
    port = free_port()
    cmd = [sys.executable, str(ROOT / "bench/floor_server.py"), "--port", str(port)]
    procs.append(proc := start(cmd, tmp / "floor.log", {**env, **fake}))
    wait_ready(f"http://127.0.0.1:{port}/healthz", proc, tmp / "floor.log", 60)
    return f"http://127.0.0.1:{port}"


def start_fake(env: dict[str, str], tmp: Path, procs: list[subprocess.Popen]) -> str:
    """The fake provider in its own process (it must not share this process's GIL); returns its URL."""
    proc = start([sys.executable, "-c", FAKE_CODE], tmp / "fake.log", {**env, "PYTHONPATH": str(ROOT)}, True)
    procs.append(proc)
    url = proc.stdout.readline().decode().strip() if proc.stdout else ""
    if not url.startswith("http"):
        raise RuntimeError(f"the fake provider did not start:\n{(tmp / 'fake.log').read_text()[-2000:]}")
    return url


# --- the LiteLLM proxy ------------------------------------------------------------------------------------


def _pip(venv: Path, args: list[str]) -> str | None:
    """pip install in the venv; None on success, else its last error lines."""
    done = subprocess.run([str(venv / "bin/pip"), "install", "-q", *args], capture_output=True, text=True)
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line] or done.stderr.splitlines()
    return None if done.returncode == 0 else " / ".join(errors[-3:])


def _proxy_parts() -> list[str]:
    """Our litellm's `proxy` extra without the split-out `litellm-proxy` package and exact helper pins."""
    parts = []
    for req in metadata.requires("litellm") or []:
        spec, _, marker = (s.strip() for s in req.partition(";"))
        if "extra == 'proxy'" not in marker:
            continue
        marker = re.sub(r"\s*(and\s+)?extra == 'proxy'(\s+and)?\s*", " ", marker).strip()
        name = re.split(r"[<>=!~\[ ]", spec)[0]
        if name != "litellm-proxy":
            spec = name if name in ("litellm-proxy-extras", "litellm-enterprise") else spec
            parts.append(f"{spec}; {marker}" if marker else spec)
    return parts


def ensure_proxy_venv(venv: Path) -> Path:
    """The `litellm` CLI of a venv with litellm[proxy] at our litellm's version, installed if missing."""
    cli, version = venv / "bin/litellm", metadata.version("litellm")
    if cli.exists():
        return cli
    print(f"installing litellm[proxy]=={version} into {venv} (a few minutes) ...", flush=True)
    python = shutil.which("python3") or sys.executable
    if subprocess.run([python, "-m", "venv", str(venv)], capture_output=True).returncode != 0:
        raise ProxyUnavailable(f"could not create a virtualenv at {venv}")
    error = _pip(venv, [f"litellm[proxy]=={version}"])
    if error is not None:  # e.g. the index lacks the `litellm-proxy` package the extra pins: install by parts
        print(f"  litellm[proxy] did not install ({error}); installing its parts", flush=True)
        error = _pip(venv, [f"litellm=={version}", *_proxy_parts()])
    if error is not None or not cli.exists():
        raise ProxyUnavailable(f"pip could not install litellm[proxy]=={version}: {error}")
    return cli


def start_proxy(env: dict[str, str], tmp: Path, fake: str, venv: Path, procs: list[subprocess.Popen]) -> str:
    """A LiteLLM proxy (one worker, no database) mapping gpt-4o-mini to the fake; returns its URL."""
    cli, config, port = ensure_proxy_venv(venv), tmp / "proxy.yaml", free_port()
    config.write_text(
        f"model_list:\n  - model_name: gpt-4o-mini\n    litellm_params:\n      model: {MODEL}\n"
        f"      api_base: {fake}/v1\n      api_key: test\ngeneral_settings:\n  master_key: {MASTER_KEY}\n"
        "litellm_settings:\n  telemetry: false\n"
    )
    cmd = [
        str(cli),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    proxy_env = {k: v for k, v in env.items() if k != "DATABASE_URL"}
    procs.append(proc := start(cmd, tmp / "proxy.log", proxy_env))
    try:
        wait_ready(f"http://127.0.0.1:{port}/health/liveliness", proc, tmp / "proxy.log", 180)
    except RuntimeError as exc:
        raise ProxyUnavailable(f"the proxy did not start: {exc}") from exc
    return f"http://127.0.0.1:{port}"


# --- lanes: one client's stream of requests ---------------------------------------------------------------


class Transcript:
    """What a client sends: earlier turns plus the prompt, renewed every `every` turns (a new session)."""

    def __init__(self, every: int) -> None:
        self.every, self.turns, self.messages = every, 0, list[dict[str, str]]()

    def next(self) -> list[dict[str, str]]:
        if self.turns % self.every == 0:
            self.messages = []
        self.turns += 1
        self.messages.append({"role": "user", "content": PROMPT})
        return list(self.messages)

    def answer(self, text: str) -> None:
        if not text.startswith("echo:"):
            raise RuntimeError(f"unexpected answer {text[:200]!r}")
        self.messages.append({"role": "assistant", "content": text})


def baseline_lane(fake: str, every: int, stream: bool) -> Lane:
    import litellm

    transcript = Transcript(every)
    options = {"api_base": fake + "/v1", "api_key": "test", "num_retries": 0, "timeout": 120}

    async def call() -> None:
        if not stream:
            response = await litellm.acompletion(model=MODEL, messages=transcript.next(), **options)
            transcript.answer(response.choices[0].message.content)
            return
        response = await litellm.acompletion(
            model=MODEL, messages=transcript.next(), stream=True, stream_options={"include_usage": True},
            **options,
        )  # fmt: skip
        transcript.answer("".join([c.choices[0].delta.content or "" async for c in response if c.choices]))

    return call


async def sse_text(response: httpx.Response) -> str:
    """The text of an OpenAI-style (`data: {...choices}`) or Cerver (`event: delta`) stream."""
    parts = []
    async for line in response.raise_for_status().aiter_lines():
        if line.startswith("data: {"):
            data = json.loads(line[6:])
            parts += [c["delta"].get("content") or "" for c in data.get("choices", ())] or [
                data.get("text", "")
            ]
    return "".join(parts)


def proxy_lane(client: httpx.AsyncClient, every: int, stream: bool) -> Lane:
    transcript = Transcript(every)

    async def call() -> None:
        body = {"model": "gpt-4o-mini", "messages": transcript.next(), "stream": stream}
        if not stream:
            r = (await client.post("/v1/chat/completions", json=body)).raise_for_status()
            transcript.answer(r.json()["choices"][0]["message"]["content"])
            return
        async with client.stream("POST", "/v1/chat/completions", json=body) as r:
            transcript.answer(await sse_text(r))

    return call


async def cerver_lane(client: httpx.AsyncClient, runs: int, every: int, stream: bool) -> Lane:
    """Creates the lane's sessions up front, so that no timed request waits on a create."""
    sessions = []
    for i in range(math.ceil(runs / every)):
        r = await client.post("/v2/sessions", json={"user_id": f"bench-{i}", "model": MODEL})
        sessions.append(r.raise_for_status().json()["session_id"])
    done = 0

    async def call() -> None:
        nonlocal done
        url, body = f"/v2/sessions/{sessions[done // every]}/run-llm", {"prompt": PROMPT, "stream": stream}
        done += 1
        if stream:
            async with client.stream("POST", url, json=body) as r:
                output = await sse_text(r)
        else:
            r = await client.post(url, json=body)
            output = r.json().get("output", "") if r.status_code == 200 else ""
        if not output.startswith("echo:"):
            raise RuntimeError(f"run-llm answered {r.status_code}: {output[:300] or r.text[:300]}")

    return call


# --- measuring -------------------------------------------------------------------------------------------


async def drive(lanes: list[Lane], runs: int, warmup: int) -> Stats:
    """Each lane makes `warmup` untimed then `runs` timed requests, lanes concurrently."""
    out: list[float] = []
    busy: list[float] = []

    async def worker(lane: Lane) -> None:
        for i in range(warmup + runs):
            if i == warmup and not busy:
                busy.append(busy_ms())
            began = time.perf_counter()
            await lane()
            if i >= warmup:
                out.append((time.perf_counter() - began) * 1000)

    await asyncio.gather(*(worker(lane) for lane in lanes))
    return Stats.of(out, busy_ms() - busy[0])


async def measure(name: str, urls: dict[str, str], args: argparse.Namespace) -> dict[str, Stats]:
    """One setup: sequential, then `concurrency` clients at once."""
    kind, stream = name.removesuffix("-sse"), name.endswith("-sse")
    headers = {"Authorization": f"Bearer {urls['token'] if kind == 'cerver' else MASTER_KEY}"}
    limits = httpx.Limits(max_connections=4 * args.concurrency)
    async with httpx.AsyncClient(
        base_url=urls.get(kind, ""), headers=headers, limits=limits, timeout=120
    ) as c:

        async def lanes(count: int, runs: int) -> list[Lane]:
            if kind in ("cerver", "floor"):  # the floor speaks enough of Cerver's API
                return [await cerver_lane(c, runs, args.session_every, stream) for _ in range(count)]
            if kind == "proxy":
                return [proxy_lane(c, args.session_every, stream) for _ in range(count)]
            return [baseline_lane(urls["fake"], args.session_every, stream) for _ in range(count)]

        seq = await drive(await lanes(1, args.warmup + args.requests), args.requests, args.warmup)
        conc = await drive(await lanes(args.concurrency, args.per_client + 2), args.per_client, 2)
    return {"seq": seq, "conc": conc}


async def run_rounds(urls: dict[str, str], args: argparse.Namespace, notes: dict[str, str]) -> Results:
    """Rounds of every setup in turn, in one event loop (litellm keeps its HTTP clients per loop)."""
    kinds = ("baseline", "floor", "cerver", "proxy")
    names = [f"{kind}{suffix}" for suffix in ("", "-sse") for kind in kinds]
    results: Results = {name: [] for name in names if name.removesuffix("-sse") in urls}
    notes["workers"] = await warm_workers(urls, args)
    await baseline_lane(urls["fake"], 1, stream=False)()  # litellm imported and warm here too
    # This process holds litellm's millions of objects (the baseline), and a full collection
    # walking them stalled it for 200-250 ms, which landed in whichever setup was being timed.
    # Frozen, as Cerver's server and workers freeze theirs, a full collection takes ~10 ms.
    gc.collect()
    gc.freeze()
    for i in range(args.rounds):
        for name in list(results):
            try:
                results[name].append(r := await measure(name, urls, args))
            except (httpx.HTTPError, RuntimeError, KeyError) as exc:
                if not name.startswith("proxy"):
                    raise
                notes["proxy"], _ = f"{name} failed while measuring: {exc!r}", results.pop(name)
                continue
            shown = " | ".join(f"{m} p50 {r[m].p50:6.2f} p99 {r[m].p99:6.2f}" for m in r)
            print(f"round {i + 1} {name:9}: {shown}", flush=True)
    return results


async def warm_workers(urls: dict[str, str], args: argparse.Namespace) -> str:
    """Overlap turns on cerver until its model workers are up, as a server that has been busy has them.

    They start the first time two turns overlap (each imports litellm, seconds of CPU), which would
    otherwise land in the first round's concurrent phase. Returns what /healthz says of them.
    """
    headers = {"Authorization": f"Bearer {urls['token']}"}
    async with httpx.AsyncClient(base_url=urls["cerver"], headers=headers, timeout=120) as c:
        lanes = [await cerver_lane(c, 2, 2, stream=False) for _ in range(args.concurrency)]
        deadline, ready, seen = time.monotonic() + 120, -1, 0
        while time.monotonic() < deadline:
            await asyncio.gather(*(lane() for lane in lanes))
            lanes = [await cerver_lane(c, 2, 2, stream=False) for _ in range(args.concurrency)]
            workers = (await c.get("/healthz")).json().get("model_workers", {})
            ready, seen = workers.get("ready", 0), seen + 1 if workers.get("ready", 0) == ready else 0
            if ready and seen >= 5:  # the same count five bursts running: all that will start have
                break
            await asyncio.sleep(0.5)
    print(f"cerver's model workers: {ready} ready", flush=True)
    return f"{ready} model worker(s) ready before the first round (CERVER_MODEL_WORKERS)"


def added(results: Results, name: str, mode: str, field: str, over: str = "baseline") -> float:
    """Median over rounds of (setup - `over` of the same kind) at one figure, both measured in one round."""
    pairs = zip(results[name], results[over + "-sse" if name.endswith("-sse") else over])
    return statistics.median(getattr(s[mode], field) - getattr(b[mode], field) for s, b in pairs)


# --- reporting --------------------------------------------------------------------------------------------


def machine(args: argparse.Namespace, proxy_version: str | None) -> list[str]:
    with open("/proc/cpuinfo") as info:
        cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), "?")
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("litellm", "fastapi", "uvicorn", "httpx"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    fs = subprocess.run(["df", "--output=fstype", tempfile.gettempdir()], capture_output=True, text=True)
    return [
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}; nproc: {os.cpu_count()}; cpu: {cpu}",
        f"- load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- python {platform.python_version()}; {versions}; proxy: litellm {proxy_version or '-'}",
        f"- commit {commit.stdout.strip() or '?'} plus the working tree; Cerver's data dir on "
        f"{(fs.stdout.split() or ['?'])[-1]} under {tempfile.gettempdir()} (every append is fsynced)",
        f"- parameters: --requests {args.requests} (after {args.warmup} warm-up)"
        f" --concurrency {args.concurrency} --per-client {args.per_client} --rounds {args.rounds}"
        f" --session-every {args.session_every}",
    ]


def table(results: Results) -> list[str]:
    rows = ["| setup | mode | p50 ms | p99 ms | mean ms | added p50 ms | added p99 ms | machine CPU ms/turn "
            "| p50 per round |"]  # fmt: skip
    rows.append("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for name in results:
        for mode, label in MODES:
            figures = [f"{statistics.median(getattr(r[mode], f) for r in results[name]):.2f}" for f in FIELDS]
            figures += [
                f"{added(results, name, mode, f):+.2f}" if not name.startswith("baseline") else ""
                for f in FIELDS[:2]
            ]
            figures.append(f"{statistics.median(r[mode].cpu for r in results[name]):.2f}")
            figures.append(", ".join(f"{r[mode].p50:.2f}" for r in results[name]))
            rows.append(f"| {name} | {label} | {' | '.join(figures)} |")
    return rows


def verdicts(results: Results, proxy_note: str | None) -> list[str]:
    lines = []
    for cerver in ("cerver", "cerver-sse"):
        for mode, label in MODES:
            p50, p99 = added(results, cerver, mode, "p50"), added(results, cerver, mode, "p99")
            ok = ["PASS" if v <= t else "FAIL" for v, t in ((p50, TARGET_P50_MS), (p99, TARGET_P99_MS))]
            lines.append(
                f"- {cerver} added, {label}: p50 {p50:+.2f} ms (target <= {TARGET_P50_MS:g}: {ok[0]}), "
                f"p99 {p99:+.2f} ms (target <= {TARGET_P99_MS:g}: {ok[1]})"
            )
            floor = cerver.replace("cerver", "floor")
            if floor in results and mode == "seq":  # concurrent, cerver spreads over processes
                f50, f99 = added(results, floor, mode, "p50"), added(results, floor, mode, "p99")
                o50, o99 = (added(results, cerver, mode, f, over="floor") for f in ("p50", "p99"))
                lines.append(
                    f"  - {floor} added: p50 {f50:+.2f} ms, p99 {f99:+.2f} ms; "
                    f"Cerver's own work (cerver - floor): p50 {o50:+.2f} ms, p99 {o99:+.2f} ms"
                )
            if mode == "conc":
                names = [cerver.replace("cerver", k) for k in ("baseline", "floor", "cerver", "proxy")]
                cpu = ", ".join(
                    f"{name} {statistics.median(r[mode].cpu for r in results[name]):.2f}"
                    for name in names
                    if name in results
                )
                lines.append(f"  - machine CPU per turn, ms: {cpu}")
            proxy = cerver.replace("cerver", "proxy")
            if proxy in results:
                x50, x99 = added(results, proxy, mode, "p50"), added(results, proxy, mode, "p99")
                less = "PASS" if p50 < x50 and p99 < x99 else "FAIL"
                lines.append(f"  - {proxy} added: p50 {x50:+.2f} ms, p99 {x99:+.2f} ms; less at both: {less}")
    return lines + ([f"- LiteLLM proxy not measured: {proxy_note}"] if proxy_note else [])


def render(results: Results, info: list[str], proxy_note: str | None) -> str:
    intro = (
        "Written by `bench/overhead.py`: the latency of one turn against a fake OpenAI-compatible provider\n"
        "on loopback (no chunk delay, own process). baseline: litellm called in-process; cerver: `run-llm`\n"
        "on `cerver serve`; proxy: a LiteLLM proxy's `/v1/chat/completions`; floor: bench/floor_server.py,\n"
        "a server in front of litellm that does nothing else (no token, events or disk), the least any\n"
        "server in front of litellm adds here. Plain rows wait for the whole\n"
        "answer (JSON; litellm then calls the provider without streaming); `-sse` rows stream it, read to\n"
        "the end. Figures are medians over interleaved rounds; added = median over rounds of (setup -\n"
        "baseline of the same kind)."
    )
    return "\n".join([
        SECTION, "", intro, "", "### Machine", "", *info, "",
        "### Figures", "", *table(results), "", "### Targets", "", *verdicts(results, proxy_note), "",
        NOTE, "",
        "Reproduce: `.venv/bin/python bench/overhead.py` (quick: `--requests 40 --per-client 5 --rounds 1`).",
    ])  # fmt: skip


# --- main ------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--requests", type=int, default=300, help="timed sequential requests per setup and round")
    p.add_argument("--warmup", type=int, default=20, help="untimed sequential requests before those")
    p.add_argument("--concurrency", type=int, default=16, help="concurrent clients")
    p.add_argument("--per-client", type=int, default=50, help="timed requests per concurrent client")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (figures are medians over them)")
    p.add_argument("--session-every", type=int, default=20, help="a new session/transcript every N runs")
    p.add_argument("--skip-proxy", action="store_true", help="do not install, start or measure the proxy")
    p.add_argument("--proxy-venv", type=Path, default=Path("/tmp/litellm-proxy-venv"))
    p.add_argument("--results", default=str(ROOT / "bench/RESULTS.md"), help="where to write; '' for nowhere")
    return p.parse_args(argv)


def proxy_version(venv: Path) -> str:
    code = ["-c", "import importlib.metadata as m; print(m.version('litellm'))"]
    return subprocess.run([str(venv / "bin/python"), *code], capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.update(QUIET_ENV)  # before litellm is imported, here and in every child
    env, procs, notes = dict(os.environ), list[subprocess.Popen](), dict[str, str]()
    with tempfile.TemporaryDirectory(prefix="cerver-overhead-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            urls = {"fake": start_fake(env, tmp, procs), "baseline": ""}
            fake_env = {"OPENAI_API_KEY": "test", "OPENAI_BASE_URL": urls["fake"] + "/v1"}
            urls["cerver"], urls["token"], _ = start_cerver(env, tmp, procs, fake_env)
            urls["floor"] = start_floor(env, tmp, procs, fake_env)
            if args.skip_proxy:
                notes["proxy"] = "skipped (--skip-proxy)"
            else:
                try:
                    proxy = start_proxy(env, tmp, urls["fake"], args.proxy_venv, procs)
                    urls["proxy"] = proxy
                except ProxyUnavailable as exc:
                    notes["proxy"] = str(exc).replace("\n", " / ")
                    print(f"LiteLLM proxy unavailable: {exc}", file=sys.stderr)
            results = asyncio.run(run_rounds(urls, args, notes))
        finally:
            for proc in reversed(procs):
                stop(proc)
    version = proxy_version(args.proxy_venv) if "proxy" in urls else None
    info = [*machine(args, version), f"- cerver: {notes.get('workers', '?')}"]
    section = render(results, info, notes.get("proxy"))
    print("\n" + section)
    if args.results:
        write_section(Path(args.results), SECTION, section)
        print(f"\nwrote the '## run-llm overhead' section of {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
