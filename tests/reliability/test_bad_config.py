"""Bad configuration is refused at start-up with a message that names the file and the key (or the flag or
address) to fix: malformed YAML, unknown keys, wrong types, and addresses nothing answers at. conf/stack.yaml's
own cases are in tests/stack/test_settings.py."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cluster.topics import load_topic_specs
from jobs.job_settings import VendorCountsSettings
from jobs.settings import load_job_settings
from pipeline_config.client_defaults import load_client_defaults
from pipeline_config.settings import CONF_DIR, SettingsError
from stack.schemas import load_subject_compatibility
from tests.paths import REPO_ROOT


def _conf_file(tmp_path, name: str, replace: tuple[str, str] | None = None, append: str = "") -> Path:
    text = (CONF_DIR / name).read_text()
    if replace:
        assert replace[0] in text, f"{name} no longer holds {replace[0]!r}"
        text = text.replace(replace[0], replace[1], 1)
    path = tmp_path / name
    path.write_text(text + append)
    return path


# name -> (conf file, (text, replacement) or None, text appended, loader, what the refusal must say)
CASES: dict[str, tuple[str, tuple[str, str] | None, str, Callable[[Path], object], list[str]]] = {
    "jobs.yaml, unknown key": (
        "jobs.yaml",
        ("  sliding_slide:", "  sliding_slid:"),
        "",
        lambda p: load_job_settings(VendorCountsSettings, "vendor_counts", path=p),
        ["jobs.yaml [vendor_counts]", "sliding_slid: Extra inputs are not permitted", "sliding_slide: Field required"],
    ),
    "jobs.yaml, wrong type": (
        "jobs.yaml",
        ("  printed_rows: 20", "  printed_rows: twenty"),
        "",
        lambda p: load_job_settings(VendorCountsSettings, "vendor_counts", path=p),
        ["printed_rows:", "integer"],
    ),
    "jobs.yaml, a duration that is not one": (
        "jobs.yaml",
        ('  watermark: "30 minutes"', '  watermark: "half an hour"'),
        "",
        lambda p: load_job_settings(VendorCountsSettings, "vendor_counts", path=p),
        ["watermark:", "'half an hour' is not a duration"],
    ),
    "jobs.yaml, malformed": (
        "jobs.yaml",
        None,
        "\nvendor_counts: [unclosed\n",
        lambda p: load_job_settings(VendorCountsSettings, "vendor_counts", path=p),
        ["jobs.yaml is not valid YAML"],
    ),
    "jobs.yaml, a job's section that is not a mapping": (
        "jobs.yaml",
        None,
        '\nvendor_counts: "x"\n',
        lambda p: load_job_settings(VendorCountsSettings, "vendor_counts", path=p),
        ["jobs.yaml is invalid", "vendor_counts: must be a mapping of settings, found str 'x'"],
    ),
    "jobs.yaml, defaults that are not a mapping": (
        "jobs.yaml",
        None,
        "\ndefaults: [1, 2]\n",
        lambda p: load_job_settings(VendorCountsSettings, "vendor_counts", path=p),
        ["jobs.yaml is invalid", "defaults: must be a mapping of settings, found list"],
    ),
    "clients.yaml, a section that is not a mapping": (
        "clients.yaml",
        None,
        '\nconsumer: "x"\n',
        load_client_defaults,
        ["clients.yaml is invalid", "consumer:"],
    ),
    "clients.yaml, acks out of range": (
        "clients.yaml",
        ("  acks: all", "  acks: 2"),
        "",
        load_client_defaults,
        ["clients.yaml is invalid", "producer.acks:"],
    ),
    "clients.yaml, unknown key": (
        "clients.yaml",
        ("  linger_ms: 20", "  linger: 20"),
        "",
        load_client_defaults,
        ["producer.linger: Extra inputs are not permitted"],
    ),
    "topics.yaml, partitions not a number": (
        "topics.yaml",
        ("  partitions: 3", "  partitions: three"),
        "",
        load_topic_specs,
        ["topics.yaml is invalid", "defaults.partitions:"],
    ),
    "schemas.yaml, unknown compatibility level": (
        "schemas.yaml",
        ("rides_all-value: FULL_TRANSITIVE", "rides_all-value: SOMETIMES"),
        "",
        load_subject_compatibility,
        ["schemas.yaml is invalid", "rides_all-value"],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_conf_file_is_refused_naming_the_file_and_key(tmp_path, case):
    name, replace, append, load, expected = CASES[case]
    with pytest.raises(SettingsError) as refused:
        load(_conf_file(tmp_path, name, replace, append))
    for text in expected:
        assert text in str(refused.value)


def _job(*flags: str) -> subprocess.CompletedProcess:
    """A job's main() run with plain Python: the checks happen before Spark starts."""
    return subprocess.run(
        [sys.executable, "jobs/vendor_counts.py", *flags],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_a_job_with_a_bad_flag_value_names_the_setting():
    result = _job("--trigger", "soon")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "[vendor_counts] with the command-line flags is invalid" in result.stderr
    assert "trigger: Value error, 'soon' is not a duration" in result.stderr


def test_a_job_pointed_at_an_address_nothing_answers_names_it():
    result = _job("--bootstrap-servers", "127.0.0.1:1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot reach Kafka at 127.0.0.1:1" in result.stderr and "bootstrap_servers" in result.stderr


@pytest.mark.stack
def test_a_job_whose_input_topic_does_not_exist_names_it(local_stack):
    result = _job("--input-topics", "rides_greeen")
    assert result.returncode == 2
    assert "input topic(s) rides_greeen do not exist" in result.stderr and "[vendor_counts]" in result.stderr


def test_the_producer_pointed_at_an_address_nothing_answers_names_it():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "producers.produce",
            "--source",
            "generator",
            "--limit",
            "1",
            "--bootstrap-servers",
            "127.0.0.1:1",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot reach Kafka at 127.0.0.1:1" in result.stderr


class _BrokenRegistry:
    """A schema registry that is up but broken, on a port of its own: it answers 503 to every request, or (silent)
    accepts connections and never answers."""

    def __init__(self, silent: bool):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Unavailable(BaseHTTPRequestHandler):
            def _answer(self):
                body = b'{"error_code": 50301, "message": "backend unavailable"}'
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args):
                pass

        if silent:
            self.server: Any = socket.create_server(("127.0.0.1", 0))
            self.port = self.server.getsockname()[1]
            self.accepted = []
            threading.Thread(target=lambda: self.accepted.append(self.server.accept()), daemon=True).start()
        else:
            self.server = ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
            self.port = self.server.server_address[1]
            threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self):
        if isinstance(self.server, socket.socket):
            self.server.close()
        else:
            self.server.shutdown()
            self.server.server_close()


@pytest.mark.stack
@pytest.mark.parametrize("silent", [False, True], ids=["answers 503", "never answers"])
def test_a_registry_that_fails_or_times_out_is_named_in_one_line(local_stack, fresh_topic, silent):
    registry = _BrokenRegistry(silent)
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "producers.produce",
                "--source",
                "generator",
                "--limit",
                "1",
                "--format",
                "avro",
                "--topic",
                fresh_topic,
                "--registry-url",
                registry.url,
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        registry.close()
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert registry.url in line
    assert ("answered HTTP 503" in line) if not silent else ("cannot reach the schema registry (ReadTimeout" in line)
