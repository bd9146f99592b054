"""TLC readers on real rows from ../shared/data and on hand-made dirty rows of every layout."""

from __future__ import annotations

import gzip
from collections import Counter
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rides.events import field_names
from rides.tlc import LayoutError, ReadReport, read_rides
from tests.conftest import GREEN_FILE

YELLOW_HEADER = (
    "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,RatecodeID,"
    "store_and_fwd_flag,PULocationID,DOLocationID,payment_type,fare_amount,extra,mta_tax,tip_amount,"
    "tolls_amount,improvement_surcharge,total_amount,congestion_surcharge"
)
FHV_HEADER = (
    "dispatching_base_num,pickup_datetime,dropOff_datetime,PUlocationID,DOlocationID,SR_Flag,Affiliated_base_number"
)


@pytest.fixture(scope="module")
def green_events():
    report = ReadReport(source="green")
    return list(read_rides(GREEN_FILE, report=report)), report


def test_real_green_file_reads_every_row(green_events):
    events, report = green_events
    assert report.rows == 95_120 and report.events == 95_120 and report.bad_rows == []
    assert len({event["ride_id"] for event in events}) == 95_120
    assert {event["ride_type"] for event in events} == {"green"}
    assert all(set(event) == set(field_names()) for event in events[:100])


def test_real_green_first_row_fields_are_parsed_including_leading_dot_distance(green_events):
    first = green_events[0][0]
    assert first["VendorID"] == 2
    assert first["pickup_datetime"] == datetime(2020, 10, 1, 0, 31, 19)
    assert first["dropoff_datetime"] == datetime(2020, 10, 1, 0, 34, 55)
    assert (first["PULocationID"], first["DOLocationID"]) == (7, 7)
    assert first["trip_distance"] == pytest.approx(0.79)  # ".79" in the file
    assert first["total_amount"] == pytest.approx(7.88)
    assert first["ehail_fee"] is None and first["airport_fee"] is None and first["dispatching_base_num"] is None


def test_real_green_empty_vendor_rows_become_nulls_not_dropped(green_events):
    events, _ = green_events
    empty_vendor = [event for event in events if event["VendorID"] is None]
    assert len(empty_vendor) == 42_510  # as counted in shared/data/README.md
    assert all(event["payment_type"] is None and event["RatecodeID"] is None for event in empty_vendor)


def test_real_green_pickups_years_off_are_kept_for_the_watermark_to_judge(green_events):
    years = Counter(event["pickup_datetime"].year for event in green_events[0])
    assert years[2008] == 1 and years[2009] == 1
    assert years[2020] == 95_118


def test_yellow_rows_with_and_without_airport_fee(tmp_path):
    old = tmp_path / "yellow_old.csv"
    old.write_text(
        YELLOW_HEADER + "\n1,2019-01-01 00:46:40,2019-01-01 00:53:20,1,1.50,1,N,151,239,1,7,0.5,0.5,1.65,0,0.3,9.95,\n"
    )
    new = tmp_path / "yellow_new.csv.gz"
    with gzip.open(new, "wt") as handle:
        handle.write(
            YELLOW_HEADER
            + ",airport_fee\n2,2023-01-01 00:32:10,2023-01-01 00:40:36,1.0,0.97,1.0,N,161,141,2,9.3,1,0.5,0,0,1,14.3,2.5,1.25\n"
        )

    (old_event,) = read_rides(old)
    assert old_event["ride_type"] == "yellow"
    assert old_event["airport_fee"] is None and old_event["congestion_surcharge"] is None
    (new_event,) = read_rides(new)
    assert new_event["passenger_count"] == 1 and new_event["RatecodeID"] == 1  # "1.0" in the file
    assert new_event["airport_fee"] == pytest.approx(1.25)
    assert new_event["pickup_datetime"] == datetime(2023, 1, 1, 0, 32, 10)


def test_fhv_columns_are_matched_whatever_their_casing(tmp_path):
    path = tmp_path / "fhv.csv"
    path.write_text(
        FHV_HEADER + "\nB00013,2020-01-01 00:15:00,2020-01-01 00:41:00,264,264,,B00013\n"
        "B00021,2020-01-01 00:25:00,,,,1,\n"
    )
    first, second = read_rides(path)
    assert first["ride_type"] == "fhv" and first["dispatching_base_num"] == "B00013"
    assert (first["PULocationID"], first["DOLocationID"], first["SR_Flag"]) == (264, 264, None)
    assert first["VendorID"] is None and first["fare_amount"] is None
    assert second["dropoff_datetime"] is None and second["SR_Flag"] == 1 and second["affiliated_base_number"] is None


