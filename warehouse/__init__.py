"""Cerver's warehouse: every event in one table, durable on append, queried by DuckDB.

import warehouse
wh = warehouse.open("cerver-data")
wh.append(events)        # durable on return
wh.sql("select * from sessions where user_id = ?", ["u1"])
wh.compact(); wh.close()
"""

from __future__ import annotations

import os

from warehouse.core import PendingAppend, Warehouse
from warehouse.errors import (
    ClosedError,
    CorruptLogError,
    QueryError,
    ReadOnlyError,
    StorageError,
    ValidationError,
    WarehouseError,
    WarehouseLocked,
)
from warehouse.ids import new_event_id
from warehouse.policy import FlushPolicy
from warehouse.results import AppendResult, CompactResult
from warehouse.schema import EVENT_TYPES, REQUIRED, SCHEMA, SCHEMA_VERSION
from warehouse.storage import Location, locate

DEFAULT_DATA = "cerver-data"

__all__ = [
    "EVENT_TYPES",
    "REQUIRED",
    "SCHEMA",
    "SCHEMA_VERSION",
    "AppendResult",
    "ClosedError",
    "CompactResult",
    "CorruptLogError",
    "FlushPolicy",
    "Location",
    "PendingAppend",
    "QueryError",
    "ReadOnlyError",
    "StorageError",
    "ValidationError",
    "Warehouse",
    "WarehouseError",
    "WarehouseLocked",
    "default_url",
    "locate",
    "new_event_id",
    "open",
]


def default_url() -> str:
    """`$CERVER_DATA`, else `./cerver-data`."""
    return os.environ.get("CERVER_DATA") or DEFAULT_DATA


def open(  # noqa: A001 - the module's verb, as in `warehouse.open(...)`
    url: str | os.PathLike[str] | None = None,
    *,
    read_only: bool = False,
    wal: str | os.PathLike[str] | None = None,
    **options: object,
) -> Warehouse:
    """Open the warehouse at a folder, `file://` or `s3://bucket/prefix` URL; a writer replays its log first.

    The log, its LOCK and WRITER_ID live in the local folder `wal` (default: `$CERVER_WAL`,
    else the data folder for a local table, else ./cerver-wal); see warehouse/storage.py.
    `read_only=True` opens alongside a running writer (a server, say) and sees every
    event it has acknowledged. Options: `policy` (a FlushPolicy), `vacuum_grace_s`,
    `auto_compact` (False on all but one of several writers sharing a table).
    """
    location = locate(url if url is not None else default_url(), wal)
    return Warehouse(location, read_only=read_only, **options)  # type: ignore[arg-type]
