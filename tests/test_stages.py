"""Issue 12 item 4: what the whole-process speed-ups must keep.

- the nightly run's start-up imports no page modules (folium, openpyxl), yet a ``--month``
  run still writes the workbook and the maps with them imported on demand, and a wrong
  ``[maps]`` section still fails before any work;
- ingest's part-key cache (``trajectory.ingest.model.PartKeyCache``) gives the very store,
  quarantine and manifest that reading the parts again gives;
- balanced worker batches cover every worker once, in order, in a multiple of the processes;
- the pool's warm-up runs once in each process.

Real workspaces in ``tmp_path``, real runs in child processes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the benchmarks' generator

from benchmarks.generate import make_data, write_workspace  # noqa: E402
from trajectory import store  # noqa: E402
from trajectory.batching import balance_batches, plan_batches  # noqa: E402
from trajectory.dayjob import DayPool, engine_context  # noqa: E402
from trajectory.ingest import ingest_inbox  # noqa: E402
from trajectory.ingest import model as ingest_model  # noqa: E402
from trajectory.ingest.model import PartKeyCache  # noqa: E402
from trajectory.workspace import load_workspace  # noqa: E402

PAGE_MODULES = ("folium", "openpyxl", "maps.build", "scoring.export")
# a run in a child process that reports which page modules it imported
RUN_AND_REPORT = (
    "import json, sys; from trajectory.run import main; rc = main(sys.argv[1:]); "
    f"print(json.dumps([m for m in {PAGE_MODULES!r} if m in sys.modules])); sys.exit(rc)"
)


def run_child(*args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT, *args, "--no-progress"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=180,
    )
    imported = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else []
    return proc, imported


@pytest.fixture
def small_workspace(tmp_path: Path) -> Path:
    pts, ctx = make_data(6 * 400, days=1, extras=True, per_day=400)
    return write_workspace(tmp_path / "ws", pts, ctx, files=3)


# --- start-up -------------------------------------------------------------------------------


def test_nightly_run_imports_no_page_modules_and_month_run_writes_them(demo_workspace: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(demo_workspace, ws)
    shutil.rmtree(ws / "out", ignore_errors=True)
    proc, imported = run_child("--workspace", str(ws))
    assert proc.returncode == 0, proc.stderr
    assert imported == [], f"a night without a month imported {imported}"
    # the month's scoring imports them when it needs them, and writes the workbook and the maps
    proc, imported = run_child("--workspace", str(ws), "--month", "2026-10")
    assert proc.returncode == 0, proc.stderr
    assert {"folium", "openpyxl"} <= set(imported)
    out = ws / "out" / "2026-10"
    assert list(out.glob("*.xlsx")), "no workbook written"
    assert (out / "index.html").stat().st_size > 0


def test_wrong_maps_section_fails_before_ingest(small_workspace: Path) -> None:
    toml = small_workspace / "patrol.toml"
    toml.write_text(toml.read_text() + '\n[maps]\nprovider = "no-such-tiles"\n')
    proc, _ = run_child("--workspace", str(small_workspace))
    assert proc.returncode != 0
    assert "maps" in proc.stderr and "no-such-tiles" in proc.stderr, proc.stderr
    assert not (small_workspace / "store" / "gps").exists(), "ingest ran despite the wrong [maps] section"


# --- ingest's part-key cache ----------------------------------------------------------------


def _ingest_with_cache(root: Path, max_points: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple]]:
    monkeypatch.setattr(ingest_model, "PART_CACHE_POINTS", max_points)
    ws = load_workspace(root)
    con = store.connect(ws.paths)
    try:
        report = ingest_inbox(ws, con, "t", progress=False)
        out = {
            "quarantine": con.execute(
                "SELECT source_file, row_number, reason, raw FROM quarantine ORDER BY ALL"
            ).fetchall(),
            "manifest": con.execute(
                "SELECT file_name, rows_read, rows_accepted, rows_duplicate, rows_quarantined, dates "
                "FROM ingest_manifest ORDER BY ALL"
            ).fetchall(),
        }
    finally:
        con.close()
    parts = sorted(store.gps_parts(ws.paths))
    out["parts"] = [(p.relative_to(root).as_posix(), pq.read_table(p).to_pylist()) for p in parts]
    out["counts"] = [(report.rows_accepted, report.rows_duplicate, report.rows_quarantined)]
    return out


def test_part_key_cache_gives_what_reading_the_parts_gives(
    small_workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = small_workspace / "inbox" / "gps"
    first = pq.read_table(sorted(inbox.glob("*.parquet"))[0])
    # a later file re-sends 30 points of the first: 20 as they were (duplicates), 10 moved
    # 50 m (conflicting copies, quarantined), plus one new point
    resent = first.slice(0, 30).to_pandas()
    resent.loc[20:, "lat"] += 0.0005
    new = first.slice(30, 1).to_pandas()
    new["ts"] += pd.Timedelta(milliseconds=1)
    pq.write_table(pa.Table.from_pandas(pd.concat([resent, new]), preserve_index=False), inbox / "z-resent.parquet")
    other = tmp_path / "ws-no-cache"
    shutil.copytree(small_workspace, other)
    cached = _ingest_with_cache(small_workspace, 1 << 22, monkeypatch)
    read = _ingest_with_cache(other, 0, monkeypatch)
    assert cached == read
    reasons = [r[2] for r in cached["quarantine"] if r[0] == "z-resent.parquet"]
    assert reasons.count("conflicting_duplicate") == 10
    assert [m for m in cached["manifest"] if m[0] == "z-resent.parquet"][0][1:5] == (31, 1, 20, 10)


def test_part_key_cache_forgets_a_rewritten_part_and_keeps_its_budget(tmp_path: Path) -> None:
    part = tmp_path / "p.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), part)
    cache = PartKeyCache(max_points=5)
    key, lon, lat = np.array([1, 2, 3]), np.zeros(3), np.ones(3)
    cache.put(part, key, lon, lat)
    got = cache.get(part)
    assert got is not None and got[0].tolist() == [1, 2, 3]
    pq.write_table(pa.table({"x": [1, 2, 3, 4, 5, 6]}), part)  # the part written again
    assert cache.get(part) is None
    other = tmp_path / "q.parquet"
    pq.write_table(pa.table({"x": [1]}), other)
    cache.put(part, np.arange(4), np.zeros(4), np.zeros(4))  # replaces the stale entry: 4 points held
    cache.put(other, np.arange(2), np.zeros(2), np.zeros(2))  # 4 + 2 > 5: not kept, read again
    assert cache.points == 4 and cache.get(other) is None and cache.get(part) is not None


# --- the day job ----------------------------------------------------------------------------


def test_balanced_batches_cover_the_workers_in_a_multiple_of_the_processes() -> None:
    rng = np.random.default_rng(3)
    counts = pd.Series(rng.integers(0, 5_000, 1_000), index=[f"W{i:04d}" for i in range(1_000)])
    greedy = plan_batches(counts, 500_000)
    plan = balance_batches(counts, 500_000, 2)
    assert len(greedy) == 5 and len(plan) == 6
    assert sum(plan, []) == sorted(counts.index)  # every worker once, in order
    sizes = [int(counts[b].sum()) for b in plan]
    assert max(sizes) - min(sizes) <= 2 * int(counts.max())  # equal shares, to a worker's points
    assert max(sizes) <= 500_000 + int(counts.max())
    # 1,852 workers of 2,160 points (the 4 M benchmark): 9 greedy batches, the last of 4 workers
    day = pd.Series(2_160, index=[f"W{i:04d}" for i in range(1_852)])
    assert [len(b) for b in plan_batches(day, 500_000)][-1] == 4
    assert len(balance_batches(day, 500_000, 2)) == 10
    assert balance_batches(pd.Series({"a": 3, "b": 4}), 10, 2) == [["a", "b"]]  # one batch stays one


def test_pool_warm_up_runs_once_in_each_process(small_workspace: Path) -> None:
    ws = load_workspace(small_workspace)
    day = date(2026, 10, 12)
    pool = DayPool(workers=2)
    try:
        pids = [f.result(timeout=60) for f in pool.warm(engine_context(ws, [day]), [day])]
    finally:
        pool.close()
    assert len(set(pids)) == 2, pids


def test_store_tables_readable_after_a_nightly_run(small_workspace: Path) -> None:
    """The plain nightly run (the one bench_stages times) on a day delivered in three files."""
    proc, _ = run_child("--workspace", str(small_workspace))
    assert proc.returncode == 0, proc.stderr
    for step in ("start", "ingest", "days", "month"):
        assert f"step={step} " in proc.stderr
    con = duckdb.connect(str(small_workspace / "patrol.duckdb"), read_only=True)
    try:
        n_points = con.execute("SELECT count(*) FROM gps_point").fetchone()[0]
        n_days = con.execute("SELECT count(*) FROM worker_day WHERE date = DATE '2026-10-12'").fetchone()[0]
    finally:
        con.close()
    pu = pq.read_table(sorted((small_workspace / "store" / "point_use").glob("date=2026-10-12/*.parquet"))[0])
    assert n_points > 0 and n_days > 0 and pu.num_rows > 0


def test_views_left_alone_after_writes_still_read_new_days_and_new_columns(small_workspace: Path) -> None:
    """After ingest and the day job the views are recreated only where they changed
    (``store.refresh_views(only_changed=True)``): a view over the parts' glob must then read
    parts written after it, of a new day and with a column the older parts lack."""
    ws = load_workspace(small_workspace)
    con = store.connect(ws.paths)
    try:
        assert con.execute("SELECT count(*) FROM gps_point").fetchone()[0] == 0  # the empty view
        ingest_inbox(ws, con, "r1", progress=False)  # the first parts: the view becomes the glob's
        n = con.execute("SELECT count(*) FROM gps_point").fetchone()[0]
        assert n > 0
        before = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'gps_point'").fetchone()[0]
        store.refresh_views(con, ws.paths, only_changed=True)
        assert con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'gps_point'").fetchone()[0] == before
        part = next(iter(store.gps_parts(ws.paths)))
        extra = pq.read_table(part).slice(0, 5)
        extra = extra.append_column("new_column", pa.array([1.5] * 5))
        day_dir = store.partition_dir(ws.paths.gps_store, date(2026, 10, 30))
        day_dir.mkdir(parents=True)
        pq.write_table(extra, day_dir / "later.parquet")
        rows = con.execute(
            "SELECT count(*), count(new_column) FROM gps_point WHERE date = DATE '2026-10-30'"
        ).fetchone()
        assert rows == (5, 5)
        assert con.execute("SELECT count(*) FROM gps_point").fetchone()[0] == n + 5
    finally:
        con.close()
