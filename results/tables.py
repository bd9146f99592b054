"""The results tables as conf/results.yaml declares them, and the SQL that creates or extends them."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Literal, TypeVar

from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline_config.settings import CONF_DIR, SettingsError, describe_validation_error, read_yaml

RESULTS_FILE = CONF_DIR / "results.yaml"
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# The table where each query's committed micro-batches are recorded, in the same transaction as their rows.
BATCHES_TABLE = "committed_batches"


def sql_name(column: str) -> str:
    """A result column's name in the database: snake case (VendorID -> vendor_id, PULocationID -> pu_location_id)."""
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", column)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", spaced).lower()


class TableSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=IDENTIFIER.pattern)
    job: str
    description: str = ""
    write: Literal["upsert", "append"]
    # The result's key. An append table may have none (each batch's rows go in once: its batch record guards a
    # replay); an upsert table needs one.
    key: tuple[str, ...] = ()
    # column name -> SQL type, with `not null` where the result never lacks it
    columns: dict[str, str]
    declared_in: str = "conf/results.yaml"  # named in messages about the table

    @model_validator(mode="after")
    def _keys_are_columns(self) -> TableSpec:
        bad = [name for name in self.columns if not IDENTIFIER.match(name)]
        if bad:
            raise ValueError(f"column names must be lower-case SQL identifiers, not {', '.join(bad)}")
        missing = [name for name in self.key if name not in self.columns]
        if missing:
            raise ValueError(f"key column(s) {', '.join(missing)} are not among the columns")
        if self.write == "upsert" and not self.key:
            raise ValueError("an upsert table needs a key: the columns whose latest values it keeps")
        return self

    @property
    def column_names(self) -> list[str]:
        return list(self.columns)

    @property
    def value_columns(self) -> list[str]:
        return [name for name in self.columns if name not in self.key]

    def nullable_key(self) -> bool:
        return any("not null" not in self.columns[name].lower() for name in self.key)

    def create_statement(self, schema: str) -> sql.Composed:
        """CREATE TABLE IF NOT EXISTS with the declared types and the key: a primary key, or (when a key column may
        be null) a unique constraint that treats nulls as equal, so that the null group is one row too; no
        constraint for an append table without a key."""
        columns = [sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in self.columns.items()]
        if not self.key:
            return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                sql.Identifier(schema, self.name), sql.SQL(", ").join(columns)
            )
        key = sql.SQL(", ").join(map(sql.Identifier, self.key))
        if self.nullable_key():
            constraint = sql.SQL("CONSTRAINT {} UNIQUE NULLS NOT DISTINCT ({})").format(
                sql.Identifier(f"{self.name}_key"), key
            )
        else:
            constraint = sql.SQL("CONSTRAINT {} PRIMARY KEY ({})").format(sql.Identifier(f"{self.name}_key"), key)
        return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
            sql.Identifier(schema, self.name), sql.SQL(", ").join([*columns, constraint])
        )


M = TypeVar("M", bound=BaseModel)


def load_declarations(path: Path, section: str, model: type[M]) -> dict[str, M]:
    """The named declarations of one section of the file (`tables`, `queries`), each validated as `model` with its
    name; a wrong one is refused naming the file, the section and the name."""
    raw = read_yaml(path).get(section) or {}
    if not isinstance(raw, dict):
        raise SettingsError(f"{path}: `{section}` must be a mapping of name to declaration")
    declared = {}
    for name, declaration in raw.items():
        if not isinstance(declaration or {}, dict):
            raise SettingsError(f"{path} [{section}.{name}] must be a mapping, found {declaration!r}"[:300])
        try:
            declared[name] = model.model_validate({"name": name, **(declaration or {})})
        except ValidationError as exc:
            raise SettingsError(describe_validation_error(f"{path} [{section}.{name}]", exc)) from None
    return declared


def load_tables(path: Path = RESULTS_FILE) -> dict[str, TableSpec]:
    return load_declarations(path, "tables", TableSpec)


@cache
def declared_tables() -> dict[str, TableSpec]:
    return load_tables()


def tables_of_job(job: str) -> list[TableSpec]:
    return [table for table in declared_tables().values() if table.job == job]
