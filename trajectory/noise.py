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
    "corner_threshold",
    "denoise",
    "group_median",
    "independent_share",
    "lag_one_correlation",
    "noise_sample",
    "running_line",
    "segment_sigma",
    "stay_mask",
    "window_half_extent",
]

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoring.policy import DistanceRules
from trajectory.clean import RAYLEIGH_68
from trajectory.geo import planar_distance
from trajectory.segment import SegmentClock

_RAYLEIGH_MEDIAN = float(np.sqrt(2.0 * np.log(2.0)))  # median radius of that Gaussian / σ
_MAD = 1.4826  # median absolute deviation → σ of a Gaussian


@dataclass(frozen=True)
class NoiseTrack:
    """What :func:`denoise` knows of each point of the trustworthy track."""

    sigma: np.ndarray  # noise σ of the point's segment (m per axis)
    xs: np.ndarray  # smoothed position for distance (stays collapsed to their centre)
    ys: np.ndarray
    step_m: np.ndarray  # hysteresis step of the point's segment (m)
    stay: np.ndarray  # bool: the point belongs to a stay
    stay_id: np.ndarray  # run id of the point's stay (-1 outside stays)
    corner_m: np.ndarray  # a step's interior point this far from its chord is a corner it cut (m)


def group_median(values: np.ndarray, ordinal: np.ndarray, n_seg: int) -> np.ndarray:
    """Median of the finite values of each group code 0…n−1 (NaN where a group has none).

    Values grouped in order of ``ordinal`` (the noise samples are): one row per group padded
    with +inf, sorted row-wise, the middle read at each row's own count (≈ 5× pandas' groupby
    on a few hundred values per group). Other orders, or groups too unequal to pad, go through
    pandas.

    Examples
    --------
    >>> group_median(np.array([3.0, 1.0, 2.0, np.nan, 5.0, 4.0]), np.array([0, 0, 0, 2, 2, 2]), 4)
    array([2. , nan, 4.5, nan])
    """
    out = np.full(n_seg, np.nan)
    n = len(values)
    if n == 0:
        return out
    size = np.bincount(ordinal, minlength=n_seg)
    width = int(size.max())
    grouped = bool(np.all(ordinal[1:] >= ordinal[:-1]))
    if not grouped or n_seg * width > 4 * n + 4096:
        s = pd.Series(values).groupby(ordinal).median()
        out[s.index.to_numpy(dtype=np.int64)] = s.to_numpy(dtype=np.float64)
        return out
    rows = np.full((n_seg, width), np.inf)
    col = np.arange(n) - np.repeat(np.cumsum(size) - size, size)
    rows[ordinal, col] = np.where(np.isfinite(values), values, np.inf)
    rows.sort(axis=1)
    finite = np.bincount(ordinal, np.isfinite(values), minlength=n_seg).astype(np.int64)
    has = np.flatnonzero(finite)
    lo, hi = (finite[has] - 1) // 2, finite[has] // 2
    out[has] = 0.5 * (rows[has, lo] + rows[has, hi])
    return out


_MEDIAN_EVERY = 3  # noise medians read every 3rd fix of a segment (from its first) …
_MEDIAN_VALUES = 256  # … or sparser, so that a long segment gives about this many


