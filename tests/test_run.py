"""The nightly command end to end on a real demo workspace: tables, idempotence, exit codes, lock."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from db_helpers import day_tables

from trajectory import contract as c
from trajectory.run import main
from trajectory.store import workspace_lock
from trajectory.workspace import WorkspacePaths

TABLE_SNAPSHOT = {
    c.WORKER_DAY: "worker_id, date",
    c.WORKER_WEEK: "worker_id, week_start",
    c.SITE_CHECK: "site_id, period_start",
    c.GRID_MONTH_SCORE: "grid_id, item_code",
    c.DEDUCTION: "grid_id, item_code, reason, evidence",
    c.QUARANTINE: "source_file, row_number",
}


def snapshot(root: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(root / "patrol.duckdb"), read_only=True)
    try:
        out = {}
        for table, order in TABLE_SNAPSHOT.items():
            cols = ", ".join(r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] not in ("ingested_run",))
            out[table] = con.execute(f"SELECT {cols} FROM {table} ORDER BY {order}").fetchall()
        # a parallel float sum is not bit-reproducible: rounded
        out[c.GPS_POINT] = con.execute(
            f"SELECT count(*), sum(CAST(round(lon * 1e7) AS BIGINT)), min(ts), max(ts) FROM {c.GPS_POINT}"
        ).fetchall()
        return out
    finally:
        con.close()


def test_contract_tables_filled(demo_workspace: Path) -> None:
    con = duckdb.connect(str(demo_workspace / "patrol.duckdb"), read_only=True)
    try:
        for table, cols in (
            (c.GPS_POINT, c.GPS_POINT_COLUMNS),
            (c.QUARANTINE, c.QUARANTINE_COLUMNS),
            (c.WORKER_DAY, c.WORKER_DAY_COLUMNS),
            (c.WORKER_WEEK, c.WORKER_WEEK_COLUMNS),
            (c.SITE_CHECK, c.SITE_CHECK_COLUMNS),
            (c.GRID_MONTH_SCORE, c.GRID_MONTH_SCORE_COLUMNS),
            (c.DEDUCTION, c.DEDUCTION_COLUMNS),
        ):
            have = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
            assert set(cols) <= set(have), f"{table} lacks {set(cols) - set(have)}"
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, f"{table} is empty"
        ts_type = dict((r[0], r[1]) for r in con.execute(f"DESCRIBE {c.GPS_POINT}").fetchall())["ts"]
        assert ts_type == "TIMESTAMP WITH TIME ZONE"
        # one worker_day row per full-time worker per day of the month
        n_ft = con.execute("SELECT count(DISTINCT worker_id) FROM worker_day").fetchone()[0]
        assert con.execute("SELECT count(*) FROM worker_day").fetchone()[0] == n_ft * 31
        statuses = {r[0] for r in con.execute("SELECT DISTINCT status FROM worker_day").fetchall()}
        assert statuses <= set(c.STATUSES) and {"ok", "off"} <= statuses
        # national day holiday 2026-10-01..07 is off; 2026-10-09 (Friday) is a workday
        assert con.execute("SELECT bool_and(NOT workday) FROM worker_day WHERE date = '2026-10-01'").fetchone()[0]
        assert con.execute("SELECT bool_and(workday) FROM worker_day WHERE date = '2026-10-09'").fetchone()[0]
        # scores: 14 items + total per grid, totals within 0..100 and equal to the sum of items
        per_grid = con.execute(
            """SELECT grid_id, sum(score) FILTER (WHERE item_code <> 'total') AS items,
                      max(score) FILTER (WHERE item_code = 'total') AS total, count(*) AS n
               FROM grid_month_score GROUP BY grid_id"""
        ).fetchall()
        assert len(per_grid) == con.execute("SELECT count(DISTINCT grid_id) FROM worker_day").fetchone()[0]
        for _grid, items, total, n in per_grid:
            assert n == len(c.ITEM_CODES) + 1
            assert 0 <= total <= 100
            assert total == pytest.approx(items)
        # the run log recorded the run
        assert con.execute("SELECT outcome FROM run_log ORDER BY started_at DESC LIMIT 1").fetchone()[0] == "ok"
    finally:
        con.close()
    out = demo_workspace / "out" / "2026-10"
    assert (out / "index.html").exists()
    assert list(out.glob("*.xlsx"))


def test_rerun_is_idempotent(demo_workspace: Path, tmp_path: Path) -> None:
    ws = tmp_path / "copy"
    shutil.copytree(demo_workspace, ws)
    before = snapshot(ws)
    assert main(["--workspace", str(ws), "--month", "2026-10", "--no-progress", "-q"]) == 0
    assert main(["--workspace", str(ws), "--from", "2026-10-08", "--to", "2026-10-10", "--no-progress", "-q"]) == 0
    assert snapshot(ws) == before


def test_bad_workspace_exits_with_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "trajectory.run", "--workspace", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "workspace folder not found" in proc.stderr


def test_second_run_refuses_while_locked(demo_workspace: Path) -> None:
    with workspace_lock(WorkspacePaths(demo_workspace)):
        proc = subprocess.run(
            [sys.executable, "-m", "trajectory.run", "--workspace", str(demo_workspace), "--no-progress"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2
    assert "another run is using this workspace" in proc.stderr


def test_process_pool_equals_one_process(demo_workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker batches on two processes (each reading the Parquet store and writing its own
    point_use part) give exactly the tables of one process reading through DuckDB."""
    one, two = tmp_path / "one", tmp_path / "two"
    shutil.copytree(demo_workspace, one)
    shutil.copytree(demo_workspace, two)
    serial = day_tables(one, None, 1, 5_000, monkeypatch)
    pooled = day_tables(two, None, 2, 5_000, monkeypatch)
    assert len(serial["point_use"]) > 10_000 and len(serial["worker_day"]) > 0
    assert pooled == serial
    assert not list((two / "store" / "point_use").glob(".*")), "staging or trash folders left behind"
