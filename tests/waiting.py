"""Waiting in tests for something that happens elsewhere (a connector, a page, a job) with a deadline."""

from __future__ import annotations

import time


def wait_for(condition, what: str, timeout_s: float = 90, interval_s: float = 0.5):
    """The first truthy value of condition(), or AssertionError naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval_s)
    raise AssertionError(f"waited {timeout_s:g} s for {what}, in vain")
