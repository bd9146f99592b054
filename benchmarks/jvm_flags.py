"""Our vendor_counts job with the JVM flags of conf/spark-defaults.conf against the JVM's defaults, in one run
(not part of make test; needs the stack: make up).

  .venv/bin/python -m benchmarks.jvm_flags [--repeat 2] [--copies 10]

The same work as the windowed peers (benchmarks/peer_windows.py): the green file in pickup order in a one-partition
JSON topic, once and --copies times, 10-minute tumbling counts per vendor to the end of the input, each run checked
against the batch count. Each run is a spark-submit timed from its start to its exit; the runs are interleaved.
"""

from __future__ import annotations

import argparse
from functools import partial

from benchmarks import peer_windows
from benchmarks.peers import GREEN_FILE
from benchmarks.side_by_side import delete_topic, interleaved_runs, print_rates
from pipeline_config.settings import load_settings
from stack.submit import spark_default

FLAGS = ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", default=str(GREEN_FILE))
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--copies", type=int, default=10)
    options = parser.parse_args(argv)

    settings = load_settings()
    folder = settings.state_dir / "peers" / "data"
    once = peer_windows.batch_counts(peer_windows.pickup_ordered(options.file, folder, 1))
    ours = "; ".join(f"{key.split('.')[1]} {spark_default(key)}" for key in FLAGS)
    for size in dict.fromkeys((1, options.copies)):
        data = peer_windows.prepared_input(settings, options.file, folder, size, once)
        seconds: dict[str, list[float]] = {"conf/spark-defaults.conf": [], "JVM defaults": []}
        confs = {"conf/spark-defaults.conf": None, "JVM defaults": dict.fromkeys(FLAGS, "")}
        variants = {
            name: partial(
                peer_windows.checked_rate,
                name,
                data,
                partial(peer_windows.run_ours, settings, data, conf),
                seconds[name],
            )
            for name, conf in confs.items()
        }
        try:
            runs = interleaved_runs(variants, options.repeat)
        finally:
            delete_topic(settings.kafka.bootstrap_servers, data.topic)
        title = (
            f"vendor_counts over {data.rides:,} rides ({size}x the file), each run from submit to exit, best of "
            f"{options.repeat}; our flags: {ours}"
        )
        print_rates(title, runs, "JVM defaults", "vs defaults")
        print("wall time, best run: " + ", ".join(f"{name} {min(took):.1f} s" for name, took in seconds.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
