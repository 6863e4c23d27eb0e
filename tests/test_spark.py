"""The named queries on Apache Spark (local mode) agree with DuckDB's answers, on the same Delta table.

Real Spark: a `local[2]` session started once for the module (UI off, loopback only), reading
the table's live Parquet files from its Delta log; the reference is `queries.run` on DuckDB
over the same warehouse. Twice over: the hand-made workload (tests/queries_dataset.py) and a
demo dataset (`ingest.demo`). Counts, ids, text and timestamps must be equal; floats (costs,
latencies, percentiles: exact on both engines) agree to a relative 1e-9, engines adding in
different orders. Without Java the module is skipped, saying so; with Java (CI) it runs.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pytest

import queries
import warehouse
from ingest.demo import generate
from queries.engines import spark
from tests.conftest import MANUAL
from tests.queries_dataset import SONNET, build, load
from tests.test_queries_ibis import CASES
from warehouse.errors import WarehouseError

pytestmark = [
    pytest.mark.skipif(
        spark.java() is None, reason="Spark needs Java 17+: no `java` on PATH or in JAVA_HOME"
    ),
    # ibis 12 still calls a DuckDB method that DuckDB 2 deprecates; not ours to fix.
    pytest.mark.filterwarnings("ignore:fetch_arrow_table:DeprecationWarning"),
    # pyspark 4.0 and ibis 12 use pandas options that pandas 3 deprecates; not ours either.
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
    pytest.mark.filterwarnings("ignore:The 'future.infer_string' option is deprecated"),
]

DEMO_CASES = [(q.name, {"model": SONNET} if q.name == "what_if_cost" else {}) for q in queries.catalog()]
# (query): why ibis's PySpark backend cannot run its expression yet; strict, so a fix shows.
IBIS_GAPS = {
    "fanout_comparison": "ibis 12's PySpark UnwrapJSONString json-decodes get_json_object's unquoted text",
}


class Engine:
    """The module's Spark session and the table its views are on (attaching costs about a second)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.on: Path | None = None

    def use(self, data: Path) -> Any:
        """The session, its views on `data`'s table."""
        if self.on != data:
            spark.attach(self.session, data)
            self.on = data
        return self.session


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    # Tiny tables: planning, not data, is the cost, so skip adaptive re-planning and code generation
    # (together a third off this module's time) and shuffle into one partition.
    tiny = {"spark.sql.adaptive.enabled": "false", "spark.sql.codegen.wholeStage": "false"}
    session = spark.session(shuffle_partitions=1, conf=tiny)
    yield Engine(session)
    session.stop()


@pytest.fixture
def session(engine: Engine) -> Any:
    """The session, for a test that attaches tables of its own."""
    engine.on = None
    return engine.session


class Dataset(NamedTuple):
    """A warehouse written and flushed by a test, and the folder it lives in."""

    wh: warehouse.Warehouse
    data: Path


def _flushed(data: Path, fill: Callable[[warehouse.Warehouse], object]) -> Iterator[Dataset]:
    with warehouse.open(data, policy=MANUAL) as wh:
        fill(wh)
        wh.flush()  # Spark reads the table; the writer's unflushed tail is not in it
        yield Dataset(wh, data)


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    yield from _flushed(tmp_path_factory.mktemp("spark-hand") / "data", lambda w: load(w, build()))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    yield from _flushed(
        tmp_path_factory.mktemp("spark-demo") / "data", lambda w: generate(w, sessions=120, seed=11)
    )


def assert_same(name: str, got: pa.Table, want: pa.Table, *, types: bool = True) -> None:
    """Same columns (of the same types), same rows in the same order; floats to a relative 1e-9."""
    assert want.num_rows, f"{name}: DuckDB's answer is empty, so agreeing with it proves nothing"
    assert got.column_names == want.column_names, name
    if types:
        assert [f.type for f in got.schema] == [f.type for f in want.schema], name
    rows, expected = got.to_pylist(), want.to_pylist()
    assert len(rows) == len(expected), f"{name}: {len(rows)} rows, DuckDB {len(expected)}"
    for g, w in zip(rows, expected):
        wrong = {k: (g[k], w[k]) for k in w if not _same(g[k], w[k])}
        assert not wrong, f"{name}: {wrong}\nSpark  {g}\nDuckDB {w}"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dt.datetime) and a.tzinfo is None:  # ibis gives Spark's UTC timestamps naive
        a = a.replace(tzinfo=dt.UTC)
    return a == b


