"""Benchmark: ``trajectory.ingest.ingest_inbox`` on a synthetic inbox.

    python -m benchmarks.bench_ingest --points 4000000
    python -m benchmarks.bench_ingest --points 4000000 --crs gcj02 --dir /tmp/bench-ws

The inbox holds the points in four files of equal size: a CSV with ISO-8601 timestamps with
offset (the slowest text path), a gzip-free CSV with epoch milliseconds, a Parquet file with a
typed UTC timestamp and a Parquet file with integer epoch milliseconds; 200 workers, points
spread over 30 days, 0.1 % of rows broken (quarantined) and 0.5 % repeated (duplicates).

The ingest runs in a fresh child process so that its peak RSS (``getrusage``) does not include
the generation of the files.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

N_WORKERS = 200
ORIGIN = (119.95, 31.78)
T0_MS = 1_790_784_000_000  # 2026-10-01T00:00:00+08:00


def build_workspace(root: Path, n_points: int, crs: str = "wgs84", seed: int = 7) -> None:
    """Write a workspace with one grid, ``N_WORKERS`` workers and ``n_points`` inbox points."""
    rng = np.random.default_rng(seed)
    (root / "grids_geojson").mkdir(parents=True, exist_ok=True)
    lo, la = ORIGIN
    ring = [[lo - 0.05, la - 0.05], [lo + 0.05, la - 0.05], [lo + 0.05, la + 0.05], [lo - 0.05, la + 0.05], [lo - 0.05, la - 0.05]]
    fc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {"grid_id": "G1", "grid_name": "bench", "grid_type": "community"},
                      "geometry": {"type": "Polygon", "coordinates": [ring]}}],
    }
    (root / "grids_geojson" / "grids.geojson").write_text(json.dumps(fc))
    (root / "workers.csv").write_text("worker_id,worker_name,grid_id,full_time\n" + "".join(f"W{i:04d},n{i},G1,true\n" for i in range(N_WORKERS)))
    (root / "patrol.toml").write_text(f'gps_crs = "{crs}"\n')
    inbox = root / "inbox" / "gps"
    inbox.mkdir(parents=True, exist_ok=True)

    # every worker samples every 5 s: point k of worker w at T0 + (k * 5 s); distinct (worker, ts)
    worker = rng.integers(0, N_WORKERS, n_points)
    order = np.argsort(worker, kind="stable")
    worker = worker[order]
    k = np.arange(n_points) - np.searchsorted(worker, worker)
    # spread over 30 days (5 s sampling at most)
    step_ms = max(5000, 30 * 86_400_000 * N_WORKERS // max(n_points, 1))
    ts_ms = T0_MS + k * step_ms + (worker * 37) % 5000
    lon = lo + rng.normal(0, 0.01, n_points)
    lat = la + rng.normal(0, 0.01, n_points)
    acc = rng.uniform(3, 30, n_points).round(1)
    # 0.5 % repeated rows (duplicates), 0.1 % broken latitude (quarantined)
    dup = rng.random(n_points) < 0.005
    ts_ms[dup] = ts_ms[np.maximum(np.flatnonzero(dup) - 1, 0)]
    worker[dup] = worker[np.maximum(np.flatnonzero(dup) - 1, 0)]
    bad = rng.random(n_points) < 0.001
    ids = pa.array(np.char.add("W", np.char.zfill(worker.astype(str), 4)))
    parts = np.array_split(rng.permutation(n_points), 4)
    for i, idx in enumerate(parts):
        idx = np.sort(idx)
        ts = pa.array(ts_ms[idx]).cast(pa.timestamp("ms", tz="UTC"))
        lat_col = pa.array(lat[idx])
        table = {"worker_id": ids.take(idx), "lon": pa.array(lon[idx]), "accuracy_m": pa.array(acc[idx])}
        if i == 0:  # CSV, ISO-8601 with offset; broken latitude as text
            local = pc.strftime(pc.cast(ts, pa.timestamp("ms", tz="Asia/Shanghai")), format="%Y-%m-%dT%H:%M:%S")
            text_lat = pc.if_else(pa.array(bad[idx]), pa.scalar("n/a"), pc.cast(lat_col, pa.string()))
            pacsv.write_csv(pa.table({**table, "ts": pc.binary_join_element_wise(local, "+08:00", ""), "lat": text_lat}), inbox / "part0-iso.csv")
        elif i == 1:  # CSV, epoch milliseconds
            lat_bad = pc.if_else(pa.array(bad[idx]), pa.scalar(95.0), lat_col)
            pacsv.write_csv(pa.table({**table, "ts": pa.array(ts_ms[idx]), "lat": lat_bad}), inbox / "part1-epoch.csv")
        elif i == 2:  # Parquet, typed timestamp
            lat_bad = pc.if_else(pa.array(bad[idx]), pa.scalar(95.0), lat_col)
            pq.write_table(pa.table({**table, "ts": ts, "lat": lat_bad}), inbox / "part2-typed.parquet")
        else:  # Parquet, epoch milliseconds
            lat_bad = pc.if_else(pa.array(bad[idx]), pa.scalar(95.0), lat_col)
            pq.write_table(pa.table({**table, "ts": pa.array(ts_ms[idx]), "lat": lat_bad}), inbox / "part3-epoch.parquet")


def run_ingest(root: Path) -> dict:
    """Ingest ``root``'s inbox in this process; returns timings and counts."""
    from trajectory import store
    from trajectory.ingest import ingest_inbox
    from trajectory.workspace import load_workspace

    ws = load_workspace(root)
    con = store.connect(ws.paths)
    t0 = time.perf_counter()
    report = ingest_inbox(ws, con, "bench", progress=False)
    seconds = time.perf_counter() - t0
    rows = sum(f["rows_read"] for f in report.files)
    return {
        "seconds": seconds,
        "rows_read": rows,
        "accepted": report.rows_accepted,
        "duplicate": report.rows_duplicate,
        "quarantined": report.rows_quarantined,
        "dates": len(report.dates_touched),
        "points_per_s": rows / seconds if seconds else float("nan"),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "files": [{k: f[k] for k in ("name", "rows_read", "accepted", "duplicate", "quarantined")} for f in report.files],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--crs", default="wgs84", choices=("wgs84", "gcj02", "bd09", "cgcs2000"))
    ap.add_argument("--dir", type=Path, help="workspace folder (default: a temporary one)")
    ap.add_argument("--ingest-only", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.ingest_only:
        print(json.dumps(run_ingest(args.ingest_only)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        root = (args.dir or Path(tmp) / "ws").resolve()
        t0 = time.perf_counter()
        build_workspace(root, args.points, args.crs)
        size = sum(p.stat().st_size for p in (root / "inbox" / "gps").iterdir())
        print(f"generated {args.points:,} points in 4 files ({size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s", flush=True)
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_ingest", "--ingest-only", str(root)], capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            return out.returncode
        r = json.loads(out.stdout.strip().splitlines()[-1])
    for f in r["files"]:
        print(f"  {f['name']:<22} rows {f['rows_read']:>9,}  accepted {f['accepted']:>9,}  duplicate {f['duplicate']:>7,}  quarantined {f['quarantined']:>6,}")
    print(
        f"ingest: {r['rows_read']:,} rows in {r['seconds']:.2f} s = {r['points_per_s']:,.0f} points/s; "
        f"accepted {r['accepted']:,}, duplicate {r['duplicate']:,}, quarantined {r['quarantined']:,}, "
        f"{r['dates']} dates; peak RSS {r['peak_rss_mb']:,.0f} MB (crs {args.crs})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
