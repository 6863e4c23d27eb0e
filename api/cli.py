"""The `cerver` command. Heavy libraries load inside each command, so `--help` stays fast."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from api.cli_output import FORMATS, write_table

IMPORT_SOURCES = ("claude-code", "codex", "gemini", "otlp")  # ingest.importers.SOURCES, without importing it


def _data_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        default=None,
        help="warehouse folder (default: $CERVER_DATA, else ./cerver-data)",
    )


def _wal_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wal",
        default=None,
        help="local folder for the write-ahead log, its LOCK and WRITER_ID: one per instance "
        "(default: $CERVER_WAL, else the data folder, or ./cerver-wal for s3://)",
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
    _wal_arg(serve)
    serve.add_argument(
        "--no-compact",
        dest="compact",
        action="store_false",
        default=os.environ.get("CERVER_COMPACT", "1").lower() not in ("0", "false", "no"),
        help="leave compaction to another instance sharing the table (default: $CERVER_COMPACT, else on)",
    )
    serve.add_argument(
        "--access-log",
        action="store_true",
        default=os.environ.get("CERVER_ACCESS_LOG", "") not in ("", "0", "false"),
        help="log every request (off by default: it costs a tenth of a small request's CPU)",
    )
    serve.set_defaults(run=_serve)

    sql = commands.add_parser("sql", help="run one read-only SQL statement over the warehouse")
    sql.add_argument("query", help='e.g. "SELECT * FROM sessions LIMIT 10"')
    _data_arg(sql)
    sql.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    sql.add_argument("--output", "-o", help="write to this file instead of standard output")
    sql.set_defaults(run=_sql)

    query = commands.add_parser(
        "query",
        help="run a named query from queries/ (--list shows them)",
        description="Run a named query over the warehouse, e.g. `cerver query cost_by_model --param "
        "since=2026-11-01`. `cerver query --list` shows every query, its parameters and their defaults.",
    )
    query.add_argument("name", nargs="?", help="the query's name, e.g. cost_by_model")
    query.add_argument("--list", action="store_true", help="list the named queries and their parameters")
    query.add_argument(
        "--param", "-p", action="append", default=[], metavar="K=V", help="a parameter's value (repeatable)"
    )
    _data_arg(query)
    query.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    query.add_argument("--output", "-o", help="write to this file instead of standard output")
    query.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        default="duckdb",
        help="duckdb (default), or Spark in local mode over the table's files (needs Java 17+)",
    )
    query.set_defaults(run=_query)

    tokens = commands.add_parser("tokens", help="API tokens: mint one for a tenant")
    token_commands = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    create = token_commands.add_parser("create", help="mint a token (printed once, stored hashed)")
    create.add_argument("--tenant", required=True, help="the organisation the token acts for")
    _data_arg(create)
    create.set_defaults(run=_create_token)

    imports = commands.add_parser(
        "import",
        help="import Claude Code, Codex or Gemini CLI transcripts (or OTLP JSON files), incrementally",
        description="Import transcripts into the warehouse. Files already imported are read only from where "
        "they stopped; importing the same files again adds nothing. Malformed lines are reported, not fatal.",
    )
    imports.add_argument("source", choices=IMPORT_SOURCES, help="the transcripts' format")
    imports.add_argument("path", help="e.g. ~/.claude, ~/.codex, ~/.gemini, a subfolder, or one file")
    imports.add_argument(
        "--user", default=None, help="user_id of the imported sessions (default: your login name)"
    )
    imports.add_argument(
        "--tenant", default=None, help="tenant of the imported sessions (default: 'default')"
    )
    _data_arg(imports)
    imports.add_argument("--json", action="store_true", help="print the summary as JSON")
    imports.set_defaults(run=_import)

    compact = commands.add_parser("compact", help="merge each day's Parquet parts into few large files")
    _data_arg(compact)
    _wal_arg(compact)
    compact.set_defaults(run=_compact)

    demo = commands.add_parser(
        "demo",
        help="fill the warehouse with a realistic synthetic workload (the same for the same seed)",
        description="Write synthetic sessions: users, models, harnesses, compute, fan-outs, errors and "
        "retries over the weeks before --end. The same seed and options make the same events, so running it "
        "again adds nothing. What it contains: docs/demo.md.",
    )
    demo.add_argument(
        "--sessions", type=_at_least(1), default=2_000, help="top-level sessions (default: 2,000)"
    )
    demo.add_argument("--seed", type=_at_least(0), default=7, help="random seed (default: 7)")
    demo.add_argument(
        "--end",
        type=_day,
        default=None,
        help="YYYY-MM-DD: events fall before its midnight UTC (default: 2026-11-01)",
    )
    demo.add_argument(
        "--weeks", type=_at_least(1), default=6, help="weeks of traffic before --end (default: 6)"
    )
    demo.add_argument("--tenant", default=None, help="tenant of the sessions (default: 'default')")
    _data_arg(demo)
    demo.set_defaults(run=_demo)

    relay = commands.add_parser(
        "relay",
        help="serve this machine as compute for your tenant: dial the server and run its sessions' commands",
        description="Connect to a Cerver server and register as compute (`relay`) for the token's tenant; "
        'sessions attached with {"provider": "relay", "options": {"name": NAME}} run their commands '
        "here, in ROOT/<session_id>. Reconnects by itself after a drop. What it does: docs/compute.md.",
    )
    relay.add_argument("--server", required=True, help="the server's URL, e.g. http://127.0.0.1:8000")
    relay.add_argument(
        "--token",
        default=os.environ.get("CERVER_RELAY_TOKEN"),
        help="an API token (default: $CERVER_RELAY_TOKEN)",
    )
    relay.add_argument("--name", default=None, help="the relay's name (default: this machine's host name)")
    relay.add_argument(
        "--root", default="cerver-relay", help="folder of the workspaces (default: ./cerver-relay)"
    )
    relay.add_argument(
        "--homes",
        default=None,
        help="folder of the sessions' agent CLI homes (default: ROOT-homes, beside ROOT)",
    )
    relay.add_argument(
        "--claude-bin",
        default=os.environ.get("CERVER_CLAUDE_BIN"),
        help="the claude CLI for claude-code sessions (default: $CERVER_CLAUDE_BIN, else `claude` on PATH)",
    )
    relay.add_argument(
        "--codex-bin",
        default=os.environ.get("CERVER_CODEX_BIN"),
        help="the codex CLI for codex sessions (default: $CERVER_CODEX_BIN, else `codex` on PATH)",
    )
    relay.set_defaults(run=_relay)
    return parser


def _at_least(minimum: int) -> Any:
    """An argparse type: an integer of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer of at least {minimum}, got {text!r}")
        return value

    return parse


