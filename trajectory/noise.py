"""Stage 3a — the GPS noise of each segment, robust smoothing at a scale adapted to it, stays.

Real phones err by 3–8 m outdoors and 10–50 m indoors, white and slowly drifting, with
multipath outliers (docs/methods.md §Noise). Everything here is per *segment* (see
:mod:`trajectory.segment`) and columnar: the points of all segments are one sorted array,
windows are found with ``np.searchsorted`` on a segment-major time key, window sums come
from cumulative sums and window extents from block minima/maxima (``np.maximum.reduceat``).

- :func:`segment_sigma` — the noise σ (metres per axis) of each segment: from ``accuracy_m``
  (Android's 68 % radius, σ = r / 1.51) where the phone reports it, else from the data.
- :func:`running_line` — a local-linear fit over ``[t − h, t + h]`` (Friedman's running
  lines): unbiased on straight walking, a bandwidth per point.
- :func:`stay_mask` — points of a stay (Li et al. 2008 stay points with a radius that adapts
  to the noise): the smoothed track stays within the radius for ``stay_window_s``.
"""

from __future__ import annotations

__all__ = [
    "RAYLEIGH_68",
    "NoiseTrack",
    "denoise",
    "group_median",
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


def group_median(
    values: np.ndarray, ordinal: np.ndarray, n_seg: int, offset: np.ndarray | None = None, every: int = 1
) -> np.ndarray:
    """Median of the finite values of each group code 0…n−1 (NaN where a group has none).

    With ``offset`` (each value's position in its segment) and ``every`` > 1, only every k-th
    value of a segment counts, from its first: a noise scale needs hundreds of values, not all
    of a day's, and the pick depends on the segment alone.
    """
    if every > 1 and offset is not None and len(values):
        pick = offset % every == 0
        values, ordinal = values[pick], ordinal[pick]
    s = pd.Series(values).groupby(ordinal).median()
    out = np.full(n_seg, np.nan)
    out[s.index.to_numpy(dtype=np.int64)] = s.to_numpy(dtype=np.float64)
    return out


def _windows(key: np.ndarray, lo_s: np.ndarray, hi_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index bounds ``[a, b)`` of the points of each point's segment within ``[t − lo_s, t + hi_s]``
    (``key``: :func:`_time_key`)."""
    return np.searchsorted(key, key - lo_s, side="left"), np.searchsorted(key, key + hi_s, side="right")


class _LineFits:
    """Least-squares lines of some values against time over any windows of their points.

    Prefix sums are taken once, in int64 of time in 0.1 s and values in cm: exact (the
    wrap-around cancels in the differences), so a point's fit does not depend on the points
    before its segment (a worker smooths the same way in any batch, trajectory.batching); each
    set of windows then costs only gathers.
    """

    def __init__(self, t: np.ndarray, seg: np.ndarray, values: list[np.ndarray]) -> None:
        _, first, _ = _segment_index(seg)
        self.n = len(t)
        self.key, _ = _time_key(t, seg)
        ti = np.rint((t - t[first]) * 10.0).astype(np.int64)
        self.tq = ti / 10.0
        with np.errstate(over="ignore"):
            self.p_t = _prefix(ti)
            self.p_tt = _prefix(ti * ti)
            self.values = []
            for v in values:
                v0 = v[first]
                vi = np.rint((v - v0) * 100.0).astype(np.int64)
                self.values.append((v0, _prefix(vi), _prefix(ti * vi)))

    def at(self, half_s: np.ndarray | float) -> list[np.ndarray]:
        """Each value's line over ``[t − h, t + h]`` (same segment), at each point's own time.

        A window always holds its own point; one whose times barely differ gets a flat line
        (the mean).
        """
        h = np.asarray(half_s, dtype=np.float64)
        a, b = _windows(self.key, h, h)

        def window(p: np.ndarray, scale: np.ndarray) -> np.ndarray:
            with np.errstate(over="ignore"):
                d = (p[b] - p[a]).astype(np.float64)
            d *= scale
            return d

        inv = 1.0 / (b - a)
        mt = window(self.p_t, 0.1 * inv)
        var = window(self.p_tt, 0.01 * inv)
        var -= mt * mt
        inv_var = np.zeros(self.n)
        np.divide(1.0, var, out=inv_var, where=var > 1e-3)
        dtq = self.tq - mt
        fits = []
        for v0, p_v, p_tv in self.values:
            mv = window(p_v, 0.01 * inv)
            slope = window(p_tv, 0.001 * inv)
            slope -= mt * mv
            slope *= inv_var
            slope *= dtq
            slope += mv
            slope += v0
            fits.append(slope)
        return fits


def _prefix(z: np.ndarray) -> np.ndarray:
    out = np.zeros(len(z) + 1, np.int64)
    np.cumsum(z, out=out[1:])
    return out


def running_line(t: np.ndarray, v: np.ndarray, seg: np.ndarray, half_s: np.ndarray | float) -> np.ndarray:
    """Local-linear fit of ``v`` at every point over ``[t − h, t + h]`` within its segment.

    A window holding one point returns the value itself.

    Examples
    --------
    >>> t = np.arange(6) * 10.0
    >>> running_line(t, 2.0 * t + np.array([0, 1, -1, 1, -1, 0.0]), np.zeros(6, int), 15.0).round(2)
    array([  0.  ,  20.  ,  40.33,  59.67,  80.  , 100.  ])
    """
    if len(t) == 0:
        return v.astype(np.float64, copy=True)
    return _LineFits(t, seg, [v]).at(half_s)[0]


def _median3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Element-wise median of three arrays (four min/max passes, no sort)."""
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


_MEDIAN_EVERY = 3  # noise medians read every 3rd fix of a segment (from its first)


def _accuracy_and_white(
    x: np.ndarray,
    y: np.ndarray,
    seg: np.ndarray,
    accuracy_m: np.ndarray,
    ordinal: np.ndarray,
    first: np.ndarray,
    n_seg: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per segment: σ from ``accuracy_m`` (NaN where fewer than half the fixes report it) and
    the white-noise σ of the second differences (a fix's residual from the mean of its two
    neighbours has variance 1.5 σ²; MAD, both axes pooled)."""
    n = len(x)
    acc = np.where(np.isfinite(accuracy_m) & (accuracy_m > 0), accuracy_m, np.nan)
    acc_med = group_median(acc, ordinal, n_seg, np.arange(n) - first, _MEDIAN_EVERY)
    acc_share = np.bincount(ordinal, np.isfinite(acc), minlength=n_seg) / np.maximum(np.bincount(ordinal), 1)
    acc_sigma = np.where((acc_share >= 0.5) & np.isfinite(acc_med), acc_med / RAYLEIGH_68, np.nan)
    white = np.zeros(n_seg)
    need = ~np.isfinite(acc_sigma)  # the data's own scale is read only where accuracy_m is not
    if n > 2 and need.any():
        inner = np.flatnonzero((seg[2:] == seg[1:-1]) & (seg[:-2] == seg[1:-1])) + 1
        inner = inner[((inner - first[inner]) % _MEDIAN_EVERY == 0) & need[ordinal[inner]]]
        if len(inner):
            i = inner
            resid = np.abs(np.r_[x[i] - 0.5 * (x[i - 1] + x[i + 1]), y[i] - 0.5 * (y[i - 1] + y[i + 1])])
            med = group_median(resid, np.r_[ordinal[i], ordinal[i]], n_seg)
            white = np.nan_to_num(med, nan=0.0) * _MAD / np.sqrt(1.5)
    return acc_sigma, white


def segment_sigma(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    seg: np.ndarray,
    accuracy_m: np.ndarray,
    smooth: tuple[np.ndarray, np.ndarray] | None = None,
    accuracy_white: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Noise σ (metres per axis) of each point's segment.

    Where at least half of a segment's fixes report ``accuracy_m``: its median / :data:`RAYLEIGH_68`. Else
    from the data: the larger of the second-difference scale (white noise) and the median
    distance of the fixes from a 30 s running line (``smooth``, computed when not given: a slow
    drift that second differences miss).
    """
    if len(t) == 0:
        return np.zeros(0)
    ordinal, _, _ = _segment_index(seg)
    return _sigma_of_segments(t, x, y, seg, accuracy_m, smooth, accuracy_white)[ordinal]


def _sigma_of_segments(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    seg: np.ndarray,
    accuracy_m: np.ndarray,
    smooth: tuple[np.ndarray, np.ndarray] | None,
    accuracy_white: tuple[np.ndarray, np.ndarray] | None,
) -> np.ndarray:
    """:func:`segment_sigma`, one value per segment (in order)."""
    ordinal, first, starts = _segment_index(seg)
    acc_sigma, white = accuracy_white or _accuracy_and_white(x, y, seg, accuracy_m, ordinal, first, len(starts))
    known = np.isfinite(acc_sigma)
    if known.all():
        return acc_sigma
    k = np.flatnonzero(~known[ordinal])  # points of the segments without accuracy_m
    fx, fy = smooth if smooth is not None else _LineFits(t, seg, [x, y]).at(30.0)
    resid = np.hypot(x[k] - fx[k], y[k] - fy[k])
    drift = group_median(resid, ordinal[k], len(starts), k - first[k], _MEDIAN_EVERY) / _RAYLEIGH_MEDIAN
    data = np.fmax(white, np.nan_to_num(drift, nan=0.0))
    return np.where(known, acc_sigma, data)


def independent_share(white: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Share of a window's fixes that are independent, for AR(1) noise of σ ``sigma`` whose
    second differences read ``white`` (see :func:`_accuracy_and_white`).

    A fix's residual from the mean of its two neighbours has variance σ²(1.5 − 2ρ + 0.5ρ²)
    for a lag-one correlation ρ, so q = white / σ gives ρ = 2 − √(1 + 3q²); the mean of m
    correlated fixes varies like that of m(1 − ρ)/(1 + ρ) independent ones. White noise
    (q = 1) gives 1; a slow drift (q → 0) gives → 0.

    Examples
    --------
    >>> independent_share(np.array([10.0, 5.0, 1.0]), np.array([10.0, 10.0, 10.0])).round(3)
    array([1.   , 0.193, 0.008])
    """
    q = np.clip(white / np.maximum(sigma, 1e-9), 0.0, 1.0)
    rho = 2.0 - np.sqrt(1.0 + 3.0 * q * q)
    return (1.0 - rho) / (1.0 + rho)


def window_half_extent(t: np.ndarray, x: np.ndarray, y: np.ndarray, seg: np.ndarray, window_s: float) -> np.ndarray:
    """Half the diagonal of the bounding box of the points around each point, over about
    ``window_s`` of its segment.

    The segment is cut into blocks of a third of the window from its first point; a point's
    window is its block and the two beside it (same segment). Block minima and maxima come from
    ``np.minimum.reduceat`` / ``np.maximum.reduceat``: a few passes over the points, no loop.

    Examples
    --------
    >>> t = np.arange(0.0, 600.0, 10.0); x = np.where(t < 300, 0.0, 100.0)
    >>> e = window_half_extent(t, x, np.zeros(60), np.zeros(60, int), 300.0)
    >>> float(e[0]), float(e[29]), float(e[59])
    (0.0, 50.0, 0.0)
    """
    n = len(t)
    if n == 0:
        return np.zeros(0)
    ordinal, first, _ = _segment_index(seg)
    block_s = window_s / 3.0
    blk = np.floor((t - t[first]) / block_s).astype(np.int64)
    new = np.r_[True, (ordinal[1:] != ordinal[:-1]) | (blk[1:] != blk[:-1])]
    starts = np.flatnonzero(new)
    bid = np.cumsum(new) - 1
    hi_x, lo_x = np.maximum.reduceat(x, starts), np.minimum.reduceat(x, starts)
    hi_y, lo_y = np.maximum.reduceat(y, starts), np.minimum.reduceat(y, starts)
    # neighbours: the previous and next block of the same segment, when adjacent in time
    bseg, bnum = ordinal[starts], blk[starts]
    nb = len(starts)
    prev_ok = np.r_[False, (bseg[1:] == bseg[:-1]) & (bnum[1:] == bnum[:-1] + 1)]
    next_ok = np.r_[(bseg[1:] == bseg[:-1]) & (bnum[1:] == bnum[:-1] + 1), False]
    ip = np.where(prev_ok, np.arange(nb) - 1, np.arange(nb))
    inx = np.where(next_ok, np.arange(nb) + 1, np.arange(nb))
    wx_hi = np.maximum(np.maximum(hi_x[ip], hi_x), hi_x[inx])
    wx_lo = np.minimum(np.minimum(lo_x[ip], lo_x), lo_x[inx])
    wy_hi = np.maximum(np.maximum(hi_y[ip], hi_y), hi_y[inx])
    wy_lo = np.minimum(np.minimum(lo_y[ip], lo_y), lo_y[inx])
    return (0.5 * np.hypot(wx_hi - wx_lo, wy_hi - wy_lo))[bid]


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
    centre over ``stay_window_s`` (:func:`window_half_extent`).

    A move between two stays of one segment is the noise escaping a stay, and is absorbed into
    it, when it is shorter than ``stay_blip_s``, or when it never leaves twice the radius around
    the first stay by more than half the radius again and ends within the radius of where it started (a drifting phone wanders
    and comes back; a walk to the next door goes somewhere).
    """
    n = len(t)
    if n == 0:
        return np.zeros(0, bool)
    still = window_half_extent(t, bx, by, seg, rules.stay_window_s) < radius_m
    rid, first, last = _runs(still, seg)
    n_runs = len(first)
    moving = ~still[first]
    same_prev = np.r_[False, seg[first[1:]] == seg[last[:-1]]]
    same_next = np.r_[seg[last[:-1]] == seg[first[1:]], False]
    between = moving & same_prev & same_next  # neighbours are stays (runs alternate)
    if not between.any():
        return still
    cx = pd.Series(bx).groupby(rid).median().to_numpy()
    cy = pd.Series(by).groupby(rid).median().to_numpy()
    prev_run = np.maximum(np.arange(n_runs) - 1, 0)
    next_run = np.minimum(np.arange(n_runs) + 1, n_runs - 1)
    # farthest point of each run from the centre of the stay before it
    far = pd.Series(np.hypot(bx - cx[prev_run][rid], by - cy[prev_run][rid])).groupby(rid).max().to_numpy()
    back = np.hypot(cx[next_run] - cx[prev_run], cy[next_run] - cy[prev_run])
    r = radius_m[first]
    dur = t[last] - t[first]
    wander = (far <= 1.5 * r) & (back <= r)
    absorb = between & ((dur < rules.stay_blip_s) | wander)
    return still | absorb[rid]


def _stay_spread(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    seg: np.ndarray,
    stay: np.ndarray,
    ordinal: np.ndarray,
    n_seg: int,
    min_s: float,
) -> np.ndarray:
    """Per segment: the noise σ its long stays (≥ ``min_s``) show — the median distance of
    their fixes from their stay's median position / the Rayleigh median — 0 where none.
    Short stays are left out: a slow stretch of a walk must not widen the radius."""
    rid, first, last = _runs(stay, seg)
    long_run = stay[first] & (t[last] - t[first] >= min_s)
    k = np.flatnonzero(long_run[rid])
    if len(k) == 0:
        return np.zeros(n_seg)
    r = rid[k]
    cx = pd.Series(x[k]).groupby(r).transform("median").to_numpy()
    cy = pd.Series(y[k]).groupby(r).transform("median").to_numpy()
    med = group_median(np.hypot(x[k] - cx, y[k] - cy), ordinal[k], n_seg) / _RAYLEIGH_MEDIAN
    return np.nan_to_num(med, nan=0.0)


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
    ordinal, first, starts = _segment_index(seg)
    acc_sigma, white = _accuracy_and_white(x, y, seg, accuracy_m, ordinal, first, len(starts))
    pre = np.maximum(np.where(np.isfinite(acc_sigma), acc_sigma, white), rules.min_sigma_m)[ordinal]
    # multipath outliers: far from the per-axis median of their two neighbours (an L-shaped
    # corner is its own median, so corners survive at any sampling); an outlier takes that
    # median position, its time still counts
    outlier = np.zeros(n, bool)
    if n > 2:
        same = (seg[2:] == seg[1:-1]) & (seg[:-2] == seg[1:-1])
        mxm = _median3(x[:-2], x[1:-1], x[2:])
        mym = _median3(y[:-2], y[1:-1], y[2:])
        dev = np.hypot(x[1:-1] - mxm, y[1:-1] - mym)
        outlier[1:-1] = same & (dev > np.maximum(rules.outlier_sigmas * pre[1:-1], rules.outlier_min_m))
    if outlier.any():
        k = np.flatnonzero(outlier)
        x = x.copy()
        y = y.copy()
        x[k], y[k] = mxm[k - 1], mym[k - 1]
    # the track smoothed at the stay scale: for the stays and for the drift part of σ
    fits = _LineFits(t, seg, [x, y])
    bx, by = fits.at(rules.stay_smooth_s)
    # every scale below is one value per segment
    sigma = _sigma_of_segments(t, x, y, seg, accuracy_m, (bx, by), (acc_sigma, white))
    sig = np.maximum(sigma, rules.min_sigma_m)
    radius = np.clip(rules.stay_radius_sigmas * sig, rules.stay_radius_m, rules.stay_radius_max_m)
    stay = stay_mask(t, bx, by, seg, radius[ordinal], rules)
    # second look: the spread of the fixes inside the stays measures the noise a still phone
    # really has (a slow drift that neither accuracy_m nor short-scale residuals show); where
    # it is larger, the segment's stay radius grows and its stays are found again
    spread = _stay_spread(t, x, y, seg, stay, ordinal, len(starts), 2.0 * rules.stay_window_s)
    if (spread > 1.1 * sig).any():
        radius = np.clip(rules.stay_radius_sigmas * np.fmax(sig, spread), rules.stay_radius_m, rules.stay_radius_max_m)
        stay = stay_mask(t, bx, by, seg, radius[ordinal], rules)
    # distance track: enough points averaged that the residual noise is a small part of a step
    dt_seg = np.ones(len(starts))
    if n > 1:
        d = np.diff(t)
        ok = seg[1:] == seg[:-1]
        dt_seg = np.nan_to_num(group_median(np.where(ok, d, np.nan), ordinal[:-1], len(starts)), nan=1.0)
    n_avg = (rules.smooth_sigmas * sig / rules.min_step_m) ** 2
    # from a few metres of noise on, at least a neighbour on each side where the sampling allows:
    # one fix alone keeps all its noise (4 m on 12 m between fixes is +5 %)
    floor = np.where(sig >= rules.smooth_neighbours_from_m, dt_seg, 0.0)
    half = np.clip(np.maximum(0.5 * n_avg * dt_seg, floor), rules.smooth_min_s, rules.smooth_max_s)
    n_eff = 2.0 * half / np.maximum(dt_seg, 1e-3)
    # σ read from the data: a drift averages out more slowly than white noise does
    n_eff = np.maximum(np.where(np.isfinite(acc_sigma), n_eff, n_eff * independent_share(white, sig)), 1.0)
    step = np.maximum(rules.min_step_m, rules.step_sigmas * sig / np.sqrt(n_eff))
    xs, ys = fits.at(half[ordinal])
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
    return NoiseTrack(sigma=sigma[ordinal], xs=xs, ys=ys, step_m=step[ordinal], stay=stay, stay_id=stay_id)