def test_parquet_files_read_like_csv(tmp_path):
    path = tmp_path / "fhv_tripdata_2022-01.parquet"
    table = pa.table(
        {
            "dispatching_base_num": ["B00009", "B00013"],
            "pickup_datetime": pa.array([datetime(2022, 1, 1, 0, 31), datetime(2022, 1, 1, 0, 55)], pa.timestamp("us")),
            "dropOff_datetime": pa.array([datetime(2022, 1, 1, 0, 59), None], pa.timestamp("us")),
            "PUlocationID": pa.array([None, 161.0], pa.float64()),
            "DOlocationID": pa.array([None, float("nan")], pa.float64()),
            "SR_Flag": pa.array([None, None], pa.int32()),
            "Affiliated_base_number": ["B00009", None],
        }
    )
    pq.write_table(table, path)
    report = ReadReport(source=path.name)
    first, second = read_rides(path, report=report)
    assert report.rows == 2 and not report.bad_rows
    assert first["pickup_datetime"] == datetime(2022, 1, 1, 0, 31) and first["PULocationID"] is None
    assert second["PULocationID"] == 161 and second["DOLocationID"] is None and second["dropoff_datetime"] is None


def test_dirty_rows_are_reported_with_line_and_reason_and_the_run_goes_on(tmp_path):
    path = tmp_path / "green_dirty.csv"
    with gzip.open(GREEN_FILE, "rt") as green:
        header = green.readline()
    with open(path, "w") as handle:
        handle.write(header)
        handle.write("2,2020-10-01 00:31:19,2020-10-01 00:34:55,N,1,7,7,1,.79,5,0.5,0.5,1.58,0,,0.3,7.88,1,1,0\n")
        handle.write("2,not-a-time,2020-10-01 00:34:55,N,1,7,7,1,.79,5,0.5,0.5,1.58,0,,0.3,7.88,1,1,0\n")
        handle.write("2,2020-10-01 00:31:19,2020-10-01 00:34:55,N,1,seven,7,1,.79,5,0.5,0.5,1.58,0,,0.3,7.88,1,1,0\n")
        handle.write(",,2020-10-01 00:34:55,,,7,7,,1.0,5,0,0,0,0,,0.3,5.3,,,\n")
        handle.write("2,2020-10-01 00:31:19,2020-10-01 00:34:55,N,1,7\n")
        handle.write("2,2020-10-01 00:40:00,2020-10-01 00:44:00,N,1,7,7,2.5,.5,5,0.5,0.5,0,0,,0.3,6.3,1,1,0\n")
        handle.write("1,2020-10-01 00:50:00,2020-10-01 00:55:00,N,1,8,9,1,1.2,6,0.5,0.5,0,0,,0.3,7.3,2,1,0\n")
    report = ReadReport(source=path.name)
    events = list(read_rides(path, report=report))
    assert report.rows == 7 and report.events == 2 and len(events) == 2
    reasons = {bad.line: bad.reason for bad in report.bad_rows}
    assert reasons == {
        3: "pickup_datetime 'not-a-time' is not a timestamp (expected YYYY-MM-DD HH:MM:SS)",
        4: "PULocationID 'seven' is not a number",
        5: "pickup_datetime is empty: a ride without a pickup time has no event time",
        6: "6 fields where the header has 20",
        7: "passenger_count '2.5' is not a whole number",
    }
    raw = report.bad_rows[0].raw
    assert isinstance(raw, str) and raw.startswith("2,not-a-time,")
    assert "5 unreadable (first: line 3" in report.summary()


def test_unknown_layout_names_the_columns_found_and_expected(tmp_path):
    path = tmp_path / "mystery.csv"
    path.write_text("trip,when,where\n1,2,3\n")
    with pytest.raises(LayoutError) as error:
        read_rides(path)
    message = str(error.value)
    assert "Found columns: trip, when, where" in message
    assert "green: VendorID, lpep_pickup_datetime" in message and "fhv: dispatching_base_num" in message


def test_layout_with_a_missing_column_names_it(tmp_path):
    path = tmp_path / "green_cut.csv"
    path.write_text("VendorID,lpep_pickup_datetime,lpep_dropoff_datetime\n2,2020-10-01 00:00:00,2020-10-01 00:01:00\n")
    with pytest.raises(LayoutError, match=r"look like the green layout but lack store_and_fwd_flag, RatecodeID"):
        read_rides(path)


def test_forcing_a_kind_that_does_not_match_the_file_is_refused(tmp_path):
    with pytest.raises(LayoutError, match="look like the fhv layout but lack dispatching_base_num"):
        read_rides(GREEN_FILE, "fhv")


