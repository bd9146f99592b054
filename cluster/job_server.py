"""The job server's wire protocol, and its client: how `python -m stack run`, `make stream` and the benchmarks run a
job on the stack's warm Spark application (jobs/job_server.py) instead of starting one of their own.

Over a local TCP connection the client sends one JSON line, a request:
  {"kind": "status"}                                      -> one JSON line: what the server runs and with what code
  {"kind": "run", "job": "vendor_counts", "args": [...], "cwd": "...", "package": <stamp>}
                                                          -> the job's output as it comes, then the end line
The end line is the record separator (0x1E) and a JSON object: {"exit": <the job's exit status>}. The client asks
the job to stop by closing its side of the connection for writing (shutdown(SHUT_WR)); it keeps reading the job's
last lines and its end line. A client that goes away altogether stops its job the same way.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import sys
from typing import Any, TextIO

END = "\x1e"
BUSY_EXIT = 75  # EX_TEMPFAIL: the server runs another job; try again when it ends
LOST_EXIT = 1
CONNECT_TIMEOUT_S = 3.0


class JobServerUnavailable(ConnectionError):
    """No job server answers at the address."""


def end_line(exit_code: int, **details: Any) -> bytes:
    return f"{END}{json.dumps({'exit': exit_code, **details})}\n".encode()


def request_line(request: dict[str, Any]) -> bytes:
    return (json.dumps(request) + "\n").encode()


def read_request(connection: socket.socket, limit: int = 1 << 20) -> dict[str, Any]:
    """The client's request line; ValueError naming what was wrong with it."""
    received = b""
    while not received.endswith(b"\n"):
        chunk = connection.recv(4096)
        if not chunk:
            break
        received += chunk
        if len(received) > limit:
            raise ValueError(f"a request line longer than {limit} bytes")
    try:
        request = json.loads(received)
    except ValueError:
        raise ValueError(f"a request must be one JSON line, got {received[:80]!r}") from None
    if not isinstance(request, dict) or request.get("kind") not in ("status", "run"):
        raise ValueError('a request is a JSON object whose "kind" is "status" or "run"')
    return request


def _connect(address: tuple[str, int]) -> socket.socket:
    try:
        connection = socket.create_connection(address, timeout=CONNECT_TIMEOUT_S)
    except OSError as exc:
        raise JobServerUnavailable(f"no job server at {address[0]}:{address[1]} ({exc.strerror or exc})") from None
    connection.settimeout(None)
    return connection


def status(address: tuple[str, int], timeout_s: float = 10.0) -> dict[str, Any]:
    """What the server says of itself: {"job": running job or None, "package": stamp, "app_id": ...}."""
    with _connect(address) as connection:
        connection.settimeout(timeout_s)
        connection.sendall(request_line({"kind": "status"}))
        answer = b""
        while chunk := connection.recv(4096):
            answer += chunk
    try:
        found: dict[str, Any] = json.loads(answer)
    except ValueError:
        raise JobServerUnavailable(f"the job server at {address[0]}:{address[1]} answered {answer[:80]!r}") from None
    return found


def run(
    address: tuple[str, int],
    job: str,
    args: list[str],
    cwd: str,
    package: int | None = None,
    out: TextIO = sys.stdout,
    stop_on_signals: bool = True,
) -> int:
    """Run a job on the server, copying its output to `out`, and return its exit status. SIGINT and SIGTERM (when
    `stop_on_signals`, in the main thread) ask the job to stop; its last lines and status still come back."""
    connection = _connect(address)
    asked_to_stop: list[bool] = []

    def ask_to_stop(*_: object) -> None:
        if not asked_to_stop:
            asked_to_stop.append(True)
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_WR)

    previous = {}
    if stop_on_signals:
        previous = {sig: signal.signal(sig, ask_to_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        connection.sendall(
            request_line({"kind": "run", "job": job, "args": list(args), "cwd": cwd, "package": package})
        )
        return _relay(connection, out)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        connection.close()


def _relay(connection: socket.socket, out: TextIO) -> int:
    """Copy lines to `out` until the end line; its exit status (LOST_EXIT if the server went away first). Output
    that nobody reads any more (`| head`) asks the job to stop, as Ctrl-C does."""
    reader = _Reader(out, connection)
    pending = b""
    while True:
        try:
            chunk = connection.recv(65536)
        except InterruptedError:
            continue
        except OSError:
            chunk = b""
        if not chunk:
            reader.write(pending.decode(errors="replace") + "\nerror: the job server went away before the job ended\n")
            return LOST_EXIT
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            text = line.decode(errors="replace")
            if text.startswith(END):
                reader.write("")
                return int(json.loads(text[len(END) :])["exit"])
            reader.write(text + "\n")


class _Reader:
    """Where the job's output goes: `out` until it is closed, then nowhere (and the job is asked to stop)."""

    def __init__(self, out: TextIO, connection: socket.socket):
        self.out: TextIO | None = out
        self.connection = connection

    def write(self, text: str) -> None:
        if self.out is None:
            return
        try:
            self.out.write(text)
            self.out.flush()
        except BrokenPipeError:
            self.out = None
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_WR)
