"""How `cerver sql` and `cerver query` print or save a result: a text table, CSV, JSON lines or Parquet."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

FORMATS = ("table", "csv", "json", "parquet")


def write_table(table: Any, args: argparse.Namespace) -> int:
    """Print or save a query's result in `args.format` (to `args.output` if given)."""
    if args.format == "parquet":
        import pyarrow.parquet as pq

        if args.output is None and sys.stdout.isatty():
            print(
                f"cerver {args.command}: refusing to write Parquet to a terminal; use --output FILE",
                file=sys.stderr,
            )
            return 2
        pq.write_table(table, args.output or sys.stdout.buffer)
        return 0
    text = {"table": as_text_table, "csv": as_csv, "json": as_json_lines}[args.format](table)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


def as_csv(table: Any) -> str:
    """CSV with a header row."""
    import pyarrow as pa
    import pyarrow.csv as csv

    sink = pa.BufferOutputStream()
    csv.write_csv(table, sink)
    return sink.getvalue().to_pybytes().decode()


def as_json_lines(table: Any) -> str:
    """One JSON object per row."""
    return "".join(json.dumps(row, default=str, ensure_ascii=False) + "\n" for row in table.to_pylist())


def as_text_table(table: Any, max_width: int = 40) -> str:
    """An aligned text table, long cells cut, with a row count."""

    def cell(value: Any) -> str:
        text = "NULL" if value is None else str(value).replace("\n", " ")
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    rows = [[cell(v) for v in row.values()] for row in table.to_pylist()]
    header = table.column_names
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    line = "-+-".join("-" * w for w in widths)
    out = [" | ".join(h.ljust(w) for h, w in zip(header, widths)), line]
    out += [" | ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    out.append(f"({table.num_rows} row{'s' if table.num_rows != 1 else ''})")
    return "\n".join(out) + "\n"
