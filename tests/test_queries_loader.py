"""The named-query loader: the catalog, header parsing, binding values to parameters, the prices table."""

from __future__ import annotations

import datetime as dt

import pytest

import queries
from queries.catalog import parse
from queries.prices import price_rows

REQUIRED = {
    "sessions",
    "cost_by_model",
    "cost_by_user",
    "latency_by_model",
    "errors_by_model",
    "compute_time_by_provider",
    "fanout_comparison",
    "daily_active_users",
    "top_sessions_by_cost",
    "what_if_cost",
}
UTC = dt.UTC


def test_the_catalog_has_every_query_documented() -> None:
    found = {q.name: q for q in queries.catalog()}
    assert set(found) >= REQUIRED
    assert [q.name for q in queries.catalog()] == sorted(found)
    for query in found.values():
        assert query.summary and query.sql.startswith(f"-- {query.name}: ")
        for param in query.params:
            assert param.doc, f"{query.name}.{param.name} has no doc"
            assert param.type in queries.TYPES


def test_only_what_if_cost_needs_prices() -> None:
    assert {q.name: q.tables for q in queries.catalog() if q.tables} == {"what_if_cost": ("prices",)}
    assert queries.get("what_if_cost").params[0] == queries.Param(
        "model", "text", None, "the model to price at, as litellm names it (e.g. anthropic/claude-sonnet-4-5)"
    )


def test_an_unknown_query_names_the_known_ones() -> None:
    with pytest.raises(
        queries.UnknownQuery, match="unknown query 'nope'; known: compute_time_by_provider, "
    ) as exc:
        queries.get("nope")
    assert isinstance(exc.value, LookupError) and "what_if_cost" in str(exc.value)


# -- binding --------------------------------------------------------------------------------------


def test_bind_coerces_strings_and_applies_defaults() -> None:
    top = queries.get("top_sessions_by_cost")
    assert queries.bind(top, {"limit": "5", "since": "2026-11-01"}) == {
        "limit": 5,
        "since": dt.datetime(2026, 11, 1, tzinfo=UTC),
        "until": dt.datetime(2100, 1, 1, tzinfo=UTC),
    }
    assert queries.bind(top, {"limit": None})["limit"] == 10  # null takes the default


@pytest.mark.parametrize(
    ("given", "bound"),
    [
        ("2026-11-01T12:30:00Z", dt.datetime(2026, 11, 1, 12, 30, tzinfo=UTC)),
        ("2026-11-01 12:30", dt.datetime(2026, 11, 1, 12, 30, tzinfo=UTC)),  # no offset: UTC
        ("2026-11-01T14:30:00+02:00", dt.datetime(2026, 11, 1, 12, 30, tzinfo=UTC)),
        (dt.date(2026, 11, 1), dt.datetime(2026, 11, 1, tzinfo=UTC)),
        (dt.datetime(2026, 11, 1, 12, 30), dt.datetime(2026, 11, 1, 12, 30, tzinfo=UTC)),
    ],
)
def test_timestamps(given: object, bound: dt.datetime) -> None:
    assert queries.bind(queries.get("cost_by_model"), {"since": given})["since"] == bound


@pytest.mark.parametrize(
    ("type_name", "given", "bound"),
    [
        ("int", " 7 ", 7),
        ("int", 7.0, 7),
        ("int", "-3", -3),
        ("float", "0.25", 0.25),
        ("float", 2, 2.0),
        ("text", "", ""),
        ("text", 5, "5"),
        ("date", "2026-11-01", dt.date(2026, 11, 1)),
        ("date", dt.datetime(2026, 11, 1), dt.date(2026, 11, 1)),
    ],
)
def test_coercion(type_name: str, given: object, bound: object) -> None:
    assert queries.bind(_query_with(type_name), {"p": given}) == {"p": bound}


@pytest.mark.parametrize(
    ("type_name", "given", "reason"),
    [
        ("int", "5.5", "expected an integer, got '5.5'"),
        ("int", True, "expected an integer"),
        ("int", "", "expected an integer"),
        ("float", "nan", "expected a finite number"),
        ("float", "cheap", "expected a finite number"),
        ("text", ["a"], "expected text"),
        ("date", "yesterday", r"expected a date \(YYYY-MM-DD\)"),
        ("date", dt.datetime(2026, 11, 1, 12), "expected a date, got a time of day"),
        ("timestamp", "2026-13-01", "expected a timestamp"),
        ("timestamp", 1700000000, "expected a timestamp"),
    ],
)
def test_bad_values_name_the_parameter(type_name: str, given: object, reason: str) -> None:
    with pytest.raises(queries.BadParams, match=rf"^q: parameter 'p': {reason}") as exc:
        queries.bind(_query_with(type_name), {"p": given})
    assert exc.value.param == "p" and isinstance(exc.value, ValueError)


def test_unknown_and_missing_parameters() -> None:
    what_if = queries.get("what_if_cost")
    with pytest.raises(
        queries.BadParams, match="unknown parameter 'modle' \\(it takes model, from_model"
    ) as exc:
        queries.bind(what_if, {"modle": "x"})
    assert exc.value.param == "modle"
    with pytest.raises(
        queries.BadParams, match="what_if_cost: missing parameter 'model' \\(text: the model"
    ) as exc:
        queries.bind(what_if, {})
    assert exc.value.param == "model"


