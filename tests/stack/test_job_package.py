"""Jobs reach the executors as an artifact, not through the checkout: the local worker's executors run an
interpreter that has the project's libraries but not its source (as a host that never saw this checkout), and
import the jobs' code from the job package spark-submit ships."""

from __future__ import annotations

import json
import subprocess
import zipfile

import pytest

from pipeline_config.settings import CONF_DIR
from stack import job_package
from stack.submit import spark_default, submit_command, submit_environment
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.stack

APP = str(REPO_ROOT / "tests" / "apps" / "where_code_runs.py")


def _submitted(settings, command: list[str]) -> tuple[list[dict], list[str]]:
    """The application's reports from its executors, and its driver JVM's arguments."""
    result = subprocess.run(command, env=submit_environment(settings), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    reports = [json.loads(line.removeprefix("RESULT ")) for line in lines if line.startswith("RESULT ")]
    driver = next(
        (json.loads(line.removeprefix("DRIVER_JVM ")) for line in lines if line.startswith("DRIVER_JVM ")), []
    )
    return reports, driver


def test_executors_import_the_jobs_from_the_shipped_package_only(local_stack):
    reports, driver_jvm = _submitted(local_stack, submit_command(local_stack, APP))
    assert len(reports) == 2
    for report in reports:
        assert "import_error" not in report, report
        assert report["python"] == local_stack.executor_python
        assert report["cwd"].startswith(str(local_stack.state_dir / "data" / "spark-worker-")), report
        # The module came out of the executor's own copy of the zip (fetched into its work folder), and the rides
        # schema (package data) was read from it too.
        assert report["jobs_file"] == f"./{local_stack.job_package.name}/jobs/vendor_counts.py", report
        assert report["required_fields"] == ["ride_id", "ride_type", "pickup_datetime"]
        # the executor JVM runs with the flags of conf/spark-defaults.conf
        assert set(spark_default("spark.executor.extraJavaOptions").split()) <= set(report["jvm_flags"]), report
    # and so does the driver's, with the drivers' log4j configuration added rather than in their place
    assert set(spark_default("spark.driver.extraJavaOptions").split()) <= set(driver_jvm), driver_jvm
    assert f"-Dlog4j2.configurationFile=file:{CONF_DIR / 'log4j2-driver.properties'}" in driver_jvm, driver_jvm


def test_without_the_package_the_executors_cannot_see_the_code(local_stack):
    """The same application without --py-files: the executors have no way to the checkout's code."""
    command = submit_command(local_stack, APP)
    at = command.index("--py-files")
    del command[at : at + 2]
    reports, _ = _submitted(local_stack, command)
    assert reports and all(
        report.get("import_error") == "ModuleNotFoundError: No module named 'jobs'" for report in reports
    ), reports


def test_the_package_holds_the_jobs_code_and_data_and_not_the_rest(tmp_path):
    target = job_package.build(tmp_path / "jobs.zip")
    names = set(zipfile.ZipFile(target).namelist())
    assert {
        "jobs/vendor_counts.py",
        "rides/schemas/ride_event.avsc",
        "pipeline_config/conf/jobs.yaml",
        "cluster/clients.py",
    } <= names
    assert not any(name.split("/")[0] in ("producers", "console", "stack", "tests") for name in names)
    assert not any("__pycache__" in name for name in names)
    assert job_package.is_current(target)


def test_a_package_missing_a_file_or_holding_a_removed_one_is_rebuilt(tmp_path):
    target = job_package.build(tmp_path / "jobs.zip")
    with zipfile.ZipFile(target, "a") as archive:
        archive.writestr("jobs/removed_since.py", "")  # a module deleted from the source after the build
    assert not job_package.is_current(target)
    assert job_package.current_package(target) == target and job_package.is_current(target)
    assert "jobs/removed_since.py" not in zipfile.ZipFile(target).namelist()
