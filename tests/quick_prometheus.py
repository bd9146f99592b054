"""A Prometheus of a test's own that sees trouble in seconds: the stack's scrape configuration (the same targets,
from stack/prometheus.py) and the stack's alert rules (conf/prometheus/alerts.yml) with every duration in them
divided by SCALE: each rule's `for`, its range windows and its offsets. Scraped and evaluated every SCRAPE_S.

An alert made to fire for real (a job killed, a query failed, a broker down) then fires within a test's patience,
on the services' real metrics and the rules' real expressions; that each rule waits its full `for` on the stack's
own Prometheus is proven under promtool (tests/stack/test_alert_rules.py).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
import yaml

from pipeline_config.settings import StackSettings
from stack.prometheus import ALERT_RULES, scrape_configuration
from tests.waiting import wait_for

# 5m -> 30s, 1m -> 6s. Not further: the console reads consumer groups' lags at most every 20 s
# (console/metrics.py), and a lag's growth must show within a rule's range window.
SCALE = 10
SCRAPE_S = 2
_DURATION = re.compile(r"(\d+)([smh])")
_SECONDS = {"s": 1, "m": 60, "h": 3600}


def _scaled(duration: str) -> str:
    found = _DURATION.fullmatch(duration)
    assert found, f"{duration!r} is not a duration this scaling reads"
    amount, unit = found.groups()
    return f"{max(SCRAPE_S, int(amount) * _SECONDS[unit] // SCALE)}s"


def scaled_rules(target: Path) -> Path:
    """conf/prometheus/alerts.yml with its durations divided by SCALE (never below one evaluation)."""
    rules = yaml.safe_load(ALERT_RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = _scaled(rule["for"])
            rule["expr"] = re.sub(r"\[(\w+)\]", lambda m: f"[{_scaled(m.group(1))}]", rule["expr"])
            rule["expr"] = re.sub(r"offset (\w+)", lambda m: f"offset {_scaled(m.group(1))}", rule["expr"])
    target.write_text(yaml.safe_dump(rules, sort_keys=False))
    return target


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def quick_prometheus(settings: StackSettings, folder: Path) -> Iterator[str]:
    """Its URL while the block runs; stopped afterwards."""
    configuration = scrape_configuration(settings)
    interval = f"{SCRAPE_S}s"
    configuration["global"] = {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval}
    configuration["rule_files"] = [str(scaled_rules(folder / "alerts.yml"))]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(configuration, sort_keys=False))
    port = _free_port()
    binary = shutil.which(settings.prometheus.binary)
    assert binary, f"{settings.prometheus.binary} is not installed (.ci/run installs Debian's prometheus)"
    server = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "prometheus.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: server.poll() is not None or _ready(url), "the test's Prometheus to be ready", timeout_s=60)
        assert server.poll() is None, (folder / "prometheus.log").read_text()[-3000:]
        yield url
    finally:
        server.terminate()
        server.wait(30)


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/-/ready", timeout=2).ok
    except requests.RequestException:
        return False


def query(url: str, expression: str) -> list[dict]:
    answer = requests.get(f"{url}/api/v1/query", params={"query": expression}, timeout=10)
    assert answer.ok, answer.text
    return answer.json()["data"]["result"]


def firing(url: str, alert: str, **labels: str) -> list[dict]:
    """The alerts of that name firing now whose labels include these."""
    alerts = requests.get(f"{url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return [
        found
        for found in alerts
        if found["labels"]["alertname"] == alert
        and found["state"] == "firing"
        and all(found["labels"].get(key) == value for key, value in labels.items())
    ]
