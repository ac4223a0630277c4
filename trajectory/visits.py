"""Stage 4 — site visits and the per-period visit checks (SPEC §1.1 visit frequency).

A visit is a continuous stay of ≥ ``min_stay_s`` within a site's radius by a worker of the
site's grid: consecutive trustworthy points all inside the radius, no gap longer than
``max_gap_s`` between them (the segment breaks there), first to last ≥ ``min_stay_s``.
Walking past (≈ 70 s through a 50 m circle) is not a visit.

Candidates are found without a points × sites product: points and sites are hashed into
square cells of the largest radius, keyed by grid; a point is only compared with the sites
of its own grid in its own and the 8 neighbouring cells.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date

import numpy as np
import pandas as pd

from scoring.policy import Policy
from trajectory.clean import Frame, col
from trajectory.contract import SITE_CHECK_COLUMNS
from trajectory.contract import SITE_VISIT_COLUMNS as SITE_VISIT_COLUMNS  # re-exported (engine, batching)
from trajectory.geo import planar_distance

__all__ = [
    "SITE_VISIT_COLUMNS",
    "site_checks",
    "stay_runs",
]

_OFF = 1 << 19  # cell index offset (cells of ≥ 1 m: ±500 km around the grid)


def _cell_key(gcode: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    cx = np.clip(cx + _OFF, 0, 2 * _OFF - 1).astype(np.int64)
    cy = np.clip(cy + _OFF, 0, 2 * _OFF - 1).astype(np.int64)
    return (gcode.astype(np.int64) << 40) | (cx << 20) | cy


def stay_runs(track: Frame, seg: np.ndarray, sites: pd.DataFrame, min_stay_s: float) -> pd.DataFrame:
    """Continuous stays of the track's points inside site circles.

    Parameters
    ----------
    track : DataFrame or dict of arrays
        Sorted trustworthy points: ``gcode`` (the worker's grid), ``x``, ``y`` (metres in that
        grid's frame), ``t`` (s), ``traj``.
    seg : ndarray
        Segment id of each point (:func:`trajectory.segment.build_intervals`).
    sites : DataFrame
        ``gcode``, ``x``, ``y`` (metres, same frame), ``radius_m``; its index is the site row.
    min_stay_s : float

    Returns
    -------
    DataFrame
        ``site`` (row of ``sites``), ``first``, ``last`` (point positions), ``duration_s``.
    """
    empty = pd.DataFrame(
        {
            "site": np.zeros(0, np.int64),
            "first": np.zeros(0, np.int64),
            "last": np.zeros(0, np.int64),
            "duration_s": np.zeros(0),
        }
    )
    if len(track) == 0 or len(sites) == 0:
        return empty
    radius = sites["radius_m"].to_numpy(dtype=np.float64)
    cell = max(float(radius.max()), 1.0)
    sx, sy = sites["x"].to_numpy(), sites["y"].to_numpy()
    sg = sites["gcode"].to_numpy()
    scx, scy = np.floor(sx / cell).astype(np.int64), np.floor(sy / cell).astype(np.int64)
    d = np.array([-1, 0, 1])
    ox, oy = np.repeat(d, 3), np.tile(d, 3)
    skeys = _cell_key(np.repeat(sg, 9), (scx[:, None] + ox).ravel(), (scy[:, None] + oy).ravel())
    srow = np.repeat(np.arange(len(sites)), 9)
    order = np.argsort(skeys, kind="stable")
    skeys, srow = skeys[order], srow[order]
    x, y = col(track, "x"), col(track, "y")
    pkeys = _cell_key(col(track, "gcode"), np.floor(x / cell), np.floor(y / cell))
    # one search over the distinct site cells; a point's candidates are that cell's run of skeys
    cells, cell_first, cell_count = np.unique(skeys, return_index=True, return_counts=True)
    at = np.minimum(np.searchsorted(cells, pkeys), len(cells) - 1)
    hit = cells[at] == pkeys
    lo = cell_first[at]
    cnt = np.where(hit, cell_count[at], 0)
    pts = np.flatnonzero(cnt)
    if len(pts) == 0:
        return empty
    c = cnt[pts]
    p = np.repeat(pts, c)
    offs = np.arange(c.sum()) - np.repeat(np.cumsum(c) - c, c)
    s = srow[np.repeat(lo[pts], c) + offs]
    inside = planar_distance(x[p] - sx[s], y[p] - sy[s]) <= radius[s]
    p, s = p[inside], s[inside]
    if len(p) == 0:
        return empty
    order = np.argsort(s, kind="stable")  # by site, then point (p is ascending)
    p, s = p[order], s[order]
    brk = np.r_[True, (s[1:] != s[:-1]) | (p[1:] != p[:-1] + 1) | (seg[p[1:]] != seg[p[:-1]])]
    first = np.flatnonzero(brk)
    last = np.r_[first[1:] - 1, len(p) - 1]
    t = col(track, "t")
    dur = t[p[last]] - t[p[first]]
    ok = dur >= min_stay_s
    return pd.DataFrame({"site": s[first[ok]], "first": p[first[ok]], "last": p[last[ok]], "duration_s": dur[ok]})


def site_checks(
    site_visit: pd.DataFrame,
    sites: pd.DataFrame,
    worker_day: pd.DataFrame,
    period_from: date,
    period_to: date,
    policy: Policy,
    period_days: Mapping[str, Collection[date]] | None = None,
) -> pd.DataFrame:
    """Whether each site was visited in each of its periods between two dates.

    Periods follow ``policy.patrol.visits.period``: ``workday`` (each workday on which a
    worker of the grid is not exempt), ``week`` (Monday–Sunday cut at month edges) and
    ``month``. A period requires a visit only when it holds at least one non-exempt workday
    of the grid's workers in ``worker_day``; periods are clipped to ``[period_from, period_to]``.
    Each check names the grid's workers of ``worker_day``. With ``period_days`` (period kind →
    days), only the periods of that kind holding one of its days are checked (the month step's
    window: the days recomputed, their week parts); kinds it does not name are all checked.

    Returns
    -------
    DataFrame
        ``site_check`` contract columns plus ``worker_id`` (the grid's workers, comma-separated),
        ``month`` ('YYYY-MM') and ``visit_count``. Only periods that require a visit.
    """
    cols = [*SITE_CHECK_COLUMNS, "worker_id", "month", "visit_count"]
    need = {"worker_id", "grid_id", "date", "workday", "exempt"}
    if not need <= set(worker_day.columns):
        raise ValueError(f"site_checks: worker_day lacks columns {sorted(need - set(worker_day.columns))}")
    wd = worker_day[(worker_day["date"] >= period_from) & (worker_day["date"] <= period_to)]
    if wd.empty or sites.empty:
        return pd.DataFrame(columns=cols)
    wd = wd.assign(due=wd["workday"].astype(bool) & ~wd["exempt"].astype(bool))
    grid_day = wd.groupby(["grid_id", "date"], as_index=False).agg(due=("due", "any"))
    # each grid's workers, sorted and once each: one join per grid of deduplicated sorted ids
    pairs = (
        wd[["grid_id", "worker_id"]].astype({"worker_id": str}).drop_duplicates().sort_values(["grid_id", "worker_id"])
    )
    workers = pairs.groupby("grid_id")["worker_id"].agg(",".join).rename("worker_id")
    periods = policy.patrol.visits.period
    site_rows = sites[["site_id", "site_type", "grid_id"]].assign(period=sites["site_type"].map(dict(periods)))
    # per period kind, each grid's periods that hold a due day, then the kind's sites of the
    # grid: a site's period is due when its grid's is (grid × period before sites × day)
    parts = []
    for kind in sorted(site_rows["period"].dropna().unique()):
        gd = grid_day
        if period_days is not None and kind in period_days:
            gd = gd[gd["date"].isin(set(period_days[kind]))]
        gd = gd.assign(pstart=_period_start(gd["date"], pd.Series(kind, index=gd.index)))
        due = gd.groupby(["grid_id", "pstart"], as_index=False).agg(due=("due", "any"))
        parts.append(site_rows[site_rows["period"] == kind].merge(due[due["due"]], on="grid_id", how="inner"))
    req = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if req.empty:
        return pd.DataFrame(columns=cols)
    req["period_start"], req["period_end"] = _period_bounds(req["pstart"], req["period"], period_from, period_to)
    sv = site_visit[(site_visit["date"] >= period_from) & (site_visit["date"] <= period_to)]
    if len(sv):
        sv = sv[["site_id", "site_type", "date"]].copy()
        sv["period"] = sv["site_type"].map(dict(periods))
        sv["pstart"] = _period_start(sv["date"], sv["period"])
        cnt = sv.groupby(["site_id", "pstart"]).size().rename("visit_count").reset_index()
        req = req.merge(cnt, on=["site_id", "pstart"], how="left")
    else:
        req["visit_count"] = 0
    req["visit_count"] = req["visit_count"].fillna(0).astype(int)
    req["visited"] = req["visit_count"] > 0
    req = req.merge(workers, left_on="grid_id", right_index=True, how="left")
    req["month"] = pd.to_datetime(req["period_start"]).dt.strftime("%Y-%m")
    return req[cols].sort_values(["grid_id", "site_id", "period_start"]).reset_index(drop=True)


def _period_start(dates: pd.Series, kind: pd.Series) -> np.ndarray:
    """First day (date objects) of each date's period: its week part (Monday, or the 1st when
    the month starts mid-week, as :func:`trajectory.metrics.week_part_start`), its month, or
    the day itself; every row at once."""
    d = pd.to_datetime(dates.reset_index(drop=True)).to_numpy().astype("datetime64[D]")
    k = kind.to_numpy()
    first = d.astype("datetime64[M]").astype("datetime64[D]")
    monday = d - ((d.astype(np.int64) + 3) % 7).astype("timedelta64[D]")  # 1970-01-01: a Thursday
    return np.where(k == "week", np.maximum(monday, first), np.where(k == "month", first, d)).astype(object)


def _period_bounds(
    pstart: pd.Series, kind: pd.Series, period_from: date, period_to: date
) -> tuple[np.ndarray, np.ndarray]:
    """First and last day of each period (date objects), clipped to ``[period_from, period_to]``:
    :func:`_period_end` of every row at once (a week part ends on Sunday or the month's last day).

    Examples
    --------
    >>> s, e = _period_bounds(pd.Series([date(2026, 10, 26), date(2026, 10, 1), date(2026, 10, 9)]),
    ...                       pd.Series(["week", "month", "workday"]), date(2026, 10, 5), date(2026, 10, 31))
    >>> [str(d) for d in s], [str(d) for d in e]
    (['2026-10-26', '2026-10-05', '2026-10-09'], ['2026-10-31', '2026-10-31', '2026-10-09'])
    """
    start = pd.to_datetime(pstart).to_numpy().astype("datetime64[D]")
    k = kind.to_numpy()
    month_end = (start.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1
    weekday = (start.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    sunday = start + (6 - weekday).astype("timedelta64[D]")
    end = np.where(k == "week", np.minimum(sunday, month_end), np.where(k == "month", month_end, start))
    first, last = np.datetime64(period_from, "D"), np.datetime64(period_to, "D")
    return np.maximum(start, first).astype(object), np.minimum(end, last).astype(object)
