"""The import loop: discover files, read each from where it stopped, append events in batches, save state."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import warehouse
from ingest.importers.base import Malformed, Origin, Source, Tally, check_name
from ingest.importers.lines import read_document, read_lines
from ingest.importers.state import FileState, Start, StateStore, tail_hash
from ingest.pricing import price_events
from warehouse.schema import to_table

BATCH = 5_000
MAX_PROBLEMS = 20

Progress = Callable[["Summary"], None]


@dataclass(frozen=True)
class Problem:
    """A line that could not be imported, and why."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class Summary:
    """What an import did. `problems` keeps the first MAX_PROBLEMS malformed lines."""

    source: str
    files: int = 0
    files_done: int = 0
    files_unchanged: int = 0
    files_restarted: int = 0
    lines: int = 0
    events: int = 0
    duplicates: int = 0
    malformed: int = 0
    problems: list[Problem] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def problem(self, file: Path | str, line: int, reason: str) -> None:
        """Count a malformed line; remember its location among the first few."""
        self.malformed += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(str(file), line, reason))

    def as_json(self) -> dict[str, Any]:
        """The summary as plain JSON values."""
        return {
            "source": self.source,
            "files": self.files,
            "files_unchanged": self.files_unchanged,
            "files_restarted": self.files_restarted,
            "lines": self.lines,
            "events": self.events,
            "duplicates": self.duplicates,
            "malformed": self.malformed,
            "problems": [{"file": p.file, "line": p.line, "reason": p.reason} for p in self.problems],
            "skipped": dict(sorted(self.skipped.items())),
            "seconds": round(self.seconds, 3),
        }


def import_path(
    wh: warehouse.Warehouse,
    source: Source,
    path: str | Path,
    *,
    tenant_id: str,
    user_id: str,
    state_dir: Path | None = None,
    progress: Progress | None = None,
    batch_size: int = BATCH,
) -> Summary:
    """Import every file of `source` under `path` that is new or grew since the last import.

    Raises FileNotFoundError when `path` does not exist, InvalidImport for a bad tenant or user
    name. Malformed lines are counted in the summary, never raised.
    """
    started = time.monotonic()
    origin = Origin(check_name("tenant", tenant_id), check_name("user", user_id))
    root = Path(path).expanduser().absolute()
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or folder")
    files = source.discover(root)
    store = StateStore((state_dir or wh.root / "import") / tenant_id / f"{source.name}.json")
    run = _Run(wh, source, store, origin, batch_size, progress)
    run.summary.files = len(files)
    for file in files:
        run.import_file(file)
    run.flush()
    run.summary.skipped.update(run.tally.skipped)
    run.summary.seconds = time.monotonic() - started
    return run.summary


class _Run:
    def __init__(
        self,
        wh: warehouse.Warehouse,
        source: Source,
        store: StateStore,
        origin: Origin,
        batch_size: int,
        progress: Progress | None,
    ):
        self.wh, self.source, self.store, self.origin = wh, source, store, origin
        self.batch_size, self.progress = batch_size, progress
        self.summary = Summary(source.name)
        self.tally = Tally()
        self.events: list[dict[str, Any]] = []
        self.finished: dict[str, FileState] = {}  # files whose events are all in `events` or stored
        self.dirty = False
        self._last_progress = 0.0

    def import_file(self, path: Path) -> None:
        try:
            stat = path.stat()
            whole = self.source.whole_document(path)
            start = self.store.plan(path, stat, whole)
        except OSError as exc:
            self.summary.problem(path, 0, f"cannot read: {exc}")
            return
        if start is None:
            self.summary.files_unchanged += 1
        else:
            self.summary.files_restarted += start.restarted
            parser = self.source.parser(path, self.origin, self.tally, start.context)
            reader = self._document if whole else self._lines
            try:
                position = reader(path, start, parser)
            except OSError as exc:
                self.summary.problem(path, 0, f"cannot read: {exc}")
                position = None
            if position is not None:
                self._add(parser.finish())
                offset, line, open_line = position
                self.finished[str(path)] = FileState(
                    stat.st_ino,
                    stat.st_size,
                    stat.st_mtime_ns,
                    offset,
                    line,
                    open_line,
                    tail_hash(path, offset),
                    parser.context(),
                )
        self.summary.files_done += 1
        self._report()

    def _lines(self, path: Path, start: Start, parser: Any) -> tuple[int, int, bool]:
        offset, number, open_line = start.offset, start.line, start.open_line
        for line in read_lines(path, start.offset, start.line + 1, start.open_line):
            self.summary.lines += 1
            if line.error is not None and not line.terminated:
                self.summary.problem(
                    path, line.number, f"incomplete last line, read again next time ({line.error})"
                )
                break
            self._feed(path, parser, line.number, line.record, line.error)
            offset, number, open_line = line.end, line.number, not line.terminated
            if self.summary.lines % 10_000 == 0:
                self._report()
        return offset, number, open_line

    def _document(self, path: Path, start: Start, parser: Any) -> tuple[int, int, bool] | None:
        record, lines, error = read_document(path)
        self.summary.lines += lines
        if error is not None:
            self.summary.problem(path, 1, error)
            return None  # keep the old state: the file is read again once it is whole
        self._feed(path, parser, 1, record, None)
        return path.stat().st_size, lines, False

    def _feed(self, path: Path, parser: Any, number: int, record: Any, error: str | None) -> None:
        if error is None and not isinstance(record, dict):
            error = f"expected a JSON object, got {type(record).__name__}"
        if error is not None:
            self.summary.problem(path, number, error)
            return
        try:
            events = parser.feed(record, number)
        except Malformed as exc:
            self.summary.problem(path, number, str(exc))
            return
        self._add(events)

    def _add(self, events: list[dict[str, Any]]) -> None:
        self.events.extend(events)
        if len(self.events) >= self.batch_size:
            self._append()

    def _append(self) -> None:
        """Append the buffered events, then the states of files they complete (append first, then state)."""
        batch, self.events = self.events, []
        if batch:
            price_events(batch)
            stored = self._store(batch)
            self.summary.events += stored.accepted
            self.summary.duplicates += stored.duplicates
        if self.finished:
            self.store.files.update(self.finished)
            self.finished = {}
            self.dirty = True

    def _store(self, batch: list[dict[str, Any]]) -> warehouse.AppendResult:
        try:
            return self.wh.append(batch)
        except warehouse.ValidationError:
            pass
        good = []
        for event in batch:  # name each event the warehouse refuses; store the rest
            try:
                to_table([event])
            except warehouse.ValidationError as exc:
                where = json.loads(event.get("attrs") or "{}").get("source", {})
                self.summary.problem(where.get("file", "?"), where.get("line", 0), f"event refused: {exc}")
                continue
            good.append(event)
        return self.wh.append(good) if good else warehouse.AppendResult(0, 0)

    def flush(self) -> None:
        """Store what is buffered and save the state file."""
        self._append()
        if self.dirty:
            self.store.save()
            self.dirty = False
        self._report(force=True)

    def _report(self, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if force or now - self._last_progress >= 0.1:
            self._last_progress = now
            self.progress(self.summary)
