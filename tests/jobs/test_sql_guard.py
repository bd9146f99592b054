"""What SQL over streams refuses, checked on Spark's plans: anything but a query (a command would run at once on
the driver), calls of Java methods, and any relation other than the declared streams and tables, wherever it
hides (a join, a WITH, a subquery). The example queries pass."""

from __future__ import annotations

import pytest
from pyspark.errors import AnalysisException

from jobs.ride_schema import RIDE_SCHEMA
from jobs.sql_guard import QueryNotAllowed, check_is_query, check_reads_only
from jobs.sql_statement import parse_statement
from jobs.zone_popularity import read_zones
from tests.conftest import ZONE_LOOKUP
from tests.paths import REPO_ROOT


@pytest.fixture()
def declared(spark, tmp_path):
    """The views a query may read, as the job declares them: a ride stream and the zone lookup."""
    (tmp_path / "rides").mkdir()
    views = {
        "rides": spark.readStream.schema(RIDE_SCHEMA)
        .json(str(tmp_path / "rides"))
        .withWatermark("pickup_datetime", "30 minutes"),
        "zones": read_zones(spark, str(ZONE_LOOKUP)).cache(),
    }
    for name, df in views.items():
        df.createOrReplaceTempView(name)
    yield views
    spark.conf.set("spark.sql.runSQLOnFiles", "true")


def _refusal(spark, views, select: str) -> str:
    with pytest.raises(QueryNotAllowed) as refused:
        check_is_query(spark, select, "q.sql")
        check_reads_only(spark.sql(select), views, "q.sql")
    return str(refused.value)


@pytest.mark.parametrize(
    "select",
    [
        "SELECT r.ride_id, f.value FROM rides r JOIN text.`/etc/hostname` f ON true",  # the reported attack
        "WITH f AS (SELECT * FROM csv.`/etc/passwd`) SELECT r.ride_id FROM rides r JOIN f ON true",
        "SELECT ride_id FROM rides WHERE PULocationID IN (SELECT length(value) FROM text.`/etc/hostname`)",
    ],
)
def test_a_file_read_as_a_table_is_refused_by_spark_and_by_the_plan_check(spark, declared, select):
    spark.conf.set("spark.sql.runSQLOnFiles", "false")  # as the job sets it: Spark refuses the file itself
    with pytest.raises(AnalysisException, match="TABLE_OR_VIEW_NOT_FOUND"):
        spark.sql(select)
    spark.conf.set("spark.sql.runSQLOnFiles", "true")  # and were it on, the plan check would still refuse it
    assert "which is none of the declared streams and tables (rides, zones" in _refusal(spark, declared, select)


def test_a_command_is_refused_before_it_runs(spark, declared, tmp_path):
    target = tmp_path / "exfiltrated"
    select = f"WITH x AS (SELECT ride_id FROM rides) INSERT OVERWRITE DIRECTORY '{target}' SELECT * FROM x"
    assert "only a SELECT may follow AS; this holds a InsertIntoDir" in _refusal(spark, declared, select)
    assert not target.exists()
    assert "holds a" in _refusal(spark, declared, "SET spark.sql.runSQLOnFiles=true")


@pytest.mark.parametrize("function", ["reflect", "java_method", "try_reflect"])
def test_java_methods_are_not_called(spark, declared, function):
    select = f"SELECT ride_id, {function}('java.lang.System', 'getenv', 'HOME') AS home FROM rides"
    assert f"{function}() calls Java methods" in _refusal(spark, declared, select)


def test_a_relation_of_the_catalog_that_is_not_declared_is_refused(spark, declared):
    spark.createDataFrame([(1,)], "x int").createOrReplaceTempView("someone_elses")
    select = "SELECT r.ride_id, s.x FROM rides r JOIN someone_elses s ON true"
    assert "which is none of the declared" in _refusal(spark, declared, select)


def test_the_example_queries_and_constant_rows_pass(spark, declared):
    for path in sorted((REPO_ROOT / "queries").glob("*.sql")):
        statement = parse_statement(path.read_text(), path.name, list(declared))
        check_is_query(spark, statement.select, path.name)
        check_reads_only(spark.sql(statement.select), declared, path.name)
    select = "SELECT r.ride_id, c.n FROM rides r JOIN (SELECT 1 AS n) c ON true JOIN (VALUES (2)) v ON true"
    check_is_query(spark, select, "q.sql")
    check_reads_only(spark.sql(select), declared, "q.sql")
