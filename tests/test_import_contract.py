"""The contract every importer keeps, run against each of them on a sample file.

Whatever the format: every event says which importer, tenant, user, file and line it
came from; importing again adds nothing; a file that grew adds only what is new, and
however it was cut, the warehouse ends up holding what one import of the whole file
gives; a torn or malformed line is reported with its location and never stops the rest.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import warehouse
from ingest.importers import SOURCES
from tests.importing import CASES, data_lines, run, sessions, transcript

SAMPLES = {
    "claude-code": "claude-code/v1/projects/-home-ada-calc/5e551011-0000-4000-8000-000000000001.jsonl",
    "codex": "codex/v0.20/sessions/2025/08/10/"
    "rollout-2025-08-10T12-00-00-5e551011-0000-4000-8000-00000000c0d2.jsonl",
    "gemini": "gemini/jsonl/tmp/7a6b5c4d/chats/session-2025-11-01T09-00-5e551011.jsonl",
    "otlp": "otlp/lines/export.jsonl",
}
NAMES = sorted(SOURCES)  # a new importer without a sample fails here, loudly


@pytest.fixture
def sample(name: str, tmp_path: Path) -> Path:
    """Where the test writes (a copy of) the source's sample file."""
    folder = tmp_path / "transcripts"
    folder.mkdir()
    return folder / Path(SAMPLES[name]).name


def full(wh: warehouse.Warehouse, name: str, path: Path, tenant: str = "full") -> dict:
    """What one import of the whole sample gives, under its own tenant."""
    shutil.copyfile(CASES / SAMPLES[name], path)
    run(wh, name, path, tenant)
    return {
        "sessions": sessions(wh, tenant),
        "transcript": transcript(wh, tenant),
        "costs": costs(wh, tenant),
    }


def now(wh: warehouse.Warehouse, tenant: str) -> dict:
    return {
        "sessions": sessions(wh, tenant),
        "transcript": transcript(wh, tenant),
        "costs": costs(wh, tenant),
    }


def costs(wh: warehouse.Warehouse, tenant: str) -> dict[str, float]:
    rows = wh.sql("SELECT session_id, cost_usd FROM sessions WHERE tenant_id = ?", [tenant]).to_pylist()
    return {r["session_id"]: pytest.approx(r["cost_usd"]) for r in rows}


@pytest.mark.parametrize("name", NAMES)
def test_events_say_where_they_came_from(wh: warehouse.Warehouse, name: str, sample: Path) -> None:
    shutil.copyfile(CASES / SAMPLES[name], sample)
    summary = run(wh, name, sample, "acme")
    rows = wh.sql("SELECT tenant_id, user_id, harness, attrs FROM events").to_pylist()
    assert len(rows) == summary.events > 0
    lines = len(data_lines(sample))
    for row in rows:
        assert (row["tenant_id"], row["user_id"], row["harness"]) == ("acme", "u1", f"import:{name}")
        where = json.loads(row["attrs"])["source"]
        assert where["file"] == str(sample) and 1 <= where["line"] <= lines
    if SOURCES[name].creates_sessions:
        created = wh.sql(
            "SELECT session_id, count(*) FILTER (WHERE type = 'session.created') AS n "
            "FROM events GROUP BY ALL"
        ).to_pylist()
        assert {r["n"] for r in created} == {1}, created


@pytest.mark.parametrize("name", NAMES)
def test_importing_again_adds_nothing(wh: warehouse.Warehouse, name: str, sample: Path) -> None:
    shutil.copyfile(CASES / SAMPLES[name], sample)
    first = run(wh, name, sample)
    again = run(wh, name, sample)
    assert (again.events, again.duplicates, again.lines, again.files_unchanged) == (0, 0, 0, 1)
    shutil.rmtree(wh.root / "import")  # without its state, the warehouse's dedup keeps it idempotent
    fresh = run(wh, name, sample)
    assert (fresh.events, fresh.duplicates) == (0, first.events)


@pytest.mark.parametrize("name", NAMES)
def test_a_file_that_grew_adds_only_its_new_lines(wh: warehouse.Warehouse, name: str, sample: Path) -> None:
    """Cut anywhere (mid-response too), two imports hold what one import of the whole file holds."""
    whole = full(wh, name, sample)
    lines = data_lines(sample)
    for cut in range(1, len(lines)):
        tenant = f"cut{cut}"
        sample.write_text("".join(lines[:cut]))
        run(wh, name, sample, tenant)
        with open(sample, "a") as f:
            f.write("".join(lines[cut:]))
        rest = run(wh, name, sample, tenant)
        assert rest.lines == len(lines) - cut, cut
        assert now(wh, tenant) == whole, cut


