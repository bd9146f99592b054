"""notebooks/explore_results.ipynb run end to end with nbclient against the local stack: it reads the results
table a job on the cluster wrote, with a pull query, and draws its plot; its figures must equal a batch count of
the same rides."""

from __future__ import annotations

import re
from collections import Counter

import nbformat
import pytest
from nbclient import NotebookClient

from producers.generator import GeneratorSettings, RideGenerator
from tests.jobs.batch_answers import is_valid_ride
from tests.jobs.cluster import produce_generated, run_job
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.stack

NOTEBOOK = REPO_ROOT / "notebooks" / "explore_results.ipynb"
RIDES, SEED = 3000, 21


def test_the_notebook_explores_a_results_table_and_plots_it(
    local_stack, topic_factory, tmp_path, monkeypatch, results_schema
):
    rides_topic = topic_factory(prefix="notebook_rides")
    produce_generated(rides_topic, SEED, RIDES)
    run_job(
        local_stack,
        "vendor_counts",
        tmp_path / "checkpoints",
        "--input-topics",
        rides_topic,
        "--results-schema",
        results_schema,
        sinks="postgres",
    )

    monkeypatch.setenv("RESULTS_SCHEMA", results_schema)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()

    printed = "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.output_type == "stream"
    )
    rides = [ride for ride in RideGenerator(GeneratorSettings(seed=SEED)).rides(RIDES) if is_valid_ride(ride)]
    assert f"rides in tumbling windows: {len(rides)}\n" in printed, printed

    per_hour = Counter(ride["pickup_datetime"].hour for ride in rides)
    table = next(
        output["data"]["text/plain"] for output in notebook.cells[3].outputs if output.output_type == "execute_result"
    )
    shown = {
        int(hour): sum(map(int, counts))
        for hour, *counts in (line.split() for line in table.splitlines() if re.match(r"^\d+\s", line))
    }
    assert shown == dict(per_hour)

    images = [
        output for cell in notebook.cells for output in cell.get("outputs", []) if "image/png" in output.get("data", {})
    ]
    assert len(images) == 1, "the plot is drawn"
