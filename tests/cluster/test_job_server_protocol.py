"""The job server's wire protocol (cluster/job_server.py) over a real local socket, with a scripted server end:
the client copies the job's lines and returns its status from the end line, asks to stop by closing its side for
writing (and keeps reading), and says so when the server goes away; bad request lines are refused by name."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import threading

import pytest

from cluster import job_server as protocol


class ScriptedServer:
    """Accepts one connection, records the request line, then plays `script(connection)`."""

    def __init__(self, script):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.request: dict | None = None
        self.thread = threading.Thread(target=self._serve, args=(script,), daemon=True)
        self.thread.start()

    def _serve(self, script) -> None:
        connection, _ = self.listener.accept()
        with connection:
            self.request = protocol.read_request(connection)
            script(connection)
        self.listener.close()


def test_the_client_copies_the_jobs_lines_and_returns_the_status_of_the_end_line():
    def script(connection):
        connection.sendall(b"[q] started\n[q] batch 0: 3 rows")
        connection.sendall(b" in 0.1s\n" + protocol.end_line(3))

    server = ScriptedServer(script)
    out = io.StringIO()
    code = protocol.run(server.address, "vendor_counts", ["--trigger", "available-now"], "/somewhere", 42, out=out)
    assert code == 3
    assert out.getvalue() == "[q] started\n[q] batch 0: 3 rows in 0.1s\n"
    assert server.request == {
        "kind": "run",
        "job": "vendor_counts",
        "args": ["--trigger", "available-now"],
        "cwd": "/somewhere",
        "package": 42,
    }


def test_a_signal_asks_the_job_to_stop_and_its_last_lines_still_arrive():
    def script(connection):
        connection.sendall(b"running\n")
        while connection.recv(4096):  # until the client closes its side for writing
            pass
        connection.sendall(b"stopped between batches\n" + protocol.end_line(0))

    server = ScriptedServer(script)
    out = io.StringIO()
    threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    assert protocol.run(server.address, "pipeline", [], "/", out=out) == 0
    assert out.getvalue() == "running\nstopped between batches\n"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back


def test_a_server_that_goes_away_is_a_failure_said_in_words():
    server = ScriptedServer(lambda connection: connection.sendall(b"half a line"))
    out = io.StringIO()
    assert protocol.run(server.address, "pipeline", [], "/", out=out) == protocol.LOST_EXIT
    assert out.getvalue().startswith("half a line\nerror: the job server went away before the job ended")


def test_no_server_is_said_with_the_address():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        address = taken.getsockname()
    with pytest.raises(protocol.JobServerUnavailable, match=f"no job server at 127.0.0.1:{address[1]}"):
        protocol.status(address)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"vendor_counts\n", "a request must be one JSON line"),
        (b'["run"]\n', '"kind" is "status" or "run"'),
        (json.dumps({"kind": "shutdown"}).encode() + b"\n", '"kind" is "status" or "run"'),
    ],
)
def test_a_bad_request_line_is_refused_naming_what_is_wrong(line, reason):
    left, right = socket.socketpair()
    with left, right:
        left.sendall(line)
        with pytest.raises(ValueError, match=reason.replace('"', ".")):
            protocol.read_request(right)


class ClosedOutput(io.StringIO):
    """A terminal whose reader went away (`| head` that had its lines)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_output_nobody_reads_asks_the_job_to_stop_and_the_client_still_ends_with_its_status():
    def script(connection):
        connection.sendall(b"a line nobody reads\n")
        while connection.recv(4096):  # the client closes its side for writing: the server stops the job
            pass
        connection.sendall(protocol.end_line(0))

    server = ScriptedServer(script)
    assert protocol.run(server.address, "pipeline", [], "/", out=ClosedOutput(), stop_on_signals=False) == 0
