"""Extra tables a named query may read beside the views, built here because the warehouse must not."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pyarrow as pa

from queries.prices import prices_table

if TYPE_CHECKING:
    from queries.catalog import NamedQuery

BUILDERS: dict[str, Callable[[], pa.Table]] = {"prices": prices_table}


def extra_tables(query: NamedQuery) -> dict[str, pa.Table]:
    """The tables `query` declares, by name (each built once per process)."""
    return {name: BUILDERS[name]() for name in query.tables}
