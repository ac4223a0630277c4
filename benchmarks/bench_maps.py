"""Benchmark: the month's maps from the store, one-shot (the whole month's points in one frame) vs bounded.

    python -m benchmarks.bench_maps                            # 3 M point_use rows (~2–3 min, 2 cores)
    python -m benchmarks.bench_maps --points 600000 --budget 100000   # a quick look

A synthetic month store (benchmarks.generate's walks: ~70 workers in 35 grids, 20 days of
October 2026) is written straight into ``store/point_use`` and ``worker_day`` (the engine is not
run: only the maps are measured). Then the maps are rendered twice, each in a fresh child
process: ``one-shot`` reads the month with ``read_month_frames`` and calls ``render_month`` (what
``render_workspace_month`` did before issue 12); ``bounded`` calls ``render_workspace_month`` with
``--budget`` rows a batch. Each child's wall time and peak RSS (``os.wait4``'s ``ru_maxrss``) are
printed, and whether both wrote the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.procmem import run_child

MONTH = "2026-10"
DAYS = 20  # DAY0 (2026-10-12) .. 2026-10-31


def build_store(root: Path, n_points: int, seed: int = 11) -> int:
    """A workspace at ``root`` whose store holds ~``n_points`` point_use rows of ``MONTH``; rows written."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from benchmarks.generate import make_data
    from trajectory import contract as c
    from trajectory.store import connect, replace_rows, write_parquet_atomic
    from trajectory.workspace import WorkspacePaths

    pts, ctx = make_data(n_points, DAYS, seed=seed, extras=True)
    paths = WorkspacePaths(root)
    paths.grids_dir.mkdir(parents=True, exist_ok=True)
    ctx.grids.to_file(paths.grids_dir / "grids.geojson", driver="GeoJSON")
    ctx.workers.to_csv(paths.workers, index=False)
    ctx.sites.to_csv(paths.sites, index=False)
    rng = np.random.default_rng(seed)
    pts["date"] = pts["ts"].dt.tz_convert("Asia/Shanghai").dt.strftime("%Y-%m-%d")
    grid_of = ctx.workers.set_index("worker_id")["grid_id"]
    pts["grid_id"] = pts["worker_id"].map(grid_of)
    # verdicts like the engine's: mock and spikes dropped, a few duplicates and accuracy drops
    reason = np.full(len(pts), None, dtype=object)
    reason[pts["mock"].to_numpy()] = "mock_location"
    roll = rng.random(len(pts))
    reason[(roll < 0.02) & (reason == None)] = "accuracy"  # noqa: E711 (object array)
    reason[(roll > 0.995) & (reason == None)] = "duplicate"  # noqa: E711
    pts["reason"] = reason
    pts["counted"] = pd.isna(pts["reason"])
    pts["in_grid"] = pts["grid_id"].notna()
    con = connect(paths)
    try:
        for day, part in pts.groupby("date", sort=True):  # one file per day, like the engine's
            table = pa.Table.from_pandas(
                part[[col for col in c.POINT_USE_COLUMNS if col != "date"]], preserve_index=False
            )
            write_parquet_atomic(table, paths.point_use_store / f"date={day}" / "part.parquet")
        wd = pts.groupby(["worker_id", "date"], sort=True).agg(grid_id=("grid_id", "first"), n=("ts", "size"))
        wd = wd.reset_index()
        wd = wd[wd["grid_id"].notna()]
        status = np.array(["ok", "ok", "ok", "short", "absent"], dtype=object)[rng.integers(0, 5, len(wd))]
        worker_day = pd.DataFrame(
            {
                "worker_id": wd["worker_id"],
                "grid_id": wd["grid_id"],
                "date": pd.to_datetime(wd["date"]).dt.date,
                "workday": True,
                "exempt": False,
                "patrol_s": wd["n"] * 5.0,
                "patrol_m": wd["n"] * 6.0,
                "am_s": wd["n"] * 2.5,
                "pm_s": wd["n"] * 2.5,
                "status": status,
            }
        )
        replace_rows(con, c.WORKER_DAY, worker_day, "true")
        replace_rows(
            con,
            c.SITE_CHECK,
            pd.DataFrame(
                {
                    "site_id": ctx.sites["site_id"],
                    "site_type": ctx.sites["site_type"],
                    "grid_id": ctx.sites["grid_id"],
                    "period_start": pd.Timestamp("2026-10-01").date(),
                    "period_end": pd.Timestamp("2026-10-31").date(),
                    "visited": rng.random(len(ctx.sites)) < 0.7,
                }
            ),
            "true",
        )
    finally:
        con.close()
    return len(pts)


