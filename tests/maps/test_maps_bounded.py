"""The store path of the maps reads ``point_use`` in bounded batches of grids (issue 12, item 1).

A real workspace and DuckDB store (the map fixtures plus a worker who changes grid, points on a
day without a ``worker_day`` row, a worker without any, and points sharing a timestamp) is
rendered through :func:`maps.build.render_workspace_month` with a tiny row budget (a batch per
grid) and a huge one (one batch), and through the one-shot frame path of before
(:func:`render_workspace_month_at_once`: :func:`read_month_frames` + :func:`render_month`): every file written must be the same bytes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from maps_fixtures import DAY_FLAGS, LAT0, LON0, MONTH, write_day_flags, write_scores, write_workspace

from maps.build import (
    MAP_POINT_COLUMNS,
    day_grids,
    month_bounds,
    plan_point_batches,
    point_counts,
    prepare_month,
    read_month_tables,
    read_points,
    render_workspace_month,
    render_workspace_month_at_once,
    workspace_tiles,
)
from scoring.export import workbook_name
from trajectory.store import connect
from trajectory.workspace import load_workspace


def _walk(worker: str, day: str, lon0: float, lat0: float, n: int) -> pd.DataFrame:
    t = pd.Timestamp(f"{day}T01:00:00Z") + pd.to_timedelta(np.arange(n) * 10, unit="s")
    lon = lon0 + (np.arange(n) % 40) * 12.0 / 95_000
    lat = lat0 + (np.arange(n) // 40) * 40 / 111_000
    return pd.DataFrame(
        {"worker_id": worker, "ts": t, "lon": lon, "lat": lat, "date": day, "counted": True, "reason": None}
    ).assign(in_grid=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory, grids, worker_day, site_check, sites, point_use):
    """A workspace whose store holds the fixtures' month plus the awkward cases; its root."""
    extra = pd.concat(
        [
            _walk("W4", "2026-10-12", LON0 + 0.0125, LAT0 + 0.001, 150),  # W4 in G02 ...
            _walk("W4", "2026-10-13", LON0 + 0.0245, LAT0 + 0.001, 120),  # ... then in G03
            _walk("W1", "2026-10-14", LON0 + 0.003, LAT0 + 0.004, 90),  # no worker_day row: heat only
            _walk("W4", "2026-10-15", LON0 + 0.016, LAT0 + 0.006, 30),  # the same, of a worker read twice
            _walk("W9", "2026-10-08", LON0 + 0.004, LAT0 + 0.005, 60),  # no worker_day at all
        ],
        ignore_index=True,
    )
    same_ts = extra.iloc[:6].copy()  # points sharing a timestamp: their order must not depend on the batch
    same_ts["lon"] += 0.0003
    same_ts["counted"], same_ts["reason"] = False, "duplicate"
    pts = pd.concat([point_use, extra, same_ts], ignore_index=True)
    wd_cols = list(worker_day.columns)
    w4 = pd.DataFrame(
        [
            ("W4", "G02", "2026-10-12", True, False, 1500.0, 1800.0, 1500.0, 0.0, "short", "vehicle"),
            ("W4", "G03", "2026-10-13", True, False, 1200.0, 1400.0, 1200.0, 0.0, "short", None),
        ],
        columns=wd_cols,
    )
    w4["date"] = pd.to_datetime(w4["date"]).dt.date
    wd = pd.concat([worker_day, w4], ignore_index=True)
    root = tmp_path_factory.mktemp("bounded") / "ws"
    paths = write_workspace(root, grids, wd, site_check, sites, pts)
    ids = list(grids["grid_id"])
    write_scores(paths, MONTH, ids)
    write_day_flags(paths, DAY_FLAGS)
    out = paths.out_month(MONTH)
    out.mkdir(parents=True)
    (out / workbook_name(MONTH)).write_bytes(b"PK")
    return root


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _render_store(root: Path, **kw) -> tuple[dict[str, bytes], list[Path]]:
    ws = load_workspace(root)
    con = connect(ws.paths, read_only=True)
    try:
        pages = render_workspace_month(ws, con, MONTH, **kw)
    finally:
        con.close()
    return _files(ws.paths.out_month(MONTH)), pages


def _render_one_shot(root: Path) -> dict[str, bytes]:
    """What render_workspace_month did before issue 12: the month's points in one frame."""
    ws = load_workspace(root)
    con = connect(ws.paths, read_only=True)
    try:
        render_workspace_month_at_once(ws, con, MONTH, workbook=workbook_name(MONTH))
    finally:
        con.close()
    return _files(ws.paths.out_month(MONTH))