def _day(text: str) -> Any:
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


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
    from api.settings import Settings

    settings = Settings(data=args.data, wal=args.wal, compact=args.compact)
    sys.setswitchinterval(settings.switch_interval_s)  # the server's process only, not the library's users
    uvicorn.run(create_app(args.data, settings), host=args.host, port=args.port, access_log=args.access_log)
    return 0


def _relay(args: argparse.Namespace) -> int:
    import asyncio
    import socket
    from pathlib import Path

    from api.relay.client import serve
    from api.relay.hub import NAME

    if not args.token:
        print("cerver relay: give --token (or set CERVER_RELAY_TOKEN)", file=sys.stderr)
        return 2
    name = args.name or socket.gethostname().split(".")[0]
    if not NAME.match(name):
        print(
            f"cerver relay: {name!r} cannot be a relay name (letters, digits, '.', '_', '-')", file=sys.stderr
        )
        return 2

    def say(line: str) -> None:
        print(line, flush=True)

    homes = Path(args.homes).absolute() if args.homes else None
    bins = {"claude": args.claude_bin, "codex": args.codex_bin}
    return asyncio.run(serve(args.server, args.token, name, Path(args.root).absolute(), say, homes, bins))


def _sql(args: argparse.Namespace) -> int:
    import warehouse

    with warehouse.open(args.data, read_only=True) as wh:
        table = wh.sql(args.query)
    return write_table(table, args)


def _query(args: argparse.Namespace) -> int:
    import queries

    if args.list:
        sys.stdout.write(_describe_queries(queries.catalog(), as_json=args.format == "json"))
        return 0
    if not args.name:
        print("cerver query: name a query (cerver query --list shows them)", file=sys.stderr)
        return 2
    values: dict[str, str] = {}
    for item in args.param:
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            print(f"cerver query: --param expects NAME=VALUE, got {item!r}", file=sys.stderr)
            return 2
        values[key.strip()] = value
    try:  # before opening the warehouse: a typo costs nothing
        queries.bind(queries.get(args.name), values)
    except (queries.UnknownQuery, queries.BadParams) as exc:
        print(f"cerver query: {exc.args[0]}", file=sys.stderr)
        return 2
    import warehouse

    if args.engine == "spark":
        from queries.engines import spark

        try:
            table = spark.query(args.data or warehouse.default_url(), args.name, values)
        except spark.JavaMissing as exc:
            print(f"cerver query: {exc}", file=sys.stderr)
            return 1
        return write_table(table, args)
    with warehouse.open(args.data, read_only=True) as wh:
        table = queries.run(wh, args.name, values)
    return write_table(table, args)


