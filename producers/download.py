"""Download real NYC TLC trip files and the taxi zone lookup, with a progress bar and a sanity check.

Examples:
  python -m producers.download                                   # conf/data.yaml's defaults
  python -m producers.download --kind yellow --kind green --month 2024-01 --month 2024-02
  python -m producers.download --extension csv.gz --month 2020-10 --base-url http://mirror.example

Files land in data/ (git-ignored). A file already there that passes the check is not fetched again. Each
download goes to a temporary name and is renamed only once complete and checked, so an interrupted run
never leaves a half file behind.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

import requests
from pydantic import BaseModel, ConfigDict, ValidationError
from tqdm import tqdm

from pipeline_config.errors import PipelineError, run_command
from pipeline_config.settings import (
    CONF_DIR,
    SettingsError,
    describe_validation_error,
    read_yaml,
    resolve,
)
from rides.tlc import LayoutError, ReadReport, read_rides

CHUNK = 1 << 16


class DownloadError(PipelineError):
    """A file could not be fetched or failed its check; the message names the URL or the file."""


class DataSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    base_url: str
    trip_path: str
    zone_lookup_path: str
    target_dir: Path
    default_kinds: list[str]
    default_months: list[str]
    default_extension: str


def load_data_settings(path: Path = CONF_DIR / "data.yaml") -> DataSettings:
    try:
        return DataSettings.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(str(path), exc)) from None


def fetch(url: str, target: Path, quiet: bool = False) -> Path:
    """Stream url to target through a .partial- file, with a progress bar."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".partial-{target.name}")  # keeps the extension the check reads
    try:
        with requests.get(url, stream=True, timeout=(10, 60)) as response:
            if response.status_code == 404:
                raise DownloadError(f"{url} does not exist (HTTP 404): is the month published for that kind?")
            response.raise_for_status()
            total = int(response.headers.get("Content-Length") or 0) or None
            with (
                open(partial, "wb") as out,
                tqdm(total=total, unit="B", unit_scale=True, desc=target.name, disable=quiet, file=sys.stderr) as bar,
            ):
                for chunk in response.iter_content(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
            if total is not None and partial.stat().st_size != total:
                raise DownloadError(f"{url}: got {partial.stat().st_size} bytes of {total}")
    except requests.RequestException as exc:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"cannot download {url}: {exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return partial


def check_trip_file(path: Path, kind: str, display_name: str | None = None) -> str:
    """Readable, of the expected layout, with rides in it. Returns a one-line report."""
    report = ReadReport(source=display_name or path.name)
    try:
        count = sum(1 for _ in read_rides(path, kind, report))
    except (LayoutError, OSError, EOFError, ValueError) as exc:
        raise DownloadError(f"{display_name or path}: not a readable {kind} trip file: {exc}") from None
    if count == 0:
        raise DownloadError(f"{display_name or path}: no rides in it ({report.summary()})")
    return report.summary()


def check_zone_lookup(path: Path, display_name: str | None = None) -> str:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "LocationID" not in rows[0]:
        raise DownloadError(f"{path}: not the taxi zone lookup (no LocationID column)")
    ids = {int(row["LocationID"]) for row in rows}
    if not {1, 263}.issubset(ids):
        raise DownloadError(f"{path}: only {len(ids)} zones, expected 1..263 at least")
    return f"{display_name or path.name}: {len(rows)} zones"


def _month(value: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
        raise argparse.ArgumentTypeError(f"month must look like 2024-01, got {value!r}")
    return value


def download(settings: DataSettings, kinds, months, extension, target_dir: Path, force=False, quiet=False) -> list[str]:
    reports = []
    jobs = [
        (settings.trip_path.format(kind=kind, month=month, extension=extension), kind)
        for kind in kinds
        for month in months
    ]
    jobs.append((settings.zone_lookup_path, None))
    for relative, kind in jobs:
        target = target_dir / Path(relative).name
        check = (lambda p, name=None, k=kind: check_trip_file(p, k, name)) if kind else check_zone_lookup
        if target.exists() and not force:
            try:
                reports.append(f"kept {check(target)}")
                continue
            except DownloadError:
                pass  # a bad earlier copy: fetch it again
        partial = fetch(f"{settings.base_url.rstrip('/')}/{relative}", target, quiet)
        try:
            summary = check(partial, target.name)
        except DownloadError:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(target)
        reports.append(f"downloaded {summary}")
    return reports


def main(argv: list[str] | None = None) -> int:
    return run_command(lambda: _download(argv))


def _download(argv: list[str] | None) -> int:
    settings = load_data_settings()
    parser = argparse.ArgumentParser(
        prog="python -m producers.download",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--kind",
        action="append",
        choices=("yellow", "green", "fhv"),
        help=f"ride kind, repeatable (default {', '.join(settings.default_kinds)})",
    )
    parser.add_argument(
        "--month",
        action="append",
        type=_month,
        help=f"YYYY-MM, repeatable (default {', '.join(settings.default_months)})",
    )
    parser.add_argument("--extension", choices=("parquet", "csv.gz", "csv"), default=settings.default_extension)
    parser.add_argument("--base-url", default=settings.base_url)
    parser.add_argument("--target", type=Path, default=resolve(settings.target_dir))
    parser.add_argument("--force", action="store_true", help="download again even if a good copy is there")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    options = parser.parse_args(argv)
    settings = settings.model_copy(update={"base_url": options.base_url})
    for line in download(
        settings,
        options.kind or settings.default_kinds,
        options.month or settings.default_months,
        options.extension,
        options.target,
        options.force,
        options.quiet,
    ):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
