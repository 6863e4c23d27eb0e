"""A named query's parameters: their declared types, and binding callers' values to them."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from queries.catalog import NamedQuery

TYPES = ("text", "int", "float", "date", "timestamp")
_INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class Param:
    """One parameter of a named query; a default of None means the caller must give it."""

    name: str
    type: str
    default: Any | None
    doc: str

    @property
    def required(self) -> bool:
        """True when the caller must give a value."""
        return self.default is None


class BadParams(ValueError):
    """A caller's values do not fit the query's parameters; `param` names the one at fault."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


def bind(query: NamedQuery, values: Mapping[str, Any]) -> dict[str, Any]:
    """The query's parameters with the caller's values coerced to their types and defaults applied."""
    declared = {p.name: p for p in query.params}
    for name in values:
        if name not in declared:
            takes = ", ".join(declared) or "no parameters"
            raise BadParams(f"{query.name}: unknown parameter {name!r} (it takes {takes})", name)
    bound: dict[str, Any] = {}
    for param in query.params:
        value = values.get(param.name)
        if value is None:  # absent and null alike take the default
            if param.required:
                raise BadParams(
                    f"{query.name}: missing parameter {param.name!r} ({param.type}: {param.doc})", param.name
                )
            bound[param.name] = param.default
            continue
        try:
            bound[param.name] = coerce(param.type, value)
        except ValueError as exc:
            raise BadParams(f"{query.name}: parameter {param.name!r}: {exc}", param.name) from None
    return bound


def coerce(type_name: str, value: Any) -> Any:
    """`value` (a string from a command line or URL, or a Python value) as `type_name`; ValueError if not."""
    try:
        convert = _CONVERTERS[type_name]
    except KeyError:
        raise ValueError(f"unknown type {type_name!r} (one of {', '.join(TYPES)})") from None
    return convert(value)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"expected text, got {type(value).__name__} {value!r}")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value)
    raise ValueError(f"expected an integer, got {value!r}")


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        number = float(value) if isinstance(value, int | float | str) else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        if value.time() != dt.time(0):
            raise ValueError(f"expected a date, got a time of day: {value.isoformat()}")
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected a date (YYYY-MM-DD), got {value!r}")


def _timestamp(value: Any) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"expected a timestamp (ISO 8601, e.g. 2026-11-01 or 2026-11-01T12:00:00Z), got {value!r}"
            ) from None
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time(0))
    if not isinstance(value, dt.datetime):
        raise ValueError(f"expected a timestamp, got {type(value).__name__} {value!r}")
    # Without an offset a time is taken as UTC, as the event table takes it.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


_CONVERTERS = {"text": _text, "int": _int, "float": _float, "date": _date, "timestamp": _timestamp}
