"""The console's results, read from the results database through the running console (the read-only role,
bounded rows): its charts, and named pull queries with parameters."""

from __future__ import annotations

import psutil
import pytest
import requests
from psycopg import sql

from results.database import connect, migrate
from results.tables import tables_of_job
from stack.lifecycle import status
from tests.jobs.results_tables import use_stack_logins

pytestmark = pytest.mark.stack

# Windows far after the real data's, so that they are the latest the query shows; removed afterwards.
FUTURE = "2031-01-01T00:00:00Z"


@pytest.fixture()
def future_windows(local_stack):
    use_stack_logins(local_stack)
    with connect(local_stack.postgres.url) as connection:
        migrate(connection, "results", tables_of_job("vendor_counts"))
        with connection.transaction():
            connection.execute("DELETE FROM results.vendor_counts WHERE window_start >= %s", (FUTURE,))
            for vendor, rides in ((1, 3), (2, 1), (None, 4)):
                connection.execute(
                    "INSERT INTO results.vendor_counts VALUES ('tumbling', %s, %s::timestamptz + interval '10 minutes',"
                    " %s, %s, %s, 12.50)",
                    (FUTURE, FUTURE, vendor, rides, rides),
                )
    yield
    with connect(local_stack.postgres.url) as connection, connection.transaction():
        connection.execute("DELETE FROM results.vendor_counts WHERE window_start >= %s", (FUTURE,))


def test_the_console_runs_a_named_query_with_its_parameters(local_stack, future_windows):
    base = f"{local_stack.console.url}/api/results/queries"
    listed = {query["name"]: query for query in requests.get(base, timeout=10).json()}
    assert set(listed) >= {"busiest_zones", "vendor_share", "long_trips"}
    assert listed["vendor_share"]["params"] == {"limit": 20}

    answer = requests.get(f"{base}/vendor_share", params={"limit": "3"}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["columns"] == ["window_start", "vendor_id", "rides", "share_pct"] and body["params"] == {"limit": 3}
    assert body["rows"] == [
        ["2031-01-01T00:00:00+00:00", 1, 3, "37.5"],
        ["2031-01-01T00:00:00+00:00", 2, 1, "12.5"],
        ["2031-01-01T00:00:00+00:00", None, 4, "50.0"],
    ]
    assert body["truncated"] is False  # the query's own LIMIT, under the console's row bound


def test_the_results_view_refuses_bad_parameters_and_unknown_queries(local_stack):
    base = f"{local_stack.console.url}/api/results/queries"
    bad = requests.get(f"{base}/vendor_share", params={"limit": "many"}, timeout=10)
    assert bad.status_code == 400 and "parameter limit of query vendor_share must be int" in bad.json()["detail"]
    unknown_param = requests.get(f"{base}/vendor_share", params={"drop": "1"}, timeout=10)
    assert unknown_param.status_code == 400 and "has no parameter drop" in unknown_param.json()["detail"]
    assert requests.get(f"{base}/nothing", timeout=10).status_code == 404


@pytest.fixture()
def charted_schema(local_stack, results_schema):
    """vendor_counts and zone_top of a schema of the test's own: three tumbling windows, a sliding one, a ranking
    of two windows."""
    use_stack_logins(local_stack)
    with connect(local_stack.postgres.url) as connection:
        migrate(connection, results_schema, [*tables_of_job("vendor_counts"), *tables_of_job("zone_popularity")])
        with connection.transaction():
            counts = [
                ("tumbling", "00:00", 1, 5),
                ("tumbling", "00:10", 1, 7),
                ("tumbling", "00:10", None, 2),
                ("tumbling", "00:20", 2, 4),
                ("sliding", "00:05", 1, 99),
            ]
            for kind, start, vendor, rides in counts:
                connection.execute(
                    sql.SQL(
                        "INSERT INTO {} VALUES (%s, %s::timestamptz, %s::timestamptz + interval '10 minutes', %s, %s, "
                        "NULL, NULL)"
                    ).format(sql.Identifier(results_schema, "vendor_counts")),
                    (kind, f"2020-10-01 {start}Z", f"2020-10-01 {start}Z", vendor, rides),
                )
            ranking = [("00:00", 1, 74, "East Harlem North", 9), ("01:00", 1, 236, None, 4), ("01:00", 2, 999, None, 1)]
            for start, rank, zone_id, zone, rides in ranking:
                connection.execute(
                    sql.SQL(
                        "INSERT INTO {} VALUES (%s::timestamptz, %s::timestamptz + interval '1 hour', %s, %s, "
                        "'Manhattan', %s, %s)"
                    ).format(sql.Identifier(results_schema, "zone_top")),
                    (f"2020-10-01 {start}Z", f"2020-10-01 {start}Z", rank, zone_id, zone, rides),
                )
    return results_schema


def test_the_charts_draw_the_latest_windows_of_the_results_tables(local_stack, charted_schema):
    base = f"{local_stack.console.url}/api/charts"
    vendors = requests.get(f"{base}/vendor-counts", params={"schema": charted_schema, "windows": 2}, timeout=30)
    assert vendors.status_code == 200, vendors.text
    assert vendors.json() == {
        "table": f"{charted_schema}.vendor_counts",
        "error": None,
        "windows": ["2020-10-01T00:10:00+00:00", "2020-10-01T00:20:00+00:00"],  # the latest two, in order
        "series": [
            {"name": "vendor 1", "rides": [7, 0]},
            {"name": "vendor 2", "rides": [0, 4]},
            {"name": "vendor unknown", "rides": [2, 0]},
        ],
    }
    sliding = requests.get(f"{base}/vendor-counts", params={"schema": charted_schema, "kind": "sliding"}, timeout=30)
    assert sliding.json()["series"] == [{"name": "vendor 1", "rides": [99]}]
    top = requests.get(f"{base}/top-zones", params={"schema": charted_schema}, timeout=30).json()
    assert top["window_start"] == "2020-10-01T01:00:00+00:00"
    assert top["zones"] == [
        {"label": "236 (Manhattan)", "rides": 4, "rank": 1},
        {"label": "999 (Manhattan)", "rides": 1, "rank": 2},
    ]


def test_a_chart_without_its_table_is_empty_and_says_why_and_requests_start_nothing(local_stack, results_schema):
    base = f"{local_stack.console.url}/api/charts"
    console = psutil.Process(next(row.pid for row in status(local_stack) if row.name == "console"))
    threads = console.num_threads()
    for _ in range(50):
        answer = requests.get(f"{base}/vendor-counts", params={"schema": results_schema}, timeout=30)
        assert answer.status_code == 200 and answer.json()["windows"] == []
        assert "does not exist" in answer.json()["error"]
    assert console.num_threads() <= threads + 2
    refused = requests.get(f"{base}/top-zones", params={"schema": "results; DROP TABLE x"}, timeout=30)
    assert refused.status_code == 422
