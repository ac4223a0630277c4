"""The noise table of docs/methods.md: patrol distance and flags against ground truth (issue 11).

    python -m benchmarks.bench_noise            # the full grid, 3 seeds per cell (~2 min)
    python -m benchmarks.bench_noise --seeds 1  # quicker
    python -m benchmarks.bench_noise --issue    # the cases of issue 11's own table

One worker, one workday of 2 × 2.5 h (08:30–11:00, 14:00–16:30). Cases: a phone lying still
(truth 0 m), laps of the issue's 480 m square loop and laps along city blocks at 1.0 m/s.
Noise: white σ 3/8/15/30 m; AR(1) drift σ/τ 10 m/30 s, 15 m/100 s, 10 m/300 s, 30 m/30 s and
30 m/300 s with 1 % multipath outliers (50–150 m); sampling 1/5/10/30 s; ``accuracy_m`` =
r68 = 1.51 σ reported ("A") or not ("n"). Each cell prints the worst of its seeds: the signed
error in % for walks (largest |error|), metres credited for the still phone, and "·" after a
still-phone value where the desk_phone flag did not fire.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from benchmarks.phones import loop_positions, patrol_schedule, phone_noise, street_positions, walked_metres
from scoring.policy import load_policy
from trajectory.engine import EngineContext, process_days
from trajectory.geo import from_local
from trajectory.noise import RAYLEIGH_68

TZ = ZoneInfo("Asia/Shanghai")
ORIGIN = (119.88, 31.68)
DAY = datetime(2026, 10, 9, 8, 0, tzinfo=TZ)  # a Friday
MODELS = [
    ("white", 3, 0), ("white", 8, 0), ("white", 15, 0), ("white", 30, 0),
    ("ar1", 10, 30), ("ar1", 15, 100), ("ar1", 10, 300), ("ar1", 30, 30), ("ar1", 30, 300),
]  # fmt: skip
SAMPLING = (1.0, 5.0, 10.0, 30.0)


def _context() -> EngineContext:
    half = 1000.0
    lon, lat = from_local(np.array([-half, half, half, -half]), np.array([-half, -half, half, half]), *ORIGIN)
    grids = gpd.GeoDataFrame(
        {"grid_id": ["g1"], "grid_name": ["g1"], "grid_type": ["community"]},
        geometry=[shapely.Polygon(np.column_stack([lon, lat]))],
        crs="EPSG:4326",
    )
    workers = pd.DataFrame({"worker_id": ["w1"], "worker_name": ["w1"], "grid_id": ["g1"], "full_time": [True]})
    sites = pd.DataFrame(columns=["site_id", "site_type", "grid_id", "lon", "lat", "radius_m", "label"])
    leave = pd.DataFrame(columns=["worker_id", "start_date", "end_date", "filed_date", "reason"])
    return EngineContext(grids, workers, sites, leave, {DAY.date(): True}, load_policy(), TZ)


def _points(x: np.ndarray, y: np.ndarray, t: np.ndarray, noise: tuple[np.ndarray, np.ndarray], acc: float | None):
    lon, lat = from_local(x + noise[0], y + noise[1], *ORIGIN)
    ts = pd.Timestamp(DAY).tz_convert("UTC") + pd.to_timedelta(np.round(t * 1e6).astype(np.int64), unit="us")
    return pd.DataFrame(
        {"worker_id": "w1", "ts": pd.DatetimeIndex(ts).as_unit("us"), "lon": lon, "lat": lat,
         "accuracy_m": np.nan if acc is None else acc, "mock": False}
    )  # fmt: skip


def cell(ctx: EngineContext, case: str, dt: float, model: str, sigma: float, tau: float, acc: bool, seeds: int) -> str:
    """The worst result of ``seeds`` runs of one cell, as printed in the table."""
    t = patrol_schedule(dt)
    if case == "still":
        x, y = np.zeros(len(t)), np.zeros(len(t))
    else:
        x, y = (loop_positions if case == "loop" else street_positions)(t)
    truth = walked_metres(t)
    worst, flagged = 0.0, True
    for seed in range(seeds):
        noise = phone_noise(len(t), dt, sigma, model, tau or 100.0, 0.01 if model == "ar1" else 0.0, seed=seed)
        d = process_days(_points(x, y, t, noise, RAYLEIGH_68 * sigma if acc else None), ctx, [DAY.date()]).worker_day
        row = d.iloc[0]
        if case == "still":
            worst = max(worst, float(row["patrol_m"]))
            flagged &= "desk_phone" in (row["flags"] or "")
        else:
            err = 100.0 * (float(row["patrol_m"]) / truth - 1.0)
            worst = err if abs(err) > abs(worst) else worst
    if case == "still":
        return f"{worst:.0f}{'' if flagged else '·'}"
    return f"{worst:+.0f}"


def issue_cases(ctx: EngineContext) -> None:
    """Issue 11's own measurement: 10 s, white noise, accuracy_m = 1.5 σ, the 480 m loop."""
    t = patrol_schedule(10.0)
    print("| case | σ | patrol_m | status | flags |\n|---|---:|---:|---|---|")
    for case, sigmas in (("phone lying still", (5, 8, 12, 20, 30)), ("walk, 480 m loop", (8, 12, 20, 30))):
        for sigma in sigmas:
            still = case.startswith("phone")
            x, y = (np.zeros(len(t)), np.zeros(len(t))) if still else loop_positions(t)
            noise = phone_noise(len(t), 10.0, sigma, seed=1)
            row = process_days(_points(x, y, t, noise, 1.5 * sigma), ctx, [DAY.date()]).worker_day.iloc[0]
            value = f"{row['patrol_m']:.0f} m" if still else f"{100 * (row['patrol_m'] / walked_metres(t) - 1):+.1f} %"
            print(f"| {case} | {sigma} m | {value} | {row['status']} | {row['flags'] or ''} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--issue", action="store_true", help="only the cases of issue 11's own table")
    args = ap.parse_args(argv)
    ctx = _context()
    if args.issue:
        issue_cases(ctx)
        return 0
    t0 = time.perf_counter()
    head = [f"{m[0]}{s}" + (f"/τ{tau}" if tau else "") for m, s, tau in MODELS]
    for case, unit in (("still", "m credited"), ("loop", "% error"), ("street", "% error")):
        print(f"\n{case} ({unit}; A = accuracy_m reported, n = not)\n")
        print("| sampling | " + " | ".join(head) + " |")
        print("|---|" + "---|" * len(head))
        for dt in SAMPLING:
            for acc in (True, False):
                vals = [cell(ctx, case, dt, m, s, tau, acc, args.seeds) for m, s, tau in MODELS]
                print(f"| {dt:.0f} s {'A' if acc else 'n'} | " + " | ".join(vals) + " |", flush=True)
    print(f"\n{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
