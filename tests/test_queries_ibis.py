"""The ibis versions of the named queries: the same answers as the SQL, and they compile elsewhere.

Runs on DuckDB through ibis (an in-memory copy of the views); other backends are checked by
compiling each expression to their SQL dialect, with strict markers for the known gaps, so a
gap that ibis closes fails loudly.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from typing import Any

import ibis
import pytest
from ibis.backends import BaseBackend

import queries
import warehouse
from queries.ibis_queries import EXPRESSIONS, expression
from tests.conftest import MANUAL
from tests.queries_dataset import GPT, OPUS, SONNET, build, load

# ibis 12 still calls a DuckDB method that DuckDB 2 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:fetch_arrow_table:DeprecationWarning")

CASES = [
    ("sessions", {}),
    ("sessions", {"user": "u2", "since": "2026-11-02"}),
    ("cost_by_model", {}),
    ("cost_by_model", {"until": "2026-11-03"}),
    ("cost_by_user", {}),
    ("cost_by_user", {"user": "u1"}),
    ("latency_by_model", {}),
    ("latency_by_model", {"status": ""}),
    ("errors_by_model", {}),
    ("compute_time_by_provider", {}),
    ("compute_time_by_provider", {"since": "2026-11-03"}),
    ("fanout_comparison", {}),
    ("fanout_comparison", {"parent": "p2"}),
    ("daily_active_users", {}),
    ("top_sessions_by_cost", {}),
    ("top_sessions_by_cost", {"limit": "3"}),
    ("what_if_cost", {"model": SONNET}),
    ("what_if_cost", {"model": GPT, "from_model": OPUS, "since": "2026-11-02"}),
    ("what_if_cost", {"model": "nowhere/no-such-model"}),
]
DIALECTS = ("postgres", "snowflake", "trino", "bigquery", "clickhouse")
GAPS = {  # (dialect, query): the ibis operation that dialect cannot compile yet
    ("trino", "latency_by_model"): "Quantile",
    ("trino", "compute_time_by_provider"): "Quantile",
    ("bigquery", "latency_by_model"): "Quantile",
    ("bigquery", "compute_time_by_provider"): "Quantile",
    ("clickhouse", "fanout_comparison"): "UnwrapJSONString",
}


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[warehouse.Warehouse]:
    w = warehouse.open(tmp_path_factory.mktemp("ibis") / "cerver-data", policy=MANUAL)
    load(w, build())
    yield w
    w.close()


@pytest.fixture(scope="module")
def con(wh: warehouse.Warehouse) -> BaseBackend:
    return queries.ibis_connection(wh)


def test_every_named_query_has_an_ibis_version_with_its_parameters() -> None:
    assert sorted(EXPRESSIONS) == [q.name for q in queries.catalog()]
    for query in queries.catalog():
        signature = inspect.signature(EXPRESSIONS[query.name])
        assert [p for p in signature.parameters if p != "con"] == [p.name for p in query.params]


@pytest.mark.parametrize(("name", "values"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_ibis_and_sql_agree(
    wh: warehouse.Warehouse, con: BaseBackend, name: str, values: dict[str, Any]
) -> None:
    sql = queries.run(wh, name, values)
    via_ibis = expression(con, name, values).to_pyarrow()
    assert via_ibis.column_names == sql.column_names
    got, want = via_ibis.to_pylist(), sql.to_pylist()
    assert len(got) == len(want) and want, name
    for g, w in zip(got, want):  # both in the query's own order
        wrong = {k: (g[k], w[k]) for k in w if not _same(g[k], w[k])}
        assert not wrong, f"{name}: {g}\n!= {w}"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


@pytest.mark.parametrize(
    ("dialect", "name"),
    [
        pytest.param(
            d,
            q.name,
            marks=[pytest.mark.xfail(reason=GAPS[d, q.name], strict=True)] if (d, q.name) in GAPS else [],
        )
        for d in DIALECTS
        for q in queries.catalog()
    ],
)
def test_the_expressions_compile_for_other_backends(con: BaseBackend, dialect: str, name: str) -> None:
    values = {"model": SONNET} if name == "what_if_cost" else {}
    assert "SELECT" in ibis.to_sql(expression(con, name, values), dialect=dialect)
