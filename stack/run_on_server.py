"""`python -m stack run <job> [flags]`: a job on the stack's job server, its output here, Ctrl-C stops it.

The job runs as `python -m stack submit <job> [flags]` would run it, without starting a Spark application of its
own: a few seconds to its queries instead of fifteen, and warm executors (BENCHMARKS.md, "The job server").
When the job package changed since the server started, the server is restarted first (its executors hold the
package they started with).
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from cluster import job_server as protocol
from pipeline_config.errors import PipelineError, report
from pipeline_config.settings import StackSettings, load_settings
from stack.job_package import package_stamp
from stack.service import StackError


def server_status(settings: StackSettings) -> dict | None:
    """What the job server says of itself, or None when none answers."""
    try:
        return protocol.status(settings.job_server.address)
    except (OSError, ValueError):
        return None


def free_for_a_job(status: dict | None) -> bool:
    """Whether a job server answered (`status`) and a job sent now runs next: none runs, or only its warm-up."""
    return status is not None and status.get("job") in (None, "warm-up")


def ready_server(settings: StackSettings, say=print) -> int:
    """The package stamp of a job server that runs the current code, restarting the server if its code is older."""
    if not settings.runs_job_server:
        raise StackError(
            "the job server is off (JOB_SERVER=0, conf/stack.yaml, or the secured stack): `python -m stack submit` "
            "runs a job"
        )
    status = server_status(settings)
    if status is None:
        raise StackError(
            f"no job server answers on port {settings.job_server.port}: the local stack's `make up` starts it (not "
            "docker-compose.yml, nor the secured stack); `python -m stack submit` runs a job without it"
        )
    stamp = package_stamp(settings.job_package)
    if status.get("package") != stamp:
        if status.get("job"):
            raise StackError(f"the job package changed, and the job server is still running {status['job']}")
        from stack import lifecycle  # only now: the launcher's imports would slow every run's start

        say("The job package changed since the job server started: restarting it with the new code ...")
        lifecycle.down(settings, say=lambda line: None, only=("job-server",))
        lifecycle.up(settings, say=lambda line: None, only=("job-server",))
    return stamp


def run_on_server(settings: StackSettings, job: str, args: list[str], out: TextIO = sys.stdout) -> int:
    """The job's exit status (BUSY_EXIT when another job holds the server)."""
    stamp = ready_server(settings)
    return protocol.run(settings.job_server.address, job, args, cwd=os.getcwd(), package=stamp, out=out)


def main(argv: list[str]) -> int:
    """`python -m stack run JOB [flags]`, reached before the launcher's other commands are imported."""
    if not argv or argv[0].startswith("-"):
        print("usage: python -m stack run JOB [flags of the job]  (e.g. vendor_counts --trigger available-now)")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    try:
        return run_on_server(load_settings(), argv[0], argv[1:])
    except PipelineError as exc:
        return report(exc)