def _query_with(type_name: str) -> queries.NamedQuery:
    return parse("q", f"-- q: a test.\n-- param p: {type_name}  -- the parameter\nSELECT $p AS p")


# -- parsing --------------------------------------------------------------------------------------


def test_a_header_parsed() -> None:
    query = parse(
        "demo",
        "-- demo: what it answers.\n"
        "-- param since: timestamp = 2026-01-01  -- from here\n"
        "-- param who: text = 'two words'  -- a quoted default\n"
        "-- param none: text = ''\n"
        "-- param n: int\n"
        "-- tables: prices\n"
        "-- More about it,\n"
        "--   over two lines.\n"
        "SELECT * FROM prices WHERE $since < $who || $none || $n AND '$.json_path' <> ''",
    )
    assert query.summary == "what it answers."
    assert query.params == (
        queries.Param("since", "timestamp", dt.datetime(2026, 1, 1, tzinfo=UTC), "from here"),
        queries.Param("who", "text", "two words", "a quoted default"),
        queries.Param("none", "text", "", ""),
        queries.Param("n", "int", None, ""),
    )
    assert query.tables == ("prices",) and query.description == "More about it, over two lines."
    assert query.params[3].required and not query.params[2].required


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("SELECT 1", "the first line must be '-- demo: <what it answers>'"),
        ("-- other: a query\nSELECT 1", "the first line must be"),
        ("-- demo: x\n-- param n: integer\nSELECT $n", "demo.sql:2: unknown type 'integer'"),
        ("-- demo: x\n-- param n int\nSELECT $n", "demo.sql:2: expected '-- param NAME: TYPE"),
        ("-- demo: x\n-- param n: int = ten\nSELECT $n", "demo.sql:2: default of 'n': expected an integer"),
        ("-- demo: x\nSELECT $n", r"parameters used \(\['n'\]\) and declared \(\[\]\) differ"),
        ("-- demo: x\n-- param n: int\nSELECT 1", r"used \(\[\]\) and declared \(\['n'\]\) differ"),
        ("-- demo: x\n-- param n: int\n-- param n: int\nSELECT $n", "declared twice"),
        ("-- demo: x\n-- tables: rates\nSELECT 1", "unknown table 'rates' \\(known: prices\\)"),
    ],
)
def test_malformed_files_are_refused(text: str, complaint: str) -> None:
    with pytest.raises(queries.MalformedQuery, match=complaint):
        parse("demo", text)


# -- prices ---------------------------------------------------------------------------------------


def test_prices_table_one_row_per_chat_model() -> None:
    from ingest.pricing import litellm

    table = queries.prices_table()
    models = table.column("model").to_pylist()
    assert len(models) == len(set(models)) > 1000
    rows = {r["model"]: r for r in table.to_pylist()}
    sonnet = litellm().model_cost["claude-sonnet-4-5"]
    assert rows["anthropic/claude-sonnet-4-5"] == {
        "model": "anthropic/claude-sonnet-4-5",
        "provider": "anthropic",
        "input_cost_per_token": sonnet["input_cost_per_token"],
        "output_cost_per_token": sonnet["output_cost_per_token"],
        "cache_read_cost_per_token": sonnet["cache_read_input_token_cost"],
        "cache_write_cost_per_token": sonnet["cache_creation_input_token_cost"],
    }
    assert rows["openai/gpt-4o"]["cache_write_cost_per_token"] is None
    assert not [m for m in models if "embedding" in m]
    assert queries.prices_table() is table  # built once per process
    assert queries.extra_tables(queries.get("what_if_cost")) == {"prices": table}
    assert queries.extra_tables(queries.get("sessions")) == {}


def test_price_rows_name_models_as_events_do() -> None:
    cost_map = {
        "gpt-x": {
            "mode": "chat",
            "litellm_provider": "openai",
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 2e-6,
        },
        "deep-1": {
            "mode": "chat",
            "litellm_provider": "deep",
            "input_cost_per_token": 9.0,
            "output_cost_per_token": 9.0,
        },
        "deep/deep-1": {
            "mode": "chat",
            "litellm_provider": "deep",
            "input_cost_per_token": 1.0,
            "output_cost_per_token": 2.0,
        },
        "embed": {
            "mode": "embedding",
            "litellm_provider": "openai",
            "input_cost_per_token": 1e-7,
            "output_cost_per_token": 0,
        },
        "per-second": {"mode": "chat", "litellm_provider": "x", "input_cost_per_second": 1.0},
        "sample_spec": {"mode": "one of: chat, embedding", "litellm_provider": "one of …"},
    }
    rows = price_rows(cost_map)
    assert sorted(rows) == ["deep/deep-1", "openai/gpt-x"]
    assert rows["deep/deep-1"]["input_cost_per_token"] == 1.0  # the provider's own entry wins over a bare key
    assert rows["openai/gpt-x"]["cache_read_cost_per_token"] is None
