"""Stage 3 — patrol time, jitter-robust distance, stays, and the weekly roll-up.

Distance (docs/methods.md §Noise, stays and distance). :func:`trajectory.noise.denoise`
gives each segment its GPS noise, its stays and a track smoothed at a scale adapted to the
noise; an *anchor hysteresis* then walks each segment: the anchor stays put until a smoothed
point lies more than the segment's step from it, which becomes the next anchor and adds the
chord between the two. The sequential scan is vectorised in two passes: (1) every point's
successor ``nxt[i]`` = first later point of its segment more than a step away, searched
``_LOOKAHEAD`` (128) points ahead with a shrinking candidate set (a stay holds its anchor to its
last point; a point with none that close is re-anchored ``_LOOKAHEAD`` points later without
distance); (2) the chain of anchors from each segment start is collected by pointer doubling
(``nxt ← nxt[nxt]``, log₂ of the chain length rounds). A stay adds no distance and counts at
most ``stationary_max_min`` of time unless it is at a registered site.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from scoring.policy import Policy
from trajectory.clean import Frame, col
from trajectory.contract import WORKER_WEEK_COLUMNS
from trajectory.geo import planar_distance
from trajectory.noise import denoise
from trajectory.segment import Intervals

__all__ = [
    "PathResult",
    "anchor_chain",
    "clock_s",
    "compute_weeks",
    "path_distance",
    "segment_bounds",
    "split_corners",
    "week_part_end",
    "week_part_start",
    "window_overlap",
]

_LOOKAHEAD = 128  # points searched for the next anchor (a 60 m step at 0.5 m/s and 1 s); beyond, re-set


# --- distance ---------------------------------------------------------------------------
def segment_bounds(seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last index of the segment of every point (``seg`` sorted)."""
    n = len(seg)
    starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]]) if n else np.zeros(0, np.int64)
    ends = np.r_[starts[1:] - 1, n - 1] if n else starts
    sid = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    return starts[sid], ends[sid]


