"""The named queries: one `.sql` file each under `queries/sql/`, described by its header comment.

A header is the file's leading `--` lines:

    -- NAME: what the query answers, in one line
    -- param NAME: TYPE [= DEFAULT]  [-- what it means]
    -- tables: NAME[, NAME]          (extra tables it reads beside the views)
    -- any other comment line adds to the description

TYPE is one of params.TYPES. A DEFAULT is a bare word (`10`, `ok`, `2026-11-01`) or
quoted (`''`, `'two words'`); a parameter without one is required. The body refers
to each parameter as `$NAME` (DuckDB's named parameters), and to nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from queries.params import TYPES, Param, coerce
from queries.tables import BUILDERS

SQL_DIR = Path(__file__).with_name("sql")
_NAME = r"[a-z_][a-z0-9_]*"
_TITLE = re.compile(rf"--\s*(?P<name>{_NAME})\s*:\s*(?P<summary>\S.*)")
_PARAM = re.compile(
    rf"--\s*param\s+(?P<name>{_NAME})\s*:\s*(?P<type>\w+)"
    r"(?:\s*=\s*(?P<default>'[^']*'|[^\s']+))?"
    r"\s*(?:--\s*(?P<doc>.*))?"
)
_TABLES = re.compile(r"--\s*tables\s*:\s*(?P<names>.*)")
_PLACEHOLDER = re.compile(r"\$([A-Za-z_]\w*)")


@dataclass(frozen=True)
class NamedQuery:
    """A query in the catalog: its SQL (header included) and what it takes."""

    name: str
    summary: str
    params: tuple[Param, ...]
    sql: str
    tables: tuple[str, ...] = ()
    description: str = ""


class UnknownQuery(LookupError):
    """No query by that name; the message lists the known ones."""

    def __init__(self, name: str, known: list[str]):
        super().__init__(f"unknown query {name!r}; known: {', '.join(known)}")
        self.name = name
        self.known = known


class MalformedQuery(ValueError):
    """A `.sql` file in the catalog has a header or body that does not follow the format."""


def catalog() -> list[NamedQuery]:
    """Every named query, by name."""
    return list(_load().values())


def get(name: str) -> NamedQuery:
    """The query called `name`; UnknownQuery if there is none."""
    queries = _load()
    try:
        return queries[name]
    except KeyError:
        raise UnknownQuery(name, list(queries)) from None


@cache
def _load() -> dict[str, NamedQuery]:
    files = sorted(SQL_DIR.glob("*.sql"))
    return {q.name: q for q in (parse(path.stem, path.read_text(encoding="utf-8")) for path in files)}


def parse(name: str, text: str) -> NamedQuery:
    """A NamedQuery from a `.sql` file's text; MalformedQuery says what is wrong and where."""
    lines = text.splitlines()
    header = [line.strip() for line in _leading_comments(lines)]
    if not header or not (title := _TITLE.fullmatch(header[0])) or title["name"] != name:
        raise MalformedQuery(f"{name}.sql: the first line must be '-- {name}: <what it answers>'")
    params: list[Param] = []
    tables: tuple[str, ...] = ()
    description: list[str] = []
    for number, line in enumerate(header[1:], start=2):
        if line.removeprefix("--").strip().startswith("param "):
            params.append(_param(name, number, line))
        elif found := _TABLES.fullmatch(line):
            tables = tuple(t.strip() for t in found["names"].split(",") if t.strip())
        else:
            description.append(line.removeprefix("--").strip())
    _check(name, params, tables, "\n".join(lines[len(header) :]))
    return NamedQuery(
        name=name,
        summary=title["summary"].strip(),
        params=tuple(params),
        sql=text,
        tables=tables,
        description=" ".join(d for d in description if d),
    )


def _leading_comments(lines: list[str]) -> list[str]:
    header = []
    for line in lines:
        if not line.lstrip().startswith("--"):
            break
        header.append(line)
    return header


def _param(name: str, number: int, line: str) -> Param:
    found = _PARAM.fullmatch(line)
    if not found:
        raise MalformedQuery(f"{name}.sql:{number}: expected '-- param NAME: TYPE [= DEFAULT] [-- doc]'")
    if found["type"] not in TYPES:
        raise MalformedQuery(
            f"{name}.sql:{number}: unknown type {found['type']!r} (one of {', '.join(TYPES)})"
        )
    default = found["default"]
    if default is not None:
        literal = default[1:-1] if default.startswith("'") else default
        try:
            default = coerce(found["type"], literal)
        except ValueError as exc:
            raise MalformedQuery(f"{name}.sql:{number}: default of {found['name']!r}: {exc}") from None
    return Param(found["name"], found["type"], default, (found["doc"] or "").strip())


def _check(name: str, params: list[Param], tables: tuple[str, ...], body: str) -> None:
    declared = [p.name for p in params]
    if len(set(declared)) != len(declared):
        raise MalformedQuery(f"{name}.sql: a parameter is declared twice: {declared}")
    used = set(_PLACEHOLDER.findall(body))
    if used != set(declared):
        raise MalformedQuery(
            f"{name}.sql: parameters used ({sorted(used)}) and declared ({sorted(declared)}) differ"
        )
    for table in tables:
        if table not in BUILDERS:
            raise MalformedQuery(f"{name}.sql: unknown table {table!r} (known: {', '.join(BUILDERS)})")
