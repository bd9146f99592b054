"""Who may make the web console do what: it answers only its own host names (a DNS-rebinding page is refused),
and on the secured stack asks for its own login. Each against a real console process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import psutil
import pytest
import requests

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
