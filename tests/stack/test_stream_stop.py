"""How `make stream` stops its producer and what it exits with: the producer gets its whole flush timeout (it
used to be killed after 30 s whatever its flush_timeout_s), and a producer's failure is the command's status."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from pipeline_config.client_defaults import load_client_defaults
from stack.stream import _stop, exit_status, producer_grace_s

# A stand-in for a producer flushing a long queue: on SIGINT it takes `seconds` to finish, then exits with 1.
SLOW_FLUSH = """
import signal, sys, time
signal.signal(signal.SIGINT, lambda *_: (time.sleep({seconds}), sys.exit(1)))
print("ready", flush=True)
time.sleep(600)
"""


def test_the_producer_may_take_its_whole_flush_timeout_to_stop():
    assert producer_grace_s() > load_client_defaults().producer.flush_timeout_s


def test_a_process_that_stops_within_its_grace_is_not_killed_and_its_status_is_kept():
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_FLUSH.format(seconds=3)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert process.stdout.readline().strip() == "ready"
    began = time.monotonic()
    assert _stop(process, "producer", signal.SIGINT, grace_s=20) == 1
    assert 3 <= time.monotonic() - began < 20


def test_a_process_past_its_grace_is_killed_and_counts_as_a_failure():
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_FLUSH.format(seconds=30)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert process.stdout.readline().strip() == "ready"
    code = _stop(process, "producer", signal.SIGINT, grace_s=2)
    assert code == -signal.SIGKILL and exit_status(0, code) == 1


def test_the_exit_status_is_the_first_failure():
    assert exit_status(0, 0) == 0
    assert exit_status(-signal.SIGTERM, 0) == 0  # the jobs stopped by us
    assert exit_status(None, None) == 0  # nothing started
    assert exit_status(0, 2) == 2  # the producer refused its input
    assert exit_status(0, 1) == 1  # the producer could not deliver everything
    assert exit_status(1, 0) == 1  # a query failed
