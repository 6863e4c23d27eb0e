"""The named queries on Apache Spark, over the same Delta table's live Parquet files.

    from queries.engines import spark
    session = spark.session()                       # local[2], UI off, bound to 127.0.0.1
    spark.attach(session, "cerver-data")            # events, messages, runs, sessions (and prices)
    spark.run(session, "cost_by_model", {"since": "2026-11-01"})   # -> pyarrow.Table

The file list comes from the Delta log through the `deltalake` package, so Spark needs no
Delta jar and nothing is fetched at run time. Each query is its own `.sql` file transpiled
from DuckDB's dialect to Spark's by sqlglot (parameters stay parameters: `:since`), with
DuckDB's `quantile_cont` rewritten to Spark's exact `percentile` (both interpolate linearly
between the two nearest values). The views are the warehouse's own, transpiled the same way.

Spark sees what the table holds: events still in a writer's log (not yet flushed) are not in
it. `ibis_backend` gives the same views to `queries.ibis_queries` through ibis's PySpark backend.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from queries.catalog import get
from queries.params import bind
from queries.tables import BUILDERS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

LOG_CONFIG = Path(__file__).with_name("log4j2.properties")
LOOPBACK = "127.0.0.1"
# Spark's own settings for a session on one machine: nothing listens beyond loopback, no web
# UI, no progress bars, UTC days (as DuckDB's), and no package fetched from a repository.
LOCAL_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": LOOPBACK,
    "spark.driver.bindAddress": LOOPBACK,
    "spark.sql.session.timeZone": "UTC",
    "spark.log.structuredLogging.enabled": "false",
}


class JavaMissing(RuntimeError):
    """Spark needs a Java runtime (17 or later) and none was found."""


def java() -> str | None:
    """The `java` executable Spark will start ($JAVA_HOME's, else the one on PATH), or None."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def session(
    master: str = "local[2]",
    *,
    shuffle_partitions: int = 2,
    log_level: str = "ERROR",
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """A Spark session in local mode, listening on loopback only; `conf` adds or overrides settings."""
    if java() is None:
        raise JavaMissing("Spark needs Java 17 or later: install a JDK or set JAVA_HOME")
    os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers import what the driver does
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName("cerver")
    settings = LOCAL_CONF | {
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        # Errors only, from the JVM's start: Spark's default profile chatters into the CLI's output.
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}",
    }
    settings |= dict(conf or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(log_level)
    return spark


def live_files(data: str | Path) -> list[str]:
    """The Parquet files of the events table's current version, from its Delta log.

    No files for a local warehouse folder that has flushed nothing yet (it has no table yet); a
    missing folder, or a URL with no table, raises WarehouseError as opening it for DuckDB would.
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    from warehouse.errors import WarehouseError

    url = str(data).rstrip("/")
    try:
        uris = DeltaTable(f"{url}/events").file_uris()
    except TableNotFoundError:
        if "://" not in url and Path(url).is_dir():
            return []
        raise WarehouseError(f"no warehouse table at {url}/events") from None
    # Spark's Hadoop file systems name S3 `s3a://` (the hadoop-aws jar must be on the cluster).
    return [f"s3a://{uri.removeprefix('s3://')}" if uri.startswith("s3://") else uri for uri in uris]


def events_frame(spark: SparkSession, files: list[str]) -> DataFrame:
    """The events as a DataFrame over `files` (their schemas merged: older files lack newer columns)."""
    if not files:
        import warehouse

        return spark.createDataFrame(warehouse.SCHEMA.empty_table())
    return spark.read.option("mergeSchema", "true").parquet(*files)


def attach(spark: SparkSession, data: str | Path, *, files: list[str] | None = None) -> list[str]:
    """Make `data`'s table the session's `events` and its views (replacing any); the files it reads."""
    files = live_files(data) if files is None else files
    events_frame(spark, files).createOrReplaceTempView("events")
    for statement in view_statements():
        spark.sql(statement)
    return files


def view_statements() -> list[str]:
    """The warehouse's own views in Spark SQL: views.sql, and `sessions` as its plain aggregate.

    One definition serves both engines: sqlglot translates DuckDB's (arg_max → max_by, `::`
    → CAST, …); DuckDB keeps `sessions` materialised, Spark recomputes it per query.
    """
    import sqlglot

    from warehouse.query import VIEWS_SQL
    from warehouse.sandbox import SESSIONS_SQL

    statements = []
    for parsed in sqlglot.parse(f"{VIEWS_SQL};\n{SESSIONS_SQL}", read="duckdb"):
        if parsed is not None:
            text = parsed.sql(dialect="spark")
            statements.append(_TEMP_VIEW.sub("CREATE OR REPLACE TEMPORARY VIEW", text, count=1))
    return statements


_TEMP_VIEW = re.compile(r"CREATE (OR REPLACE )?(TEMPORARY )?VIEW")


def run(spark: SparkSession, name: str, values: Mapping[str, Any] | None = None) -> pa.Table:
    """Run the named query on the session's attached table; an Arrow table, as `queries.run` gives."""
    query = get(name)
    args = bind(query, values or {})
    register_tables(spark, query.tables)
    return spark.sql(spark_sql(name), args=args).toArrow()


def query(data: str | Path, name: str, values: Mapping[str, Any] | None = None) -> pa.Table:
    """The named query on `data`'s table in a local Spark session (`cerver query NAME --engine spark`)."""
    files = live_files(data)  # a wrong --data fails here, before a JVM starts
    spark = session()
    attach(spark, data, files=files)
    return run(spark, name, values)


@cache
def spark_sql(name: str) -> str:
    """The named query's SQL in Spark's dialect (parameters as `:name` markers)."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(get(name).sql, read="duckdb")
    tree = tree.transform(
        lambda node: (
            exp.Anonymous(this="percentile", expressions=[node.this, node.expression])
            if isinstance(node, exp.PercentileCont)
            else node
        )
    )
    return tree.sql(dialect="spark", comments=False)


def ibis_backend(spark: SparkSession) -> Any:
    """An ibis PySpark backend on the session: the attached views, for `queries.ibis_queries`."""
    import ibis

    register_tables(spark, BUILDERS)
    return ibis.pyspark.connect(spark)


def register_tables(spark: SparkSession, names: Iterable[str]) -> None:
    """The extra tables (e.g. prices) as temp views, built here as `queries.run` builds them for DuckDB.

    Registered again each time: a temp view shadows a catalog table of the same name, and a
    cluster's catalog may well hold a `prices` of its own.
    """
    for name in names:
        spark.createDataFrame(BUILDERS[name]()).createOrReplaceTempView(name)
