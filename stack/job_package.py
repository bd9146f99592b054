"""The job package: the code a Spark job's executors import (jobs and what they stand on), as one zip that
spark-submit ships with `--py-files`, so that executors on any host run the submitted code, not a checkout.

A zip rather than the project's wheel because Spark puts only .zip, .egg and .py files of --py-files on the
executors' sys.path, and because it is built in well under a second from the installed packages, without a
build backend, each time the code changed (`make package`, and again by any submit that finds it stale).
"""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

# What executors import: the jobs and the packages below them (never producers, the console or the launcher).
SHIPPED_PACKAGES = ("pipeline_config", "pipeline_config.conf", "rides", "cluster", "results", "jobs")
SKIPPED = {"__pycache__"}


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
    raise ModuleNotFoundError(f"package {name} is not installed: run `make venv`")


def package_files() -> list[tuple[Path, str]]:
    """(file on disk, name in the zip) of every file of the shipped packages, subpackages' own folders apart."""
    roots = {name: package_dir(name) for name in SHIPPED_PACKAGES}
    own_roots = set(roots.values())
    files = []
    for name, root in roots.items():
        prefix = name.replace(".", "/")
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if not path.is_file() or SKIPPED & set(relative.parts) or path.suffix == ".pyc":
                continue
            if any(parent in own_roots and parent != root for parent in path.parents):
                continue  # belongs to a subpackage mapped elsewhere, shipped under its own name
            files.append((path, f"{prefix}/{relative.as_posix()}"))
    return files


def is_current(target: Path) -> bool:
    """Built after the last change of every shipped file, and holding exactly those files (none removed since)."""
    if not target.is_file():
        return False
    files = package_files()
    built = target.stat().st_mtime
    with zipfile.ZipFile(target) as archive:
        shipped = set(archive.namelist())
    return shipped == {name for _, name in files} and all(path.stat().st_mtime <= built for path, _ in files)


def build(target: Path) -> Path:
    """Write the zip (atomically: a running submit never reads half of one) and return its path."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, name in package_files():
            archive.write(path, name)
    partial.replace(target)
    return target


def current_package(target: Path) -> Path:
    """The job package at `target`, rebuilt first if any shipped file changed since it was built."""
    return target if is_current(target) else build(target)


def package_stamp(target: Path) -> int:
    """What identifies the job package's build, current first: its zip's modification time. The job server records
    the stamp of the package it started with (its executors hold that one), and a client compares."""
    return current_package(target).stat().st_mtime_ns
