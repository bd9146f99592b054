"""Test-only crash points: PIPELINE_CRASH_POINT=<point>:<query>:<batch id> makes the driver kill itself (its
JVM, then its Python, with SIGKILL: nothing is flushed or closed) when that query's batch reaches that point, so
that a test can crash it exactly between the database's commit and Spark's checkpoint. Unset, it does nothing."""

from __future__ import annotations

import os
import signal
import sys
import time

CRASH_POINT_VARIABLE = "PIPELINE_CRASH_POINT"


def crash_if_asked(point: str, query: str, batch_id: int) -> None:
    if os.environ.get(CRASH_POINT_VARIABLE) != f"{point}:{query}:{batch_id}":
        return
    print(f"crash point {point} of {query} batch {batch_id}: killing the driver", file=sys.stderr, flush=True)
    time.sleep(1)  # for the JVM to pass the line on before it dies
    os.kill(os.getppid(), signal.SIGKILL)  # spark-submit's JVM, which started this Python driver
    os.kill(os.getpid(), signal.SIGKILL)
