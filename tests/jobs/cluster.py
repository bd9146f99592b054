"""Running a job on the standalone cluster to the end of its input, and reading its output back."""

from __future__ import annotations

import json
import subprocess

from stack.settings import REPO_ROOT, StackSettings
from stack.submit import submit_command, submit_environment
from tests.kafka_helpers import read_all


def run_job(settings: StackSettings, job: str, checkpoint_root, *args: str, timeout: float = 600) -> str:
    """spark-submit jobs/<job>.py with the available-now trigger; returns the driver's output."""
    command = submit_command(
        settings,
        str(REPO_ROOT / "jobs" / f"{job}.py"),
        ["--trigger", "available-now", "--no-console", "--checkpoint-root", str(checkpoint_root), *args],
    )
    result = subprocess.run(command, env=submit_environment(settings), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{job} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result.stdout


def latest_per_key(settings: StackSettings, topic: str, minimum: int = 1) -> dict[str, dict]:
    """The output as a downstream reader sees it: the last value of each key."""
    latest = {}
    for message in sorted(read_all(settings.kafka.bootstrap_servers, topic),
                          key=lambda m: (m.partition(), m.offset())):
        latest[message.key().decode()] = json.loads(message.value())
    assert len(latest) >= minimum, f"only {len(latest)} keys in {topic}"
    return latest
