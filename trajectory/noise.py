"""Stage 3a — the GPS noise of each segment, robust smoothing at a scale adapted to it, stays.

Real phones err by 3–8 m outdoors and 10–50 m indoors, white and slowly drifting, with
multipath outliers (docs/methods.md §Noise). Everything here is per *segment* (see
:mod:`trajectory.segment`) and columnar: the points of all segments are one sorted array,
windows are found with ``np.searchsorted`` on a segment-major time key, window sums come
from cumulative sums and window extents from a sparse table of running minima/maxima.

- :func:`segment_sigma` — the noise σ (metres per axis) of each segment: from ``accuracy_m``
  (Android's 68 % radius, σ = r / 1.515) where the phone reports it, else from the data.
- :func:`running_line` — a weighted local-linear fit over ``[t − h, t + h]`` (Friedman's
  running lines): unbiased on straight walking, a bandwidth per point.
- :func:`stay_mask` — points of a stay (Li et al. 2008 stay points with a radius that adapts
  to the noise): the smoothed track stays within the radius for ``stay_window_s``.
"""

from __future__ import annotations

__all__ = [
    "RAYLEIGH_68",
    "NoiseTrack",
    "denoise",
    "running_line",
    "segment_sigma",
    "stay_mask",
    "window_half_extent",
]

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoring.policy import DistanceRules

# radius holding 68 % of a circular 2-D Gaussian: r68 = σ·√(−2·ln 0.32) (Android's accuracy)
RAYLEIGH_68 = float(np.sqrt(-2.0 * np.log(0.32)))
_RAYLEIGH_MEDIAN = float(np.sqrt(2.0 * np.log(2.0)))  # median radius of that Gaussian / σ
_MAD = 1.4826  # median absolute deviation → σ of a Gaussian
_SEG_SPAN_S = 4.0e5  # time key spacing between segments: more than a day plus any window


@dataclass(frozen=True)
class NoiseTrack:
    """What :func:`denoise` knows of each point of the trustworthy track."""

    sigma: np.ndarray  # noise σ of the point's segment (m per axis)
    xs: np.ndarray  # smoothed position for distance (stays collapsed to their centre)
    ys: np.ndarray
    step_m: np.ndarray  # hysteresis step of the point's segment (m)
    stay: np.ndarray  # bool: the point belongs to a stay
    stay_id: np.ndarray  # run id of the point's stay (-1 outside stays)
    outlier: np.ndarray  # bool: a multipath outlier, ignored for positions (its time counts)


