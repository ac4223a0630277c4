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
from zoneinfo import ZoneInfo

import chinese_calendar
import numpy as np
import pandas as pd

__all__ = [
    "calendar_warnings",
    "date_range",
    "fallback_message",
    "is_official_workday",
    "local_epoch_us",
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


_HOUR_US = 3_600_000_000
# beyond this many hours between a call's first and last instant (about 11 years) the offsets
# are looked up point by point
_MAX_GRID_HOURS = 100_000


def local_epoch_us(ts_us: np.ndarray, zone: str | ZoneInfo) -> np.ndarray:
    """Local wall-clock time of UTC epoch microseconds in ``zone``, as epoch microseconds.

    The same values as pandas' ``tz_convert(zone).tz_localize(None)``, at a fraction of its
    cost (a night's 4 M points: ingest and the engine each converted them, 40 ms per M): the
    zone's UTC offset is looked up at each whole hour from the first instant to the last
    (pandas, a few dozen values a day), and a point takes the offset of its hour when the
    hour begins and ends with the same one; the points of an hour in which the offset changes
    are converted one by one. Exact unless a zone changes its offset twice within one hour
    and back, which no zone in the tz database does.

    Examples
    --------
    >>> us = np.array([1_791_475_199_000_000, 1_791_475_200_000_000])  # 2026-10-08 15:59:59 / 16:00 UTC
    >>> [str(np.datetime64(int(v), "us")) for v in local_epoch_us(us, "Asia/Shanghai")]
    ['2026-10-08T23:59:59.000000', '2026-10-09T00:00:00.000000']
    """
    ts_us = np.asarray(ts_us, dtype=np.int64)
    if len(ts_us) == 0:
        return ts_us.copy()
    first, last = int(ts_us.min()) // _HOUR_US, int(ts_us.max()) // _HOUR_US
    if last - first > _MAX_GRID_HOURS:
        return ts_us + _offsets_us(ts_us, zone)
    grid = _offsets_us(np.arange(first, last + 2, dtype=np.int64) * _HOUR_US, zone)
    if bool(np.all(grid == grid[0])):  # one offset all along (most nights, every night in China)
        return ts_us + int(grid[0])
    hour = ts_us // _HOUR_US - first
    out = ts_us + grid[hour]
    changes = grid[:-1] != grid[1:]  # per hour: the offset changes within it
    k = np.flatnonzero(changes[hour])
    out[k] = ts_us[k] + _offsets_us(ts_us[k], zone)
    return out


def _offsets_us(ts_us: np.ndarray, zone: str | ZoneInfo) -> np.ndarray:
    """The zone's UTC offset (µs) at each UTC instant, by pandas."""
    utc = pd.DatetimeIndex(ts_us.astype("datetime64[us]")).tz_localize("UTC")
    local = utc.tz_convert(zone).tz_localize(None).as_unit("us")
    return np.asarray(local.asi8, dtype=np.int64) - ts_us