def _describe_queries(catalog: Any, *, as_json: bool) -> str:
    """The named queries with their parameters: a line each, or one JSON object per query."""
    if as_json:
        return "".join(json.dumps(_query_as_json(q), default=_shown) + "\n" for q in catalog)
    out = []
    for q in catalog:
        out.append(f"{q.name}: {q.summary}")
        for p in q.params:
            value, note = (f"<{p.type}>", "required") if p.required else (_shown(p.default), p.type)
            out.append(f"    --param {p.name}={value}  ({note}) {p.doc}".rstrip())
    return "\n".join(out) + "\n"


def _query_as_json(q: Any) -> dict[str, Any]:
    params = [{"name": p.name, "type": p.type, "default": p.default, "doc": p.doc} for p in q.params]
    return {"name": q.name, "summary": q.summary, "params": params, "tables": list(q.tables)}


def _shown(value: Any) -> str:
    """A parameter's default as one would type it: a timestamp at midnight UTC as its date."""
    if value == "":
        return "''"
    if hasattr(value, "isoformat"):
        return value.isoformat().removesuffix("T00:00:00+00:00")
    return str(value)


def _create_token(args: argparse.Namespace) -> int:
    from api.auth import TokenStore
    from warehouse import default_url, locate

    try:  # tokens live in the local folder: the data folder, or $CERVER_WAL beside an s3:// table
        token = TokenStore(locate(args.data or default_url()).local).create(args.tenant)
    except ValueError as exc:
        print(f"cerver tokens create: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def _import(args: argparse.Namespace) -> int:
    import warehouse
    from api.auth import DEFAULT_TENANT
    from ingest.importers import InvalidImport, default_user, import_path, source
    from ingest.importers.progress import ProgressBar, describe

    if not os.path.exists(os.path.expanduser(args.path)):  # before opening (and creating) the warehouse
        print(f"cerver import: {args.path}: no such file or folder", file=sys.stderr)
        return 2
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() and not args.json else None
    try:
        with warehouse.open(args.data) as wh:
            summary = import_path(
                wh,
                source(args.source),
                args.path,
                tenant_id=args.tenant or DEFAULT_TENANT,
                user_id=args.user or default_user(),
                progress=bar,
            )
    except warehouse.WarehouseLocked as exc:
        holder = str(exc).split(";")[0]
        print(
            f"cerver import: {holder}. Is `cerver serve` running on this folder? "
            "Stop it for the import, or import into another --data folder.",
            file=sys.stderr,
        )
        return 1
    except (FileNotFoundError, InvalidImport) as exc:
        print(f"cerver import: {exc}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps(summary.as_json()))
    else:
        sys.stdout.write(describe(summary))
    if summary.files == 0:
        print(f"cerver import: no {args.source} files under {args.path}", file=sys.stderr)
        return 1
    return 1 if summary.lines and summary.malformed == summary.lines else 0


def _compact(args: argparse.Namespace) -> int:
    import logging

    import warehouse

    logging.basicConfig(level=logging.INFO, format="%(message)s")  # a line per day compacted

    with warehouse.open(args.data, wal=args.wal) as wh:
        result = wh.compact()
    print(
        f"compacted {result.partitions} day(s): {result.files_before} -> {result.files_after} files, "
        f"{result.vacuumed} old file(s) removed"
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    import warehouse
    from api.auth import DEFAULT_TENANT
    from ingest.demo import DEFAULT_END, generate
    from ingest.demo.progress import ProgressBar, describe

    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    try:
        with warehouse.open(args.data) as wh:
            summary = generate(
                wh,
                sessions=args.sessions,
                seed=args.seed,
                end=args.end or DEFAULT_END,
                weeks=args.weeks,
                tenant=args.tenant or DEFAULT_TENANT,
                progress=bar,
            )
    except warehouse.WarehouseLocked as exc:
        holder = str(exc).split(";")[0]
        print(
            f"cerver demo: {holder}. Is `cerver serve` running on this folder? Stop it first.",
            file=sys.stderr,
        )
        return 1
    except ValueError as exc:
        print(f"cerver demo: {exc}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    sys.stdout.write(describe(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
