"""The Spark standalone master's state (workers, applications) from its JSON endpoint, on any cluster."""

from __future__ import annotations

import requests

from pipeline_config.settings import StackSettings


def master_state(settings: StackSettings) -> dict:
    response = requests.get(f"http://{settings.spark.ui_host}:{settings.spark.master_ui_port}/json/", timeout=3)
    response.raise_for_status()
    return response.json()
