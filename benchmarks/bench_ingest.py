"""Benchmark: ``trajectory.ingest.ingest_inbox`` on a synthetic inbox.

    python -m benchmarks.bench_ingest --points 4000000
    python -m benchmarks.bench_ingest --points 4000000 --crs gcj02 --dir /tmp/bench-ws
    python -m benchmarks.bench_ingest --points 20000000 --files 1 --formats csv-iso

The inbox holds the points in four files of equal size: a CSV with ISO-8601 timestamps with
offset (the slowest text path), a gzip-free CSV with epoch milliseconds, a Parquet file with a
typed UTC timestamp and a Parquet file with integer epoch milliseconds; 200 workers, points
spread over 30 days, 0.1 % of rows broken (quarantined) and 0.5 % repeated (duplicates).

``--files`` and ``--formats`` change that layout (``--files 1``: one big file, the case that
bounds ingest's memory by its chunk size rather than the file's).

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
from typing import Any

from benchmarks import generate
from benchmarks.generate import INBOX_FORMATS


def build_workspace(
    root: Path, n_points: int, crs: str, files: int = 4, formats: tuple[str, ...] = INBOX_FORMATS
) -> None:
    """``generate.build_ingest_workspace`` with the inbox split into ``files`` files of ``formats``."""
    real = generate.write_inbox

    def write_inbox(*args: object, **kwargs: object) -> None:
        real(*args, **{**kwargs, "files": files, "formats": formats})  # type: ignore[arg-type]

    generate.write_inbox = write_inbox  # type: ignore[assignment]
    try:
        generate.build_ingest_workspace(root, n_points, crs)
    finally:
        generate.write_inbox = real


def _peak_rss_mb() -> float:
    """This process's peak RSS. On Linux ``VmHWM``: ``ru_maxrss`` survives ``exec`` and would
    report the generating parent's size at fork time when that is larger than the ingest."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_ingest(root: Path) -> tuple[Any, Any, Any, float, int]:
    """Ingest ``root``'s inbox in this process: the workspace, its open store connection, the
    report, the seconds and the rows read (bench_scale times the day job after it)."""
    from trajectory import store
    from trajectory.ingest import ingest_inbox
    from trajectory.workspace import load_workspace

    ws = load_workspace(root)
    con = store.connect(ws.paths)
    t0 = time.perf_counter()
    report = ingest_inbox(ws, con, "bench", progress=False)
    return ws, con, report, time.perf_counter() - t0, sum(f["rows_read"] for f in report.files)


def run_ingest(root: Path) -> dict:
    """Ingest ``root``'s inbox in this process; returns timings and counts."""
    _, con, report, seconds, rows = timed_ingest(root)
    con.close()
    return {
        "seconds": seconds,
        "rows_read": rows,
        "accepted": report.rows_accepted,
        "duplicate": report.rows_duplicate,
        "quarantined": report.rows_quarantined,
        "dates": len(report.dates_touched),
        "points_per_s": rows / seconds if seconds else float("nan"),
        "peak_rss_mb": _peak_rss_mb(),
        "files": [
            {k: f[k] for k in ("name", "rows_read", "accepted", "duplicate", "quarantined")} for f in report.files
        ],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--crs", default="wgs84", choices=("wgs84", "gcj02", "bd09", "cgcs2000"))
    ap.add_argument("--files", type=int, default=4, help="inbox files (default 4)")
    ap.add_argument("--formats", default=",".join(INBOX_FORMATS), help="comma-separated, cycled over the files")
    ap.add_argument("--dir", type=Path, help="workspace folder (default: a temporary one)")
    ap.add_argument("--ingest-only", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.ingest_only:
        print(json.dumps(run_ingest(args.ingest_only)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        root = (args.dir or Path(tmp) / "ws").resolve()
        t0 = time.perf_counter()
        build_workspace(root, args.points, args.crs, args.files, tuple(args.formats.split(",")))
        size = sum(p.stat().st_size for p in (root / "inbox" / "gps").iterdir())
        print(
            f"generated {args.points:,} points in {args.files} files ({size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_ingest", "--ingest-only", str(root)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            return out.returncode
        r = json.loads(out.stdout.strip().splitlines()[-1])
    for f in r["files"]:
        print(
            f"  {f['name']:<22} rows {f['rows_read']:>9,}  accepted {f['accepted']:>9,}  duplicate {f['duplicate']:>7,}  quarantined {f['quarantined']:>6,}"
        )
    print(
        f"ingest: {r['rows_read']:,} rows in {r['seconds']:.2f} s = {r['points_per_s']:,.0f} points/s; "
        f"accepted {r['accepted']:,}, duplicate {r['duplicate']:,}, quarantined {r['quarantined']:,}, "
        f"{r['dates']} dates; peak RSS {r['peak_rss_mb']:,.0f} MB (crs {args.crs})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
