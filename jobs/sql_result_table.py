"""The results table of a SQL-over-streams statement, made from its result's columns: named like the statement,
its columns the result's in snake case with PostgreSQL types for Spark's, keyed by the statement's KEY. A TABLE
is upserted by its key; a STREAM appended (once per KEY when it has one)."""

from __future__ import annotations

from pyspark.sql.types import (
    BooleanType,
    ByteType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructType,
    TimestampType,
)

from jobs.sql_statement import Statement, StatementError
from results.tables import BATCHES_TABLE, IDENTIFIER, TableSpec, declared_tables, sql_name

SQL_TYPES: list[tuple[type[DataType], str]] = [
    (TimestampType, "timestamptz"),
    (DateType, "date"),
    (StringType, "text"),
    (BooleanType, "boolean"),
    (ByteType, "smallint"),
    (ShortType, "smallint"),
    (IntegerType, "integer"),
    (LongType, "bigint"),
    (FloatType, "real"),
    (DoubleType, "double precision"),
]


def sql_type(column: str, data_type: DataType, origin: str) -> str:
    if isinstance(data_type, DecimalType):
        return f"numeric({data_type.precision},{data_type.scale})"
    for spark_type, name in SQL_TYPES:
        if isinstance(data_type, spark_type):
            return name
    raise StatementError(
        f"{origin}: column {column} is {data_type.simpleString()}, which a results table does not hold; select "
        f"plain values (e.g. window.start AS window_start, or to_json({column}) AS {column}), or leave postgres "
        f"out of SINKS"
    )


def result_table(statement: Statement, schema: StructType, origin: str) -> TableSpec:
    """The table the statement's result is written to, refused with the reason when a column cannot be one."""
    name = sql_name(statement.name)
    if name in declared_tables() or name == BATCHES_TABLE:
        raise StatementError(
            f"{origin}: the results table {name} is already a table of the pipeline (conf/results.yaml); name the "
            f"statement otherwise, or leave postgres out of SINKS"
        )
    columns: dict[str, str] = {}
    for field in schema.fields:
        column = sql_name(field.name)
        if not IDENTIFIER.match(column):
            raise StatementError(
                f"{origin}: the result column {field.name!r} cannot name a table column; give it an alias "
                f"(... AS rides) of letters, digits and underscores"
            )
        if column in columns:
            raise StatementError(f"{origin}: two result columns are both {column} in the results table; rename one")
        kind = sql_type(field.name, field.dataType, origin)
        columns[column] = kind if field.nullable else f"{kind} not null"
    return TableSpec(
        name=name,
        job=f"sql_{statement.name}",
        description=statement.description,
        write="upsert" if statement.kind == "TABLE" else "append",
        key=tuple(sql_name(column) for column in statement.key_columns),
        columns=columns,
        declared_in=origin,
    )
