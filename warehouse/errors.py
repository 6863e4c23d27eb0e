"""The warehouse's errors: one base class, one subclass per way a call can fail."""


class WarehouseError(Exception):
    """Base class of every error the warehouse raises."""


class ValidationError(WarehouseError, ValueError):
    """An event in a batch is invalid; the batch was not written."""

    def __init__(self, index: int, field: str | None, message: str):
        self.index = index
        self.field = field
        self.reason = message
        where = f"event {index}" + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {message}")


class WarehouseLocked(WarehouseError):
    """Another process is the writer of this data folder."""


class StorageError(WarehouseError, OSError):
    """The disk refused a write (full, read-only, gone); nothing was acknowledged."""


class CorruptLogError(WarehouseError):
    """The write-ahead log is damaged somewhere other than its torn tail."""


class QueryError(WarehouseError, ValueError):
    """A query failed (syntax, binder, runtime); nothing was changed."""


class ReadOnlyError(QueryError):
    """A statement that writes was refused: warehouse SQL is read-only."""


class ClosedError(WarehouseError):
    """The warehouse was closed."""
