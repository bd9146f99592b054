"""Scrape targets that come and go (a job's driver, a producer run): each registers itself in a file that the
stack's Prometheus reads through its file-based service discovery (`file_sd_configs`), and removes it when it
ends. Prometheus notices a new or removed file within seconds, so a job is scraped while it runs and forgotten
afterwards, without a reload.

A file is named after the process that wrote it; one whose process is gone (killed before it could clean up) is
removed when the next target of its kind registers, and by `prune`, which `make up` calls when it writes
Prometheus's configuration.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline_config.settings import StackSettings

KINDS = ("drivers", "producers")  # a folder of targets each, one scrape job each in the configuration


def targets_dir(settings: StackSettings, kind: str) -> Path:
    return settings.state_dir / "prometheus" / "targets" / kind


def register(settings: StackSettings, kind: str, address: str, labels: dict[str, str]) -> Path | None:
    """This process's target (host:port) with its labels, written atomically; None when the stack that would
    scrape it does not run Prometheus (or is not on this machine)."""
    folder = targets_dir(settings, kind)
    if not settings.prometheus.enabled or not folder.is_dir():
        return None
    _remove_stale(folder)  # a driver killed before it could clean up left its file, maybe naming this very port
    path = folder / f"{os.getpid()}.json"
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps([{"targets": [address], "labels": {**labels, "pid": str(os.getpid())}}]))
    scratch.replace(path)
    return path


def unregister(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


def prune(settings: StackSettings) -> None:
    """Make the folders, and remove the targets of processes that are gone."""
    for kind in KINDS:
        folder = targets_dir(settings, kind)
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale(folder)


def _remove_stale(folder: Path) -> None:
    for path in folder.glob("*.json"):
        if path.stem.isdigit() and not _alive(int(path.stem)):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
