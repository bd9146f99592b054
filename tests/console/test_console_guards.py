"""Who may make the web console do what: it answers only its own host names (a DNS-rebinding page is refused),
charts only topics that exist with a bounded number of feed threads, keeps a panel up when a charted topic holds
malformed records, and on the secured stack asks for its own login. Each against a real console process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import psutil
import pytest
import requests
from confluent_kafka import Producer

from pipeline_config.credentials import CONSOLE_PASSWORD, stack_secrets
from pipeline_config.settings import load_settings
from tests.paths import REPO_ROOT
from tests.waiting import wait_for

pytestmark = pytest.mark.stack


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def start_console():
    started = []

    def start(env_overrides: dict | None = None) -> tuple[str, psutil.Process]:
        port = _free_port()
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env_overrides or {})}
        process = subprocess.Popen(
            [sys.executable, "-m", "console", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"

        def healthy():
            try:
                return requests.get(f"{url}/api/health", timeout=2).ok
            except requests.ConnectionError:
                assert process.poll() is None, process.stderr.read()
                return False

        wait_for(healthy, "the console to answer", timeout_s=60)
        return url, psutil.Process(process.pid)

    yield start
    for process in started:
        process.terminate()
        process.wait(30)


def test_a_request_for_another_host_name_is_refused(local_stack, start_console):
    url, _ = start_console()
    assert requests.get(f"{url}/api/overview", timeout=10).status_code == 200
    assert requests.get(f"{url}/api/overview", headers={"Host": "localhost:8088"}, timeout=10).status_code == 200
    rebinding = requests.get(f"{url}/api/topics", headers={"Host": "evil.example"}, timeout=10)
    assert rebinding.status_code == 400


def test_charts_follow_only_existing_topics_with_a_bounded_number_of_feeds(local_stack, start_console, topic_factory):
    url, process = start_console()
    requests.get(f"{url}/api/queries", timeout=30)  # the progress feed, always on
    baseline = process.num_threads()
    for i in range(100):  # made-up topics start nothing
        answer = requests.get(f"{url}/api/charts/vendor-counts", params={"topic": f"probe_{i}"}, timeout=30)
        assert answer.status_code == 404 and f"probe_{i}" in answer.json()["detail"]
    assert process.num_threads() <= baseline + 2

    topics = [topic_factory(partitions=1, prefix="charted") for _ in range(12)]
    max_feeds = local_stack.console.max_feeds
    threads = []
    for topic in topics:  # real ones start a feed each, at most max_feeds at once: the least recently used stop
        assert requests.get(f"{url}/api/charts/vendor-counts", params={"topic": topic}, timeout=30).ok
        threads.append(process.num_threads())
    live = requests.get(f"{url}/api/overview", timeout=30).json()["live_feeds"]
    assert len(live) == max_feeds and live[-(max_feeds - 1) :] == topics[-(max_feeds - 1) :]
    assert max(threads[max_feeds:]) <= threads[max_feeds - 1] + 2  # past the cap, no more threads


def test_malformed_records_in_a_charted_topic_leave_the_panel_up(local_stack, start_console, topic_factory):
    url, _ = start_console()
    topic = topic_factory(partitions=1, prefix="charted_junk")
    good = {"window_kind": "tumbling", "window_start": "2020-10-01T00:00:00.000Z", "VendorID": 2, "rides": 7}
    junk = [
        b"[1, 2]",
        b"42",
        b"not json",
        b'{"window_kind": "tumbling"}',
        json.dumps({**good, "rides": "seven"}).encode(),
        json.dumps({**good, "window_start": None}).encode(),
        json.dumps({**good, "VendorID": [1]}).encode(),
        b"{" * 5000,
    ]
    producer = Producer({"bootstrap.servers": local_stack.kafka.bootstrap_servers})
    for number, value in enumerate(junk):
        producer.produce(topic, value, key=f"junk-{number}")
    producer.produce(topic, json.dumps(good).encode(), key="good")
    assert producer.flush(30) == 0

    def drawn():
        answer = requests.get(f"{url}/api/charts/vendor-counts", params={"topic": topic}, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json() if answer.json()["windows"] else None

    chart = wait_for(drawn, "the good record to be charted", timeout_s=60)
    assert chart["windows"] == ["2020-10-01T00:00:00.000Z"] and chart["series"] == [{"name": "vendor 2", "rides": [7]}]
    top = requests.get(f"{url}/api/charts/top-zones", params={"topic": topic}, timeout=30)
    assert top.status_code == 200 and top.json()["zones"] == []


def test_on_the_secured_stack_the_console_asks_for_its_own_login(local_stack, start_console, tmp_path):
    state = tmp_path / "secured-console"
    env = {"SECURE": "1", "STACK_HOME": str(state)}
    url, _ = start_console(env)
    password = stack_secrets(load_settings(env={**os.environ, **env}))[CONSOLE_PASSWORD]
    assert requests.get(f"{url}/api/health", timeout=10).ok  # make up's health check needs no login
    refused = requests.get(f"{url}/api/overview", timeout=10)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(f"{url}/api/overview", auth=("console", "guess"), timeout=10).status_code == 401
    assert requests.get(f"{url}/", auth=("admin", password), timeout=10).status_code == 401
    answer = requests.get(f"{url}/api/overview", auth=("console", password), timeout=10)
    assert answer.status_code == 200 and answer.json()["secure"] is True
    assert (state / "secrets" / "credentials.env").stat().st_mode & 0o777 == 0o600