def child(root: Path, mode: str, budget: int, n_points: int) -> int:
    """Build the store (``mode`` build) or render the month's maps (one-shot, bounded): run in a
    fresh process by :func:`main`, so the parent stays small (a child forked from a big parent
    starts with the parent's RSS in its ``ru_maxrss``)."""
    if mode == "build":
        print(f"{build_store(root, n_points)} rows", file=sys.stderr)
        return 0
    from maps.build import render_workspace_month, render_workspace_month_at_once
    from trajectory.store import connect
    from trajectory.workspace import load_workspace

    ws = load_workspace(root)
    con = connect(ws.paths, read_only=True)
    try:
        if mode == "bounded":
            pages = render_workspace_month(ws, con, MONTH, max_batch_rows=budget)
        else:
            pages = render_workspace_month_at_once(ws, con, MONTH)
    finally:
        con.close()
    print(f"{len(pages)} pages", file=sys.stderr)
    return 0


def _run(root: Path, mode: str, budget: int, n_points: int = 0) -> tuple[float, float]:
    """One child: wall seconds and peak RSS in MB."""
    cmd = [sys.executable, "-m", "benchmarks.bench_maps", "--child", mode, "--dir", str(root), "--budget", str(budget)]
    cmd += ["--points", str(n_points)]
    wall, rss, code, text = run_child(cmd)  # this process stays small: the RSS is the child's
    if code != 0:
        raise SystemExit(f"{mode} child exited {code}:\n{text[-3000:]}")
    return wall, rss


def _digest(out: Path) -> dict[str, str]:
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*.html"))
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=3_000_000, help="point_use rows of the month")
    ap.add_argument(
        "--budget", type=int, nargs="+", default=None, help="rows a batch, one bounded run each (default 1000000)"
    )
    ap.add_argument("--dir", type=Path, default=None, help="workspace folder (default: a temporary one)")
    ap.add_argument("--child", choices=("build", "one-shot", "bounded"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    budgets = a.budget or [1_000_000]  # maps.build.MAX_BATCH_ROWS (not imported: the parent stays small)
    if a.child:
        return child(a.dir, a.child, budgets[0], a.points)
    root = a.dir or Path(tempfile.mkdtemp(prefix="gridpatrol-maps-"))
    if root.exists() and any(root.iterdir()):
        shutil.rmtree(root)
    t0 = time.perf_counter()
    _run(root, "build", budgets[0], a.points)
    print(f"store {root}: ~{a.points:,} point_use rows in {MONTH} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    out = root / "out" / MONTH  # WorkspacePaths.out_month (not imported: the parent stays small)
    print("| path | rows a batch | wall s | peak RSS MB |\n|---|---:|---:|---:|")
    digests = []
    for mode, budget in [("one-shot", 0)] + [("bounded", b) for b in budgets]:
        wall, rss = _run(root, mode, budget)
        digests.append(_digest(out))
        print(f"| {mode} | {f'≤ {budget:,}' if budget else 'all'} | {wall:.1f} | {rss:.0f} |", flush=True)
    same = all(d == digests[0] for d in digests)
    print(f"\n{len(digests[0])} pages, identical bytes in every run: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
