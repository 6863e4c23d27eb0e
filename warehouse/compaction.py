"""Reading one day's Parquet parts back in (tenant_id, session_id, ts) order, for compaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import duckdb
import pyarrow as pa

from warehouse.parts import PARTITION, ROW_GROUP_ROWS


def sorted_day(day: dt.date, files: list[str], schema: pa.Schema) -> pa.RecordBatchReader:
    """The day's rows, sorted, as batches of `schema` plus the partition column; streamed, not loaded."""
    target = schema.append(pa.field(PARTITION, pa.date32()))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET VARIABLE files = ?", [files])
    rows = con.sql(
        "SELECT * FROM read_parquet(getvariable('files'), union_by_name = true, "
        "hive_partitioning = false) ORDER BY tenant_id, session_id, ts"
    ).to_arrow_reader(batch_size=ROW_GROUP_ROWS)

    def batches() -> Iterator[pa.RecordBatch]:
        # A column added after these files were written reads as nulls.
        try:
            for batch in rows:
                n = batch.num_rows
                columns = [
                    batch.column(f.name).cast(f.type) if f.name in batch.schema.names else pa.nulls(n, f.type)
                    for f in schema
                ]
                dates = pa.repeat(pa.scalar(day, pa.date32()), n)
                yield pa.RecordBatch.from_arrays([*columns, dates], schema=target)
        finally:
            con.close()

    return pa.RecordBatchReader.from_batches(target, batches())
