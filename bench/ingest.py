"""Ingest throughput: durable REST batches through the real server, single events, and the importers.

1. REST batches, paced: `cerver serve` on a fresh data dir; 8 clients together offer 25,000 events/s
   in batches of 500 events (~500 bytes each) for 60 s, each on a fixed schedule. Every answer must
   be 200 with all 500 accepted (each is durable before it is answered). Reported: events/s overall
   and per 10 s window (the lowest shows whether the rate was sustained), and answer latency counted
   from each batch's scheduled send (a late answer that delays the next send is not hidden).
2. REST batches, flat out: each client sends again as soon as it is answered: the most it takes.
3. Single events, flat out: one event per request, from 8 clients and then from 32 (the issue
   names no client count for these; requests that arrive together share one append).
   Afterwards a read-only warehouse on the same folder counts what landed: it must equal what
   the server acknowledged.
4. Importers: a synthetic folder of Claude Code and Codex transcripts, made by copying the real CLI
   fixtures (tests/fixtures/) with fresh ids, imported with `cerver import`: lines/s, and a second
   import of the same folder (nothing to do).

    .venv/bin/python bench/ingest.py                   # the full run, about 4 minutes
    .venv/bin/python bench/ingest.py --seconds 20 --flat-seconds 10 --single-seconds 10 --import-files 20

The clients run in this process on the same 2 cores as the server, so the figures include their
cost. The report is printed and written to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

import warehouse  # noqa: E402
from bench.loadclient import Connection  # noqa: E402
from bench.procs import CERVER, start_cerver, stop  # noqa: E402
from bench.results import write_section  # noqa: E402

SECTION = "## Ingest"
MARK = b"@@@@@@@@"  # replaced by a batch number, so every batch has fresh ids
WINDOW_S = 10.0
BATCHES = itertools.count()  # batch numbers across phases: every batch has fresh ids
PACED, FLAT = "batches of 500, paced", "batches of 500, flat out"
SINGLE, SINGLE_MANY = "single events, flat out", "single events, flat out, more clients"
QUICK = "--seconds 20 --flat-seconds 10 --single-seconds 10 --import-files 20"
TARGETS = {"batch_events_s": 25_000, "batch_p99_ms": 50.0, "single_events_s": 2_000}
FIXTURES = ROOT / "tests" / "fixtures"
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def batch_template(size: int) -> bytes:
    """A JSON array of `size` events of about 500 bytes each, ids and sessions keyed by MARK."""
    ts = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    words = "the quick brown fox jumps over the lazy dog while the session layer keeps every turn"
    events = []
    for i in range(size):
        common = {
            "event_id": f"b{size}-{MARK.decode()}-{i:04d}",
            "ts": ts,
            "session_id": f"s{size}-{MARK.decode()}-{i % 10}",
            "user_id": f"user-{i % 50}",
            "harness": "import:bench",
            "model": "openai/gpt-4o-mini",
        }
        if i % 2:
            events.append(
                common
                | {
                    "type": "run.completed",
                    "run_id": f"r{MARK.decode()}-{i}",
                    "status": "ok",
                    "input_tokens": 1200 + i,
                    "output_tokens": 300 + i,
                    "cost_usd": 0.00036,
                    "latency_ms": 812.5,
                    "ttft_ms": 210.25,
                    "attrs": {"attempts": [{"model": "openai/gpt-4o-mini", "ok": True, "ms": 812.5}]},
                }
            )
        else:
            events.append(common | {"type": "message", "role": "user", "content": f"{words} ({i}) " * 2})
    return json.dumps(events, separators=(",", ":")).encode()


@dataclass
class Phase:
    """What the clients saw in one phase."""

    seconds: float = 0.0
    requests: int = 0
    events: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    windows: list[int] = field(default_factory=list)  # events acknowledged per window

    @property
    def events_s(self) -> float:
        return self.events / self.seconds

    def p(self, q: int) -> float:
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[q - 1]


async def post_for(
    url: str, token: str, clients: int, seconds: float, size: int, rate: float | None = None
) -> Phase:
    """`clients` concurrent posters of `size`-event batches for `seconds`; every answer is checked.

    With `rate` (events/s, all clients together) each client sends on a fixed schedule and latency
    counts from the scheduled moment, so a slow answer that delays the next send is not hidden.
    Without it, each client sends its next batch as soon as the last is answered (the most the
    server can take).
    """
    template = batch_template(size)
    phase = Phase()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    interval = clients * size / rate if rate else 0.0
    began = time.perf_counter()
    deadline = began + seconds

    async def poster(offset: float) -> None:
        client = Connection(url, headers)
        due = began + offset
        while due < deadline:
            if interval:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            else:
                due = time.perf_counter()
            body = template.replace(MARK, b"%08d" % next(BATCHES))
            status, text = await client.post("/v2/events", body)
            done = time.perf_counter()
            if status != 200 or json.loads(text).get("accepted") != size:
                raise RuntimeError(f"POST /v2/events answered {status}: {text[:300]!r}")
            phase.requests += 1
            phase.events += size
            phase.latencies_ms.append((done - due) * 1000)
            window = int((done - began) // WINDOW_S)
            phase.windows += [0] * (window + 1 - len(phase.windows))
            phase.windows[window] += size
            due += interval
        await client.close()

    await asyncio.gather(*(poster(i * interval / clients) for i in range(clients)))
    phase.seconds = time.perf_counter() - began
    phase.windows = phase.windows[: int(seconds // WINDOW_S)]  # the last, partial window would read low
    return phase


# --- importers ---------------------------------------------------------------------------------------------


def _fresh_ids(text: bytes, salt: str) -> bytes:
    """The transcript with every UUID (and the fake provider's ids) replaced, consistently per salt."""
    text = UUID.sub(lambda m: str(uuid.uuid5(uuid.NAMESPACE_OID, salt + m.group().decode())).encode(), text)
    return re.sub(rb"fake(\d{6})", lambda m: b"fake" + salt.encode() + m.group(1), text)


def synthetic_transcripts(root: Path, files: int, repeat: int) -> dict[str, tuple[Path, int]]:
    """Claude Code and Codex folders of `files` transcripts, each the fixture conversation `repeat` times."""
    made = {}
    claude = next((FIXTURES / "claude-code" / "projects").glob("*/*.jsonl"))
    codex = next((FIXTURES / "codex" / "sessions").glob("*/*/*/rollout-*.jsonl"))
    for source, fixture in (("claude-code", claude), ("codex", codex)):
        text, lines = fixture.read_bytes(), 0
        for f in range(files):
            session = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{source}-{f}"))
            body = b"".join(_fresh_ids(text, f"{f}.{r}.") for r in range(repeat))
            # One session per file: every copy of the conversation keeps the file's session id.
            first_id = UUID.search(_fresh_ids(text, f"{f}.0.")).group()
            body = body.replace(first_id, session.encode())
            if source == "claude-code":
                path = root / source / "projects" / f"-bench-{f % 20}" / f"{session}.jsonl"
            else:
                path = (
                    root
                    / source
                    / "sessions"
                    / "2026"
                    / "11"
                    / f"{1 + f % 28:02d}"
                    / f"rollout-{session}.jsonl"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            lines += body.count(b"\n")
        made[source] = (root / source, lines)
    return made


def run_import(source: str, folder: Path, data: Path, env: dict[str, str]) -> dict:
    cmd = [CERVER, "import", source, str(folder), "--data", str(data), "--user", "bench", "--json"]
    began = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    took = time.perf_counter() - began
    if out.returncode != 0:
        raise RuntimeError(f"cerver import {source} failed ({out.returncode}): {out.stderr[-2000:]}")
    summary = json.loads(out.stdout)
    summary["wall_s"] = took
    return summary


# --- report ------------------------------------------------------------------------------------------------


def machine(args: argparse.Namespace) -> list[str]:
    with open("/proc/cpuinfo") as info:
        cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), "?")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("fastapi", "uvicorn", "pyarrow", "duckdb"))
    return [
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}; nproc: {os.cpu_count()}; cpu: {cpu}",
        f"- load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- python {platform.python_version()}; {versions}",
        f"- commit {commit.stdout.strip() or '?'} plus the working tree; data under {tempfile.gettempdir()}",
        f"- parameters: --clients {args.clients} --many-clients {args.many_clients} --batch {args.batch}"
        f" --seconds {args.seconds}"
        f" --rate {args.rate:g} --flat-seconds {args.flat_seconds} --single-seconds {args.single_seconds}"
        f" --import-files {args.import_files}"
        f" --import-repeat {args.import_repeat}",
    ]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def render(info: list[str], phases: dict[str, Phase], stored: int, imports: dict[str, list[dict]]) -> str:
    rows = [
        "| phase | requests | events | seconds | events/s | lowest 10 s window, events/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, ph in phases.items():
        low = min(ph.windows) / WINDOW_S if ph.windows else float("nan")
        figures = [f"{ph.requests:,}", f"{ph.events:,}", f"{ph.seconds:.1f}", f"{ph.events_s:,.0f}"]
        figures += [f"{low:,.0f}", f"{ph.p(50):.1f}", f"{ph.p(99):.1f}"]
        rows.append(f"| {name} | {' | '.join(figures)} |")
    imp = ["| source | files | lines | events | seconds | lines/s | again: seconds, events added |"]
    imp.append("|---|---:|---:|---:|---:|---:|---|")
    for source, (first, again) in imports.items():
        figures = [
            f"{first['files']:,}",
            f"{first['lines']:,}",
            f"{first['events']:,}",
            f"{first['wall_s']:.1f}",
        ]
        figures += [f"{first['lines'] / first['wall_s']:,.0f}", f"{again['wall_s']:.1f} s, {again['events']}"]
        imp.append(f"| {source} | {' | '.join(figures)} |")
    paced, flat = phases[PACED], phases[FLAT]
    low = min(paced.windows) / WINDOW_S if paced.windows else 0.0
    sustained = low >= 0.98 * TARGETS["batch_events_s"]  # a window may end a batch or two early
    acked = sum(ph.events for ph in phases.values())
    checks = [
        f"- {PACED}: lowest 10 s window {low:,.0f} events/s (target {TARGETS['batch_events_s']:,} sustained: "
        f"{verdict(sustained)}), p99 {paced.p(99):.1f} ms (target <= {TARGETS['batch_p99_ms']:g}: "
        f"{verdict(paced.p(99) <= TARGETS['batch_p99_ms'])})",
        f"- {FLAT}: {flat.events_s:,.0f} events/s, the most this machine took",
        *(
            f"- {name}: {phases[name].events_s:,.0f} events/s (target >= {TARGETS['single_events_s']:,}: "
            f"{verdict(phases[name].events_s >= TARGETS['single_events_s'])})"
            for name in (SINGLE, SINGLE_MANY)
        ),
        f"- stored afterwards (read-only count): {stored:,} of {acked:,} acknowledged: "
        f"{verdict(stored == acked)}",
    ]
    intro = (
        "Written by `bench/ingest.py`: durable REST ingest through `cerver serve` (every answer 200 with\n"
        "all events accepted, each batch fsynced before its answer), clients in the same process as the\n"
        "benchmark on the same cores. Paced: 8 clients together offer 25,000 events/s in batches of 500\n"
        "(latency from each batch's scheduled send); flat out: each client sends again as soon as it is\n"
        "answered. Then `cerver import` over synthetic transcript folders copied from the real CLI\n"
        "fixtures with fresh ids."
    )
    return "\n".join(
        [SECTION, "", intro, "", "### Machine", "", *info, "", "### REST", "", *rows, "", "### Importers", "",
         *imp, "", "### Targets", "", *checks, "",
         f"Reproduce: `.venv/bin/python bench/ingest.py` (quick: `{QUICK}`)."]
    )  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--clients", type=int, default=8, help="concurrent clients")
    p.add_argument("--many-clients", type=int, default=32, help="clients of the last single-event phase")
    p.add_argument("--batch", type=int, default=500, help="events per batch")
    p.add_argument("--rate", type=float, default=25_000, help="events/s the paced phase offers")
    p.add_argument("--seconds", type=float, default=60.0, help="how long the paced phase runs")
    p.add_argument("--flat-seconds", type=float, default=15.0, help="how long the flat-out phase runs")
    p.add_argument("--single-seconds", type=float, default=20.0, help="how long the single-event phase runs")
    p.add_argument("--import-files", type=int, default=200, help="synthetic transcripts per source")
    p.add_argument("--import-repeat", type=int, default=20, help="conversations per transcript")
    p.add_argument("--results", default=str(ROOT / "bench/RESULTS.md"), help="where to write; '' for nowhere")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="cerver-ingest-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            url, token, data = start_cerver(env, tmp, procs)
            plan = [
                (PACED, args.clients, args.seconds, args.batch, args.rate),
                (FLAT, args.clients, args.flat_seconds, args.batch, None),
                (SINGLE, args.clients, args.single_seconds, 1, None),
                (SINGLE_MANY, args.many_clients, args.single_seconds, 1, None),
            ]
            phases = {}
            for name, clients, seconds, size, rate in plan:
                print(f"{name}: {clients} clients for {seconds:g} s ...", flush=True)
                ph = phases[name] = asyncio.run(post_for(url, token, clients, seconds, size, rate))
                print(
                    f"  {ph.events_s:,.0f} events/s, p50 {ph.p(50):.1f} ms, p99 {ph.p(99):.1f} ms", flush=True
                )
            with warehouse.open(data, read_only=True) as reader:
                stored = reader.sql("SELECT count(*) AS n FROM events").column("n")[0].as_py()
        finally:
            for proc in procs:
                stop(proc)
        made = synthetic_transcripts(tmp / "transcripts", args.import_files, args.import_repeat)
        imports = {}
        for source, (folder, lines) in made.items():
            print(f"import {source}: {args.import_files} files, {lines:,} lines ...", flush=True)
            data = tmp / f"import-{source}"
            imports[source] = [run_import(source, folder, data, env), run_import(source, folder, data, env)]
            first = imports[source][0]
            print(
                f"  {first['lines'] / first['wall_s']:,.0f} lines/s ({first['events']:,} events)", flush=True
            )
    section = render(machine(args), phases, stored, imports)
    print("\n" + section)
    if args.results:
        write_section(Path(args.results), SECTION, section)
        print(f"\nwrote the '{SECTION}' section of {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