def _batch_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if hasattr(r, "maps_batch")]


def test_tiny_and_huge_budget_and_one_shot_write_the_same_bytes(store, caplog):
    caplog.set_level(logging.INFO, logger="maps.build")
    tiny, pages = _render_store(store, max_batch_rows=100)
    many = _batch_records(caplog)
    caplog.clear()
    huge, _ = _render_store(store, max_batch_rows=10**9)
    one = _batch_records(caplog)
    one_shot = _render_one_shot(store)

    assert len(many) >= 4 and len(one) == 1  # G01, G02, G03 apart, W9's heat-only points last
    assert {r.maps_batches for r in many} == {len(many)}
    # every page of the month is there, playbacks of the batch of the worker-day's grid included
    names = {p.relative_to(Path(pages[0]).parent).as_posix() for p in pages}
    assert {"overview.html", "index.html", "grids/G01.html", "grids/G02.html", "grids/G03.html"} <= names
    assert {"playback/W4_2026-10-12.html", "playback/W4_2026-10-13.html", "playback/W1_2026-10-09.html"} <= names
    html = [n for n in tiny if n.endswith(".html")]
    assert len(html) == len(pages)
    assert tiny.keys() == huge.keys() == one_shot.keys()
    for name in tiny:
        assert tiny[name] == huge[name], f"{name}: tiny budget ≠ one batch"
        assert tiny[name] == one_shot[name], f"{name}: batches ≠ the one-shot frame path"


def test_rows_read_per_query_stay_within_the_budget(store, caplog):
    budget = 600  # W1 alone sent ~1 500 rows: G01 is a batch of its own, over the budget
    ws = load_workspace(store)
    con = connect(ws.paths, read_only=True)
    try:
        first, last = month_bounds(MONTH)
        counts = point_counts(con, first, last)
        wd, sc, _ = read_month_tables(con, MONTH)
        data = prepare_month(MONTH, ws.grids, wd, sc, ws.sites, read_points(con, first, last, ()), workspace_tiles(ws))
        day_grid = day_grids(data.worker_day)
        plan = plan_point_batches(list(data.grids["grid_id"]), day_grid, counts, budget)
        for b in plan:
            read = read_points(con, first, last, b.workers)
            assert len(read) == b.rows
            assert b.rows <= budget or len(b.grid_ids) + (not b.grid_ids) == 1, b
            assert list(read.columns) == list(MAP_POINT_COLUMNS)  # never label, the engine's grid_id, ...
        over = [b for b in plan if b.rows > budget]
        assert [b.grid_ids for b in over] == [("G01",)]
        # every worker-day's points are read in the batch of its grid; W9 (no grid) in exactly one
        assert sum("W9" in b.home_workers for b in plan) == 1 and sum(b.rows for b in plan) >= counts["rows"].sum()
    finally:
        con.close()

    caplog.set_level(logging.INFO, logger="maps.build")
    _render_store(store, max_batch_rows=budget)
    records = _batch_records(caplog)
    assert len(records) == len(plan) > 1
    for r in records:
        assert r.maps_rows <= budget or r.maps_grids <= 1
        assert "W1" not in r.getMessage() and "W9" not in r.getMessage()  # logs carry no worker ids


def test_plan_packs_grids_by_their_workers_rows():
    counts = pd.DataFrame(
        {
            "worker_id": ["A", "A", "B", "C", "D"],
            "day": ["2026-10-01", "2026-10-02", "2026-10-01", "2026-10-01", "2026-10-03"],
            "rows": [30, 30, 50, 500, 7],
        }
    )
    day_grid = pd.DataFrame(
        {
            "worker_id": ["A", "A", "B", "C"],
            "day": ["2026-10-01", "2026-10-02", "2026-10-01", "2026-10-01"],
            "grid_id": ["G1", "G2", "G2", "G3"],
        }
    )
    plan = plan_point_batches(["G1", "G2", "G3", "G4"], day_grid, counts, 120)
    # G1 (A: 60) + G2 (A again, B: +50) = 110 ≤ 120; G3 (C: 500) alone; G4 (no points) and D (no grid) last
    assert [(b.grid_ids, b.rows) for b in plan] == [(("G1", "G2"), 110), (("G3",), 500), (("G4",), 7)]
    assert plan[2].home_workers == frozenset({"D"}) and set(plan[2].workers) == {"D"}
