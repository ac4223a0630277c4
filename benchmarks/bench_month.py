"""Benchmark: does the nightly run cost what the new day costs, whatever the month has piled up?

    python -m benchmarks.bench_month                              # 30 nights × 1.5 M points (~10 min)
    python -m benchmarks.bench_month --nights 5 --points 200000   # a quick look

One synthetic workspace (benchmarks.generate: ~700 workers at 1.5 M points a day, stays at
sites, spikes, a teleport, mock and repeated points), November 2026. Each night one Parquet
file of that day's points is dropped into the inbox, then the nightly command
``python -m trajectory.run --workspace DIR --date D`` (D the night's day, as a production
night's yesterday) runs in a fresh child process: ingest, the day
job, the month step (weeks, findings, replays from the stored day signatures). Each night's
wall time and the run's peak RSS (``os.wait4`` in a small launcher process) are printed; the last lines compare the
last night with the first (issue 12's targets: ≤ 1.2× the time, ≤ 1.3× and ≤ 1.5 GB the memory).

This machine's speed drifts by 10–20 % over minutes, more than what the month adds, so the
night-30/night-1 ratio of one pass is mostly the drift between its two ends. The paired phase
(``--pairs N``, default 5) measures the two nights at the same moments: the store as it was
before night 1 and before the last night is kept (Parquet parts hard-linked: a run never writes
into an existing part; the rest copied), and N times each of the two nights is run again on a
fresh copy of its store with its own file, alternately; the medians' ratio is printed too.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from benchmarks.generate import DAY0, make_data, write_inbox, write_workspace
from benchmarks.procmem import ChildLauncher

MONTH_START = date(2026, 11, 1)


def _day_points(n: int, night: int) -> pd.DataFrame:
    """The points of night ``night`` (0-based): a fresh walk of every worker, on that date."""
    pts, _ = make_data(n, 1, seed=1000 + night, extras=True)
    shift = pd.Timedelta(days=(MONTH_START - DAY0).days + night)
    return pts.assign(ts=pts["ts"] + shift)


def _drop(inbox: Path, pts: pd.DataFrame, night: int) -> None:
    ts_ms = np.asarray(pts["ts"].dt.as_unit("ms").array.asi8, dtype=np.int64)
    day_dir = inbox / f"night{night + 1:02d}"
    write_inbox(
        day_dir,
        pa.array(pts["worker_id"].astype(str).to_numpy()),
        ts_ms,
        pts["lon"].to_numpy(),
        pts["lat"].to_numpy(),
        pts["accuracy_m"].to_numpy().round(1),
        np.zeros(len(pts), bool),
        files=1,
        formats=("parquet-typed",),
        mock=pts["mock"].to_numpy(),
    )
    for f in day_dir.iterdir():  # one file per night, straight into the inbox
        f.rename(inbox / f"{MONTH_START + timedelta(days=night)}-{f.name}")
    day_dir.rmdir()


def _night(launcher: ChildLauncher, root: Path, night: int) -> tuple[float, float, int, dict[str, float]]:
    """Run the nightly command for night ``night`` (0-based) once (from the small launcher: the
    benchmark holds ~1 GB of generated points, which a child forked from it would count in its
    ``ru_maxrss``); wall seconds, its peak RSS in MB, exit code and the seconds its log gives the
    ingest, the day job and the month step. The command names the night's day (``--date``): a
    production night's file is of yesterday, which the plain command recomputes; these nights'
    dates are not yesterday, and the plain command would also recompute the real yesterday."""
    day = (MONTH_START + timedelta(days=night)).isoformat()
    cmd = [sys.executable, "-m", "trajectory.run", "--workspace", str(root), "--no-progress", "--date", day]
    wall, rss, code, text = launcher.run(cmd)
    if code != 0:
        print(text[-2000:], file=sys.stderr)
    stages: dict[str, float] = {}
    for step, seconds in re.findall(r"step=(ingest|days|month) .*?seconds=([0-9.]+)", text):
        stages[step] = stages.get(step, 0.0) + float(seconds)
    return wall, rss, code, stages


def _snapshot(root: Path, dst: Path) -> Path:
    """A copy of the workspace ``root`` at ``dst``: Parquet files hard-linked (the runs only add
    and rename them), everything else (the DuckDB store, the settings) copied."""

    def link_or_copy(src: str, target: str) -> None:
        if src.endswith(".parquet"):
            os.link(src, target)
        else:
            shutil.copy2(src, target)

    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(root, dst, copy_function=link_or_copy)
    return dst


def _pairs(
    launcher: ChildLauncher, snaps: Path, nights: list[int], n: int
) -> dict[int, list[tuple[float, float, dict[str, float]]]]:
    """Each of ``nights`` (0-based) run again ``n`` times, alternately, each time on a fresh copy
    of the store as it was before that night with that night's file in its inbox: wall s, peak
    RSS MB and the stages' seconds of each run."""
    out: dict[int, list[tuple[float, float, dict[str, float]]]] = {k: [] for k in nights}
    for _ in range(n):
        for k in nights:
            ws = _snapshot(snaps / f"before-{k}", snaps / "run")
            os.sync()  # the copy's files on disk before the night starts, as a night's would be
            wall, rss, code, stages = _night(launcher, ws, k)
            if code != 0:
                raise SystemExit(f"paired night {k + 1}: the nightly run exited {code}")
            out[k].append((wall, rss, stages))
    shutil.rmtree(snaps / "run", ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nights", type=int, default=30)
    ap.add_argument("--points", type=int, default=1_500_000, help="points a night")
    ap.add_argument(
        "--dir", type=Path, default=None, help="workspace folder, kept (default: a temporary one, removed at the end)"
    )
    ap.add_argument("--pairs", type=int, default=5, help="paired reruns of the first and last night (0: none)")
    a = ap.parse_args(argv)
    temporary = a.dir is None
    if temporary:  # 1.7 GB by night 30: removed at the end, unless --dir names where to keep it
        a.dir = Path(tempfile.mkdtemp(prefix="gridpatrol-month-"))
    launcher = ChildLauncher()  # before this process grows
    try:
        return _month(a, launcher)
    finally:
        launcher.close()
        if temporary:
            shutil.rmtree(a.dir, ignore_errors=True)
            shutil.rmtree(a.dir.parent / f"{a.dir.name}-pairs", ignore_errors=True)


def _month(a: argparse.Namespace, launcher: ChildLauncher) -> int:
    root = a.dir
    if root.exists() and any(root.iterdir()):
        shutil.rmtree(root)
    t0 = time.perf_counter()
    first = _day_points(a.points, 0)
    _, ctx = make_data(a.points, 1, seed=1000, extras=True)
    write_workspace(root, first.iloc[:0], ctx, files=1)
    for f in (root / "inbox" / "gps").iterdir():  # the generator's empty file
        f.unlink()
    print(
        f"workspace {root}: {ctx.workers.shape[0]} workers, {ctx.grids.shape[0]} grids, "
        f"{len(first):,} points a night, {a.nights} nights from {MONTH_START}",
        file=sys.stderr,
    )
    print(
        "| night | date | points | wall s | ingest s | day job s | month step s | peak RSS MB |\n"
        "|---:|---|---:|---:|---:|---:|---:|---:|"
    )
    rows = []
    snaps = root.parent / f"{root.name}-pairs"
    paired = sorted({0, a.nights - 1}) if a.pairs > 0 and a.nights > 1 else []
    for night in range(a.nights):
        pts = first if night == 0 else _day_points(a.points, night)
        _drop(root / "inbox" / "gps", pts, night)
        if night in paired:  # the store before this night, with this night's file
            _snapshot(root, snaps / f"before-{night}")
        wall, rss, code, stages = _night(launcher, root, night)
        if code != 0:
            print(f"night {night + 1}: the nightly run exited {code}", file=sys.stderr)
            return 1
        rows.append((wall, rss))
        print(
            f"| {night + 1} | {MONTH_START + timedelta(days=night)} | {len(pts):,} | {wall:.1f} | "
            + " | ".join(f"{stages.get(k, 0.0):.2f}" for k in ("ingest", "days", "month"))
            + f" | {rss:.0f} |",
            flush=True,
        )
    (w1, r1), (wn, rn) = rows[0], rows[-1]
    print(
        f"\nnight {a.nights} / night 1: wall {wn / w1:.2f}× (target ≤ 1.2), peak RSS {rn / r1:.2f}× "
        f"(target ≤ 1.3), {rn:.0f} MB (target ≤ 1536); total {time.perf_counter() - t0:.0f} s"
    )
    if len(rows) >= 10:
        # one night's wall time varies by ±20 % on a shared machine: the month's trend is
        # clearer from the medians of its first and last five nights
        first5 = statistics.median(w for w, _ in rows[:5])
        last5 = statistics.median(w for w, _ in rows[-5:])
        print(f"last five nights / first five (medians): wall {last5 / first5:.2f}× ({last5:.1f} / {first5:.1f} s)")
    if paired:
        got = _pairs(launcher, snaps, paired, a.pairs)
        shutil.rmtree(snaps, ignore_errors=True)
        (w1, r1), (wn, rn) = (
            (statistics.median(w for w, _, _ in got[k]), statistics.median(r for _, r, _ in got[k])) for k in paired
        )
        walls = {k: " ".join(f"{w:.2f}" for w, _, _ in got[k]) for k in paired}
        stage = {
            k: " / ".join(
                f"{statistics.median(v[2].get(n, 0.0) for v in got[k]):.2f}" for n in ("ingest", "days", "month")
            )
            for k in paired
        }
        print(
            f"paired, {a.pairs} alternate reruns of each (medians): night {a.nights} / night 1 wall "
            f"{wn / w1:.2f}× ({wn:.2f} / {w1:.2f} s), peak RSS {rn / r1:.2f}× ({rn:.0f} / {r1:.0f} MB); "
            f"night 1: {walls[paired[0]]} s; night {a.nights}: {walls[paired[-1]]} s; "
            f"ingest / day job / month step s: night 1 {stage[paired[0]]}, night {a.nights} {stage[paired[-1]]}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
