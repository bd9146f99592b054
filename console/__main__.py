"""python -m console: serve the web console of the stack conf/stack.yaml describes (make up starts it)."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from console.app import create_app
from pipeline_config.errors import report
from pipeline_config.settings import SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console", description=__doc__)
    parser.add_argument("--port", type=int, help="default: console.port of conf/stack.yaml")
    parser.add_argument("--host", help="address to listen on; default: bind_host of conf/stack.yaml")
    options = parser.parse_args(argv)
    try:
        settings = load_settings()
        app = create_app(settings)
    except SettingsError as exc:
        return report(exc)
    uvicorn.run(
        app,
        host=options.host or settings.bind_host,
        port=options.port or settings.console.port,
        log_level="warning",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
