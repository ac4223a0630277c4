"""Small helpers the top-level tests share: read a workspace's store as it is on disk."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import duckdb
import pytest

DAY_TABLES = ("worker_day", "site_visit", "day_flag")
POINT_USE_SQL = "SELECT worker_id, grid_id, ts, lon, lat, date, counted, reason, in_grid FROM point_use ORDER BY ALL"


def query(ws: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Rows of ``sql`` on ``ws/patrol.duckdb``, opened read-only and closed again."""
    con = duckdb.connect(str(ws / "patrol.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def day_tables(
    root: Path, days: Sequence[date] | None, workers: int, max_points: int, monkeypatch: pytest.MonkeyPatch
) -> dict[str, list[tuple]]:
    """Run the day job (``trajectory.dayjob.process_dates``) on ``days`` (None: the first six
    stored dates) of the workspace ``root`` with ``workers`` pool processes and batches of
    ``max_points``; every row of the day tables and of point_use."""
    from trajectory import dayjob, store
    from trajectory.workspace import load_workspace

    monkeypatch.setattr(dayjob, "WORKERS", workers)
    ws = load_workspace(root)
    con = store.connect(ws.paths)
    try:
        if days is None:
            days = [r[0] for r in con.execute("SELECT DISTINCT date FROM gps_point ORDER BY 1").fetchall()][:6]
        dayjob.process_dates(ws, con, days, progress=False, run_id="t", max_points=max_points)
        out = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in DAY_TABLES}
        out["point_use"] = con.execute(POINT_USE_SQL).fetchall()
        return out
    finally:
        con.close()
