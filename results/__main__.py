"""python -m results: pull queries over the results database, as its read-only role.

  python -m results query "SELECT * FROM vendor_counts LIMIT 5"     (make query SQL="...")
  python -m results run busiest_zones --param hours=3                (make query NAME=busiest_zones)
  python -m results list                                             the named queries of conf/results.yaml
  python -m results psql                                             an interactive psql session (make psql)

The logins come from PGPASSFILE (default: the local stack's .stack/secrets/pgpass); RESULTS_DATABASE_URL points
at another database.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from pipeline_config.credentials import pgpass_path
from pipeline_config.errors import PipelineError, run_command
from pipeline_config.settings import StackSettings, load_settings
from results.named_queries import Param, load_queries, named_query
from results.pull import format_table, pull


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m results", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--schema", default="results", help="the schema of the tables (default: results)")
    parser.add_argument("--max-rows", type=int, default=200, help="rows printed at most (default 200)")
    parser.add_argument("--timeout", type=float, default=30, help="seconds a query may run (default 30)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    query = commands.add_parser("query", help="run one SELECT and print its rows")
    query.add_argument("sql")
    run = commands.add_parser("run", help="run a named query of conf/results.yaml")
    run.add_argument("name")
    run.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a parameter, repeatable")
    commands.add_parser("list", help="the named queries and their parameters")
    commands.add_parser("psql", help="an interactive psql session as the read-only role")
    return parser


def main(argv: list[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    return run_command(lambda: _run(options))


def _run(options: argparse.Namespace) -> int:
    settings = load_settings()
    os.environ.setdefault("PGPASSFILE", str(pgpass_path(settings)))
    if options.command == "list":
        for query in load_queries().values():
            defaults = ", ".join(f"{name}={value}" for name, value in query.params.items())
            print(f"{query.name:<16} {query.description} ({defaults or 'no parameters'})")
        return 0
    if options.command == "psql":
        return _psql(settings, options.schema)
    statement: str = options.sql if options.command == "query" else ""
    params: dict[str, Param] | None = None
    if options.command == "run":
        named = named_query(options.name)
        given = dict(item.partition("=")[::2] for item in options.param)
        statement, params = named.sql, named.bind(given)
    result = pull(
        settings.postgres.reader_url, statement, params, options.max_rows, options.timeout, schema=options.schema
    )
    print(format_table(result.columns, result.rows))
    more = f", more not shown (--max-rows {options.max_rows})" if result.truncated else ""
    print(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''}{more})")
    return 0


def _psql(settings: StackSettings, schema: str) -> int:
    psql = shutil.which("psql")
    if psql is None:
        raise PipelineError("psql is not installed: apt-get install postgresql-client (or use `make query`)")
    env = {**os.environ, "PGOPTIONS": f"-c search_path={schema},public"}
    os.execve(psql, [psql, settings.postgres.reader_url], env)


if __name__ == "__main__":
    sys.exit(main())