def noise_sample(clock: SegmentClock) -> np.ndarray:
    """Indices of the fixes the noise medians of each segment read: every k-th from the
    segment's first, k = max(3, size // 256). A noise scale needs a few hundred values, not
    all of a day's, and the pick depends on the segment alone (the same in any batch).

    Examples
    --------
    >>> noise_sample(SegmentClock(np.arange(9.0), np.array([0, 0, 0, 0, 0, 1, 1, 1, 1]))).tolist()
    [0, 3, 5, 8]
    """
    size = np.diff(np.r_[clock.starts, clock.n])
    stride = np.maximum(_MEDIAN_EVERY, size // _MEDIAN_VALUES)
    count = -(-size // stride)  # ceil
    seg_of = np.repeat(np.arange(clock.n_seg), count)
    rank = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    return clock.starts[seg_of] + rank * stride[seg_of]


class _LineFits:
    """Least-squares lines of some values against time over any windows of their points.

    Prefix sums are taken once, in int64 of time in 0.1 s and values in cm: exact (the
    wrap-around cancels in the differences), so a point's fit does not depend on the points
    before its segment (a worker smooths the same way in any batch, trajectory.batching); each
    set of windows then costs only gathers.
    """

    def __init__(self, clock: SegmentClock, values: list[np.ndarray]) -> None:
        first = clock.first
        self.n = clock.n
        self.clock = clock
        ti = np.rint(clock.since * 10.0).astype(np.int64)
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
        a, b = self.clock.window(half_s)
        lo, hi = np.empty(self.n, np.int64), np.empty(self.n, np.int64)

        def window(p: np.ndarray, scale: np.ndarray) -> np.ndarray:
            # the mean of a window: (p[b] − p[a]) · scale, through two reused int64 buffers
            with np.errstate(over="ignore"):
                np.subtract(p.take(b, out=hi), p.take(a, out=lo), out=hi)
            return np.multiply(hi, scale)

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

    def mean_at(self, half_s: float) -> list[np.ndarray]:
        """Each value's mean over ``[t − h, t + h]`` (same segment): two gathers a value."""
        a, b = self.clock.window(half_s)
        scale = 0.01 / (b - a)
        out = []
        for v0, p_v, _ in self.values:
            with np.errstate(over="ignore"):
                d = p_v.take(b) - p_v.take(a)
            m = np.multiply(d, scale)
            m += v0
            out.append(m)
        return out


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
    return _LineFits(SegmentClock(t, seg), [v]).at(half_s)[0]


def _median3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Element-wise median of three arrays (four min/max passes, no sort)."""
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


def _accuracy_and_white(
    x: np.ndarray, y: np.ndarray, accuracy_m: np.ndarray, clock: SegmentClock, pick: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per segment: σ from ``accuracy_m`` (NaN where fewer than half the fixes report it) and
    the white-noise σ of the second differences (a fix's residual from the mean of its two
    neighbours has variance 1.5 σ²; MAD, both axes pooled), read at the fixes ``pick``
    (:func:`noise_sample`). The second is read everywhere: without ``accuracy_m`` it is part
    of σ, with it the ratio of the two gives the noise's correlation (:func:`lag_one_correlation`)."""
    n, n_seg, ordinal = clock.n, clock.n_seg, clock.ordinal
    acc = accuracy_m[pick]
    reported = np.isfinite(acc) & (acc > 0)
    acc_med = group_median(np.where(reported, acc, np.nan), ordinal[pick], n_seg)
    acc_share = np.bincount(ordinal[pick], reported, minlength=n_seg) / np.maximum(
        np.bincount(ordinal[pick], minlength=n_seg), 1
    )
    acc_sigma = np.where((acc_share >= 0.5) & np.isfinite(acc_med), acc_med / RAYLEIGH_68, np.nan)
    white = np.zeros(n_seg)
    if n > 2:  # also where accuracy_m gives σ: the two together tell a drift's correlation
        last = np.r_[clock.starts[1:], n][ordinal[pick]] - 1
        i = pick[(pick > clock.first[pick]) & (pick < last)]
        if len(i):
            # both axes pooled, interleaved so that the values stay grouped by segment
            resid = np.empty((len(i), 2))
            resid[:, 0] = x[i] - 0.5 * (x[i - 1] + x[i + 1])
            resid[:, 1] = y[i] - 0.5 * (y[i - 1] + y[i + 1])
            med = group_median(np.abs(resid).ravel(), np.repeat(ordinal[i], 2), n_seg)
            white = np.nan_to_num(med, nan=0.0) * _MAD / np.sqrt(1.5)
    return acc_sigma, white


def segment_sigma(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    seg: np.ndarray,
    accuracy_m: np.ndarray,
    smooth: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Noise σ (metres per axis) of each point's segment.

    Where at least half of a segment's fixes report ``accuracy_m``: its median / :data:`RAYLEIGH_68`. Else
    from the data: the larger of the second-difference scale (white noise) and the median
    distance of the fixes from their ±30 s running mean (``smooth``, computed when not given: a slow
    drift that second differences miss).
    """
    if len(t) == 0:
        return np.zeros(0)
    clock = SegmentClock(t, seg)
    pick = noise_sample(clock)
    acc_white = _accuracy_and_white(x, y, accuracy_m, clock, pick)
    return _sigma_of_segments(x, y, clock, pick, acc_white, smooth)[clock.ordinal]


def _sigma_of_segments(
    x: np.ndarray,
    y: np.ndarray,
    clock: SegmentClock,
    pick: np.ndarray,
    accuracy_white: tuple[np.ndarray, np.ndarray],
    smooth: tuple[np.ndarray, np.ndarray] | None,
) -> np.ndarray:
    """:func:`segment_sigma`, one value per segment (in order)."""
    acc_sigma, white = accuracy_white
    known = np.isfinite(acc_sigma)
    if known.all():
        return acc_sigma
    k = pick[~known[clock.ordinal[pick]]]  # sampled fixes of the segments without accuracy_m
    fx, fy = smooth if smooth is not None else _LineFits(clock, [x, y]).mean_at(30.0)
    resid = planar_distance(x[k] - fx[k], y[k] - fy[k])
    drift = group_median(resid, clock.ordinal[k], clock.n_seg) / _RAYLEIGH_MEDIAN
    data = np.fmax(white, np.nan_to_num(drift, nan=0.0))
    return np.where(known, acc_sigma, data)


def lag_one_correlation(white: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Lag-one correlation ρ of AR(1) noise of σ ``sigma`` whose second differences read
    ``white`` (see :func:`_accuracy_and_white`).

    A fix's residual from the mean of its two neighbours has variance σ²(1.5 − 2ρ + 0.5ρ²), so
    q = white / σ gives ρ = 2 − √(1 + 3q²): white noise (q = 1) 0, a slow drift (q → 0) → 1;
    no noise at all (σ = 0) 0.

    Examples
    --------
    >>> lag_one_correlation(np.array([10.0, 5.0, 1.0]), np.array([10.0, 10.0, 10.0])).round(3)
    array([0.   , 0.677, 0.985])
    """
    q = np.clip(np.divide(white, sigma, out=np.ones_like(sigma, dtype=np.float64), where=sigma > 1e-6), 0.0, 1.0)
    return np.clip(2.0 - np.sqrt(1.0 + 3.0 * q * q), 0.0, 0.999)


def independent_share(white: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Share of a window's fixes that are independent, for AR(1) noise of σ ``sigma`` whose
    second differences read ``white``: the mean of m fixes of lag-one correlation ρ
    (:func:`lag_one_correlation`) varies like that of m(1 − ρ)/(1 + ρ) independent ones.

    Examples
    --------
    >>> independent_share(np.array([10.0, 5.0, 1.0]), np.array([10.0, 10.0, 10.0])).round(3)
    array([1.   , 0.193, 0.008])
    """
    rho = lag_one_correlation(white, sigma)
    return (1.0 - rho) / (1.0 + rho)


def _increment_step(sigma: np.ndarray, rho: np.ndarray, dt_s: np.ndarray, rules: DistanceRules) -> np.ndarray:
    """The step S = max(min_step_m, step_sigmas·σ·√(1 − ρ^(S / (walk_speed_m_s·dt)))), solved
    by fixed-point iteration (it converges from above in a few rounds; 12 are taken).

    Examples
    --------
    >>> from scoring.policy import load_policy
    >>> dr = load_policy().patrol.distance
    >>> # σ 30 m, a 300 s drift sampled every 30 s (ρ = e^(−0.1)): 45 m, not 4 σ = 120 m
    >>> float(_increment_step(np.array([30.0]), np.array([np.exp(-0.1)]), np.array([30.0]), dr)[0].round(0))
    45.0
    """
    lag_per_m = 1.0 / (rules.walk_speed_m_s * np.maximum(dt_s, 1e-3))
    step = rules.step_sigmas * sigma
    for _ in range(12):  # rounds over all segments at once, not a loop per segment
        step = np.maximum(rules.min_step_m, rules.step_sigmas * sigma * np.sqrt(1.0 - rho ** (step * lag_per_m)))
    return step


def corner_threshold(
    sigma: np.ndarray,
    white: np.ndarray,
    n_window: np.ndarray,
    step_m: np.ndarray,
    dt_s: np.ndarray,
    rules: DistanceRules,
) -> np.ndarray:
    """How far (m) a smoothed point may lie from the chord of the step around it before it is a
    corner the step cut: ``corner_sigmas`` × the noise of that deviation.

    The deviation of a point at the middle of a step from the chord between its ends is a
    second difference at a lag of half the step's time (step / ``walk_speed_m_s``); for AR(1)
    noise its variance is σ_s²(1.5 − 2ρʰ + 0.5ρ²ʰ), σ_s the noise of a smoothed point (σ over
    the independent fixes of its window). White noise: 1.22 σ_s, so a corner must stand out
    well beyond the step's own noise and the white-noise figures barely move; a slow drift
    moves the step's three points together, so its corners show through it.

    Examples
    --------
    >>> from scoring.policy import load_policy
    >>> dr = load_policy().patrol.distance
    >>> sigma, fixes, step, dt = np.array([10.0]), np.array([3.0]), np.array([40.0]), np.array([10.0])
    >>> float(corner_threshold(sigma, sigma, fixes, step, dt, dr)[0].round(1))  # white noise
    21.2
    >>> float(corner_threshold(sigma, 0.2 * sigma, fixes, step, dt, dr)[0].round(1))  # a slow drift
    10.4
    """
    rho = lag_one_correlation(white, sigma)
    smoothed = sigma / np.sqrt(np.maximum(n_window * (1.0 - rho) / (1.0 + rho), 1.0))
    lag = 0.5 * step_m / (rules.walk_speed_m_s * np.maximum(dt_s, 1e-3))
    var = np.maximum(1.5 - 2.0 * rho**lag + 0.5 * rho ** (2.0 * lag), 1e-3)
    return np.maximum(rules.corner_sigmas * smoothed * np.sqrt(var), rules.min_sigma_m)


def window_half_extent(
    t: np.ndarray, x: np.ndarray, y: np.ndarray, seg: np.ndarray, window_s: float, clock: SegmentClock | None = None
) -> np.ndarray:
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
    clock = clock if clock is not None else SegmentClock(t, seg)
    ordinal = clock.ordinal
    blk = np.floor(clock.since * (3.0 / window_s)).astype(np.int64)
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
    return (0.5 * planar_distance(wx_hi - wx_lo, wy_hi - wy_lo))[bid]


def _runs(mask: np.ndarray, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run id of each point (runs of equal ``mask`` within a segment), runs' first and last index."""
    n = len(mask)
    brk = np.r_[True, (mask[1:] != mask[:-1]) | (seg[1:] != seg[:-1])] if n else np.zeros(0, bool)
    rid = np.cumsum(brk) - 1
    first = np.flatnonzero(brk)
    last = np.r_[first[1:] - 1, n - 1] if n else first
    return rid, first, last


def stay_mask(
    t: np.ndarray,
    bx: np.ndarray,
    by: np.ndarray,
    seg: np.ndarray,
    radius_m: np.ndarray,
    rules: DistanceRules,
    clock: SegmentClock | None = None,
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
    still = window_half_extent(t, bx, by, seg, rules.stay_window_s, clock) < radius_m
    rid, first, last = _runs(still, seg)
    n_runs = len(first)
    moving = ~still[first]
    same_prev = np.r_[False, seg[first[1:]] == seg[last[:-1]]]
    same_next = np.r_[seg[last[:-1]] == seg[first[1:]], False]
    between = moving & same_prev & same_next  # neighbours are stays (runs alternate)
    if not between.any():
        return still
    # only the moves between two stays and those stays are looked at
    move = np.flatnonzero(between)
    around = np.zeros(n_runs, bool)
    around[move - 1] = True
    around[move + 1] = True
    k = np.flatnonzero(around[rid])
    cx, cy = np.full(n_runs, np.nan), np.full(n_runs, np.nan)
    med = pd.DataFrame({"x": bx[k], "y": by[k]}).groupby(rid[k]).median()
    cx[med.index.to_numpy()], cy[med.index.to_numpy()] = med["x"].to_numpy(), med["y"].to_numpy()
    # farthest point of each move from the centre of the stay before it (a move is contiguous)
    lens = last[move] - first[move] + 1
    kp = np.repeat(first[move], lens) + np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
    before = np.repeat(move - 1, lens)
    dist = planar_distance(bx[kp] - cx[before], by[kp] - cy[before])
    far = np.zeros(n_runs)
    far[move] = np.maximum.reduceat(dist, np.cumsum(lens) - lens)
    back = np.full(n_runs, np.inf)
    back[move] = planar_distance(cx[move + 1] - cx[move - 1], cy[move + 1] - cy[move - 1])
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
    med = group_median(planar_distance(x[k] - cx, y[k] - cy), ordinal[k], n_seg) / _RAYLEIGH_MEDIAN
    return np.nan_to_num(med, nan=0.0)


def denoise(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    seg: np.ndarray,
    accuracy_m: np.ndarray,
    rules: DistanceRules,
    clock: SegmentClock | None = None,
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
    clock : SegmentClock, optional
        Of ``t`` and ``seg`` (:attr:`trajectory.segment.Intervals.clock`), built when not given.

    Returns
    -------
    NoiseTrack
    """
    n = len(t)
    clock = clock if clock is not None else SegmentClock(t, seg)
    ordinal, starts = clock.ordinal, clock.starts
    pick = noise_sample(clock)
    acc_sigma, white = _accuracy_and_white(x, y, accuracy_m, clock, pick)
    pre = np.maximum(np.where(np.isfinite(acc_sigma), acc_sigma, white), rules.min_sigma_m)[ordinal]
    # multipath outliers: far from the per-axis median of their two neighbours (an L-shaped
    # corner is its own median, so corners survive at any sampling); an outlier takes that
    # median position, its time still counts
    outlier = np.zeros(n, bool)
    if n > 2:
        same = (seg[2:] == seg[1:-1]) & (seg[:-2] == seg[1:-1])
        mxm = _median3(x[:-2], x[1:-1], x[2:])
        mym = _median3(y[:-2], y[1:-1], y[2:])
        dx, dy = x[1:-1] - mxm, y[1:-1] - mym
        limit = np.maximum(rules.outlier_sigmas * pre[1:-1], rules.outlier_min_m)
        outlier[1:-1] = same & (dx * dx + dy * dy > limit * limit)
    if outlier.any():
        k = np.flatnonzero(outlier)
        x = x.copy()
        y = y.copy()
        x[k], y[k] = mxm[k - 1], mym[k - 1]
    # the track smoothed at the stay scale (a running mean: a still phone's centre, and a walk's
    # interior unbiased like a line's): for the stays and for the drift part of σ
    fits = _LineFits(clock, [x, y])
    bx, by = fits.mean_at(rules.stay_smooth_s)
    # every scale below is one value per segment
    sigma = _sigma_of_segments(x, y, clock, pick, (acc_sigma, white), (bx, by))
    sig = np.maximum(sigma, rules.min_sigma_m)
    radius = np.clip(rules.stay_radius_sigmas * sig, rules.stay_radius_m, rules.stay_radius_max_m)
    stay = stay_mask(t, bx, by, seg, radius[ordinal], rules, clock)
    # second look: the spread of the fixes inside the stays measures the noise a still phone
    # really has (a slow drift that neither accuracy_m nor short-scale residuals show); where
    # it is larger, the segment's stay radius grows and its stays are found again
    spread = _stay_spread(t, x, y, seg, stay, ordinal, len(starts), 2.0 * rules.stay_window_s)
    if (spread > 1.1 * sig).any():
        radius = np.clip(rules.stay_radius_sigmas * np.fmax(sig, spread), rules.stay_radius_m, rules.stay_radius_max_m)
        stay = stay_mask(t, bx, by, seg, radius[ordinal], rules, clock)
    # distance track: enough points averaged that the residual noise is a small part of a step
    step_of = pick[pick + 1 < np.r_[starts[1:], n][ordinal[pick]]]  # sampled fixes with a next one
    dt_seg = np.nan_to_num(group_median(t[step_of + 1] - t[step_of], ordinal[step_of], len(starts)), nan=1.0)
    # the fit holds (smooth_sigmas·σ / min_step_m)² *independent* fixes: under a drift of a
    # time constant up to smooth_drift_tau_s that is more fixes than under white noise (1 / the
    # independent share), up to smooth_max_s; a slower drift is an offset over any such window,
    # which the fit cannot average and a step's length does not see
    rho = lag_one_correlation(white, sigma)  # σ as measured: no noise at all is not a drift
    share = independent_share(white, sigma)
    slow = -dt_seg / np.log(np.maximum(rho, 1e-12)) > rules.smooth_drift_tau_s  # its time constant
    grow = np.where(slow, 1.0, share)
    n_avg = (rules.smooth_sigmas * sig / rules.min_step_m) ** 2 / np.maximum(grow, 1e-3)
    # from a few metres of noise on, at least a neighbour on each side where the sampling allows:
    # one fix alone keeps all its noise (4 m on 12 m between fixes is +5 %)
    floor = np.where(sig >= rules.smooth_neighbours_from_m, dt_seg, 0.0)
    half = np.clip(np.maximum(0.5 * n_avg * dt_seg, floor), rules.smooth_min_s, rules.smooth_max_s)
    n_window = 2.0 * half / np.maximum(dt_seg, 1e-3)
    # σ read from the data: a drift averages out more slowly than white noise does
    n_eff = np.where(np.isfinite(acc_sigma), n_window, n_window * share)
    step = np.maximum(rules.min_step_m, rules.step_sigmas * sig / np.sqrt(np.maximum(n_eff, 1.0)))
    # a slower drift: the anchor and the point a step later err alike, the step follows the
    # noise of that difference, σ·√(1 − ρ^lag) with lag = step / walk_speed_m_s in fixes
    if slow.any():
        step = np.where(slow, np.minimum(step, _increment_step(sig, rho, dt_seg, rules)), step)
    corner = corner_threshold(sig, white, n_window, step, dt_seg, rules)
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
    return NoiseTrack(
        sigma=sigma[ordinal],
        xs=xs,
        ys=ys,
        step_m=step[ordinal],
        stay=stay,
        stay_id=stay_id,
        corner_m=corner[ordinal],
    )