def test_missing_file_is_refused_before_anything_is_read(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_rides(tmp_path / "nope.csv")


def test_hostile_lines_cost_their_line_and_not_the_file(tmp_path):
    """Invalid UTF-8 in one row, a field of 200,000 characters, and a quote never closed: each is a bad row with
    its line and reason (the csv module's own field limit used to end the read with _csv.Error), the others read."""
    good = b"2,2020-10-01 00:31:19,2020-10-01 00:34:55,N,1,7,7,1,.79,5,0.5,0.5,1.58,0,,0.3,7.88,1,1,0\n"
    with gzip.open(GREEN_FILE, "rb") as green:
        header = green.readline()
    path = tmp_path / "green_hostile.csv.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(header + good)
        handle.write(good.replace(b",N,", b",\xff\xfe,"))  # line 3: not UTF-8
        handle.write(good.replace(b",N,", b"," + b"x" * 200_000 + b","))  # line 4: 200 KB field
        handle.write(good)  # line 5
        handle.write(good.replace(b",N,", b',"N' + b"y" * 70_000 + b","))  # line 6: a quote never closed, 70 KB
    report = ReadReport(source=path.name)
    events = list(read_rides(path, report=report))
    reasons = {bad.line: bad.reason for bad in report.bad_rows}
    assert len(events) == 2 and report.events == 2
    assert reasons[3] == r"line is not valid UTF-8 (byte 43: b'\xff\xfe,1')"
    assert reasons[4] == "line of 200,088 bytes is longer than any TLC row (65,536)"
    assert 6 in reasons and len(reasons) == 3
    assert all(len(bad.reason) < 200 for bad in report.bad_rows)
    assert report.bad_rows[0].raw == good.replace(b",N,", b",\xff\xfe,")


def test_a_reason_quotes_at_most_a_few_dozen_characters_of_a_bad_value(tmp_path):
    path = tmp_path / "green_long_value.csv"
    with gzip.open(GREEN_FILE, "rt") as green:
        header = green.readline()
    path.write_text(
        header + "2,2020-10-01 00:31:19,2020-10-01 00:34:55,N,1," + "9" * 30_000 + "x,7,1,.79,5,0.5,0.5,"
        "1.58,0,,0.3,7.88,1,1,0\n"
    )
    report = ReadReport(source=path.name)
    assert list(read_rides(path, report=report)) == []
    (bad,) = report.bad_rows
    assert bad.reason.startswith("PULocationID '9999") and bad.reason.endswith("... is not a number")
    assert len(bad.reason) < 120


def test_a_ride_dated_after_the_files_month_is_a_bad_row_and_earlier_ones_are_kept(tmp_path):
    """One ride of 2024 in the file of 2020-10 would move every job's watermark four years ahead."""
    good = "2,2020-10-01 00:31:19,2020-10-01 00:34:55,N,1,7,7,1,.79,5,0.5,0.5,1.58,0,,0.3,7.88,1,1,0\n"
    with gzip.open(GREEN_FILE, "rt") as green:
        header = green.readline()
    rows = [
        good,
        good.replace("2020-10-01 00:31:19", "2024-05-01 10:00:00").replace("2020-10-01 00:34:55", ""),
        good.replace("2020-10-01 00:31:19", "2020-11-01 23:59:59"),  # within a day of the month: kept
        good.replace("2020-10-01 00:31:19", "2020-11-02 00:00:00"),  # a day past: refused
        good.replace("2020-10-01 00:31:19", "2019-01-01 00:00:00"),
    ]  # earlier: kept (late, for the jobs)
    path = tmp_path / "green_tripdata_2020-10.csv"
    path.write_text(header + "".join(rows))
    report = ReadReport(source=path.name)
    events = list(read_rides(path, report=report))
    assert [e["pickup_datetime"] for e in events] == [
        datetime(2020, 10, 1, 0, 31, 19),
        datetime(2020, 11, 1, 23, 59, 59),
        datetime(2019, 1, 1),
    ]
    reasons = {bad.line: bad.reason for bad in report.bad_rows}
    assert set(reasons) == {3, 5}
    assert reasons[3].startswith(
        "pickup_datetime 2024-05-01 10:00:00 is after 2020-11-02 00:00, more than 1 day past the file's month (2020-10)"
    )
    assert len(list(read_rides(path, check_month=False))) == 5
    renamed = tmp_path / "my_rides.csv"  # no month in the name: nothing to check against
    renamed.write_text(path.read_text())
    assert len(list(read_rides(renamed))) == 5
