"""The results tables' declarations: names, keys, the SQL that creates them, and the named queries' parameters."""

from __future__ import annotations

import pytest
from psycopg import sql

from jobs.catalog import JOBS
from pipeline_config.settings import SettingsError
from results.named_queries import NamedQuery, load_queries
from results.tables import TableSpec, declared_tables, load_tables, sql_name


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("VendorID", "vendor_id"),
        ("PULocationID", "pu_location_id"),
        ("DOLocationID", "do_location_id"),
        ("RatecodeID", "ratecode_id"),
        ("SR_Flag", "sr_flag"),
        ("window_start", "window_start"),
        ("rides", "rides"),
    ],
)
def test_result_columns_become_snake_case_in_the_database(column, expected):
    assert sql_name(column) == expected


def test_every_declared_table_belongs_to_a_declared_job():
    tables = declared_tables()
    assert {table.job for table in tables.values()} <= set(JOBS)
    assert {"vendor_counts", "zone_popularity", "zone_top", "pickup_leaders", "rides", "completed_trips"} <= set(tables)


def test_a_key_that_may_be_null_is_unique_with_nulls_equal_and_a_key_never_null_is_the_primary_key():
    tables = declared_tables()
    vendor_counts = tables["vendor_counts"].create_statement("results").as_string(None)
    assert 'CONSTRAINT "vendor_counts_key" UNIQUE NULLS NOT DISTINCT ("window_kind", "window_start", "vendor_id")' in (
        vendor_counts
    )
    rides = tables["rides"].create_statement("results").as_string(None)
    assert 'CONSTRAINT "rides_key" PRIMARY KEY ("ride_id")' in rides
    assert '"revenue" numeric(14,2)' in vendor_counts and '"window_start" timestamptz not null' in vendor_counts


def test_a_table_whose_key_is_not_among_its_columns_is_refused_naming_it(tmp_path):
    path = tmp_path / "results.yaml"
    path.write_text(
        "tables:\n  t:\n    job: vendor_counts\n    write: upsert\n    key: [missing]\n    columns: {a: integer}\n"
    )
    with pytest.raises(SettingsError, match=r"(?s)\[tables.t\].*key column\(s\) missing are not among the columns"):
        load_tables(path)


def test_a_column_name_that_is_no_plain_identifier_is_refused(tmp_path):
    path = tmp_path / "results.yaml"
    path.write_text(
        'tables:\n  t:\n    job: x\n    write: append\n    key: [a]\n    columns: {a: integer, "b; drop": text}\n'
    )
    with pytest.raises(SettingsError, match="lower-case SQL identifiers"):
        load_tables(path)


def test_named_query_parameters_take_their_defaults_type_and_unknown_ones_are_refused():
    query = NamedQuery(name="q", sql="SELECT %(hours)s", params={"hours": 1, "zone": "JFK"})
    assert query.bind({"hours": "3"}) == {"hours": 3, "zone": "JFK"}
    with pytest.raises(SettingsError, match="parameter hours of query q must be int, got 'x'"):
        query.bind({"hours": "x"})
    with pytest.raises(SettingsError, match="query q has no parameter days; its parameters: hours, zone"):
        query.bind({"days": "1"})


def test_the_named_queries_of_conf_use_only_their_declared_parameters():
    for query in load_queries().values():
        used = {part.split(")s")[0] for part in query.sql.split("%(")[1:]}
        assert used == set(query.params), query.name


def test_create_statement_quotes_the_schema():
    table = TableSpec(name="t", job="j", write="append", key=("a",), columns={"a": "integer not null"})
    assert (
        table.create_statement('odd"schema').as_string(None).startswith('CREATE TABLE IF NOT EXISTS "odd""schema"."t"')
    )
    assert isinstance(table.create_statement("s"), sql.Composed)


def test_a_declaration_that_is_not_a_mapping_is_refused_naming_it(tmp_path):
    path = tmp_path / "results.yaml"
    path.write_text("queries:\n  q: SELECT 1\n")
    with pytest.raises(SettingsError, match=r"\[queries.q\] must be a mapping, found 'SELECT 1'"):
        load_queries(path)
