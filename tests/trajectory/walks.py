"""Ground-truth synthetic walks for the trajectory tests.

A walk follows a known polyline (metres east/north of ORIGIN, near 119.88E 31.68N) at a
known speed, sampled every ``dt_s`` seconds, with seeded Gaussian noise of ``sigma_m`` per
axis; it is converted to WGS-84 with the same tangent-plane frame as the engine, so the
expected length and time are known exactly.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from scoring.policy import Policy, load_policy
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
    rng = np.random.default_rng(seed)
    if sigma_m > 0:
        x = x + rng.normal(0.0, sigma_m, len(x))
        y = y + rng.normal(0.0, sigma_m, len(y))
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


# --- phone noise models (issue 11): white, AR(1) drift, multipath outliers ---------------------
def phone_noise(
    n: int,
    dt_s: float,
    sigma_m: float,
    model: str = "white",
    tau_s: float = 100.0,
    outliers: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Noise of ``n`` fixes ``dt_s`` apart, metres east and north.

    ``white``: independent Gaussian σ per axis. ``ar1``: a stationary AR(1) drift of σ per axis
    and time constant ``tau_s`` (what a phone indoors does). ``outliers``: the share of fixes
    thrown 50–150 m in a random direction (multipath).
    """
    rng = np.random.default_rng(seed)
    if model == "white":
        ex, ey = rng.normal(0.0, sigma_m, n), rng.normal(0.0, sigma_m, n)
    elif model == "ar1":
        rho = float(np.exp(-dt_s / tau_s))
        w = rng.normal(0.0, sigma_m * np.sqrt(1.0 - rho * rho), (2, n))
        w[:, 0] = rng.normal(0.0, sigma_m, 2)
        # e_k = rho·e_{k-1} + w_k as a cumulative sum of scaled innovations
        k = np.arange(n)
        scale = rho ** (-k.astype(np.float64)) if rho > 0 and n * dt_s / tau_s < 600 else None
        if scale is not None:
            ex, ey = (rho**k) * np.cumsum(w * scale, axis=1)
        else:  # pragma: no cover - very long tracks with a short time constant
            ex, ey = np.zeros(n), np.zeros(n)
            for i in range(n):
                ex[i] = (rho * ex[i - 1] if i else 0.0) + w[0, i]
                ey[i] = (rho * ey[i - 1] if i else 0.0) + w[1, i]
    else:
        raise ValueError(f"model was '{model}' but is expected to be 'white' or 'ar1'")
    if outliers > 0:
        hit = rng.random(n) < outliers
        r = rng.uniform(50.0, 150.0, int(hit.sum()))
        a = rng.uniform(0.0, 2 * np.pi, int(hit.sum()))
        ex[hit] += r * np.cos(a)
        ey[hit] += r * np.sin(a)
    return ex, ey


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


def loop_positions(t: np.ndarray, half_m: float = 60.0, speed_mps: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """True positions at seconds ``t`` of a walk round a square loop of side 2·half_m (the
    issue's 480 m loop by default), continuing where it left off after a gap."""
    path = np.asarray(loop(half_m), dtype=float)
    seg = np.hypot(*np.diff(path, axis=0).T)
    cum = np.r_[0.0, np.cumsum(seg)]
    s = (t * speed_mps) % cum[-1]
    return np.interp(s, cum, path[:, 0]), np.interp(s, cum, path[:, 1])


STREET = [(-400.0, -300.0), (-100.0, -300.0), (-100.0, -100.0), (200.0, -100.0), (200.0, 100.0), (-100.0, 100.0),
          (-100.0, 300.0), (-400.0, 300.0), (-400.0, -300.0)]  # fmt: skip


def street_positions(t: np.ndarray, speed_mps: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """True positions of a walk along city blocks (200–600 m between corners), repeated."""
    path = np.asarray(STREET)
    seg = np.hypot(*np.diff(path, axis=0).T)
    cum = np.r_[0.0, np.cumsum(seg)]
    s = (t * speed_mps) % cum[-1]
    return np.interp(s, cum, path[:, 0]), np.interp(s, cum, path[:, 1])


def patrol_schedule(dt_s: float) -> np.ndarray:
    """Seconds after 08:00 of fixes every ``dt_s`` over 08:30–11:00 and 14:00–16:30 (2 × 2.5 h)."""
    return np.r_[np.arange(1800.0, 3 * 3600.0, dt_s), np.arange(6 * 3600.0, 8.5 * 3600.0, dt_s)]


def walked_metres(t: np.ndarray, speed_mps: float = 1.0, max_gap_s: float = 300.0) -> float:
    """True length walked between fixes no more than ``max_gap_s`` apart."""
    d = np.diff(t)
    return float(d[d <= max_gap_s].sum() * speed_mps)