def _segment_index(seg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per point: its segment's ordinal, its segment's first index; and the segment starts."""
    n = len(seg)
    starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]]) if n else np.zeros(0, np.int64)
    ordinal = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    return ordinal, starts[ordinal], starts


def _time_key(t: np.ndarray, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ordinal, first, _ = _segment_index(seg)
    tt = t - t[first]
    return ordinal * _SEG_SPAN_S + tt, tt


def _per_segment_median(values: np.ndarray, ordinal: np.ndarray, n_seg: int) -> np.ndarray:
    """Median of the finite values of each segment (NaN where it has none)."""
    s = pd.Series(values).groupby(ordinal).median()
    out = np.full(n_seg, np.nan)
    out[s.index.to_numpy(dtype=np.int64)] = s.to_numpy(dtype=np.float64)
    return out


def running_line(
    t: np.ndarray, v: np.ndarray, seg: np.ndarray, half_s: np.ndarray | float, weight: np.ndarray | None = None
) -> np.ndarray:
    """Weighted local-linear fit of ``v`` at every point over ``[t − h, t + h]`` within its segment.

    A window holding one point (or all weight at one time) returns the value itself.

    Examples
    --------
    >>> t = np.arange(6) * 10.0
    >>> running_line(t, 2.0 * t + np.array([0, 1, -1, 1, -1, 0.0]), np.zeros(6, int), 15.0).round(2)
    array([  0.  ,  20.  ,  40.33,  59.67,  80.  , 100.  ])
    """
    n = len(t)
    if n == 0:
        return v.astype(np.float64, copy=True)
    key, tt = _time_key(t, seg)
    h = np.broadcast_to(np.asarray(half_s, dtype=np.float64), (n,))
    a = np.searchsorted(key, key - h, side="left")
    b = np.searchsorted(key, key + h, side="right")
    _, first, _ = _segment_index(seg)
    v0 = v[first]
    # window sums from int64 prefix sums of time in 0.1 s and values in cm: exact (wrap-around
    # cancels in the differences), so a point's fit does not depend on the points before its
    # segment (the same worker smooths the same way in any batch, trajectory.batching)
    ti = np.rint(tt * 10.0).astype(np.int64)
    vi = np.rint((v - v0) * 100.0).astype(np.int64)
    wi = np.ones(n, np.int64) if weight is None else (np.asarray(weight) > 0.5).astype(np.int64)

    def window(z: np.ndarray) -> np.ndarray:
        c = np.r_[np.int64(0), np.cumsum(z)]
        return (c[b] - c[a]).astype(np.float64)

    with np.errstate(over="ignore"):
        s0 = window(wi)
        s1 = window(wi * ti) / 10.0
        s2 = window(wi * ti * ti) / 100.0
        sv = window(wi * vi) / 100.0
        stv = window(wi * ti * vi) / 1000.0
    tt = ti / 10.0
    has = s0 > 1e-9
    s0s = np.where(has, s0, 1.0)
    mt = s1 / s0s
    var = s2 / s0s - mt * mt
    fit_slope = var > 1e-6 * np.maximum(h * h, 1.0)
    slope = np.where(fit_slope, (stv / s0s - mt * sv / s0s) / np.where(fit_slope, var, 1.0), 0.0)
    fit = sv / s0s + slope * (tt - mt) + v0
    return np.where(has, fit, v0 + vi / 100.0)


def segment_sigma(
    t: np.ndarray, x: np.ndarray, y: np.ndarray, seg: np.ndarray, accuracy_m: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Noise σ (metres per axis) of each point's segment, and whether it came from the data.

    Where at least half of a segment's points report ``accuracy_m``: its median / 1.515. Else
    from the data: the larger of the second-difference scale (white noise: the residual of a
    point from the mean of its two neighbours has variance 1.5 σ²) and the median distance of
    the points from a 30 s running line (a slow drift that second differences miss).
    """
    n = len(t)
    ordinal, _, starts = _segment_index(seg)
    n_seg = len(starts)
    if n == 0:
        return np.zeros(0), np.zeros(0, bool)
    acc = np.where(np.isfinite(accuracy_m) & (accuracy_m > 0), accuracy_m, np.nan)
    acc_med = _per_segment_median(acc, ordinal, n_seg)
    acc_share = np.bincount(ordinal, np.isfinite(acc), minlength=n_seg) / np.maximum(np.bincount(ordinal), 1)
    # white part: second differences of interior points
    inner = np.zeros(n, bool)
    if n > 2:
        inner[1:-1] = (seg[2:] == seg[1:-1]) & (seg[:-2] == seg[1:-1])
    i = np.flatnonzero(inner)
    resid = np.r_[x[i] - 0.5 * (x[i - 1] + x[i + 1]), y[i] - 0.5 * (y[i - 1] + y[i + 1])]
    white = np.zeros(n_seg)
    if len(i):
        # robust σ of the residual (MAD), both axes pooled, over √1.5
        white = _per_segment_median(np.abs(resid), np.r_[ordinal[i], ordinal[i]], n_seg) * _MAD / np.sqrt(1.5)
    fx = running_line(t, x, seg, 30.0)
    fy = running_line(t, y, seg, 30.0)
    drift = _per_segment_median(np.hypot(x - fx, y - fy), ordinal, n_seg) / _RAYLEIGH_MEDIAN
    data = np.fmax(np.nan_to_num(white, nan=0.0), np.nan_to_num(drift, nan=0.0))
    from_acc = (acc_share >= 0.5) & np.isfinite(acc_med)
    sigma = np.where(from_acc, acc_med / RAYLEIGH_68, data)
    return sigma[ordinal], ~from_acc[ordinal]


def window_half_extent(t: np.ndarray, x: np.ndarray, y: np.ndarray, seg: np.ndarray, half_s: float) -> np.ndarray:
    """Half the diagonal of the bounding box of each point's ``±half_s`` window (same segment).

    Range minima and maxima come from a sparse table (float32, as many levels as the widest
    window needs): O(n log w) work, no per-point loop.
    """
    n = len(t)
    if n == 0:
        return np.zeros(0)
    key, _ = _time_key(t, seg)
    a = np.searchsorted(key, key - half_s, side="left")
    b = np.searchsorted(key, key + half_s, side="right") - 1
    width = b - a + 1
    top = int(np.floor(np.log2(max(int(width.max()), 1))))
    level = np.floor(np.log2(np.maximum(width, 1))).astype(np.int64)
    j = b - (1 << level) + 1
    out_lo_x = np.empty(n, np.float32)
    out_hi_x = np.empty(n, np.float32)
    out_lo_y = np.empty(n, np.float32)
    out_hi_y = np.empty(n, np.float32)
    mx, nx = x.astype(np.float32), x.astype(np.float32)
    my, ny = y.astype(np.float32), y.astype(np.float32)
    for k in range(top + 1):  # one pass per doubling of the window (≤ 10), never per point
        sel = np.flatnonzero(level == k)
        if len(sel):
            aa, jj = a[sel], j[sel]
            out_hi_x[sel] = np.maximum(mx[aa], mx[jj])
            out_lo_x[sel] = np.minimum(nx[aa], nx[jj])
            out_hi_y[sel] = np.maximum(my[aa], my[jj])
            out_lo_y[sel] = np.minimum(ny[aa], ny[jj])
        w = 1 << k
        if k < top:
            mx = np.r_[np.maximum(mx[:-w], mx[w:]), mx[-w:]]
            nx = np.r_[np.minimum(nx[:-w], nx[w:]), nx[-w:]]
            my = np.r_[np.maximum(my[:-w], my[w:]), my[-w:]]
            ny = np.r_[np.minimum(ny[:-w], ny[w:]), ny[-w:]]
    return 0.5 * np.hypot(out_hi_x - out_lo_x, out_hi_y - out_lo_y).astype(np.float64)


def _runs(mask: np.ndarray, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run id of each point (runs of equal ``mask`` within a segment), runs' first and last index."""
    n = len(mask)
    brk = np.r_[True, (mask[1:] != mask[:-1]) | (seg[1:] != seg[:-1])] if n else np.zeros(0, bool)
    rid = np.cumsum(brk) - 1
    first = np.flatnonzero(brk)
    last = np.r_[first[1:] - 1, n - 1] if n else first
    return rid, first, last


def stay_mask(
    t: np.ndarray, bx: np.ndarray, by: np.ndarray, seg: np.ndarray, radius_m: np.ndarray, rules: DistanceRules
) -> np.ndarray:
    """Points of a stay: the smoothed track ``bx, by`` stays within ``radius_m`` of its window's
    centre over ``stay_window_s``; a move of less than ``stay_blip_s`` between two stays of
    the same segment is the noise escaping a stay and is absorbed into it."""
    n = len(t)
    if n == 0:
        return np.zeros(0, bool)
    still = window_half_extent(t, bx, by, seg, rules.stay_window_s / 2.0) < radius_m
    rid, first, last = _runs(still, seg)
    moving = ~still[first]
    dur = t[last] - t[first]
    prev_still = np.r_[
        False, still[np.maximum(first[1:] - 1, 0)] & (seg[np.maximum(first[1:] - 1, 0)] == seg[first[1:]])
    ]
    nxt = np.minimum(last[:-1] + 1, n - 1)
    next_still = np.r_[still[nxt] & (seg[nxt] == seg[last[:-1]]), False]
    blip = moving & prev_still & next_still & (dur < rules.stay_blip_s)
    return still | blip[rid]


def denoise(
    t: np.ndarray, x: np.ndarray, y: np.ndarray, seg: np.ndarray, accuracy_m: np.ndarray, rules: DistanceRules
) -> NoiseTrack:
    """Noise, outliers, stays and the smoothed track for distance, of sorted trustworthy points.

    Parameters
    ----------
    t, x, y : ndarray
        Seconds and metres of the points, sorted by segment then time.
    seg : ndarray
        Segment id of each point (sorted).
    accuracy_m : ndarray
        The phone's 68 % radius, NaN where unknown.
    rules : DistanceRules

    Returns
    -------
    NoiseTrack
    """
    n = len(t)
    sigma, _ = segment_sigma(t, x, y, seg, accuracy_m)
    sig = np.maximum(sigma, rules.min_sigma_m)
    ordinal, first, starts = _segment_index(seg)
    # multipath outliers: far from the per-axis median of their two neighbours (an L-shaped
    # corner is its own median, so corners survive at any sampling)
    outlier = np.zeros(n, bool)
    if n > 2:
        same = (seg[2:] == seg[1:-1]) & (seg[:-2] == seg[1:-1])
        mxm = np.median(np.stack([x[:-2], x[1:-1], x[2:]]), axis=0)
        mym = np.median(np.stack([y[:-2], y[1:-1], y[2:]]), axis=0)
        dev = np.hypot(x[1:-1] - mxm, y[1:-1] - mym)
        outlier[1:-1] = same & (dev > np.maximum(rules.outlier_sigmas * sig[1:-1], rules.outlier_min_m))
    # an outlier takes its neighbours' median position: a window holding only it stays sane
    if outlier.any():
        k = np.flatnonzero(outlier)
        x = x.copy()
        y = y.copy()
        x[k], y[k] = mxm[k - 1], mym[k - 1]
    inlier = None
    # stays on a track smoothed at the stay scale, radius adapted to the noise
    bx = running_line(t, x, seg, rules.stay_smooth_s, inlier)
    by = running_line(t, y, seg, rules.stay_smooth_s, inlier)
    radius = np.clip(rules.stay_radius_sigmas * sig, rules.stay_radius_m, rules.stay_radius_max_m)
    stay = stay_mask(t, bx, by, seg, radius, rules)
    # distance track: enough points averaged that the residual noise is a small part of a step
    dt_med = np.ones(len(starts))
    if n > 1:
        d = np.diff(t)
        ok = seg[1:] == seg[:-1]
        dt_med = _per_segment_median(np.where(ok, d, np.nan), ordinal[:-1], len(starts))
    dt_pt = np.nan_to_num(dt_med, nan=1.0)[ordinal]
    n_avg = (rules.smooth_sigmas * sig / rules.min_step_m) ** 2
    half = np.clip(0.5 * n_avg * dt_pt, rules.smooth_min_s, rules.smooth_max_s)
    n_eff = np.maximum(2.0 * half / np.maximum(dt_pt, 1e-3), 1.0)
    xs = running_line(t, x, seg, half, inlier)
    ys = running_line(t, y, seg, half, inlier)
    step = np.maximum(rules.min_step_m, rules.step_sigmas * sig / np.sqrt(n_eff))
    # a stay is one place: its points sit at the median of its smoothed positions
    rid, _, _ = _runs(stay, seg)
    stay_id = np.where(stay, rid, -1)
    if stay.any():
        k = np.flatnonzero(stay)
        cx = pd.Series(xs[k]).groupby(rid[k]).median()
        cy = pd.Series(ys[k]).groupby(rid[k]).median()
        pos = np.searchsorted(cx.index.to_numpy(), rid[k])
        xs = xs.copy()
        ys = ys.copy()
        xs[k] = cx.to_numpy()[pos]
        ys[k] = cy.to_numpy()[pos]
    return NoiseTrack(sigma=sigma, xs=xs, ys=ys, step_m=step, stay=stay, stay_id=stay_id, outlier=outlier)
