"""The named pull queries of conf/results.yaml, with their parameters bound from text (a command line, a URL)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from pipeline_config.settings import SettingsError
from results.tables import RESULTS_FILE, load_declarations

Param = int | float | str


class NamedQuery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    sql: str
    params: dict[str, Param] = {}

    def bind(self, given: Mapping[str, str]) -> dict[str, Param]:
        """The defaults with the given values over them, each converted to its default's type; an unknown name or
        a value of the wrong type is a SettingsError that names it."""
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            known = ", ".join(self.params) or "none"
            raise SettingsError(f"query {self.name} has no parameter {', '.join(unknown)}; its parameters: {known}")
        bound = dict(self.params)
        for name, text in given.items():
            kind = type(self.params[name])
            try:
                bound[name] = kind(text)
            except ValueError:
                raise SettingsError(
                    f"parameter {name} of query {self.name} must be {kind.__name__}, got {text!r}"
                ) from None
        return bound


def load_queries(path: Path = RESULTS_FILE) -> dict[str, NamedQuery]:
    return load_declarations(path, "queries", NamedQuery)


def named_query(name: str) -> NamedQuery:
    queries = load_queries()
    if name not in queries:
        raise SettingsError(f"no query named {name!r} in {RESULTS_FILE}; known: {', '.join(queries)}")
    return queries[name]
