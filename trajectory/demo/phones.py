"""Phones on a patrol: the samples of a walk or a stay, and what a phone makes of them.

``phone_noise`` is the one noise model of the repository: the demo's tracks (``degrade``),
``benchmarks/generate.py``, ``benchmarks/phones.py`` (issue 11) and the tests' walks all draw
their GPS error from it. Noise is metres per axis:

- ``white``: independent Gaussian σ per axis (outdoors, 3–8 m; a poor fix, 30 m); σ may be
  one value per fix;
- ``ar1``: a stationary AR(1) drift of σ per axis with time constant τ (indoors, 10–30 m,
  τ 30–300 s), optionally with multipath outliers thrown 50–150 m.

    >>> x, y = phone_noise(1000, 5.0, 10.0, "ar1", tau_s=100.0, seed=1)
    >>> 8.0 < float(np.std(x)) < 12.0
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trajectory.demo.base import GPS_NOISE_M
from trajectory.demo.streets import Network

__all__ = ["Track", "degrade", "phone_noise", "stay", "walk"]


def phone_noise(
    n: int,
    dt_s: float,
    sigma_m: float | np.ndarray,
    model: str = "white",
    tau_s: float = 100.0,
    outliers: float = 0.0,
    seed: int | np.random.Generator = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Noise of ``n`` fixes ``dt_s`` apart, metres east and north.

    ``sigma_m`` is one σ, or (``white`` only) one σ per fix. ``outliers`` is the share of
    fixes thrown 50–150 m in a random direction (multipath). ``seed`` may be a Generator:
    the noise is then its next draws (east first, then north).
    """
    rng = np.random.default_rng(seed)
    if model == "white":
        ex, ey = rng.normal(0.0, sigma_m, n), rng.normal(0.0, sigma_m, n)
    elif model == "ar1":
        from scipy.signal import lfilter  # only the noise benchmarks and tests use ar1

        rho = float(np.exp(-dt_s / tau_s))
        w = rng.normal(0.0, sigma_m * np.sqrt(1.0 - rho * rho), (2, n))
        w[:, 0] = rng.normal(0.0, sigma_m, 2)  # start in the stationary distribution
        ex, ey = lfilter([1.0], [1.0, -rho], w, axis=1)  # e_k = ρ·e_(k−1) + w_k
    else:
        raise ValueError(f"model was '{model}' but is expected to be 'white' or 'ar1'")
    if outliers > 0:
        hit = rng.random(n) < outliers
        r = rng.uniform(50.0, 150.0, int(hit.sum()))
        a = rng.uniform(0.0, 2 * np.pi, int(hit.sum()))
        ex[hit] += r * np.cos(a)
        ey[hit] += r * np.sin(a)
    return ex, ey


