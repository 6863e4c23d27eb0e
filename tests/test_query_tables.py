"""Extra Arrow tables for one statement: visible by name to it alone, never shadowing the views."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pytest

import warehouse
from tests.conftest import MANUAL
from tests.factory import conversation

PRICES = pa.table({"model": ["openai/gpt-4o"], "usd_per_token": [2.5e-6]})


@pytest.fixture
def filled(wh: warehouse.Warehouse) -> warehouse.Warehouse:
    wh.append(conversation("a"))
    wh.flush()
    wh.append(conversation("b"))  # one session in the parts, one in the tail
    return wh


def test_a_table_joins_the_views(filled: warehouse.Warehouse) -> None:
    out = filled.sql(
        "select r.session_id, sum(r.input_tokens * p.usd_per_token) as usd "
        "from runs r join prices p using (model) group by 1 order by 1",
        tables={"prices": PRICES},
    )
    assert out.to_pylist() == [
        {"session_id": "a", "usd": pytest.approx(200 * 2.5e-6)},
        {"session_id": "b", "usd": pytest.approx(200 * 2.5e-6)},
    ]


def test_the_table_is_gone_after_the_statement(filled: warehouse.Warehouse) -> None:
    assert filled.sql("select count(*) as n from prices", tables={"prices": PRICES}).to_pylist() == [{"n": 1}]
    with pytest.raises(warehouse.QueryError, match="prices"):
        filled.sql("select * from prices")


def test_the_table_is_gone_after_an_error(filled: warehouse.Warehouse) -> None:
    with pytest.raises(warehouse.QueryError):
        filled.sql("select no_such_column from prices", tables={"prices": PRICES})
    with pytest.raises(warehouse.QueryError, match="prices"):
        filled.sql("select * from prices")
    # and the same name registers again on the same cursor
    assert filled.sql("select model from prices", tables={"prices": PRICES}).num_rows == 1


def test_parameters_and_tables_together(filled: warehouse.Warehouse) -> None:
    out = filled.sql(
        "select count(*) as n from runs join prices using (model) where session_id = $s",
        {"s": "a"},
        tables={"prices": PRICES},
    )
    assert out.to_pylist() == [{"n": 2}]


def test_another_thread_never_sees_the_table(filled: warehouse.Warehouse) -> None:
    inside, done = threading.Event(), threading.Event()
    seen: list[BaseException | int] = []

    class Slow:
        """An Arrow stream that pauses mid-scan, so another thread queries while it is registered."""

        def __arrow_c_stream__(self, requested_schema: object = None) -> object:
            inside.set()
            done.wait(10)
            return PRICES.__arrow_c_stream__(requested_schema)

    def other() -> None:
        inside.wait(10)
        try:
            filled.sql("select * from prices")
        except warehouse.QueryError as exc:
            seen.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=other)
    thread.start()
    rows = filled.sql("select count(*) as n from prices", tables={"prices": Slow()}).to_pylist()  # type: ignore[dict-item]
    thread.join()
    assert rows == [{"n": 1}]
    assert len(seen) == 1 and isinstance(seen[0], warehouse.QueryError)


@pytest.mark.parametrize(
    "name",
    [
        "events",
        "Sessions",
        "messages",
        "RUNS",
        "_parts",
        "_tail",
        "_session_tail",
        "a b",
        "x;drop",
        "1st",
        "",
    ],
)
def test_names_that_are_refused(filled: warehouse.Warehouse, name: str) -> None:
    before = filled.sql("select count(*) as n from events").to_pylist()
    with pytest.raises(warehouse.QueryError, match="table name"):
        filled.sql("select 1", tables={name: PRICES})
    assert filled.sql("select count(*) as n from events").to_pylist() == before == [{"n": 18}]


def test_a_reader_takes_tables_too(filled: warehouse.Warehouse, data_dir: Path) -> None:
    with warehouse.open(data_dir, read_only=True, policy=MANUAL) as reader:
        out = reader.sql(
            "select count(*) as n from runs join prices using (model)", tables={"prices": PRICES}
        )
    assert out.to_pylist() == [{"n": 4}]
