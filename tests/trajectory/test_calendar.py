"""Working days: official calendar with 调休, Monday–Friday fallback for unknown years, overrides."""

from __future__ import annotations

import logging
from datetime import date

import numpy as np
import pytest

from trajectory import calendar


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