@pytest.mark.parametrize("name", NAMES)
def test_a_torn_last_line_waits_for_its_end(wh: warehouse.Warehouse, name: str, sample: Path) -> None:
    whole = full(wh, name, sample)
    lines = data_lines(sample)
    cut = len(lines) // 2
    sample.write_text("".join(lines[:cut]) + lines[cut][: len(lines[cut]) // 2])
    torn = run(wh, name, sample, "torn")
    assert (torn.problems[-1].file, torn.problems[-1].line) == (str(sample), cut + 1)
    assert torn.problems[-1].reason.startswith("incomplete last line")
    sample.write_text("".join(lines))
    whole_again = run(wh, name, sample, "torn")
    assert all(p.line > cut + 1 for p in whole_again.problems)  # the torn line, now whole, is no problem
    assert now(wh, "torn") == whole


@pytest.mark.parametrize("name", NAMES)
def test_a_last_line_without_newline_is_imported(wh: warehouse.Warehouse, name: str, sample: Path) -> None:
    whole = full(wh, name, sample)
    lines = data_lines(sample)
    sample.write_text("".join(lines).rstrip("\n"))
    first = run(wh, name, sample, "eof")
    assert not any(p.reason.startswith("incomplete") for p in first.problems)
    assert now(wh, "eof") == whole
    with open(sample, "a") as f:  # the writer ends the line later: nothing new, nothing wrong
        f.write("\n")
    later = run(wh, name, sample, "eof")
    assert (later.events, later.malformed) == (0, 0)


@pytest.mark.parametrize("name", NAMES)
def test_a_malformed_line_is_reported_and_the_rest_imported(
    wh: warehouse.Warehouse, name: str, sample: Path
) -> None:
    whole = full(wh, name, sample)
    lines = data_lines(sample)
    cut = len(lines) // 2
    sample.write_text("".join(lines[:cut]) + '{"broken": \n' + "".join(lines[cut:]))
    summary = run(wh, name, sample, "bad")
    assert any(
        (p.file, p.line) == (str(sample), cut + 1) and p.reason.startswith("not JSON")
        for p in summary.problems
    )
    got = now(wh, "bad")
    assert got["sessions"] == whole["sessions"] and got["costs"] == whole["costs"]


@pytest.mark.parametrize("name", NAMES)
def test_a_replaced_file_is_read_again_from_the_start(
    wh: warehouse.Warehouse, name: str, sample: Path
) -> None:
    shutil.copyfile(CASES / SAMPLES[name], sample)
    first = run(wh, name, sample)
    replacement = sample.with_suffix(".new")
    shutil.copyfile(sample, replacement)
    os.replace(replacement, sample)  # a new inode with the same lines
    again = run(wh, name, sample)
    assert (again.files_restarted, again.events, again.duplicates) == (1, 0, first.events)


@pytest.mark.parametrize("name", NAMES)
def test_a_shrunk_file_is_read_again_from_the_start(wh: warehouse.Warehouse, name: str, sample: Path) -> None:
    shutil.copyfile(CASES / SAMPLES[name], sample)
    run(wh, name, sample)
    lines = data_lines(sample)
    with open(sample, "r+") as f:  # same inode, shorter
        f.truncate(len("".join(lines[: len(lines) // 2]).encode()))
    again = run(wh, name, sample)
    assert (again.files_restarted, again.events) == (1, 0) and again.duplicates > 0


@pytest.mark.parametrize("name", NAMES)
def test_any_batch_size_gives_the_same_result(wh: warehouse.Warehouse, name: str, sample: Path) -> None:
    whole = full(wh, name, sample)
    run(wh, name, sample, "tiny", batch_size=1)
    assert now(wh, "tiny") == whole


@pytest.mark.parametrize("name", NAMES)
def test_state_is_kept_per_tenant_and_source(wh: warehouse.Warehouse, name: str, sample: Path) -> None:
    shutil.copyfile(CASES / SAMPLES[name], sample)
    run(wh, name, sample, "acme")
    state = wh.root / "import" / "acme" / f"{name}.json"
    entry = json.loads(state.read_text())["files"][str(sample)]
    assert entry["offset"] == sample.stat().st_size and entry["line"] == len(data_lines(sample))
    assert [p.name for p in state.parent.iterdir()] == [state.name]  # no temporary file left behind
    other = run(wh, name, sample, "globex")  # another tenant imports the same file on its own
    assert other.events > 0