@pytest.mark.parametrize(("name", "values"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_hand_made_workload_agrees_with_duckdb(
    engine: Engine, hand: Dataset, name: str, values: dict[str, Any]
) -> None:
    got = spark.run(engine.use(hand.data), name, values)
    assert_same(name, got, queries.run(hand.wh, name, values))


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            n,
            marks=[pytest.mark.xfail(reason=IBIS_GAPS[n], strict=True)] if n in IBIS_GAPS else [],
        )
        for n, _ in DEMO_CASES
    ],
)
def test_ibis_expressions_on_pyspark_agree_with_duckdb(engine: Engine, hand: Dataset, name: str) -> None:
    """queries.ibis_queries through ibis's PySpark backend (its types are ibis's: naive timestamps)."""
    from queries.ibis_queries import expression

    values = dict(DEMO_CASES)[name]
    got = expression(spark.ibis_backend(engine.use(hand.data)), name, values).to_pyarrow()
    assert_same(name, got, queries.run(hand.wh, name, values), types=False)


@pytest.mark.parametrize(("name", "values"), DEMO_CASES, ids=[n for n, _ in DEMO_CASES])
def test_demo_dataset_agrees_with_duckdb(
    engine: Engine, demo: Dataset, name: str, values: dict[str, Any]
) -> None:
    got = spark.run(engine.use(demo.data), name, values)
    assert_same(name, got, queries.run(demo.wh, name, values))


def test_spark_reads_the_table_not_the_writers_tail(session: Any, tmp_path: Path) -> None:
    """Events still in the writer's log reach Spark with the flush that commits them to the table."""
    with warehouse.open(tmp_path / "data", policy=MANUAL) as wh:
        events = build()
        wh.append(events[:10])
        wh.flush()
        wh.append(events[10:])
        spark.attach(session, tmp_path / "data")
        assert session.sql("SELECT count(*) AS n FROM events").toArrow()["n"][0].as_py() == 10
        wh.flush()
        spark.attach(session, tmp_path / "data")
        assert session.sql("SELECT count(*) AS n FROM events").toArrow()["n"][0].as_py() == len(events)


def test_a_warehouse_that_has_flushed_nothing_gives_empty_answers(session: Any, tmp_path: Path) -> None:
    with warehouse.open(tmp_path / "data", policy=MANUAL) as wh:
        wh.append(build()[:5])  # in the log only: the Delta table does not exist yet
        assert spark.attach(session, tmp_path / "data") == []
        answer = spark.run(session, "cost_by_model")
        assert answer.column_names == queries.run(wh, "cost_by_model").column_names
    assert answer.num_rows == 0


def test_no_warehouse_there_is_a_warehouse_error(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match="no warehouse table at"):
        spark.live_files(tmp_path / "nowhere")


def test_parameters_stay_parameters_in_the_spark_sql() -> None:
    """The transpiled SQL binds values as markers; DuckDB's quantile_cont becomes the exact percentile."""
    sql = spark.spark_sql("latency_by_model")
    assert ":since" in sql and ":status" in sql and "1970" not in sql
    assert "PERCENTILE(" in sql.upper() and "QUANTILE" not in sql.upper() and "APPROX" not in sql.upper()


def test_the_session_stays_on_this_machine(engine: Engine) -> None:
    session = engine.session
    conf = session.sparkContext.getConf()
    assert conf.get("spark.ui.enabled") == "false"
    assert conf.get("spark.driver.host") == conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert conf.get("spark.jars.packages") is None  # nothing fetched from a repository
    assert session.conf.get("spark.sql.session.timeZone") == "UTC"


def test_without_java_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(spark.JavaMissing, match="Java 17"):
        spark.session()


def test_cli_runs_a_named_query_on_spark(
    session: Any, hand: Dataset, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cerver query NAME --engine spark` (in-process: it reuses this module's Spark session)."""
    from api.cli import main

    data = str(hand.data)
    outputs = []
    for engine in ("duckdb", "spark"):
        assert main(["query", "errors_by_model", "--data", data, "--engine", engine, "--format", "json"]) == 0
        outputs.append([json.loads(line) for line in capsys.readouterr().out.splitlines()])
    assert outputs[0] == outputs[1] and len(outputs[1]) == 3


def test_cli_on_spark_without_a_warehouse_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A wrong --data fails before any JVM starts, with the same message style as DuckDB's."""
    from api.cli import main

    assert main(["query", "sessions", "--data", str(tmp_path / "nowhere"), "--engine", "spark"]) == 1
    assert "no warehouse table at" in capsys.readouterr().err
