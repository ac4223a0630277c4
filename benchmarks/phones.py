"""What phones do to a patrol: noise models and ground-truth routes (issue 11).

One source for ``tests/trajectory/test_noise.py`` and ``benchmarks/bench_noise.py``. Routes are
metres east/north of a grid centre. The noise model, ``phone_noise`` (``white`` outdoors,
``ar1`` indoor drift, multipath outliers), is the demo generator's own
(``trajectory.demo.phones``), re-exported here, so the demo, the benchmarks and the tests
draw GPS error from one implementation.

    >>> x, y = phone_noise(1000, 5.0, 10.0, "ar1", tau_s=100.0, seed=1)
    >>> 8.0 < float(np.std(x)) < 12.0
    True
"""

from __future__ import annotations

__all__ = ["STREET", "loop_positions", "patrol_schedule", "phone_noise", "street_positions", "walked_metres"]

import numpy as np

from trajectory.demo.phones import phone_noise

# a walk along city blocks, 200–600 m between corners (metres east/north of the grid centre)
STREET = [(-400.0, -300.0), (-100.0, -300.0), (-100.0, -100.0), (200.0, -100.0), (200.0, 100.0), (-100.0, 100.0),
          (-100.0, 300.0), (-400.0, 300.0), (-400.0, -300.0)]  # fmt: skip


def _along(path: list[tuple[float, float]], s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(path, dtype=float)
    cum = np.r_[0.0, np.cumsum(np.hypot(*np.diff(p, axis=0).T))]
    s = s % cum[-1]
    return np.interp(s, cum, p[:, 0]), np.interp(s, cum, p[:, 1])


def loop_positions(t: np.ndarray, half_m: float = 60.0, speed_mps: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """True positions at seconds ``t`` of laps round a square of side 2·half_m (the issue's
    480 m loop by default), continuing where they left off after a gap."""
    h = half_m
    return _along([(-h, -h), (h, -h), (h, h), (-h, h), (-h, -h)], t * speed_mps)


def street_positions(t: np.ndarray, speed_mps: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """True positions at seconds ``t`` of laps along :data:`STREET`."""
    return _along(STREET, t * speed_mps)


def patrol_schedule(dt_s: float) -> np.ndarray:
    """Seconds after 08:00 of fixes every ``dt_s`` over 08:30–11:00 and 14:00–16:30 (2 × 2.5 h)."""
    return np.r_[np.arange(1800.0, 3 * 3600.0, dt_s), np.arange(6 * 3600.0, 8.5 * 3600.0, dt_s)]


def walked_metres(t: np.ndarray, speed_mps: float = 1.0, max_gap_s: float = 300.0) -> float:
    """True length walked between fixes no more than ``max_gap_s`` apart."""
    d = np.diff(t)
    return float(d[d <= max_gap_s].sum() * speed_mps)
