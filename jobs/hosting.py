"""Where a job's main() runs: on its own (spark-submit: a session of its own, stopped by SIGINT/SIGTERM, the
session stopped at the end), or hosted by the job server (jobs/job_server.py: a new session of the server's warm
application, stopped when the client asks, the application left running for the next job).

jobs/runtime.py asks `current()` at the three places where the two differ; nothing else in a job knows.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

LISTENER_DRAIN_MS = 5000  # how long a finished job's last progress events may take to reach its listeners


@dataclass
class Host:
    """The job server's application, lent to one job at a time."""

    spark: SparkSession
    stop_requested: threading.Event = field(default_factory=threading.Event)
    sessions: list[SparkSession] = field(default_factory=list)

    def new_session(self) -> SparkSession:
        """A session of its own for the job (its SQL settings, temporary views and query listeners), on the
        application's warm SparkContext and executors."""
        session = self.spark.newSession()
        session.conf.set("spark.sql.session.timeZone", "UTC")
        self.sessions.append(session)
        return session

    def release(self) -> list[str]:
        """After the job: stop what it left running and remove its sessions' listeners, so that nothing of it
        reports into the next job. Returns the names of the queries it had to stop."""
        stopped = []
        # The last progress events reach the job's listeners (and its client) before they are removed.
        with contextlib.suppress(Exception):
            self.spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty(LISTENER_DRAIN_MS)
        for session in self.sessions:
            for query in session.streams.active:
                stopped.append(query.name or str(query.id))
                with contextlib.suppress(Exception):  # a query failing as it stops has nothing left to lose
                    query.stop()
            manager = session._jsparkSession.streams()
            for listener in manager.listListeners():
                manager.removeListener(listener)
        self.sessions.clear()
        return stopped


_current: Host | None = None


def current() -> Host | None:
    """The job server hosting this job, or None under spark-submit."""
    return _current


@contextlib.contextmanager
def hosted(host: Host) -> Iterator[Host]:
    """Run a job's main() inside: its sessions come from the host, and are released when it returns."""
    global _current
    _current = host
    try:
        yield host
    finally:
        _current = None
        host.release()
