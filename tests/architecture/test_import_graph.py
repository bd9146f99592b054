"""The layers of the codebase, checked on the source: settings and the ride domain at the bottom, the cluster
clients on them, producers, jobs and the web console above, the stack launcher beside them, nothing importing
upward, and no command-line module used as a library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT

# What each package may import from the project (itself always).
ALLOWED = {
    "pipeline_config": set(),
    "rides": {"pipeline_config"},
    "cluster": {"pipeline_config"},
    "results": {"pipeline_config"},
    "producers": {"pipeline_config", "rides", "cluster"},
    "jobs": {"pipeline_config", "rides", "cluster", "results"},
    # The console reads the jobs' declarations (jobs/catalog.py), which load no Spark code (tested below).
    "console": {"pipeline_config", "rides", "cluster", "results", "jobs"},
    "stack": {"pipeline_config", "cluster"},
}
COMMAND_LINE_MODULES = {"producers.produce", "producers.consume", "producers.download", "stack.cli"}


def project_imports(path: Path) -> set[str]:
    """Every module of the project the file imports, at any depth of the file (functions included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] in ALLOWED}


def modules(package: str) -> list[Path]:
    return sorted((REPO_ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_the_layers_below_it(package):
    upward = {
        f"{path.relative_to(REPO_ROOT)} imports {name}"
        for path in modules(package)
        for name in project_imports(path)
        if name.split(".")[0] not in ALLOWED[package] | {package}
    }
    assert not upward, "\n".join(sorted(upward))


def test_no_module_imports_a_command_line_module():
    users = {
        f"{path.relative_to(REPO_ROOT)} imports {name}"
        for package in ALLOWED
        for path in modules(package)
        for name in project_imports(path)
        if name in COMMAND_LINE_MODULES
        and path.with_suffix("").relative_to(REPO_ROOT).as_posix().replace("/", ".") != name
        and not (name == "stack.cli" and path.name == "__main__.py")
    }
    assert not users, "\n".join(sorted(users))


def test_the_checker_sees_an_upward_import(tmp_path):
    """The rule is not vacuous: a jobs module importing producers is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from producers.produce import main\n\ndef late():\n    import stack.services\n")
    assert project_imports(bad) == {"producers.produce", "producers.produce.main", "stack.services"}


def loaded_modules_after(statement: str) -> set[str]:
    """The top-level modules a fresh interpreter has loaded after running the statement."""
    script = f"import sys\n{statement}\nprint('\\n'.join(sorted({{name.split('.')[0] for name in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    return set(out.stdout.split())


def test_the_web_console_reads_the_job_declarations_without_loading_spark():
    """The console follows the progress topic the jobs' declarations name; it must not pay for pyspark (90 MB)."""
    assert "jobs" in loaded_modules_after("import console.app")
    assert "pyspark" not in loaded_modules_after("import console.app; console.app.progress_topic()")


def test_running_a_job_loads_its_spark_code():
    """The other side of the lazy declaration: asking for a job's queries loads its module and pyspark."""
    assert "pyspark" in loaded_modules_after("from jobs.catalog import JOBS; JOBS['vendor_counts'].start_queries")
