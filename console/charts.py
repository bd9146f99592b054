"""The shapes the console draws: the charts from the results tables (the latest value per key is what the
database keeps, so the console rebuilds nothing), the queries panel from the jobs' progress events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

LIVE_FOR_S = 60  # a query that reported within this long is running

# The `windows` latest windows of one kind, rides per vendor (the vendor_counts table).
VENDOR_WINDOWS_SQL = """
SELECT window_start, vendor_id, rides FROM vendor_counts
WHERE window_kind = %(kind)s AND window_start IN (
    SELECT DISTINCT window_start FROM vendor_counts WHERE window_kind = %(kind)s
    ORDER BY window_start DESC LIMIT %(windows)s)
ORDER BY window_start, vendor_id
"""
# The ranking of the latest window (the zone_top table).
TOP_ZONES_SQL = """
SELECT window_start, window_end, rank, pu_location_id, borough, zone, rides FROM zone_top
WHERE window_start = (SELECT max(window_start) FROM zone_top)
ORDER BY rank
"""


def vendor_windows(rows: list[dict[str, Any]]) -> dict:
    """Rows of VENDOR_WINDOWS_SQL as a stacked bar chart: the window starts in order, one series per vendor."""
    starts = sorted({row["window_start"] for row in rows})
    rides: dict[str, dict[str, int]] = {}
    for row in rows:
        vendor = "unknown" if row["vendor_id"] is None else str(row["vendor_id"])
        rides.setdefault(vendor, {})[row["window_start"]] = row["rides"]
    return {
        "windows": starts,
        "series": [
            {"name": f"vendor {vendor}", "rides": [by_start.get(start, 0) for start in starts]}
            for vendor, by_start in sorted(rides.items())
        ],
    }


def top_zones(rows: list[dict[str, Any]]) -> dict:
    """Rows of TOP_ZONES_SQL as the bars of one window's ranking."""
    if not rows:
        return {"window_start": None, "window_end": None, "zones": []}
    zones = [
        {
            "label": f"{row['zone'] or row['pu_location_id']} ({row['borough'] or '?'})",
            "rides": row["rides"],
            "rank": row["rank"],
        }
        for row in rows
    ]
    return {"window_start": rows[0]["window_start"], "window_end": rows[0]["window_end"], "zones": zones}


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
