"""`python -m jobs`: each job with the topics it reads and writes, as conf/jobs.yaml sets them."""

from __future__ import annotations

import sys

from jobs.catalog import JOBS
from pipeline_config.settings import SettingsError


def main() -> int:
    for job in JOBS.values():
        try:
            reads, writes = job.topics(job.load_settings())
        except SettingsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        summary = (job.description.strip().splitlines() or [""])[0]
        print(f"{job.name:<16} reads {', '.join(reads):<28} writes {', '.join(writes):<36} {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
