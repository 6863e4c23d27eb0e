"""`cerver import` as a user runs it: a real process on real transcripts, twice, on a terminal or not."""

from __future__ import annotations

import getpass
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import warehouse
from tests.importing import CASES, FIXTURES

CERVER = str(Path(sys.executable).with_name("cerver"))


def cerver(*args: str, check: bool = True, **streams: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # CERVER_DATA as the test set it
    streams = streams or {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    result = subprocess.run([CERVER, *args], text=True, timeout=120, env=env, **streams)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_import_twice_adds_nothing_the_second_time(data_dir: Path) -> None:
    args = ("import", "claude-code", str(FIXTURES / "claude-code"), "--user", "ada", "--tenant", "acme")
    first = json.loads(cerver(*args, "--data", str(data_dir), "--json").stdout)
    assert first["files"] == 2 and first["events"] > 0 and first["malformed"] == 0
    with warehouse.open(data_dir, read_only=True) as wh:
        rows = wh.sql(
            "SELECT tenant_id, user_id, harness, count(*) AS n FROM events GROUP BY ALL"
        ).to_pylist()
    assert rows == [
        {"tenant_id": "acme", "user_id": "ada", "harness": "import:claude-code", "n": first["events"]}
    ]
    second = cerver(*args, "--data", str(data_dir))
    assert "events: 0 added, 0 already stored" in second.stdout
    assert "2 file(s) (2 unchanged" in second.stdout and second.stderr == ""


def test_malformed_lines_are_printed_with_their_location_and_do_not_fail(data_dir: Path) -> None:
    result = cerver("import", "claude-code", str(CASES / "claude-code" / "v1"), "--data", str(data_dir))
    transcript = CASES / "claude-code" / "v1" / "projects" / "-home-ada-calc"
    assert "malformed: 2 line(s) not imported" in result.stdout
    assert f"{transcript}/5e551011-0000-4000-8000-000000000001.jsonl:14: not JSON" in result.stdout
    assert "skipped (not imported, by type): some-future-thing 1, summary 1" in result.stdout


def test_defaults_are_the_default_tenant_and_the_login_name(data_dir: Path) -> None:
    cerver("import", "codex", str(CASES / "codex" / "legacy"))  # --data from CERVER_DATA, as everywhere
    with warehouse.open(data_dir, read_only=True) as wh:
        rows = wh.sql("SELECT DISTINCT tenant_id, user_id FROM events").to_pylist()
    assert rows == [{"tenant_id": "default", "user_id": getpass.getuser()}]


def test_a_running_writer_is_named_and_nothing_is_imported(wh: warehouse.Warehouse, data_dir: Path) -> None:
    result = cerver("import", "codex", str(CASES / "codex" / "legacy"), "--data", str(data_dir), check=False)
    assert result.returncode == 1
    assert "being written by another process" in result.stderr and "cerver serve" in result.stderr
    assert wh.sql("SELECT count(*) AS n FROM events").to_pylist() == [{"n": 0}]


def test_a_missing_path_fails_before_the_data_folder_is_made(tmp_path: Path) -> None:
    data = tmp_path / "never"
    result = cerver("import", "gemini", str(tmp_path / "nowhere"), "--data", str(data), check=False)
    assert result.returncode == 2 and "no such file or folder" in result.stderr
    assert not data.exists()


def test_a_folder_without_transcripts_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cerver("import", "gemini", str(empty), "--data", str(tmp_path / "d"), check=False)
    assert result.returncode == 1 and "no gemini files under" in result.stderr


def test_the_progress_bar_shows_on_a_terminal_only(data_dir: Path) -> None:
    controller, terminal = pty.openpty()
    try:
        args = ("import", "codex", str(CASES / "codex" / "v0.20"), "--data", str(data_dir))
        result = cerver(*args, stderr=terminal, stdout=subprocess.PIPE)
        os.close(terminal)
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(controller)
    assert b"\rcodex: [" in drawn and b"2/2 files" in drawn
    assert "events:" in result.stdout and "\r" not in result.stdout  # the summary itself is plain
    piped = cerver("import", "codex", str(CASES / "codex" / "v0.20"), "--data", str(data_dir))
    assert piped.stderr == ""  # not a terminal: no bar


def test_help_lists_the_sources() -> None:
    out = cerver("import", "--help").stdout
    for name in ("claude-code", "codex", "gemini", "otlp", "--user", "--tenant", "--data", "--json"):
        assert name in out


def test_the_command_lists_every_importer() -> None:
    from api.cli import IMPORT_SOURCES
    from ingest.importers import SOURCES

    assert sorted(IMPORT_SOURCES) == sorted(SOURCES)
