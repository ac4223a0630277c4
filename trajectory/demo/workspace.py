"""``build_demo_workspace``: the whole demo workspace for one month, and its command line."""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trajectory.calendar import is_official_workday, workday_flags
from trajectory.demo.base import (
    DEFAULT_MONTH,
    DEFAULT_N_GRIDS,
    DEFAULT_SEED,
    GRIDS_FILE_NAME,
    REPLAY,
    S_PLAN,
    SAMPLE_S,
    DemoManifest,
    stream_rng,
)
from trajectory.demo.city import grids_geojson_text, make_grids
from trajectory.demo.gps_files import write_gps
from trajectory.demo.patrols import (
    Grid,
    Worker,
    build_grid,
    local_midnight_epoch,
    make_workers,
    month_days,
    plan_absences,
    plan_visits,
    worker_day,
)
from trajectory.demo.phones import Track
from trajectory.demo.records import write_indicators, write_roster
from trajectory.errors import WorkspaceError
from trajectory.workspace import WorkspacePaths

__all__ = ["build_demo_workspace", "main"]


def build_demo_workspace(
    root: Path,
    month: str = DEFAULT_MONTH,
    seed: int = DEFAULT_SEED,
    n_grids: int = DEFAULT_N_GRIDS,
    sample_s: tuple[int, int] = SAMPLE_S,
    *,
    overwrite: bool = False,
) -> DemoManifest:
    """Write a complete demo workspace (SPEC §2) for one month.

    Parameters
    ----------
    root : Path
        Workspace folder; created if missing, must be empty unless ``overwrite``.
    month : str
        ``YYYY-MM``; GPS covers every workday (and a few days off) of it.
    seed : int
        Same seed, same bytes.
    n_grids : int
        Number of grids (one full-time worker each), at least 4.
    sample_s : tuple of int
        Range of the phones' sampling interval in seconds (inclusive).
    overwrite : bool
        Replace the demo's files in a non-empty folder.

    Returns
    -------
    DemoManifest

    Examples
    --------
    >>> import tempfile, pathlib
    >>> m = build_demo_workspace(pathlib.Path(tempfile.mkdtemp()) / "ws", n_grids=4)  # doctest: +SKIP
    """
    days = month_days(month)
    if not (len(sample_s) == 2 and 1 <= sample_s[0] <= sample_s[1]):
        raise ValueError(f"'sample_s' was {sample_s} but is expected to be (min_s, max_s) with 1 <= min_s <= max_s")
    root = Path(root)
    paths = _prepare_folder(root, month, overwrite)
    grids_ll = make_grids(seed, n_grids)
    (paths.grids_dir / GRIDS_FILE_NAME).write_text(grids_geojson_text(grids_ll, "xitaihu_demo"), encoding="utf-8")
    grids = [
        build_grid(i, gid, name, gtype, geom, seed)
        for i, (gid, name, gtype, geom) in enumerate(
            zip(grids_ll["grid_id"], grids_ll["grid_name"], grids_ll["grid_type"], grids_ll.geometry, strict=True)
        )
    ]
    workers = make_workers(grids, seed, sample_s)
    overrides, workday = _calendar(days)
    workdays = [d for d in days if workday[d]]

    leave_rows: list[tuple[str, dt.date, dt.date, dt.date, str]] = []
    per_day: dict[dt.date, list[tuple[str, str, Track]]] = {d: [] for d in days}
    candidates: list[tuple[int, str, int, float, float]] = []  # grid, worker, t_epoch, x, y
    for wi, w in enumerate(workers):
        leave_rows += _worker_month(wi, w, grids[w.grid], days, workday, seed, per_day, candidates)

    counts = write_gps(paths.inbox_gps, per_day, {d.isoformat() for d in workdays}, seed)
    write_roster(paths, grids, workers, leave_rows, overrides, seed)
    counts.update(write_indicators(paths.indicators(month), grids, workers, workdays, candidates, seed, month))
    counts.update(
        grids=len(grids),
        workers=len(workers),
        full_time_workers=sum(w.full_time for w in workers),
        part_time_workers=sum(not w.full_time for w in workers),
        sites=sum(len(g.sites) for g in grids),
        leave_rows=len(leave_rows),
        workdays=len(workdays),
    )
    return DemoManifest(
        root=root,
        month=month,
        grid_ids=tuple(g.grid_id for g in grids),
        profiles={w.worker_id: w.profile for w in workers},
        counts=counts,
    )


