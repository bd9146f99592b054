"""A job hosted by the job server (jobs/hosting.py) on a local session: it gets a session of its own, its client's
stop request ends its wait (no signal handlers taken over), its end leaves the application running, and what it
left behind (queries, listeners) is gone before the next job."""

from __future__ import annotations

import signal
import threading

from pyspark.sql.streaming import StreamingQueryListener

from jobs import hosting, runtime


class CountingListener(StreamingQueryListener):
    def __init__(self):
        self.started = 0

    def onQueryStarted(self, event):
        self.started += 1

    def onQueryProgress(self, event):
        pass

    def onQueryIdle(self, event):
        pass

    def onQueryTerminated(self, event):
        pass


def rate_query(session, name: str):
    return (
        session.readStream.format("rate")
        .option("rowsPerSecond", 10)
        .load()
        .writeStream.format("memory")
        .queryName(name)
        .start()
    )


def test_a_hosted_job_runs_on_a_session_of_its_own_and_leaves_nothing_behind(spark):
    host = hosting.Host(spark)
    with hosting.hosted(host):
        session = runtime.spark_session("hosted-test")
        assert session is not spark and session.sparkContext is spark.sparkContext
        assert session.conf.get("spark.sql.session.timeZone") == "UTC"
        session.streams.addListener(CountingListener())
        query = rate_query(session, "hosted_left_running")
        runtime._end_session(session)  # the job's end: the application goes on
        assert query.isActive
    assert hosting.current() is None
    assert not query.isActive  # stopped on release
    assert len(session._jsparkSession.streams().listListeners()) == 0
    assert host.sessions == []
    assert spark.range(3).count() == 3  # the server's application is still up


def test_a_hosted_job_waits_for_its_clients_stop_request_not_for_signals(spark):
    host = hosting.Host(spark)
    handler_before = signal.getsignal(signal.SIGTERM)
    with hosting.hosted(host):
        session = runtime.spark_session("hosted-stop-test")
        query = rate_query(session, "hosted_until_stopped")
        threading.Timer(1.0, host.stop_requested.set).start()
        assert runtime.run_until_done(session, [query], None, restart=lambda ids: []) == 0
        assert not query.isActive
    assert signal.getsignal(signal.SIGTERM) is handler_before