def anchor_chain(
    xs: np.ndarray,
    ys: np.ndarray,
    seg: np.ndarray,
    min_step_m: float | np.ndarray,
    lookahead: int = _LOOKAHEAD,
    hold_to: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anchor hysteresis steps of every segment, vectorised.

    ``min_step_m`` is one distance or one per point (the step of the anchor's segment).
    ``hold_to`` (optional, per point) is an index at or after the point up to which the anchor
    is held without distance (a stay: its points sit at one position).

    Returns
    -------
    src, dst : ndarray of int
        Consecutive anchors (point indices) of each segment, sorted.
    moved : ndarray of bool
        True where ``dst`` is farther than ``min_step_m`` from ``src`` (a real step), False
        where the anchor was only re-set after ``lookahead`` points without movement.

    Examples
    --------
    >>> xs = np.array([0.0, 5, 10, 15, 20, 25, 30])
    >>> src, dst, moved = anchor_chain(xs, np.zeros(7), np.zeros(7, int), 12.0)
    >>> src.tolist(), dst.tolist(), moved.tolist()
    ([0, 3], [3, 6], [True, True])
    """
    n = len(xs)
    if n < 2:
        e = np.zeros(0, np.int64)
        return e, e, np.zeros(0, bool)
    _, last = segment_bounds(seg)
    r2 = np.broadcast_to(np.asarray(min_step_m, dtype=np.float64) ** 2, (n,)).astype(np.float32)
    nxt = np.full(n + 1, n, dtype=np.int64)  # n = end of chain (sentinel)
    capped = np.zeros(n + 1, dtype=bool)
    # most successors are a few points ahead: test those offsets on contiguous slices first
    rem = last - np.arange(n)
    found = np.zeros(n, dtype=bool)
    if hold_to is not None:
        held = np.flatnonzero(hold_to > np.arange(n))
        nxt[held] = hold_to[held]
        capped[held] = True
        found[held] = True
    x32, y32 = xs.astype(np.float32), ys.astype(np.float32)
    dense = min(4, lookahead)
    for o in range(1, dense + 1):
        dx = x32[o:] - x32[:-o]
        dy = y32[o:] - y32[:-o]
        hit = (dx * dx + dy * dy > r2[:-o]) & ~found[:-o] & (rem[:-o] >= o)
        idx = np.flatnonzero(hit)
        nxt[idx] = idx + o
        found[idx] = True
    cand = np.flatnonzero(~found & (rem > dense))
    for o in range(dense + 1, lookahead + 1):
        j = cand + o
        keep = j <= last[cand]
        cand, j = cand[keep], j[keep]
        if len(cand) == 0:
            break
        hit = (x32[j] - x32[cand]) ** 2 + (y32[j] - y32[cand]) ** 2 > r2[cand]
        nxt[cand[hit]] = j[hit]
        cand = cand[~hit]
    if len(cand):  # nothing within the look-ahead: re-anchor there without distance
        nxt[cand] = cand + lookahead
        capped[cand] = True
    # pointer doubling: after round k, ``nodes`` holds nxt^m(start) for all m < 2^(k+1)
    first = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
    nodes = first
    jump = nxt
    while True:
        new = jump[nodes]
        new = new[new < n]
        if len(new) == 0:
            break
        nodes = np.concatenate([nodes, new])
        jump = jump[jump]
    chain = np.sort(nodes)
    same = seg[chain[1:]] == seg[chain[:-1]]
    src, dst = chain[:-1][same], chain[1:][same]
    return src, dst, ~capped[src]


@dataclass(frozen=True)
class PathResult:
    """What :func:`path_distance` gives per point and per stationary period."""

    step_m: np.ndarray  # patrol metres credited to each point (the end of an anchor step)
    time_weight: np.ndarray  # the interval weight after the stationary cap (0…1)
    sigma: np.ndarray  # GPS noise σ of the point's segment (m per axis)
    still: pd.DataFrame  # stationary periods (see path_distance)


def path_distance(
    track: Frame, iv: Intervals, weight: np.ndarray, policy: Policy, at_site: np.ndarray | None = None
) -> PathResult:
    """Noise-robust patrol distance per point-step, the stationary periods and their time cap.

    Parameters
    ----------
    track : DataFrame or dict of arrays
        Sorted trustworthy points: ``traj``, ``t``, ``tod`` (local second of day), ``x``, ``y``,
        optional ``accuracy_m``.
    iv : Intervals
        :func:`trajectory.segment.build_intervals` of ``track``.
    weight : ndarray
        Share (0…1) of each interval that is patrol: inside the grid and not in a vehicle.
    policy : Policy
    at_site : ndarray of bool, optional
        Points that are part of a visit to a registered site: a stay there counts in full.

    Returns
    -------
    PathResult
        ``still`` has one row per stay: ``traj``, ``start``, ``end`` (point indices),
        ``duration_s``, ``still_s`` (seconds within patrol hours, for the 挂机 flag),
        ``patrol_s`` (patrol seconds inside it before the cap), ``counted_s`` (after it) and
        ``at_site``.
    """
    dr = policy.patrol.distance
    seg = iv.seg
    t = col(track, "t")
    n = len(t)
    acc = col(track, "accuracy_m", np.float64) if "accuracy_m" in track.keys() else np.full(n, np.nan)
    nt = denoise(t, col(track, "x"), col(track, "y"), seg, acc, dr, iv.clock)
    xs, ys = nt.xs, nt.ys
    rid, rfirst, rlast = _stay_runs(nt.stay_id)
    hold = np.arange(n)
    if len(rid):
        k = np.flatnonzero(nt.stay)
        hold[k] = rlast[np.searchsorted(rid, nt.stay_id[k])]
    src, dst, moved = anchor_chain(xs, ys, seg, nt.step_m, hold_to=hold)
    # the tail: from a segment's last anchor to its last point (shorter than a step); counted
    # like any step, so a walk is not cut short at each end of a segment
    src, dst, moved = _with_tails(src, dst, moved, seg)
    length = split_corners(xs, ys, src, dst, moved, nt.corner_m)
    # share of the step that is patrol: time-weighted over the intervals it spans
    dt, valid = iv.dt, iv.valid
    cw = np.r_[0.0, np.cumsum(np.where(valid, weight * dt, 0.0))]
    cd = np.r_[0.0, np.cumsum(np.where(valid, dt, 0.0))]
    span = cd[dst] - cd[src]
    share = np.where(span > 0, (cw[dst] - cw[src]) / np.where(span > 0, span, 1.0), 0.0)
    step_m = np.zeros(n)
    step_m[dst] = np.where(moved, length * share, 0.0)
    # the stationary cap: a stay away from a site counts at most stationary_max_min of time
    patrol_in = cw[rlast] - cw[rfirst]  # intervals first … last-1 lie inside the stay
    site = np.zeros(len(rid), bool)
    if at_site is not None and len(rid):
        cs = np.r_[0, np.cumsum(np.asarray(at_site, dtype=np.int64))]
        site = (cs[rlast + 1] - cs[rfirst]) > 0
    cap_s = dr.stationary_max_min * 60.0
    factor = np.where(site | (patrol_in <= cap_s), 1.0, cap_s / np.maximum(patrol_in, 1e-9))
    time_weight = np.asarray(weight, dtype=np.float64).copy()
    if len(rid):
        inside = np.zeros(n + 1, np.int64)
        np.add.at(inside, rfirst, 1)
        np.add.at(inside, rlast, -1)
        which = np.cumsum(inside)[:n] > 0  # interval k with first <= k < last
        run_of = np.searchsorted(rfirst, np.arange(n), side="right") - 1
        time_weight[which] *= factor[run_of[which]]
    still = _still_periods(track, rfirst, rlast, policy)
    still["patrol_s"] = patrol_in
    still["counted_s"] = patrol_in * factor
    still["at_site"] = site
    return PathResult(step_m=step_m, time_weight=time_weight, sigma=nt.sigma, still=still)


def split_corners(
    xs: np.ndarray, ys: np.ndarray, src: np.ndarray, dst: np.ndarray, moved: np.ndarray, corner_m: np.ndarray
) -> np.ndarray:
    """Length of each step ``src → dst``; a step that cut a corner counts its two legs.

    A step's interior point farthest from its chord is a corner when it lies more than the
    segment's ``corner_m`` from the chord (:func:`trajectory.noise.corner_threshold`): the
    step's length is then the sum of the legs through it. One pass over every point (each
    lies inside at most one step), no loop.

    Examples
    --------
    >>> xs, ys = np.array([0.0, 10, 20, 20, 20]), np.array([0.0, 0, 0, 10, 20])
    >>> one = np.array([0]), np.array([4]), np.array([True])
    >>> split_corners(xs, ys, *one, np.full(5, 5.0)).round(1).tolist()  # the corner at (20, 0)
    [40.0]
    >>> split_corners(xs, ys, *one, np.full(5, 15.0)).round(1).tolist()  # within the noise: the chord
    [28.3]
    """
    cx, cy = xs[dst] - xs[src], ys[dst] - ys[src]
    length = planar_distance(cx, cy)
    inner = np.where(moved, np.maximum(dst - src - 1, 0), 0)
    total = int(inner.sum())
    if total == 0:
        return length
    has = np.flatnonzero(inner)
    count = inner[has]
    offset = np.cumsum(count) - count  # each step's first interior point in the flat arrays
    rep = np.repeat(np.arange(len(has)), count)
    k = src[has][rep] + 1 + np.arange(total) - offset[rep]
    # |chord × (p − a)| = the deviation × the chord's length: per step a line c·(x, y) = c0
    hx, hy = cx[has], cy[has]
    c0 = hx * ys[src[has]] - hy * xs[src[has]]
    dev = np.abs(hx[rep] * ys[k] - hy[rep] * xs[k] - c0[rep])
    best = np.maximum.reduceat(dev, offset)
    cut = best > corner_m[src[has]] * length[has]
    if not cut.any():
        return length
    # the corner: the first interior point at the step's largest deviation
    at_best = np.flatnonzero(dev == np.where(cut, best, np.inf)[rep])
    first = np.r_[True, rep[at_best[1:]] != rep[at_best[:-1]]]
    steps, p = has[rep[at_best[first]]], k[at_best[first]]
    s, d = src[steps], dst[steps]
    out = length.copy()
    out[steps] = planar_distance(xs[p] - xs[s], ys[p] - ys[s]) + planar_distance(xs[d] - xs[p], ys[d] - ys[p])
    return out


def _stay_runs(stay_id: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct stay ids (sorted) with their first and last point index."""
    k = np.flatnonzero(stay_id >= 0)
    if len(k) == 0:
        e = np.zeros(0, np.int64)
        return e, e, e
    ids = stay_id[k]
    brk = np.r_[True, ids[1:] != ids[:-1]]
    first = k[brk]
    last = np.r_[k[np.flatnonzero(brk)[1:] - 1], k[-1]]
    return ids[brk], first, last


def _with_tails(
    src: np.ndarray, dst: np.ndarray, moved: np.ndarray, seg: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(seg)
    if n == 0:
        return src, dst, moved
    first = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
    last = np.r_[first[1:] - 1, n - 1]
    # last anchor of each segment: the last dst, or the segment's first point
    seg_of_dst = seg[dst]
    last_anchor = first.copy()
    if len(dst):
        pos = np.searchsorted(seg_of_dst, np.arange(len(first)), side="right") - 1
        has = (pos >= 0) & (seg_of_dst[np.maximum(pos, 0)] == np.arange(len(first)))
        last_anchor[has] = dst[pos[has]]
    tail = last_anchor < last
    order = np.argsort(np.r_[src, last_anchor[tail]], kind="stable")
    return (
        np.r_[src, last_anchor[tail]][order],
        np.r_[dst, last[tail]][order],
        np.r_[moved, np.ones(int(tail.sum()), bool)][order],
    )


def _still_periods(track: Frame, first: np.ndarray, last: np.ndarray, policy: Policy) -> pd.DataFrame:
    """Stays with their length and their seconds within patrol hours (05:00–20:00 by default)."""
    tod = col(track, "tod")
    t = col(track, "t")
    p = policy.patrol
    lo = clock_s(p.morning_start)
    hi = clock_s(p.afternoon_end)
    a = tod[first]
    dur = t[last] - t[first]
    still_s = np.clip(np.minimum(a + dur, hi) - np.maximum(a, lo), 0.0, None)
    return pd.DataFrame(
        {"traj": col(track, "traj")[first], "start": first, "end": last, "duration_s": dur, "still_s": still_s}
    )


def clock_s(c: Any) -> float:
    """Seconds after midnight of a ``datetime.time``."""
    return c.hour * 3600.0 + c.minute * 60.0 + c.second


def window_overlap(tod: np.ndarray, dt: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    """Seconds of each interval ``[tod, tod+dt]`` inside the clock window ``[start_s, end_s]``.

    Examples
    --------
    >>> window_overlap(np.array([11.5 * 3600]), np.array([3600.0]), 5 * 3600, 12 * 3600)
    array([1800.])
    """
    return np.clip(np.minimum(tod + dt, end_s) - np.maximum(tod, start_s), 0.0, None)


# --- weeks ---------------------------------------------------------------------------------
def week_part_start(dates: pd.Series) -> pd.Series:
    """First day of each date's week part: Monday, or the 1st when the month starts mid-week."""
    d = pd.to_datetime(dates)
    monday = d - pd.to_timedelta(d.dt.day_of_week, unit="D")
    first = d.dt.to_period("M").dt.start_time
    return monday.where(monday >= first, first).dt.date


def week_part_end(start: date) -> date:
    """Last day of the week part starting on ``start`` (Sunday, or the month's last day)."""
    sunday = start + timedelta(days=6 - start.weekday())
    nxt_month = (start.replace(day=1) + timedelta(days=32)).replace(day=1)
    return min(sunday, nxt_month - timedelta(days=1))


def compute_weeks(worker_day: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Weekly patrol per worker (SPEC §1.1, weekly rules), weeks cut at month edges.

    Parameters
    ----------
    worker_day : DataFrame
        The engine's ``worker_day`` (needs ``worker_id, grid_id, date, workday, exempt,
        patrol_s, patrol_m, grid_type``).
    policy : Policy

    Returns
    -------
    DataFrame
        ``worker_week`` contract columns plus ``week_end, month, workdays, exempt_days``.
        Thresholds are pro-rated by the part's non-exempt workdays out of
        ``week_nominal_workdays``, never above the weekly figures (a six-workday 调休 week needs
        what a five-day week needs; the pro-rated share is never below the days' own daily
        rules, since a fifth of each weekly figure is at least its daily one); a part without
        one requires nothing. All patrol in the
        part counts, weekend patrol included.
    """
    need = {"worker_id", "grid_id", "date", "workday", "exempt", "patrol_s", "patrol_m", "grid_type"}
    missing = need - set(worker_day.columns)
    if missing:
        raise ValueError(f"compute_weeks: worker_day lacks columns {sorted(missing)}")
    p = policy.patrol
    if p.week_month_rule != "split":
        raise ValueError(f"week_month_rule was '{p.week_month_rule}' but only 'split' is implemented")
    cols = [
        *WORKER_WEEK_COLUMNS,
        "week_end",
        "month",
        "workdays",
        "exempt_days",
    ]
    if worker_day.empty:
        return pd.DataFrame(columns=cols)
    wd = worker_day.copy()
    wd["week_start"] = week_part_start(wd["date"]).to_numpy()
    wd["workday"] = wd["workday"].astype(bool)
    wd["ex_work"] = wd["workday"] & wd["exempt"].astype(bool)
    g = wd.groupby(["worker_id", "grid_id", "week_start"], sort=True, as_index=False).agg(
        patrol_s=("patrol_s", "sum"),
        patrol_m=("patrol_m", "sum"),
        workdays=("workday", "sum"),
        exempt_days=("ex_work", "sum"),
        grid_type=("grid_type", "first"),
    )
    # pro-rated by the part's due workdays out of 5, never above the seed's weekly figures: a
    # six-workday 调休 week still needs 18 h / 12 h and 8 km (每周不少于…), not 21.6 h and 9.6 km
    due = ((g["workdays"] - g["exempt_days"]).clip(lower=0) / float(p.week_nominal_workdays)).clip(upper=1.0)
    week_s = p.week_required_s(g["grid_type"].to_numpy())
    g["required_s"] = week_s * due
    g["required_m"] = p.week_km * 1000.0 * due
    g["meets_time"] = g["patrol_s"] >= g["required_s"] - 1e-6
    g["meets_distance"] = g["patrol_m"] >= g["required_m"] - 1e-6
    g["week_end"] = [week_part_end(s) for s in g["week_start"]]  # one per week part
    g["month"] = [s.strftime("%Y-%m") for s in g["week_start"]]
    g["workdays"] = g["workdays"].astype(int)
    g["exempt_days"] = g["exempt_days"].astype(int)
    return g[cols].reset_index(drop=True)
