"""The month step's replay comparison (issue 12): all pairs of days of each worker, from the
days' stored track signatures, at district scale.

    python -m benchmarks.bench_replay                       # 2,000 workers × 22 workdays
    python -m benchmarks.bench_replay --workers 400 --days 30 --repeat 5

Synthetic signatures: each worker walks one route every day (fresh GPS noise, σ 4–15 m, the
day's duration 5 h ± 4 %), and 1 % of the days are copies of an earlier day shifted by < 1 m
(the cheat). Prints the time of ``flags.replay_pairs`` (min of the repeats), the pairs
compared, and the copies found (all of them, and no honest day).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from scoring.policy import load_policy
from trajectory.flags import replay_pairs


def signatures(workers: int, days: int, m: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = workers * days
    w = np.repeat(np.arange(workers), days)
    d = np.tile(np.arange(days), workers)
    route = rng.uniform(-800, 800, (workers, m, 2)).cumsum(axis=1) / 6.0
    sigma = np.repeat(rng.uniform(4, 15, workers), days)
    rx = route[w, :, 0] + rng.normal(0, 1, (n, m)) * sigma[:, None]
    ry = route[w, :, 1] + rng.normal(0, 1, (n, m)) * sigma[:, None]
    duration = 18000.0 * (1 + rng.uniform(-0.04, 0.04, n))
    copies = np.flatnonzero((rng.random(n) < 0.01) & (d > 0))
    copies = copies[~np.isin(copies - 1, copies)]  # a copy of an original day, not of a copy
    src = copies - 1  # the day before, same worker
    rx[copies] = rx[src] + rng.normal(0, 0.3, (len(copies), m))
    ry[copies] = ry[src] + rng.normal(0, 0.3, (len(copies), m))
    duration[copies] = duration[src]
    spread = np.hypot(rx - rx[:, :1], ry - ry[:, :1]).max(axis=1)
    dates = np.array([f"2026-11-{k + 1:02d}" for k in d])
    ids = np.array([f"W{k:05d}" for k in w])
    return ids, ids, dates, rx, ry, duration, spread, sigma, copies


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2000)
    ap.add_argument("--days", type=int, default=22)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    policy = load_policy()
    m = int(policy.patrol.anomalies.replay_min_points)
    ids, grids, dates, rx, ry, duration, spread, sigma, copies = signatures(a.workers, a.days, m)
    times = []
    for _ in range(max(a.repeat, 1)):
        t0 = time.perf_counter()
        rows = replay_pairs(ids, grids, dates, rx, ry, duration, spread, sigma, policy)
        times.append(time.perf_counter() - t0)
    flagged = set(zip(rows["worker_id"], rows["date"], strict=False))
    want = {(ids[c], dates[c]) for c in copies} | {(ids[c - 1], dates[c - 1]) for c in copies}
    pairs = a.workers * a.days * (a.days - 1) // 2
    print(
        f"{a.workers:,} workers × {a.days} days: {pairs:,} pairs, replay_pairs min {min(times):.3f} s "
        f"(median {float(np.median(times)):.3f} s); copies {len(copies)}, days flagged {len(flagged)}, "
        f"all copies found: {want <= flagged}, honest days flagged: {len(flagged - want)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
