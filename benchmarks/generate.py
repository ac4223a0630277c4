"""Synthetic patrol data for the benchmarks and tests: points, engine context, workspaces.

    python -m benchmarks.generate --workers 1000 --days 10 --dir /tmp/ws   # a workspace with an inbox

One generator serves every benchmark (``bench_engine``, ``bench_ingest``, ``bench_scale``) and
``tests/trajectory/test_batching.py``. Square 1 km grids on a lattice near 119.88E 31.68N, two
workers per grid, each worker-day a jittered (4 m) random walk bounded to its grid, 5 s
sampling, 08:00–11:00 and 14:00 onwards. With ``extras`` the walks get what real phones send:
stays of a few minutes at the grid's sites (visits), a 3 km spike, a 5 km teleport, a mock-location point, a
repeated point, a part-time worker and an unknown worker.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import shapely

from scoring.policy import load_policy
from trajectory.demo.phones import phone_noise
from trajectory.engine import EngineContext
from trajectory.geo import from_local

ORIGIN = (119.88, 31.68)
TZ = ZoneInfo("Asia/Shanghai")
DAY0 = date(2026, 10, 12)  # a Monday
GRID_M = 1000.0
PER_DAY = 2160  # 3 h at 5 s
INBOX_FORMATS = ("csv-iso", "csv-epoch", "parquet-typed", "parquet-epoch")


def make_data(
    n_points: int, days: int = 2, seed: int = 7, *, extras: bool = False, per_day: int = PER_DAY
) -> tuple[pd.DataFrame, EngineContext]:
    """Points (``process_days``' columns) and an engine context for about ``n_points`` points.

    Workers = ``n_points / (per_day * days)``; each patrols every day.
    """
    rng = np.random.default_rng(seed)
    n_wd = max(1, int(np.ceil(n_points / per_day)))
    n_workers = max(1, int(np.ceil(n_wd / days)))
    n_grids = max(1, (n_workers + 1) // 2)
    side = int(np.ceil(np.sqrt(n_grids)))
    gx = (np.arange(n_grids) % side) * GRID_M * 1.2
    gy = (np.arange(n_grids) // side) * GRID_M * 1.2
    polys = []
    for cx, cy in zip(gx, gy, strict=False):  # benchmark setup, one per grid
        xs = cx + np.array([0, GRID_M, GRID_M, 0.0])
        ys = cy + np.array([0, 0, GRID_M, GRID_M])
        lon, lat = from_local(xs, ys, *ORIGIN)
        polys.append(shapely.Polygon(np.column_stack([lon, lat])))
    grids = gpd.GeoDataFrame(
        {
            "grid_id": [f"G{i:04d}" for i in range(n_grids)],
            "grid_name": [f"grid {i}" for i in range(n_grids)],
            "grid_type": np.where(np.arange(n_grids) % 3 == 0, "village", "community"),
        },
        geometry=polys,
        crs="EPSG:4326",
    )
    wgrid = np.arange(n_workers) // 2
    workers = pd.DataFrame(
        {
            "worker_id": [f"W{i:05d}" for i in range(n_workers)],
            "worker_name": [f"worker {i}" for i in range(n_workers)],
            "grid_id": [f"G{g:04d}" for g in wgrid],
            "full_time": True,
        }
    )
    # worker-days: (worker, day) pairs, per_day points each, cut to n_points
    wd_worker = np.repeat(np.arange(n_workers), days)[:n_wd]
    wd_day = np.tile(np.arange(days), n_workers)[:n_wd]
    k = np.tile(np.arange(per_day), n_wd)[:n_points]
    w = np.repeat(wd_worker, per_day)[:n_points]
    d = np.repeat(wd_day, per_day)[:n_points]
    n = len(k)
    # heading random walk per worker-day, speed 1.2 m/s, reflected into the grid
    heading = np.cumsum(rng.normal(0, 0.25, n))
    step = np.full(n, 1.2 * 5.0)
    site_g = np.repeat(np.arange(n_grids), 5)
    sx = gx[site_g] + rng.uniform(50, 950, len(site_g))
    sy = gy[site_g] + rng.uniform(50, 950, len(site_g))
    first = k == 0
    grp = np.cumsum(first) - 1
    if extras:
        # a 4-min stay every 30 min (no progress; the walk resumes from there)
        step[(k % 360) >= 312] = 0.0
    dx, dy = step * np.cos(heading), step * np.sin(heading)
    cx = np.cumsum(dx)
    cy = np.cumsum(dy)
    cx -= (cx - dx)[first][grp]
    cy -= (cy - dy)[first][grp]
    start = rng.uniform(100, 900, size=(n_wd, 2))
    fx = _reflect(cx + start[grp, 0], GRID_M) + gx[wgrid[w]]
    fy = _reflect(cy + start[grp, 1], GRID_M) + gy[wgrid[w]]
    if extras:
        # the first stay of each worker-day is at a site of the worker's grid (a visit)
        stay = (k >= 312) & (k < 360)
        site = wgrid[w] * 5 + (grp % 5)
        fx = np.where(stay, sx[site], fx)
        fy = np.where(stay, sy[site], fy)
    ex, ey = phone_noise(n, 5.0, 4.0, "white", seed=rng)  # the demo's phone noise, from the same stream
    fx = fx + ex
    fy = fy + ey
    if extras:
        spike = k == 100  # one 3 km spike per worker-day (GPS noise: dropped, never a flag)
        fx = np.where(spike, fx + 3000.0, fx)
        # every 7th worker-day, 10 fixes 5 km away (a location-faking app): a teleport
        teleport = (k >= 400) & (k < 410) & (grp % 7 == 0)
        fy = np.where(teleport, fy + 5000.0, fy)
    lon, lat = from_local(fx, fy, *ORIGIN)
    # time: 08:00 + 5 s steps; the second half of the day from 14:00
    sec = 8 * 3600 + k * 5.0 + np.where(k >= per_day // 2, 3 * 3600.0, 0.0)
    base = pd.Timestamp(DAY0, tz=TZ).tz_convert("UTC").value // 1000
    ts_us = base + d.astype(np.int64) * 86_400_000_000 + (sec * 1e6).astype(np.int64)
    mock = np.zeros(n, bool)
    wcat = pd.Categorical.from_codes(w, categories=list(workers["worker_id"]))
    if extras:
        mock[k == 200] = True
        dup = np.flatnonzero(k == 300)
        keep = np.r_[np.arange(n), dup]  # one repeated point per worker-day
        ts_us, lon, lat, mock, wcat = ts_us[keep], lon[keep], lat[keep], mock[keep], wcat[keep]
        n = len(keep)
    pts = pd.DataFrame(
        {
            "worker_id": np.asarray(wcat, dtype=object),
            "ts": pd.to_datetime(ts_us, unit="us", utc=True),
            "lon": lon,
            "lat": lat,
            "accuracy_m": rng.uniform(3, 20, n),
            "speed_mps": np.nan,
            "mock": mock,
        }
    )
    if extras:
        pts = pts.sort_values(["worker_id", "ts"], kind="stable").reset_index(drop=True)
        if n_workers > 2:  # a part-time worker and an unknown phone
            workers.loc[1, "full_time"] = False
            stranger = pts[pts["worker_id"] == workers.loc[2, "worker_id"]].head(500).assign(worker_id="X99999")
            pts = pd.concat([pts, stranger], ignore_index=True)
    slon, slat = from_local(sx, sy, *ORIGIN)
    sites = pd.DataFrame(
        {
            "site_id": [f"S{i:05d}" for i in range(len(site_g))],
            "site_type": np.array(["key_person", "special_group", "care_subject", "hazard_site", "hazard_site"])[
                np.arange(len(site_g)) % 5
            ],
            "grid_id": [f"G{g:04d}" for g in site_g],
            "lon": slon,
            "lat": slat,
            "radius_m": 50.0,
            "label": "",
        }
    )
    leave = pd.DataFrame(columns=["worker_id", "start_date", "end_date", "filed_date", "reason"])
    dates = [DAY0 + timedelta(days=i) for i in range(days)]
    ctx = EngineContext(
        grids=grids,
        workers=workers,
        sites=sites,
        leave=leave,
        workday={dd: dd.weekday() < 5 for dd in dates},
        policy=load_policy(),
        tz=TZ,
    )
    return pts, ctx


def _reflect(v: np.ndarray, size: float) -> np.ndarray:
    m = np.mod(v, 2 * size)
    return np.where(m > size, 2 * size - m, m)


# --- workspaces -----------------------------------------------------------------------------
def write_workspace(
    root: Path,
    pts: pd.DataFrame,
    ctx: EngineContext,
    *,
    files: int = 4,
    formats: tuple[str, ...] = ("parquet-typed",),
    crs: str = "wgs84",
    bad_share: float = 0.0,
    seed: int = 7,
) -> Path:
    """Write ``ctx``'s grids, workers and sites and ``pts`` as inbox files into a workspace.

    The points are dealt round-robin over ``files`` files written in ``formats`` (cycled; see
    :data:`INBOX_FORMATS`); ``bad_share`` of the rows get a broken latitude (quarantined).
    """
    root = Path(root)
    (root / "grids_geojson").mkdir(parents=True, exist_ok=True)
    ctx.grids.to_file(root / "grids_geojson" / "grids.geojson", driver="GeoJSON")
    ctx.workers.to_csv(root / "workers.csv", index=False)
    ctx.sites.to_csv(root / "sites.csv", index=False)
    (root / "patrol.toml").write_text(f'gps_crs = "{crs}"\n')
    rng = np.random.default_rng(seed)
    ts_ms = pts["ts"].to_numpy().astype("datetime64[ms]").astype(np.int64)
    bad = rng.random(len(pts)) < bad_share
    write_inbox(
        root / "inbox" / "gps",
        pa.array(pts["worker_id"].astype(str).to_numpy()),
        ts_ms,
        pts["lon"].to_numpy(),
        pts["lat"].to_numpy(),
        pts["accuracy_m"].to_numpy().round(1),
        bad,
        files=files,
        formats=formats,
        mock=pts["mock"].to_numpy() if "mock" in pts.columns else None,
    )
    return root


def write_inbox(
    inbox: Path,
    ids: pa.Array,
    ts_ms: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    acc: np.ndarray,
    bad: np.ndarray,
    *,
    files: int = 4,
    formats: tuple[str, ...] = INBOX_FORMATS,
    mock: np.ndarray | None = None,
    seed: int = 7,
) -> None:
    """Points into ``files`` inbox files, rows dealt at random, formats cycled over the files."""
    inbox.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = len(ts_ms)
    for i, idx in enumerate(np.array_split(rng.permutation(n), files)):
        idx = np.sort(idx)
        fmt = formats[i % len(formats)]
        ts = pa.array(ts_ms[idx]).cast(pa.timestamp("ms", tz="UTC"))
        lat_col = pa.array(lat[idx])
        table = {"worker_id": ids.take(pa.array(idx)), "lon": pa.array(lon[idx]), "accuracy_m": pa.array(acc[idx])}
        if mock is not None:
            table["mock"] = pa.array(mock[idx])
        broken = pa.array(bad[idx])
        if fmt == "csv-iso":  # ISO-8601 with offset; broken latitude as text
            local = pc.strftime(pc.cast(ts, pa.timestamp("ms", tz="Asia/Shanghai")), format="%Y-%m-%dT%H:%M:%S")
            text_lat = pc.if_else(broken, pa.scalar("n/a"), pc.cast(lat_col, pa.string()))
            pacsv.write_csv(
                pa.table({**table, "ts": pc.binary_join_element_wise(local, "+08:00", ""), "lat": text_lat}),
                inbox / f"part{i}-iso.csv",
            )
            continue
        lat_bad = pc.if_else(broken, pa.scalar(95.0), lat_col)
        if fmt == "csv-epoch":
            pacsv.write_csv(
                pa.table({**table, "ts": pa.array(ts_ms[idx]), "lat": lat_bad}), inbox / f"part{i}-epoch.csv"
            )
        elif fmt == "parquet-typed":
            pq.write_table(pa.table({**table, "ts": ts, "lat": lat_bad}), inbox / f"part{i}-typed.parquet")
        elif fmt == "parquet-epoch":
            pq.write_table(
                pa.table({**table, "ts": pa.array(ts_ms[idx]), "lat": lat_bad}), inbox / f"part{i}-epoch.parquet"
            )
        else:
            raise ValueError(f"format was '{fmt}' but is expected to be one of {INBOX_FORMATS}")


# the ingest benchmark's inbox: one big grid, 200 workers, 30 days, 0.5 % repeats, 0.1 % broken
N_WORKERS = 200
INGEST_ORIGIN = (119.95, 31.78)
T0_MS = 1_790_784_000_000  # 2026-10-01T00:00:00+08:00


def build_ingest_workspace(root: Path, n_points: int, crs: str = "wgs84", seed: int = 7) -> None:
    """Write a workspace with one grid, ``N_WORKERS`` workers and ``n_points`` inbox points."""
    rng = np.random.default_rng(seed)
    (root / "grids_geojson").mkdir(parents=True, exist_ok=True)
    lo, la = INGEST_ORIGIN
    ring = [
        [lo - 0.05, la - 0.05],
        [lo + 0.05, la - 0.05],
        [lo + 0.05, la + 0.05],
        [lo - 0.05, la + 0.05],
        [lo - 0.05, la - 0.05],
    ]
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"grid_id": "G1", "grid_name": "bench", "grid_type": "community"},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        ],
    }
    (root / "grids_geojson" / "grids.geojson").write_text(json.dumps(fc))
    (root / "workers.csv").write_text(
        "worker_id,worker_name,grid_id,full_time\n" + "".join(f"W{i:04d},n{i},G1,true\n" for i in range(N_WORKERS))
    )
    (root / "patrol.toml").write_text(f'gps_crs = "{crs}"\n')
    # every worker samples every 5 s: point k of worker w at T0 + (k * 5 s); distinct (worker, ts)
    worker = rng.integers(0, N_WORKERS, n_points)
    worker = worker[np.argsort(worker, kind="stable")]
    k = np.arange(n_points) - np.searchsorted(worker, worker)
    step_ms = max(5000, 30 * 86_400_000 * N_WORKERS // max(n_points, 1))  # spread over 30 days
    ts_ms = T0_MS + k * step_ms + (worker * 37) % 5000
    lon = lo + rng.normal(0, 0.01, n_points)
    lat = la + rng.normal(0, 0.01, n_points)
    acc = rng.uniform(3, 30, n_points).round(1)
    dup = rng.random(n_points) < 0.005
    ts_ms[dup] = ts_ms[np.maximum(np.flatnonzero(dup) - 1, 0)]
    worker[dup] = worker[np.maximum(np.flatnonzero(dup) - 1, 0)]
    bad = rng.random(n_points) < 0.001
    ids = pa.array(np.char.add("W", np.char.zfill(worker.astype(str), 4)))
    write_inbox(root / "inbox" / "gps", ids, ts_ms, lon, lat, acc, bad, files=4, formats=INBOX_FORMATS, seed=seed)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, required=True, help="workspace folder to write")
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--days", type=int, default=5)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--formats", default="parquet-typed", help=f"comma-separated, of {','.join(INBOX_FORMATS)}")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    pts, ctx = make_data(a.points, a.days, extras=True)
    write_workspace(a.dir, pts, ctx, files=a.files, formats=tuple(a.formats.split(",")))
    print(
        f"{len(pts):,} points, {len(ctx.workers)} workers, {len(ctx.grids)} grids, {a.days} days from {DAY0} "
        f"written to {a.dir} in {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
