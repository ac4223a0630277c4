"""Working days (工作日): the official Chinese calendar, a Monday–Friday fallback, the centre's overrides.

SPEC §1.1: the official calendar counts adjusted working days (调休, e.g. a Saturday worked
before the Spring Festival) as workdays and public holidays as days off. The
``chinese_calendar`` package carries the State Council's schedule year by year; a year it
does not know yet (published each November for the next year) falls back to Monday–Friday
with a loud warning, because a holiday scored as a workday would deduct points unfairly.
The centre's ``calendar.csv`` (read by :func:`trajectory.workspace.read_calendar`) wins over both.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import cache

import chinese_calendar
import numpy as np

__all__ = [
    "calendar_warnings",
    "date_range",
    "fallback_message",
    "is_official_workday",
    "month_days",
    "month_of",
    "workday_flags",
]

log = logging.getLogger(__name__)


@cache
def _official_year_known(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


@cache
def _warn_fallback_once(year: int) -> str:
    msg = fallback_message(year)
    log.warning(msg)
    return msg


def fallback_message(year: int) -> str:
    """The warning shown when ``year`` is not in the official calendar."""
    return (
        f"official holiday calendar for {year} is not known to chinese_calendar "
        f"{getattr(chinese_calendar, '__version__', '?')}: working days of {year} fall back to Monday–Friday "
        f"(holidays and 调休 days are wrong); add them to calendar.csv or upgrade chinesecalendar"
    )


def is_official_workday(day: date) -> bool:
    """One day by the official calendar, Monday–Friday when its year is unknown.

    Examples
    --------
    >>> is_official_workday(date(2026, 2, 14)), is_official_workday(date(2026, 2, 17))
    (True, False)
    """
    if _official_year_known(day.year):
        return bool(chinese_calendar.is_workday(day))
    _warn_fallback_once(day.year)
    return day.weekday() < 5


def workday_flags(dates: Sequence[date], overrides: Mapping[date, bool] | None = None) -> np.ndarray:
    """Whether each date is a working day.

    Parameters
    ----------
    dates : sequence of datetime.date
    overrides : mapping date -> bool, optional
        The centre's ``calendar.csv`` (``Workspace.calendar_overrides``); wins over the rest.

    Returns
    -------
    numpy.ndarray of bool, one per date.

    Examples
    --------
    >>> workday_flags([date(2026, 2, 14), date(2026, 2, 17), date(2026, 2, 18)], {date(2026, 2, 18): True}).tolist()
    [True, False, True]
    """
    overrides = overrides or {}
    cache: dict[date, bool] = {}
    out = np.empty(len(dates), dtype=bool)
    # a month of dates has ~30 distinct values: decide each once
    for i, day in enumerate(dates):
        flag = cache.get(day)
        if flag is None:
            flag = bool(overrides[day]) if day in overrides else is_official_workday(day)
            cache[day] = flag
        out[i] = flag
    return out


def calendar_warnings(dates: Iterable[date], overrides: Mapping[date, bool] | None = None) -> list[str]:
    """Warnings for the run summary: one per year of ``dates`` that falls back to Monday–Friday.

    A year is not reported when every one of its dates in ``dates`` is overridden by
    ``calendar.csv`` (the centre has decided them).

    Examples
    --------
    >>> calendar_warnings([date(2026, 2, 14)])
    []
    >>> len(calendar_warnings([date(2031, 5, 1)]))
    1
    """
    overrides = overrides or {}
    years = sorted({d.year for d in dates if d not in overrides})
    return [_warn_fallback_once(y) for y in years if not _official_year_known(y)]


# --- months and date ranges (the run, the month step, the maps) ---------------------------
def month_days(month: str) -> list[date]:
    """Every date of ``YYYY-MM``."""
    first = datetime.strptime(month, "%Y-%m").date()
    nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return [first + timedelta(days=i) for i in range((nxt - first).days)]


def date_range(start: date, end: date) -> list[date]:
    """``start`` … ``end``, both included."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def month_of(day: date) -> str:
    """``YYYY-MM`` of a date."""
    return day.strftime("%Y-%m")
