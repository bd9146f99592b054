"""Start, find and stop the stack's own processes by the PID files they leave in the state folder.

A PID file records the PID and the process's start time, so a PID that the system reused for an unrelated
process is never mistaken for ours and never killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class RunningProcess:
    pid: int
    started_at: float

    def as_psutil(self) -> psutil.Process | None:
        try:
            proc = psutil.Process(self.pid)
            # create_time is rounded differently across calls; a second is plenty to tell reuse apart.
            if abs(proc.create_time() - self.started_at) > 1.0 or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.NoSuchProcess:
            return None


class PidFile:
    def __init__(self, path: Path):
        self.path = path

    def read(self) -> RunningProcess | None:
        try:
            record = json.loads(self.path.read_text())
            return RunningProcess(pid=int(record["pid"]), started_at=float(record["started_at"]))
        except (FileNotFoundError, ValueError, KeyError):
            return None

    def write(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        started_at = psutil.Process(pid).create_time()
        self.path.write_text(json.dumps({"pid": pid, "started_at": started_at}))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def alive(self) -> psutil.Process | None:
        record = self.read()
        return record.as_psutil() if record else None


def spawn(
    command: Sequence[str],
    log_path: Path,
    pid_file: PidFile,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start a daemon in its own session, stdout and stderr appended to its log file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n=== started {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(command)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,  # Ctrl-C in the terminal that ran `make up` must not reach the daemons
        )
    pid_file.write(proc.pid)
    return proc.pid


def stop(pid_file: PidFile, grace_s: float = 20.0, sig: int = signal.SIGTERM) -> bool:
    """Signal the process and its children (SIGTERM unless told), SIGKILL whatever is left after the grace period.

    Returns True if something was running.
    """
    proc = pid_file.alive()
    if proc is None:
        pid_file.remove()
        return False
    try:
        family = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        family = [proc]
    for member in family:
        _signal_quietly(member, sig)
    _, still_alive = psutil.wait_procs(family, timeout=grace_s)
    for member in still_alive:
        _signal_quietly(member, signal.SIGKILL)
    psutil.wait_procs(still_alive, timeout=5)
    pid_file.remove()
    return True


def _signal_quietly(proc: psutil.Process, sig: int) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.send_signal(sig)


def listening_pid(port: int, host: str = "127.0.0.1") -> int | None:
    """PID of the process that listens on host:port (0 when the port is taken but the owner is hidden)."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        connections = []
    for conn in connections:
        listening = conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port
        if listening and conn.laddr.ip in (host, "0.0.0.0", "::", "::ffff:" + host):
            return conn.pid or 0
    return None


def describe_pid(pid: int) -> str:
    if not pid:
        return "another process"
    try:
        proc = psutil.Process(pid)
        return f"pid {pid} ({' '.join(proc.cmdline()[:3])[:80]})"
    except psutil.Error:
        return f"pid {pid}"


def tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def rss_mib(proc: psutil.Process) -> float:
    """Resident memory of a process and its children, in MiB."""
    total = 0
    try:
        for member in [proc, *proc.children(recursive=True)]:
            total += member.memory_info().rss
    except psutil.Error:
        pass
    return total / (1024 * 1024)
