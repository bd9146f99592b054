"""One base for the errors the project raises on purpose, and one exit-status convention for every command.

0    done.
2    refused to start, or to go on: bad input, a bad setting, or a service the command needs that does not
     answer. Nothing is lost: the message names the cause and the same command resumes once it is fixed.
1    failed at run time, with work under way: a query failed, a delivery or a dead letter was not acknowledged.
130  interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_INTERRUPTED = 130


class PipelineError(Exception):
    """An error raised on purpose: its message says what is wrong and, where it can, how to fix it."""

    exit_status = EXIT_FAILED


class CannotRunError(PipelineError):
    """The command cannot start or go on (bad input, configuration, or a service it needs); exit status 2."""

    exit_status = EXIT_REFUSED


def report(error: PipelineError, stream: TextIO | None = None) -> int:
    """Print `error: <message>` (no traceback) and return the error's exit status."""
    print(f"error: {error}", file=stream or sys.stderr)
    return error.exit_status


def run_command(body: Callable[[], int]) -> int:
    """A command's main: its own status, or the convention's for a PipelineError and for Ctrl-C."""
    try:
        return body()
    except PipelineError as exc:
        return report(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
