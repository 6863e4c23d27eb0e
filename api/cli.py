"""The `cerver` command. Heavy libraries load inside each command, so `--help` stays fast."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

FORMATS = ("table", "csv", "json", "parquet")


def _data_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        default=None,
        help="warehouse folder (default: $CERVER_DATA, else ./cerver-data)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="cerver", description="Cerver: the session layer for AI apps, analytics-first."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the API on the embedded warehouse")
    _data_arg(serve)
    serve.add_argument("--host", default=os.environ.get("CERVER_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("CERVER_PORT", "8000")))
    serve.set_defaults(run=_serve)

    sql = commands.add_parser("sql", help="run one read-only SQL statement over the warehouse")
    sql.add_argument("query", help='e.g. "SELECT * FROM sessions LIMIT 10"')
    _data_arg(sql)
    sql.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    sql.add_argument("--output", "-o", help="write to this file instead of standard output")
    sql.set_defaults(run=_sql)

    tokens = commands.add_parser("tokens", help="API tokens: mint one for a tenant")
    token_commands = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    create = token_commands.add_parser("create", help="mint a token (printed once, stored hashed)")
    create.add_argument("--tenant", required=True, help="the organisation the token acts for")
    _data_arg(create)
    create.set_defaults(run=_create_token)

    compact = commands.add_parser("compact", help="merge each day's Parquet parts into few large files")
    _data_arg(compact)
    compact.set_defaults(run=_compact)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cerver` console script."""
    args = build_parser().parse_args(argv)
    from warehouse.errors import WarehouseError

    try:
        return args.run(args) or 0
    except WarehouseError as exc:
        print(f"cerver {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.main import create_app

    uvicorn.run(create_app(args.data), host=args.host, port=args.port)
    return 0


def _sql(args: argparse.Namespace) -> int:
    import warehouse

    with warehouse.open(args.data, read_only=True) as wh:
        table = wh.sql(args.query)
    if args.format == "parquet":
        import pyarrow.parquet as pq

        if args.output is None and sys.stdout.isatty():
            print("cerver sql: refusing to write Parquet to a terminal; use --output FILE", file=sys.stderr)
            return 2
        pq.write_table(table, args.output or sys.stdout.buffer)
        return 0
    text = {"table": _as_text_table, "csv": _as_csv, "json": _as_json_lines}[args.format](table)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _create_token(args: argparse.Namespace) -> int:
    from pathlib import Path

    from api.auth import TokenStore
    from warehouse import default_url

    try:
        token = TokenStore(Path(args.data or default_url()).absolute()).create(args.tenant)
    except ValueError as exc:
        print(f"cerver tokens create: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def _compact(args: argparse.Namespace) -> int:
    import logging

    import warehouse

    logging.basicConfig(level=logging.INFO, format="%(message)s")  # a line per day compacted

    with warehouse.open(args.data) as wh:
        result = wh.compact()
    print(
        f"compacted {result.partitions} day(s): {result.files_before} -> {result.files_after} files, "
        f"{result.vacuumed} old file(s) removed"
    )
    return 0


def _as_csv(table: Any) -> str:
    import pyarrow as pa
    import pyarrow.csv as csv

    sink = pa.BufferOutputStream()
    csv.write_csv(table, sink)
    return sink.getvalue().to_pybytes().decode()


def _as_json_lines(table: Any) -> str:
    return "".join(json.dumps(row, default=str, ensure_ascii=False) + "\n" for row in table.to_pylist())


def _as_text_table(table: Any, max_width: int = 40) -> str:
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


if __name__ == "__main__":
    sys.exit(main())
