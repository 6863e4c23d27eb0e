"""Named queries over the warehouse's views: one `.sql` file each, listed and run by name.

import queries, warehouse
wh = warehouse.open("cerver-data", read_only=True)
queries.catalog()                                       # every query: name, summary, params
queries.run(wh, "cost_by_model", {"since": "2026-11-01"})  # -> pyarrow.Table (polars=True: a DataFrame)

The same questions as portable ibis expressions: `queries.ibis_queries`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from queries.catalog import MalformedQuery, NamedQuery, UnknownQuery, catalog, get
from queries.params import TYPES, BadParams, Param, bind
from queries.prices import prices_table
from queries.tables import extra_tables

if TYPE_CHECKING:
    import polars as pl

    import warehouse

__all__ = [
    "TYPES",
    "BadParams",
    "MalformedQuery",
    "NamedQuery",
    "Param",
    "UnknownQuery",
    "bind",
    "catalog",
    "extra_tables",
    "get",
    "ibis_connection",
    "prices_table",
    "run",
]


def run(
    wh: warehouse.Warehouse,
    name: str,
    values: Mapping[str, Any] | None = None,
    *,
    polars: bool = False,
) -> pa.Table | pl.DataFrame:
    """Run the named query on `wh` with `values` for its parameters; an Arrow table, or Polars."""
    query = get(name)
    table = wh.sql(query.sql, bind(query, values or {}), tables=extra_tables(query))
    if polars:
        import polars as pl

        return pl.from_arrow(table)
    return table


def ibis_connection(wh: warehouse.Warehouse) -> Any:
    """An in-memory ibis DuckDB connection holding a copy of the views (and `prices`) of `wh`."""
    from queries.ibis_queries import connect

    return connect(wh)
