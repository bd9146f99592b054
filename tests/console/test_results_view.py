"""The console's results view: named pull queries over the results database, with parameters, through the
running console (the read-only role, bounded rows)."""

from __future__ import annotations

import pytest
import requests

from results.database import connect, migrate
from results.tables import tables_of_job
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
