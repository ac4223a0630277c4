"""Stage 1 — which GPS points count (SPEC §1.1 "Points that are not trustworthy do not count").

Every raw point is kept; this stage only gives each one a *reason* code (0 = still in play).
Input frames are sorted by ``traj`` (one worker's one local day) then time, and carry local
metric coordinates ``x, y`` (metres, the frame of the worker's grid, see :mod:`trajectory.geo`).

Spikes are judged the robust way: a point next to an impossible jump (> ``max_jump_kmh``) is a
spike when it lies far from the moving median of its neighbourhood (2k+1 points, k =
``spike_max_points``). The median ignores up to k bad points, so a single 3 km spike, or a
burst of up to k, vanishes and the walk around it is joined again instead of being cut.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from scoring.policy import PointRules
from trajectory.geo import planar_distance

# radius holding 68 % of a circular 2-D Gaussian: r68 = σ·√(−2·ln 0.32) (Android's accuracy)
RAYLEIGH_68 = float(np.sqrt(-2.0 * np.log(0.32)))

__all__ = [
    "RAYLEIGH_68",
    "REASONS",
    "R_ACCURACY",
    "R_DUPLICATE",
    "R_INVALID",
    "R_MOCK",
    "R_NOT_FULL_TIME",
    "R_OK",
    "R_OUTSIDE",
    "R_SPIKE",
    "R_UNKNOWN",
    "R_VEHICLE",
    "Frame",
    "clean_points",
    "col",
    "find_spikes",
    "is_trustworthy",
    "noise_allowance_m",
    "reason_labels",
]

# Internal stage frames are column mappings: a DataFrame or a dict of equal-length arrays
# (a dict avoids pandas' block consolidation copy on the hot path).
Frame = Mapping[str, Any]


def col(frame: Frame, name: str, dtype: Any = None) -> np.ndarray:
    """Column ``name`` of a DataFrame or dict of arrays as a NumPy array (no copy if possible)."""
    return np.asarray(frame[name], dtype=dtype)


# reason codes of point_use; 0 = the point counted
REASONS = (
    "duplicate",
    "invalid",
    "accuracy",
    "mock",
    "spike",
    "vehicle",
    "outside_grid",
    "not_full_time",
    "unknown_worker",
)
R_OK = 0
R_DUPLICATE, R_INVALID, R_ACCURACY, R_MOCK, R_SPIKE, R_VEHICLE, R_OUTSIDE, R_NOT_FULL_TIME, R_UNKNOWN = range(1, 10)
_CLEAN_SET = (R_OK, R_VEHICLE, R_OUTSIDE)  # reasons decided after cleaning: the point is trustworthy


def reason_labels(codes: np.ndarray) -> pd.Categorical:
    """Reason codes as a categorical of names, null where the point counted.

    Examples
    --------
    >>> list(reason_labels(np.array([0, 1, 5], dtype=np.int8)))
    [nan, 'duplicate', 'spike']
    """
    return pd.Categorical.from_codes(codes.astype(np.int16) - 1, categories=list(REASONS))


def is_trustworthy(codes: np.ndarray) -> np.ndarray:
    """True where the point survived cleaning (it may still be outside the grid or in a car)."""
    return np.isin(codes, _CLEAN_SET)


def clean_points(pts: Frame, rules: PointRules) -> np.ndarray:
    """Give every point a reason code: duplicate, invalid, accuracy, mock or spike (else 0).

    Parameters
    ----------
    pts : DataFrame or dict of arrays
        Sorted by ``traj`` then ``ts_us``; columns ``traj`` (int64), ``ts_us`` (int64 epoch µs),
        ``t`` (float seconds), ``lon``, ``lat``, ``x``, ``y`` (metres), ``accuracy_m``, ``mock``.
    rules : PointRules

    Returns
    -------
    ndarray of int8
        The reason code of each point (see :data:`REASONS`; 0 = in play).
    """
    missing = {"traj", "ts_us", "t", "lon", "lat", "x", "y", "accuracy_m", "mock"} - set(pts.keys())
    if missing:
        raise ValueError(f"clean_points: columns {sorted(missing)} are missing")
    traj = col(pts, "traj")
    ts_us = col(pts, "ts_us")
    lon, lat = col(pts, "lon"), col(pts, "lat")
    reason = np.zeros(len(traj), dtype=np.int8)
    # same (worker, ts) delivered twice: the first copy stays
    dup = np.zeros(len(traj), dtype=bool)
    dup[1:] = (traj[1:] == traj[:-1]) & (ts_us[1:] == ts_us[:-1])
    reason[dup] = R_DUPLICATE
    bad = ~(np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90))
    reason[(reason == 0) & bad] = R_INVALID
    acc = col(pts, "accuracy_m", np.float64)
    reason[(reason == 0) & (acc > rules.max_accuracy_m)] = R_ACCURACY  # NaN = unknown: kept
    mock = col(pts, "mock", bool)
    reason[(reason == 0) & mock] = R_MOCK
    live = np.flatnonzero(reason == 0)
    t, x, y = col(pts, "t"), col(pts, "x"), col(pts, "y")
    allow = col(pts, "allow_m", np.float64) if "allow_m" in pts.keys() else noise_allowance_m(acc, rules)
    if len(live) == len(reason):  # the usual case: no copies
        spikes = find_spikes(traj, t, x, y, rules, allow)
    else:
        spikes = find_spikes(traj[live], t[live], x[live], y[live], rules, allow[live])
    reason[live[spikes]] = R_SPIKE
    return reason


def noise_allowance_m(accuracy_m: np.ndarray, rules: PointRules) -> np.ndarray:
    """Metres of a jump that GPS noise alone explains, per point (docs/methods.md §Spikes).

    Two fixes of σ each differ by up to ``jump_noise_sigmas``·√2·σ without moving: at 1 s
    sampling and 30 m noise that is a few hundred km/h of apparent speed. σ is the point's
    ``accuracy_m`` / :data:`RAYLEIGH_68` (Android's 68 % radius, 1.51 σ) or
    ``unknown_sigma_m`` when not reported.

    Examples
    --------
    >>> from scoring.policy import load_policy
    >>> noise_allowance_m(np.array([15.15, np.nan]), load_policy().patrol.points).round(1)
    array([ 78.1, 233.3])
    """
    acc = np.asarray(accuracy_m, dtype=np.float64)
    sigma = np.where(np.isfinite(acc) & (acc > 0), acc / RAYLEIGH_68, rules.unknown_sigma_m)
    return rules.jump_noise_sigmas * np.sqrt(2.0) * sigma


def find_spikes(
    traj: np.ndarray,
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    rules: PointRules,
    allow_m: np.ndarray | None = None,
) -> np.ndarray:
    """Mask of spike points among sorted, otherwise clean points.

    A point is a spike when the jump into it or out of it implies more than ``max_jump_kmh``
    and it lies farther from the median position of its 2k+1 neighbours than that speed
    allows over the neighbourhood's typical interval.

    Examples
    --------
    >>> from scoring.policy import load_policy
    >>> t = np.arange(9) * 5.0
    >>> x = np.arange(9) * 7.0; x[4] = 3000.0
    >>> find_spikes(np.zeros(9, int), t, x, np.zeros(9), load_policy().patrol.points).nonzero()[0]
    array([4])
    """
    n = len(t)
    spike = np.zeros(n, dtype=bool)
    live = np.arange(n)
    # the inner points of a burst have no impossible jump next to them until its outer
    # points are gone: a few passes, each only over the points next to a jump
    allow = np.zeros(n) if allow_m is None else np.asarray(allow_m, dtype=np.float64)
    for p in range(max(int(rules.spike_max_points), 1)):
        found = (
            _spike_pass(traj, t, x, y, rules, allow)
            if p == 0
            else _spike_pass(traj[live], t[live], x[live], y[live], rules, allow[live])
        )
        if not found.any():
            break
        spike[live[found]] = True
        live = live[~found]
    return spike


def _spike_pass(
    traj: np.ndarray, t: np.ndarray, x: np.ndarray, y: np.ndarray, rules: PointRules, allow: np.ndarray
) -> np.ndarray:
    n = len(t)
    spike = np.zeros(n, dtype=bool)
    if n < 3:
        return spike
    vmax = rules.max_jump_kmh / 3.6
    same = traj[1:] == traj[:-1]
    excess = planar_distance(np.diff(x), np.diff(y)) - np.maximum(allow[1:], allow[:-1])
    v = np.maximum(excess, 0.0) / np.maximum(np.diff(t), 1e-3)
    jump = same & (v > vmax)
    cand = np.zeros(n, dtype=bool)
    cand[1:] |= jump
    cand[:-1] |= jump
    ci = np.flatnonzero(cand)
    if len(ci) == 0:
        return spike
    k = max(int(rules.spike_max_points), 1)
    first = np.flatnonzero(np.r_[True, ~same])
    last = np.r_[first[1:] - 1, n - 1]
    g = np.searchsorted(first, ci, side="right") - 1
    lo, hi = first[g], last[g]
    start = np.clip(ci - k, lo, np.maximum(hi - 2 * k, lo))
    idx = np.minimum(start[:, None] + np.arange(2 * k + 1), hi[:, None])
    mx, my = np.median(x[idx], axis=1), np.median(y[idx], axis=1)
    dev = planar_distance(x[ci] - mx, y[ci] - my)
    span = (t[idx[:, -1]] - t[idx[:, 0]]) / np.maximum(idx[:, -1] - idx[:, 0], 1)
    spike[ci] = dev > vmax * np.maximum(span, 1.0) + allow[ci]
    return spike
