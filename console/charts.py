"""The shapes the console's charts draw, from the latest records of the jobs' result topics.

A record of the wrong shape (a field missing or of another type: anybody may write to a topic) is left out of
the chart, never turned into an error of the panel."""

from __future__ import annotations

from datetime import UTC, datetime

LIVE_FOR_S = 60  # a query that reported within this long is running


def vendor_windows(records: list[dict], kind: str = "tumbling", windows: int = 24) -> dict:
    """Rides per window and vendor over the `windows` most recently updated windows of one kind, in window order
    (vendor_counts_windowed records: window_kind, window_start, VendorID, rides)."""
    of_kind = [record for record in records if record.get("window_kind") == kind and _is_vendor_count(record)]
    recent: list[str] = []
    for record in reversed(of_kind):
        if record["window_start"] not in recent:
            recent.append(record["window_start"])
            if len(recent) == windows:
                break
    starts = sorted(recent)
    rides: dict[str, dict[str, int]] = {}
    for record in of_kind:
        if record["window_start"] in starts:
            vendor = "unknown" if record.get("VendorID") is None else str(record["VendorID"])
            rides.setdefault(vendor, {})[record["window_start"]] = record["rides"]
    return {
        "windows": starts,
        "series": [
            {"name": f"vendor {vendor}", "rides": [by_start.get(start, 0) for start in starts]}
            for vendor, by_start in sorted(rides.items())
        ],
    }


def _is_vendor_count(record: dict) -> bool:
    return (
        isinstance(record.get("window_start"), str)
        and isinstance(record.get("rides"), int)
        and isinstance(record.get("VendorID"), (int, type(None)))
    )


def _is_top_zones(record: dict) -> bool:
    entries = record.get("top_zones")
    return isinstance(entries, list) and all(
        isinstance(entry, dict)
        and isinstance(entry.get("rides"), int)
        and isinstance(entry.get("rank"), int)
        and "PULocationID" in entry
        for entry in entries
    )


def latest_top_zones(records: list[dict]) -> dict:
    """The ranking of the window updated last (zone_top records: window_start, window_end, top_zones)."""
    records = [record for record in records if _is_top_zones(record)]
    if not records:
        return {"window_start": None, "zones": []}
    latest = records[-1]
    zones = [
        {
            "label": f"{entry.get('zone') or entry['PULocationID']} ({entry.get('borough') or '?'})",
            "rides": entry["rides"],
            "rank": entry["rank"],
        }
        for entry in latest.get("top_zones", [])
    ]
    return {"window_start": latest.get("window_start"), "window_end": latest.get("window_end"), "zones": zones}


def query_rows(records: list[dict], now: datetime | None = None) -> list[dict]:
    """One row per streaming query from the jobs' progress events (jobs/progress_topic.py), newest first. A
    query's late rides (jobs/late_rides.py: rides, where Spark's dropped count is of aggregated rows) come in
    events of their own, and are shown on the query's row."""
    now = now or datetime.now(UTC)
    late_rides = {record.get("id"): record.get("late_rides") for record in records if record.get("event") == "late"}
    rows = []
    for record in records:
        if record.get("event") == "late":
            continue
        progress = record.get("progress") or {}
        try:
            age_s = (now - datetime.fromisoformat(record["at"])).total_seconds()
            record["query"], record["event"]
        except (KeyError, TypeError, ValueError):
            continue  # not a progress event of ours
        if not isinstance(progress, dict):
            progress = {}
        state = "stopped" if record["event"] == "terminated" else "idle" if record["event"] == "idle" else "running"
        if state != "stopped" and age_s > LIVE_FOR_S:
            state = "silent"  # no word for a minute: the driver is gone or stuck
        operators = progress.get("stateOperators") or []
        rows.append(
            {
                "query": record["query"],
                "application": record.get("application"),
                "state": state,
                "at": record["at"],
                "batch": progress.get("batchId"),
                "input_rows": record.get("input_rows"),
                "input_rate": _rounded(progress.get("inputRowsPerSecond")),
                "processing_rate": _rounded(progress.get("processedRowsPerSecond")),
                "batch_ms": progress.get("batchDuration"),
                "watermark": (progress.get("eventTime") or {}).get("watermark"),
                "dropped_late": sum(op.get("numRowsDroppedByWatermark", 0) for op in operators if isinstance(op, dict)),
                "state_rows": sum(op.get("numRowsTotal", 0) for op in operators if isinstance(op, dict)),
                "late_rides": late_rides.get(record.get("id")),
                "error": record.get("error"),
            }
        )
    return sorted(rows, key=lambda row: str(row["at"]), reverse=True)


def _rounded(value) -> float | None:
    return None if value is None else round(float(value), 1)