@dataclass
class Track:
    """Samples of one patrol piece: seconds since local midnight, local metres, phone fields."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    speed: np.ndarray
    accuracy: np.ndarray
    mock: np.ndarray

    @staticmethod
    def concat(parts: Sequence[Track]) -> Track:
        return Track(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in ("t", "x", "y", "speed", "accuracy", "mock"))
        )


def walk(
    net: Network,
    rng: np.random.Generator,
    start: int,
    t0: int,
    duration_s: float,
    visits: list[tuple[int, float]],
    sample_s: tuple[int, int],
    car_window: tuple[float, float] | None = None,
) -> tuple[Track, int]:
    """Walk (or drive) shortest routes between waypoints, pausing at visits; sample it.

    The route is a polyline; time maps to distance along it piecewise linearly (per-edge
    speeds, flat during pauses), then samples interpolate both, all in NumPy.
    """
    base_v = rng.uniform(1.0, 1.5)
    n_nodes = len(net.node_xy)
    verts = [net.node_xy[start][None, :]]
    knot_t, knot_s, knot_v = [0.0], [0.0], []
    t = s = 0.0
    cur = start
    queue = list(visits)
    while t < duration_s:
        if queue:
            target, pause = queue.pop(0)
        else:
            target = int(rng.integers(n_nodes))
            r = rng.random()
            pause = rng.uniform(20, 120) if r < 0.25 else (rng.uniform(240, 720) if r < 0.31 else 0.0)
        for coords, length in net.route(cur, target):
            in_car = car_window is not None and car_window[0] <= t < car_window[1]
            v = rng.uniform(8.3, 13.9) if in_car else base_v * rng.uniform(0.88, 1.12)
            verts.append(coords[1:])
            t += length / v
            s += length
            knot_t.append(t)
            knot_s.append(s)
            knot_v.append(v)
        if pause > 0:
            t += pause
            knot_t.append(t)
            knot_s.append(s)
            knot_v.append(0.0)
        cur = target
    kt, ks, kv = np.array(knot_t), np.array(knot_s), np.array(knot_v)
    tt = _sample_times(rng, min(duration_s, kt[-1]), sample_s)
    dist = np.interp(tt, kt, ks)
    vx = np.concatenate(verts)
    step = np.hypot(*np.diff(vx, axis=0).T)
    moving = step > 1e-6
    vx = vx[np.concatenate([[True], moving])]
    cum = np.concatenate([[0.0], np.cumsum(step[moving])])
    x = np.interp(dist, cum, vx[:, 0])
    y = np.interp(dist, cum, vx[:, 1])
    seg = np.clip(np.searchsorted(kt, tt, side="right") - 1, 0, len(kv) - 1)
    speed = kv[seg]
    n = len(tt)
    return Track(tt + t0, x, y, speed, np.zeros(n), np.zeros(n, dtype=bool)), cur


def stay(rng: np.random.Generator, xy: np.ndarray, t0: int, duration_s: float, sample_s: tuple[int, int]) -> Track:
    """A phone lying still (on a desk): one position for the whole time."""
    tt = _sample_times(rng, duration_s, sample_s)
    n = len(tt)
    return Track(tt + t0, np.full(n, xy[0]), np.full(n, xy[1]), np.zeros(n), np.zeros(n), np.zeros(n, dtype=bool))


def _sample_times(rng: np.random.Generator, duration_s: float, sample_s: tuple[int, int]) -> np.ndarray:
    n = int(duration_s / sample_s[0]) + 2
    tt = np.concatenate([[0], np.cumsum(rng.integers(sample_s[0], sample_s[1] + 1, size=n))])
    return tt[tt <= duration_s].astype(np.int64)


def degrade(rng: np.random.Generator, tr: Track, indoor: bool = False) -> Track:
    """What a phone makes of a true track: noise, accuracy, speed, spikes and gaps."""
    n = len(tr.t)
    if n == 0:
        return tr
    acc = np.exp(rng.normal(math.log(12.0 if indoor else 6.5), 0.35, n))
    acc = np.clip(acc, 3.0, 40.0 if indoor else 15.0)
    poor = rng.random(n) < (0.05 if indoor else 0.012)  # under trees, indoors: accuracy > 50 m
    acc[poor] = rng.uniform(55, 160, int(poor.sum()))
    sigma = np.where(poor, acc / 2.5, GPS_NOISE_M * (1.3 if indoor else 1.0))
    ex, ey = phone_noise(n, 0.0, sigma, "white", seed=rng)
    x = tr.x + ex
    y = tr.y + ey
    speed = np.clip(tr.speed + rng.normal(0, 0.25, n), 0, None)
    if n > 20 and rng.random() < 0.35:  # a spike: one fix 1–3 km away
        for i in rng.choice(np.arange(5, n - 5), size=int(rng.integers(1, 3)), replace=False):
            d, a = rng.uniform(1000, 3000), rng.uniform(0, 2 * np.pi)
            x[i] += d * math.cos(a)
            y[i] += d * math.sin(a)
    keep = np.ones(n, dtype=bool)
    span = tr.t[-1] - tr.t[0]
    if span > 3600 and rng.random() < 0.15:  # phone off 10–30 min
        g0 = tr.t[0] + rng.uniform(600, span - 2400)
        keep &= ~((tr.t >= g0) & (tr.t < g0 + rng.uniform(600, 1800)))
    return Track(tr.t[keep], x[keep], y[keep], speed[keep], acc[keep], tr.mock[keep])
