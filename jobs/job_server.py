"""The job server: one Spark application that stays up on the cluster and runs jobs one after another, so that a
job does not pay for a JVM start, executor registration and cold code (BENCHMARKS.md, "The job server").

`make up` starts it (stack/job_server.py); `python -m stack run <job> [flags]` and `make stream` run jobs on it
(cluster/job_server.py is the protocol). A job runs exactly as under spark-submit (its main() with its flags), on
a session of its own (its SQL settings, views and listeners), its output sent to its client, and it stops when
the client asks or goes away. One job at a time: its progress lines, terminal tables and foreachBatch sinks print
from this driver, to that job's client. The executors hold the job package from the server's start: a client
that finds the code changed since has the stack restart the server first.

Run: python jobs/job_server.py --port 7078 --package-stamp <mtime of the job package>   (the stack starts it)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from cluster import job_server as protocol
from jobs import hosting, late_rides
from jobs.catalog import JOBS
from jobs.runtime import driver_logging, register_driver, spark_session
from jobs.warm_up import warm_up
from pipeline_config.metrics_targets import unregister

log = logging.getLogger("jobs.job_server")


class RoutedOutput(io.TextIOBase):
    """sys.stdout and sys.stderr of the server: to the running job's client while there is one, else to the
    server's own log. Print calls from any thread (query listeners, foreachBatch handlers) go to the job's
    client, since one job runs at a time."""

    def __init__(self, fallback: io.TextIOBase | Any):
        self.fallback = fallback
        self.connection: socket.socket | None = None
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            if self.connection is None:
                self.fallback.write(text)
                return len(text)
            # A client that went away is having its job stopped: its last words have no reader.
            with contextlib.suppress(OSError):
                self.connection.sendall(text.encode(errors="replace"))
            return len(text)

    def flush(self) -> None:
        with self.lock:
            if self.connection is None:
                self.fallback.flush()

    def writable(self) -> bool:
        return True


@dataclass
class Request:
    connection: socket.socket
    job: str
    args: list[str]
    cwd: str


class JobServer:
    def __init__(self, spark, port: int, package_stamp: int, output: RoutedOutput):
        self.spark = spark
        self.port = port
        self.package_stamp = package_stamp
        self.output = output
        self.requests: queue.Queue[Request] = queue.Queue()
        self.running: str | None = None  # the job queued or running
        self.queueing = threading.Lock()
        self.warming = False
        self.shutting_down = threading.Event()
        self.host: hosting.Host | None = None
        self.listener = socket.create_server(("127.0.0.1", port), reuse_port=False)

    # --- the acceptor thread: answers status at once, queues one job at a time --------------------------------
    def accept_forever(self) -> None:
        while not self.shutting_down.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # the listener was closed: shutting down
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        try:
            connection.settimeout(10)
            request = protocol.read_request(connection)
            connection.settimeout(None)
        except (OSError, ValueError) as exc:
            with contextlib.suppress(OSError):
                connection.sendall(f"error: {exc}\n".encode() + protocol.end_line(2))
                connection.close()
            return
        if request["kind"] == "status":
            with contextlib.suppress(OSError):
                connection.sendall(protocol.request_line(self.describe()))
                connection.close()
            return
        self._queue_job(connection, request)

    def _queue_job(self, connection: socket.socket, request: dict[str, Any]) -> None:
        with self.queueing:  # two clients at once: one is taken, the other refused
            refusal = self._refusal(request)
            if refusal is None:
                self.running = str(request["job"])
                cwd = str(request.get("cwd") or os.getcwd())
                self.requests.put(Request(connection, self.running, list(request.get("args", [])), cwd))
                return
        message, code = refusal
        with contextlib.suppress(OSError):
            connection.sendall(f"error: {message}\n".encode() + protocol.end_line(code))
            connection.close()

    def _refusal(self, request: dict[str, Any]) -> tuple[str, int] | None:
        job = request.get("job")
        if not isinstance(job, str) or not job.isidentifier() or importlib.util.find_spec(f"jobs.{job}") is None:
            return f"no job named {job!r}: `python -m jobs` lists them", 2
        arguments = request.get("args", [])
        if not isinstance(arguments, list) or not all(isinstance(argument, str) for argument in arguments):
            return f"a job's args must be a list of strings, got {str(arguments)[:80]}", 2
        if self.shutting_down.is_set():
            return "the job server is stopping", protocol.BUSY_EXIT
        if self.running is not None:
            return f"the job server is running {self.running}; one job runs at a time (try again when it ends)", (
                protocol.BUSY_EXIT
            )
        stamp = request.get("package")
        if stamp is not None and stamp != self.package_stamp:
            return (
                "the job package changed since the job server started: restart it (python -m stack restart job-server)",
                2,
            )
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "job": self.running or ("warm-up" if self.warming else None),
            "package": self.package_stamp,
            "app_id": self.spark.sparkContext.applicationId,
            "ui": self.spark.sparkContext.uiWebUrl,
            "pid": os.getpid(),
        }

    # --- the main thread: runs the queued jobs -------------------------------------------------------------------
    def serve(self, bootstrap: str | None) -> None:
        """Answer clients; warm up first (jobs asked for meanwhile wait their turn) unless bootstrap is None."""
        threading.Thread(target=self.accept_forever, name="job-server-accept", daemon=True).start()
        if bootstrap is not None:
            self.warm_up(bootstrap)
        print(
            f"job server ready on 127.0.0.1:{self.port} (application {self.spark.sparkContext.applicationId})",
            flush=True,
        )
        while not self.shutting_down.is_set():
            try:
                request = self.requests.get(timeout=0.5)
            except queue.Empty:
                continue
            self._run(request)

    def _run(self, request: Request) -> None:
        host = hosting.Host(self.spark)
        self.host = host
        threading.Thread(target=self._watch_client, args=(request.connection, host), daemon=True).start()
        began = time.monotonic()
        print(f"job {request.job} {' '.join(request.args)} started", flush=True)
        self.output.connection = request.connection
        try:
            code = self._call_main(request.job, request.args, request.cwd, host)
        finally:
            self.output.connection = None
            self.host = None
            self.running = None
        print(f"job {request.job} ended with status {code} after {time.monotonic() - began:.1f}s", flush=True)
        with contextlib.suppress(OSError):
            request.connection.sendall(protocol.end_line(code))
        with contextlib.suppress(OSError):
            request.connection.close()

    def _call_main(self, job: str, args: list[str], cwd: str, host: hosting.Host) -> int:
        """The job's main(argv) as spark-submit would run it, in the client's folder, hosted by this server."""
        saved_argv, saved_cwd = sys.argv, os.getcwd()
        sys.argv = [f"jobs/{job}.py", *args]
        try:
            os.chdir(cwd)
            with hosting.hosted(host):
                result = importlib.import_module(f"jobs.{job}").main(args)
            return int(result or 0)
        except SystemExit as exc:  # argparse's refusals, a job's sys.exit
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception as exc:  # no job may take the server down; its client gets the reason
            log.exception("job %s failed", job)
            print(f"error: {job} failed: {exc.__class__.__name__}: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            sys.argv = saved_argv
            late_rides.WATCHED.clear()
            with contextlib.suppress(OSError):
                os.chdir(saved_cwd)

    def warm_up(self, bootstrap: str) -> None:
        """vendor_counts over made-up rides, its output in the server's log (jobs/warm_up.py)."""
        began = time.monotonic()
        self.warming = True
        try:
            code = warm_up(
                bootstrap, lambda args: self._call_main("vendor_counts", args, os.getcwd(), hosting.Host(self.spark))
            )
        except Exception as exc:  # a warm-up that failed leaves a colder server, not none
            log.warning("warm-up failed: %s", exc)
            code = 1
        finally:
            self.warming = False
        print(f"warm-up ended with status {code} after {time.monotonic() - began:.1f}s", flush=True)

    @staticmethod
    def _watch_client(connection: socket.socket, host: hosting.Host) -> None:
        """The client closing its side (or going away) asks the job to stop."""
        try:
            while connection.recv(4096):
                pass
        except OSError:
            pass
        host.stop_requested.set()

    def shut_down(self, *_: object) -> None:
        self.shutting_down.set()
        if self.host is not None:
            self.host.stop_requested.set()
        with contextlib.suppress(OSError):
            self.listener.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--package-stamp", type=int, required=True, help="the job package's mtime in ns at start")
    parser.add_argument("--no-warm-up", action="store_true", help="take jobs at once, cold")
    options = parser.parse_args(argv)
    output = RoutedOutput(sys.stdout)
    sys.stdout = sys.stderr = output  # before logging binds its handler to stderr
    driver_logging()
    spark = spark_session("job-server")
    scraped = register_driver(spark, "job-server")
    server = JobServer(spark, options.port, options.package_stamp, output)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, server.shut_down)
    try:
        server.serve(None if options.no_warm_up else JOBS["vendor_counts"].load_settings().bootstrap_servers)
    finally:
        unregister(scraped)
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