def _prepare_folder(root: Path, month: str, overwrite: bool) -> WorkspacePaths:
    """The workspace's folders, created; a non-empty folder only with ``overwrite`` (demo files replaced)."""
    paths = WorkspacePaths(root)
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise WorkspaceError(f"demo workspace folder is not empty: {root} (pass overwrite=True / --overwrite)")
        for p in (paths.inbox_gps, paths.indicators(month)):
            shutil.rmtree(p, ignore_errors=True)
    for p in (paths.grids_dir, paths.inbox_gps, paths.indicators(month)):
        p.mkdir(parents=True, exist_ok=True)
    return paths


def _calendar(days: list[dt.date]) -> tuple[dict[dt.date, bool], dict[dt.date, bool]]:
    """The centre's override (calendar.csv) and every day's workday flag.

    The month's last official day off becomes a workday (加班日).
    """
    off_days = [d for d in days if not is_official_workday(d)]
    overrides = {off_days[-1]: True} if off_days else {}
    workday = dict(zip(days, (bool(f) for f in workday_flags(days, overrides)), strict=True))
    return overrides, workday


def _worker_month(
    wi: int,
    w: Worker,
    grid: Grid,
    days: list[dt.date],
    workday: dict[dt.date, bool],
    seed: int,
    per_day: dict[dt.date, list[tuple[str, str, Track]]],
    candidates: list[tuple[int, str, int, float, float]],
) -> list[tuple[str, dt.date, dt.date, dt.date, str]]:
    """One worker's month: tracks added to ``per_day``, event spots to ``candidates``; the leave rows."""
    workdays = [d for d in days if workday[d]]
    prng = stream_rng(seed, S_PLAN, wi)
    absent, leave = plan_absences(w.profile, workdays, prng) if w.full_time else (set(), [])
    active = [d for d in workdays if d not in absent]
    visits = plan_visits(grid, w.profile, active, prng) if w.full_time else {}
    replay_days: list[dt.date] = []
    if w.profile == REPLAY and len(active) > 8:
        replay_days = [active[int(k)] for k in sorted(prng.choice(np.arange(3, len(active)), 4, replace=False))]
    template: list[Track] | None = None
    for d in days:
        if d in absent:
            continue
        epoch0 = local_midnight_epoch(d)
        if d in replay_days and template is not None:
            # 轨迹复用: yesterday's file re-sent, same coordinates, times shifted
            shift = int(prng.integers(-600, 601))
            tracks = [Track(tr.t + shift, tr.x, tr.y, tr.speed, tr.accuracy, tr.mock) for tr in template]
        else:
            tracks = worker_day(w, grid, d, workday[d], visits.get(d, []), seed, wi)
            if w.profile == REPLAY and template is None and workday[d] and tracks:
                template = tracks
        if not tracks:
            continue
        tr = Track.concat(tracks)
        per_day[d].append((w.worker_id, w.device, tr))
        if w.full_time and workday[d]:
            crng = stream_rng(seed, S_PLAN, wi, d.toordinal())
            ok = np.flatnonzero(~tr.mock)
            for i in crng.choice(ok, size=min(len(ok), 8), replace=False) if len(ok) else []:
                candidates.append((w.grid, w.worker_id, int(epoch0 + tr.t[i]), float(tr.x[i]), float(tr.y[i])))
    return [(w.worker_id, *row) for row in leave]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trajectory.demo --out DIR [--month YYYY-MM] [--seed N] [--grids N]``."""
    parser = argparse.ArgumentParser(prog="python -m trajectory.demo", description="Build a synthetic demo workspace.")
    parser.add_argument("--out", required=True, type=Path, help="workspace folder to create (must be empty)")
    parser.add_argument("--month", default=DEFAULT_MONTH, help="YYYY-MM (default %(default)s)")
    parser.add_argument("--seed", default=DEFAULT_SEED, type=int, help="random seed (default %(default)s)")
    parser.add_argument("--grids", default=DEFAULT_N_GRIDS, type=int, help="number of grids (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace the demo files in a non-empty folder")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        m = build_demo_workspace(args.out, args.month, args.seed, args.grids, overwrite=args.overwrite)
    except (ValueError, WorkspaceError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    c = m.counts
    print(
        f"demo workspace {m.root} ({m.month}, seed {args.seed}): {c['grids']} grids, {c['workers']} workers, "
        f"{c['sites']} sites, {c['gps_points']} GPS points in {c['gps_files']} files, {c['events']} events "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return 0
