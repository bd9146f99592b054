"""What a SQL-over-streams query may do: read the streams and tables that conf/jobs.yaml declares, and compute.

Checked on Spark's own plans, not on the text, so that nothing hides in a string literal, a comment or a WITH:
- before anything runs, the parsed plan must be a query: `spark.sql` runs a command (INSERT OVERWRITE DIRECTORY,
  CREATE ..., SET ...) at once, so one must never reach it;
- no call of Java methods by reflection (`reflect`, `java_method`, `try_reflect` read the driver's environment);
- once analysed, every relation the query reads is one of the declared streams and tables (or a constant row);
  a file read as a table (csv.`path`, text.`path`) is refused by Spark itself, as spark.sql.runSQLOnFiles is off.
"""

from __future__ import annotations

from collections.abc import Iterator

from py4j.protocol import Py4JJavaError
from pyspark.sql import DataFrame, SparkSession

COMMAND_TRAIT = "org.apache.spark.sql.catalyst.plans.logical.Command"
# Plan nodes that write, whatever their parent: not all of them are Commands.
WRITING_NODES = {
    "InsertIntoDir",
    "InsertIntoStatement",
    "AppendData",
    "OverwriteByExpression",
    "OverwritePartitionsDynamic",
}
REFLECTION = {"reflect", "java_method", "try_reflect"}
CONSTANT_LEAVES = {"OneRowRelation", "LocalRelation", "Range"}  # SELECT 1, VALUES (...), range(n)


class QueryNotAllowed(Exception):
    """The query does something other than read the declared streams and tables; the message says what."""


def _seq(scala_seq) -> list:
    return [scala_seq.apply(i) for i in range(scala_seq.size())]


def _plans(plan) -> Iterator:
    """The plan and every plan inside it: children, CTE definitions and subqueries in expressions."""
    yield plan
    for inner in _seq(plan.children()) + _seq(plan.innerChildren()) + _seq(plan.subqueries()):
        yield from _plans(inner)


def _expressions(expression) -> Iterator:
    yield expression
    for child in _seq(expression.children()):
        yield from _expressions(child)


def check_is_query(spark: SparkSession, select: str, origin: str) -> None:
    """Refuse a statement that is not a plain query, before Spark runs anything. Text Spark cannot parse is left
    to spark.sql, which refuses it with Spark's own reason."""
    try:
        parsed = spark._jsparkSession.sessionState().sqlParser().parsePlan(select)
    except Py4JJavaError:
        return
    jvm = spark._jvm
    assert jvm is not None  # a classic (py4j) session, as every job runs
    command = jvm.java.lang.Class.forName(COMMAND_TRAIT)
    for plan in _plans(parsed):
        name = plan.getClass().getSimpleName()
        if command.isInstance(plan) or name in WRITING_NODES:
            raise QueryNotAllowed(
                f"{origin}: only a SELECT may follow AS; this holds a {name}, which would run "
                f"as a command on the driver"
            )
        for expression in _seq(plan.expressions()):
            for part in _expressions(expression):
                if part.getClass().getSimpleName() == "UnresolvedFunction":
                    function = str(part.nameParts().last()).lower()
                    if function in REFLECTION:
                        raise QueryNotAllowed(
                            f"{origin}: {function}() calls Java methods on the cluster and is not allowed in a query"
                        )


def _leaves(df: DataFrame) -> list:
    analyzed = df._jdf.queryExecution().analyzed()
    return [plan for plan in _plans(analyzed) if plan.children().isEmpty()]


def check_reads_only(result_df: DataFrame, declared: dict[str, DataFrame], origin: str) -> None:
    """Refuse a query that reads a relation other than the declared streams and tables."""
    allowed = [leaf for df in declared.values() for leaf in _leaves(df)]
    for leaf in _leaves(result_df):
        if leaf.getClass().getSimpleName() in CONSTANT_LEAVES:
            continue
        if not any(leaf.sameResult(known) for known in allowed):
            raise QueryNotAllowed(
                f"{origin}: the query reads {str(leaf.simpleString(3))[:160]}, which is none of "
                f"the declared streams and tables ({', '.join(declared)}; conf/jobs.yaml "
                f"[stream_sql])"
            )
