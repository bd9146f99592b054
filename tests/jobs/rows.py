"""Small helpers to build ride DataFrames with the real schema from a few inline values."""

from __future__ import annotations

from datetime import datetime, timedelta

from jobs.ride_schema import RIDE_FIELDS, RIDE_SCHEMA

T0 = datetime(2020, 10, 1, 8, 0)


def ride(**fields) -> tuple:
    values: dict[str, object] = dict.fromkeys(RIDE_FIELDS)
    values.update(ride_id="r", ride_type="green", pickup_datetime=T0)
    values.update(fields)
    return tuple(values[name] for name in RIDE_FIELDS)


def rides_df(spark, *rows):
    return spark.createDataFrame(list(rows), RIDE_SCHEMA)


def at(minute: float, hour: int = 8) -> datetime:
    """2020-10-01 at hour:00 plus `minute` minutes (fractions are seconds; 60 is the next hour)."""
    return datetime(2020, 10, 1, hour) + timedelta(seconds=round(minute * 60))
