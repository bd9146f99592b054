"""What the console's charts make of the results tables' rows, and its queries panel of the progress events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from console.charts import query_rows, top_zones, vendor_windows


def _count(start: str, vendor, rides: int) -> dict:
    return {"window_start": start, "vendor_id": vendor, "rides": rides}


def test_vendor_windows_draw_one_series_per_vendor_over_the_windows_in_order():
    rows = [_count("00:10", 2, 3), _count("00:00", 1, 5), _count("00:10", 1, 7), _count("00:20", None, 1)]
    chart = vendor_windows(rows)
    assert chart["windows"] == ["00:00", "00:10", "00:20"]
    assert chart["series"] == [
        {"name": "vendor 1", "rides": [5, 7, 0]},
        {"name": "vendor 2", "rides": [0, 3, 0]},
        {"name": "vendor unknown", "rides": [0, 0, 1]},
    ]


def test_vendor_windows_of_an_empty_table_draw_nothing():
    assert vendor_windows([]) == {"windows": [], "series": []}


def test_top_zones_are_labelled_by_name_or_by_id():
    rows = [
        {
            "window_start": "01:00",
            "window_end": "02:00",
            "rank": 1,
            "pu_location_id": 74,
            "borough": "Manhattan",
            "zone": "East Harlem North",
            "rides": 9,
        },
        {
            "window_start": "01:00",
            "window_end": "02:00",
            "rank": 2,
            "pu_location_id": 999,
            "borough": None,
            "zone": None,
            "rides": 3,
        },
    ]
    chart = top_zones(rows)
    assert (chart["window_start"], chart["window_end"]) == ("01:00", "02:00")
    assert chart["zones"] == [
        {"label": "East Harlem North (Manhattan)", "rides": 9, "rank": 1},
        {"label": "999 (?)", "rides": 3, "rank": 2},
    ]
    assert top_zones([]) == {"window_start": None, "window_end": None, "zones": []}


def test_query_rows_say_which_queries_run_idle_stopped_or_went_silent():
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def at(seconds_ago):
        return (now - timedelta(seconds=seconds_ago)).isoformat()

    progress = {
        "batchId": 7,
        "inputRowsPerSecond": 10.04,
        "processedRowsPerSecond": 20.0,
        "batchDuration": 512,
        "eventTime": {"watermark": "2020-10-01T00:00:00.000Z"},
        "stateOperators": [
            {"numRowsDroppedByWatermark": 2, "numRowsTotal": 40},
            {"numRowsDroppedByWatermark": 1, "numRowsTotal": 2},
        ],
    }
    rows = query_rows(
        [
            {
                "event": "progress",
                "query": "counts",
                "id": "id-1",
                "at": at(5),
                "input_rows": 100,
                "progress": progress,
            },
            {"event": "idle", "query": "quiet", "at": at(3)},
            {"event": "terminated", "query": "done", "at": at(600), "error": "boom"},
            {"event": "progress", "query": "gone", "at": at(120), "progress": {}},
            {"event": "late", "query": "counts", "id": "id-1", "at": at(4), "late_rides": 12},
        ],
        now=now,
    )
    by_name = {row["query"]: row for row in rows}
    assert [row["query"] for row in rows] == ["quiet", "counts", "gone", "done"]  # newest report first
    assert {name: row["state"] for name, row in by_name.items()} == {
        "counts": "running",
        "quiet": "idle",
        "done": "stopped",
        "gone": "silent",
    }
    counts = by_name["counts"]
    assert (counts["batch"], counts["input_rows"], counts["input_rate"], counts["batch_ms"]) == (7, 100, 10.0, 512)
    assert (counts["dropped_late"], counts["state_rows"], counts["watermark"]) == (3, 42, "2020-10-01T00:00:00.000Z")
    assert by_name["done"]["error"] == "boom"
    assert by_name["counts"]["late_rides"] == 12 and by_name["quiet"]["late_rides"] is None  # a late event: no row
