"""Ground-truth synthetic walks for the trajectory tests.

A walk follows a known polyline (metres east/north of ORIGIN, near 119.88E 31.68N) at a
known speed, sampled every ``dt_s`` seconds, with seeded Gaussian noise of ``sigma_m`` per
axis; it is converted to WGS-84 with the same tangent-plane frame as the engine, so the
expected length and time are known exactly.
"""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # benchmarks.phones, from the repo root
from benchmarks.phones import (  # noqa: E402,F401  (re-exported for the tests)
    STREET,
    loop_positions,
    patrol_schedule,
    street_positions,
    walked_metres,
)
from scoring.policy import Policy, load_policy
from trajectory.demo.phones import phone_noise  # noqa: E402  (the one phone-noise model)
from trajectory.engine import EngineContext
from trajectory.geo import from_local

ORIGIN = (119.88, 31.68)
TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 10, 9)  # a Friday, a workday


def at(hh: int, mm: int = 0, day: date = DAY) -> datetime:
    """A local time of ``day``."""
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=TZ)


def polyline_length(xy: list[tuple[float, float]]) -> float:
    a = np.asarray(xy, dtype=float)
    return float(np.hypot(*np.diff(a, axis=0).T).sum())


def walk(
    xy: list[tuple[float, float]],
    start: datetime,
    speed_mps: float = 1.2,
    dt_s: float = 5.0,
    sigma_m: float = 0.0,
    seed: int = 0,
    worker_id: str = "w1",
    laps: int = 1,
) -> pd.DataFrame:
    """Points along the polyline ``xy`` (repeated ``laps`` times) from ``start``."""
    path = np.asarray(xy, dtype=float)
    if laps > 1:
        path = np.vstack([path] + [path[1:]] * (laps - 1))
    seg = np.hypot(*np.diff(path, axis=0).T)
    cum = np.r_[0.0, np.cumsum(seg)]
    total_t = cum[-1] / speed_mps
    t = np.arange(0.0, total_t + 1e-9, dt_s)
    s = t * speed_mps
    x = np.interp(s, cum, path[:, 0])
    y = np.interp(s, cum, path[:, 1])
    return _frame(x, y, t, start, sigma_m, seed, worker_id)


def still(
    center: tuple[float, float],
    start: datetime,
    duration_s: float,
    dt_s: float = 5.0,
    sigma_m: float = 4.0,
    seed: int = 1,
    worker_id: str = "w1",
) -> pd.DataFrame:
    """A phone lying still at ``center`` with GPS jitter."""
    t = np.arange(0.0, duration_s + 1e-9, dt_s)
    return _frame(np.full(len(t), center[0]), np.full(len(t), center[1]), t, start, sigma_m, seed, worker_id)


def _frame(
    x: np.ndarray, y: np.ndarray, t: np.ndarray, start: datetime, sigma_m: float, seed: int, worker_id: str
) -> pd.DataFrame:
    if sigma_m > 0:
        ex, ey = phone_noise(len(x), 0.0, sigma_m, "white", seed=seed)
        x = x + ex
        y = y + ey
    lon, lat = from_local(x, y, ORIGIN[0], ORIGIN[1])
    ts = pd.Timestamp(start).tz_convert("UTC") + pd.to_timedelta(np.round(t * 1e6).astype(np.int64), unit="us")
    return pd.DataFrame(
        {
            "worker_id": worker_id,
            "ts": pd.DatetimeIndex(ts).as_unit("us"),
            "lon": lon,
            "lat": lat,
            "accuracy_m": np.full(len(t), 8.0),
            "speed_mps": np.full(len(t), np.nan),
            "mock": np.zeros(len(t), dtype=bool),
        }
    )


def square(half_m: float, cx: float = 0.0, cy: float = 0.0) -> shapely.Polygon:
    """A square grid polygon (WGS-84) of side 2·half_m centred at (cx, cy) metres."""
    xs = np.array([cx - half_m, cx + half_m, cx + half_m, cx - half_m])
    ys = np.array([cy - half_m, cy - half_m, cy + half_m, cy + half_m])
    lon, lat = from_local(xs, ys, ORIGIN[0], ORIGIN[1])
    return shapely.Polygon(np.column_stack([lon, lat]))


def context(
    grids: list[tuple[str, str, shapely.Polygon]] | None = None,
    workers: list[tuple[str, str, bool]] | None = None,
    sites: list[tuple[str, str, str, float, float]] | None = None,
    leave: list[tuple[str, date, date, date, str]] | None = None,
    days: list[date] | None = None,
    holidays: set[date] = frozenset(),
    policy: Policy | None = None,
) -> EngineContext:
    """An engine context: grids (id, type, polygon), workers (id, grid, full_time), sites
    (id, type, grid, x_m, y_m), leave rows; workdays Mon–Fri minus ``holidays``."""
    grids = grids or [("g1", "community", square(500))]
    workers = workers or [("w1", "g1", True)]
    gdf = gpd.GeoDataFrame(
        {"grid_id": [g[0] for g in grids], "grid_name": [g[0] for g in grids], "grid_type": [g[1] for g in grids]},
        geometry=[g[2] for g in grids],
        crs="EPSG:4326",
    )
    wdf = pd.DataFrame(workers, columns=["worker_id", "grid_id", "full_time"])
    wdf["worker_name"] = wdf["worker_id"]
    srows = []
    for sid, stype, gid, sx, sy in sites or []:
        lon, lat = from_local(np.array([sx]), np.array([sy]), ORIGIN[0], ORIGIN[1])
        srows.append((sid, stype, gid, float(lon[0]), float(lat[0]), 50.0, "label-" + sid))
    sdf = pd.DataFrame(srows, columns=["site_id", "site_type", "grid_id", "lon", "lat", "radius_m", "label"])
    ldf = pd.DataFrame(leave or [], columns=["worker_id", "start_date", "end_date", "filed_date", "reason"])
    days = days or [DAY + timedelta(days=i) for i in range(-40, 40)]
    wd = {d: d.weekday() < 5 and d not in holidays for d in days}
    return EngineContext(
        grids=gdf, workers=wdf, sites=sdf, leave=ldf, workday=wd, policy=policy or load_policy(), tz=TZ
    )


def loop(half_m: float, cx: float = 0.0, cy: float = 0.0) -> list[tuple[float, float]]:
    """A closed square street loop of side 2·half_m."""
    return [
        (cx - half_m, cy - half_m),
        (cx + half_m, cy - half_m),
        (cx + half_m, cy + half_m),
        (cx - half_m, cy + half_m),
        (cx - half_m, cy - half_m),
    ]


# --- phone noise models and routes (issue 11): one source, shared with benchmarks/bench_noise
def track(
    x: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    start: datetime,
    noise: tuple[np.ndarray, np.ndarray],
    accuracy_m: float | None,
    worker_id: str = "w1",
) -> pd.DataFrame:
    """Points at true positions ``x, y`` (metres) and seconds ``t`` from ``start``, plus noise;
    ``accuracy_m`` reported on every fix, or absent (NaN) when None."""
    df = _frame(x + noise[0], y + noise[1], t, start, 0.0, 0, worker_id)
    df["accuracy_m"] = np.nan if accuracy_m is None else accuracy_m
    return df
