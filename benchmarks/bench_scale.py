"""Benchmark at scale: MovingPandas vs our engine (ingest + batched engine) vs Spark local[2].

    python -m benchmarks.bench_scale --sizes 0.2,4,20            # millions of points
    python -m benchmarks.bench_scale --sizes 4 --variants ours,spark

One synthetic workspace per size (benchmarks.generate: realistic patrol with stays at sites,
spikes, mock points, repeats; 5 days; Parquet inbox files). Each variant runs in a fresh
child process; its peak memory is the peak of the sum of PSS (proportional set size: shared pages split
between the processes sharing them) over the child's process tree (the JVM and
Spark's Python workers included), sampled every 50 ms with psutil.

- ``movingpandas``: gap split, clip, length and duration per worker-day (bench_engine's
  function) on the points in memory; sizes ≤ ``--mp-max`` only (it is too slow beyond).
- ``ours``: ``ingest_inbox`` (timed apart) then ``trajectory.run.process_dates`` itself: the
  dates in batches of ``DAYS_PER_BATCH``, each with ``process_days_batched`` over worker
  batches loaded from DuckDB (``gps_point``), the tables and the point_use store written.
- ``spark``: ``process_days_spark`` on the ingested Parquet store, local[2] (compute only,
  after ``ours`` ingested the store), results collected to the driver.

Writes a Markdown table to ``benchmarks/out/scale.md`` and stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import psutil

from benchmarks.procmem import PeakPss

OUT = Path(__file__).resolve().parent / "out" / "scale.md"
DAYS = 5


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} CPUs (nproc), {ram:.1f} GiB RAM, {model}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


# --- variants (run in the child) -------------------------------------------------------------
def _dates(root: Path) -> list[date]:
    meta = json.loads((root / "bench.json").read_text())
    d0 = date.fromisoformat(meta["day0"])
    return [d0 + timedelta(days=i) for i in range(meta["days"])]


def variant_movingpandas(root: Path, n: int) -> dict:
    from benchmarks.bench_engine import run_movingpandas
    from benchmarks.generate import make_data

    pts, ctx = make_data(n, DAYS, extras=True)
    secs, _ = run_movingpandas(pts, ctx)
    return {"points": len(pts), "seconds": secs}


def variant_ours(root: Path, n: int) -> dict:
    """The nightly command's own path: ``ingest_inbox`` then ``trajectory.dayjob.process_dates``
    (worker batches on both cores, tables and the point_use store written)."""
    from benchmarks.bench_ingest import timed_ingest
    from trajectory.dayjob import DayPool, process_dates

    # as the nightly run (trajectory.pipeline.run_pipeline): the pool forked before ingest, while
    # this process is small (forked after it, each pool process would begin with ingest's memory)
    pool = DayPool()
    try:
        if pool.workers > 1:
            pool.start()
        ws, con, _, t_ingest, rows = timed_ingest(root)
        t1 = time.perf_counter()
        process_dates(ws, con, _dates(root), progress=False, run_id="bench", pool=pool)
        t_engine = time.perf_counter() - t1
    finally:
        pool.close()
    worker_days = con.execute("SELECT count(*) FROM worker_day").fetchone()[0]
    con.close()
    return {
        "points": rows,
        "seconds": t_ingest + t_engine,
        "ingest_s": t_ingest,
        "engine_s": t_engine,
        "worker_days": worker_days,
    }


def variant_spark(root: Path, n: int) -> dict:
    from trajectory.dayjob import engine_context
    from trajectory.spark_engine import process_days_spark, spark_session
    from trajectory.workspace import load_workspace

    ws = load_workspace(root)
    days = _dates(root)
    spark = spark_session(app="bench-scale", master="local[2]", **{"spark.driver.memory": "4g"})
    spark.sparkContext.setLogLevel("ERROR")
    t0 = time.perf_counter()
    res = process_days_spark(spark, str(root / "store" / "gps"), engine_context(ws, days), days)
    secs = time.perf_counter() - t0
    spark.stop()
    return {"points": int(res.point_use.shape[0]), "seconds": secs, "worker_days": len(res.worker_day)}


VARIANTS = {"movingpandas": variant_movingpandas, "ours": variant_ours, "spark": variant_spark}


# --- the parent ----------------------------------------------------------------------------------
def run_child(name: str, root: Path, n: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_scale", "--child", name, "--root", str(root), "--n", str(n)]
    proc = psutil.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    with PeakPss(proc) as peak:
        out, err = proc.communicate()
    if proc.returncode != 0:
        return {"error": err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"}
    r = json.loads(out.strip().splitlines()[-1])
    r["peak_rss_mb"] = peak.bytes / 2**20
    return r


def build(root: Path, n: int) -> None:
    from benchmarks.generate import DAY0, make_data, write_workspace

    pts, ctx = make_data(n, DAYS, extras=True)
    write_workspace(root, pts, ctx, files=max(4, n // 1_000_000), formats=("parquet-typed",))
    (root / "bench.json").write_text(json.dumps({"day0": DAY0.isoformat(), "days": DAYS, "points": len(pts)}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="0.2,4", help="millions of points, comma-separated")
    ap.add_argument("--variants", default="movingpandas,ours,spark")
    ap.add_argument("--mp-max", type=float, default=0.2, help="largest size (M) for MovingPandas")
    ap.add_argument("--spark-max", type=float, default=4.0, help="largest size (M) for Spark")
    ap.add_argument("--dir", type=Path, help="where to build the workspaces (default: a temporary folder)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(VARIANTS[a.child](a.root, a.n)))
        return 0
    import warnings

    warnings.filterwarnings("ignore")
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=a.dir))
    variants = a.variants.split(",")
    rows = []
    try:
        for size in (float(s) for s in a.sizes.split(",")):
            n = int(size * 1e6)
            root = tmp / f"ws-{size:g}M"
            t0 = time.perf_counter()
            build(root, n)
            print(f"[{size:g} M] workspace built in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
            res = {}
            for v in ("ours", "movingpandas", "spark"):  # ours first: it ingests the store Spark reads
                if (
                    v not in variants
                    or (v == "movingpandas" and size > a.mp_max)
                    or (v == "spark" and size > a.spark_max)
                ):
                    continue
                res[v] = run_child(v, root, n)
                print(f"[{size:g} M] {v}: {res[v]}", file=sys.stderr, flush=True)
            base = res.get("movingpandas", {}).get("seconds")
            for v, r in res.items():
                rows.append((size, v, r, base))
            shutil.rmtree(root, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = _table(rows)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)
    return 0


def _table(rows: list) -> str:
    lines = [
        "# bench_scale",
        "",
        f"Machine: {machine()}",
        "",
        "| size | variant | points | ingest s | engine s | total s | points/s (total) | × MovingPandas | peak PSS MB (process tree) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, v, r, base in rows:
        if "error" in r:
            lines.append(f"| {size:g} M | {v} | failed: {r['error']} | | | | | | |")
            continue
        pts, secs = r["points"], r["seconds"]
        ratio = f"{base / secs:.1f}" if base else "–"
        ing = f"{r['ingest_s']:.2f}" if "ingest_s" in r else "–"
        eng = f"{r.get('engine_s', secs):.2f}"
        lines.append(
            f"| {size:g} M | {v} | {pts:,} | {ing} | {eng} | {secs:.2f} | {pts / secs:,.0f} | {ratio} | {r['peak_rss_mb']:,.0f} |"
        )
    lines += [
        "",
        "ours = ingest (Parquet inbox → store) + trajectory.run.process_dates (worker batches on 2 processes, tables and point_use written), "
        "spark = compute only on the ingested store (local[2], collected); movingpandas = "
        "split + clip + length per worker-day on points already in memory.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
