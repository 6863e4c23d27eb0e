"""The import state: written after the events it covers, and never trusted over the file itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import warehouse
from ingest.importers.state import StateStore
from tests.importing import CASES, data_lines, run

SAMPLE = CASES / "codex" / "v0.20" / "sessions" / "2025" / "08" / "10"
NAME = "rollout-2025-08-10T12-00-00-5e551011-0000-4000-8000-00000000c0d2.jsonl"


@pytest.fixture
def rollout(tmp_path: Path) -> Path:
    path = tmp_path / NAME
    shutil.copyfile(SAMPLE / NAME, path)
    return path


def test_a_crash_after_the_append_re_imports_nothing_new(
    wh: warehouse.Warehouse, rollout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mocked: the state file's save fails, as if the process died between append and state."""

    def crash(self: StateStore) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(StateStore, "save", crash)
        with pytest.raises(KeyboardInterrupt):
            run(wh, "codex", rollout)
    stored = wh.sql("SELECT count(*) AS n FROM events").to_pylist()[0]["n"]
    assert stored > 0 and not (wh.root / "import" / "t1" / "codex.json").exists()
    again = run(wh, "codex", rollout)
    assert (again.events, again.duplicates) == (0, stored)


def test_a_file_rewritten_in_place_is_read_again(wh: warehouse.Warehouse, rollout: Path) -> None:
    run(wh, "codex", rollout)
    lines = data_lines(rollout)
    edited = lines[-1].replace("ghost_snapshot", "ghost_snapshoT")  # same inode, same length, new bytes
    with open(rollout, "r+") as f:
        f.write("".join(lines[:-1]) + edited + "\n")  # and one more line: it grew
    again = run(wh, "codex", rollout)
    assert again.files_restarted == 1 and again.events == 0


def test_an_unchanged_folder_is_not_read(wh: warehouse.Warehouse, rollout: Path) -> None:
    run(wh, "codex", rollout.parent)
    again = run(wh, "codex", rollout.parent)
    assert (again.files, again.files_unchanged, again.lines) == (1, 1, 0)


def test_progress_is_reported_while_importing(wh: warehouse.Warehouse) -> None:
    seen: list[tuple[int, int]] = []
    run(
        wh,
        "claude-code",
        CASES / "claude-code" / "v2",
        progress=lambda s: seen.append((s.files_done, s.files)),
    )
    assert seen[-1] == (2, 2)
