"""Working days: official calendar with 调休, Monday–Friday fallback for unknown years, overrides."""

from __future__ import annotations

import logging
from datetime import date

import numpy as np
import pandas as pd
import pytest

from trajectory import calendar
from trajectory.calendar import local_epoch_us


@pytest.mark.parametrize(
    "day, workday",
    [
        (date(2026, 2, 14), True),  # Saturday worked before the Spring Festival (调休)
        (date(2026, 2, 17), False),  # Spring Festival, a Tuesday
        (date(2026, 2, 11), True),  # an ordinary Wednesday
        (date(2026, 2, 15), False),  # an ordinary Sunday
        (date(2026, 10, 1), False),  # National Day
    ],
)
def test_official_calendar(day: date, workday: bool) -> None:
    assert calendar.workday_flags([day], {}).tolist() == [workday]


def test_unknown_year_falls_back_to_monday_to_friday_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    calendar._warn_fallback_once.cache_clear()
    days = [date(2031, 5, 1), date(2031, 5, 2), date(2031, 5, 3), date(2031, 5, 5)]  # Thu, Fri, Sat, Mon
    with caplog.at_level(logging.WARNING, logger="trajectory.calendar"):
        flags = calendar.workday_flags(days, {})
        calendar.workday_flags(days, {})
    assert flags.tolist() == [True, True, False, True]
    assert sum("2031" in r.message for r in caplog.records) == 1  # once per year, not per call
    warnings = calendar.calendar_warnings(days)
    assert len(warnings) == 1 and "2031" in warnings[0] and "Monday–Friday" in warnings[0]
    assert calendar.calendar_warnings([date(2026, 5, 1)]) == []


def test_override_wins() -> None:
    days = [date(2026, 2, 14), date(2026, 2, 17), date(2031, 5, 3)]
    overrides = {date(2026, 2, 14): False, date(2026, 2, 17): True, date(2031, 5, 3): True}
    assert calendar.workday_flags(days, overrides).tolist() == [False, True, True]
    # a year fully decided by the centre is not reported
    assert calendar.calendar_warnings([date(2031, 5, 3)], overrides) == []


def test_many_dates_and_empty_input() -> None:
    days = [date(2026, 10, d) for d in range(1, 32)] * 100
    flags = calendar.workday_flags(days, {})
    assert flags.dtype == np.bool_ and len(flags) == len(days)
    assert not flags[:7].any()  # Golden Week, 1–7 October 2026
    assert flags[9]  # Saturday 10 October is worked (调休)
    assert calendar.workday_flags([], {}).tolist() == []


# --- local wall-clock time (ingest's partitions, the engine's dates) -----------------------
def _pandas_local_us(ts_us: np.ndarray, zone: str) -> np.ndarray:
    utc = pd.DatetimeIndex(pd.to_datetime(ts_us, unit="us", utc=True))
    return np.asarray(utc.tz_convert(zone).tz_localize(None).as_unit("us").asi8)


@pytest.mark.parametrize(
    "zone",
    [
        "Asia/Shanghai",  # the centre's zone: summer time 1986–1991, none since
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe",  # a half-hour summer shift
        "Asia/Kathmandu",  # +05:45
        "America/St_Johns",  # −03:30 with summer time
        "Pacific/Apia",  # skipped a whole day in 2011
    ],
)
def test_local_epoch_us_equals_pandas_across_offset_changes(zone: str) -> None:
    rng = np.random.default_rng(7)
    spans = [
        (int(5.0e14), int(7.0e14)),  # 1985–1992: Shanghai's summer times
        (1_293_000_000_000_000, 1_326_000_000_000_000),  # 2011: Apia's missing day
        (1_790_000_000_000_000, 1_790_000_000_000_000 + 86_400_000_000),  # one night
        (-(10**15), 3 * 10**15),  # 1938–2065: past the hour grid, point by point
    ]
    for lo, hi in spans:
        ts = rng.integers(lo, hi, 50_000)
        assert np.array_equal(local_epoch_us(ts, zone), _pandas_local_us(ts, zone)), (zone, lo)
    # every 997 s for a year: each transition of 2026 with points right around it
    dense = np.arange(1_767_225_600_000_000, 1_798_761_600_000_000, 997_000_013)
    assert np.array_equal(local_epoch_us(dense, zone), _pandas_local_us(dense, zone))
    # the instants of the transitions themselves, and a microsecond either side
    hours = np.arange(1_767_225_600_000_000, 1_798_761_600_000_000, 3_600_000_000)
    offsets = _pandas_local_us(hours, zone) - hours
    changed = hours[1:][offsets[1:] != offsets[:-1]]
    edges = np.concatenate([changed - 3_600_000_000 + k for k in range(0, 3_600_000_001, 60_000_000)] + [changed])
    edges = np.concatenate([edges - 1, edges, edges + 1])
    assert np.array_equal(local_epoch_us(edges, zone), _pandas_local_us(edges, zone))


def test_local_epoch_us_of_nothing_and_one_point() -> None:
    assert local_epoch_us(np.zeros(0, np.int64), "Asia/Shanghai").dtype == np.int64
    assert len(local_epoch_us(np.zeros(0, np.int64), "Asia/Shanghai")) == 0
    one = np.array([1_791_475_200_000_000])  # 2026-10-08 16:00 UTC
    assert local_epoch_us(one, "Asia/Shanghai")[0] == one[0] + 8 * 3_600_000_000
