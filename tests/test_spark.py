"""The Spark engine (local[2]) against the local engine on a small demo workspace."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.spark

if shutil.which("java") is None:
    pytest.skip("Spark needs Java: no 'java' on PATH (tests/setup_system.sh installs Java 17)", allow_module_level=True)
pytest.importorskip("pyspark")

DAYS = [date(2026, 10, 8) + timedelta(days=i) for i in range(3)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trajectory.demo import build_demo_workspace
    from trajectory.run import main

    root = tmp_path_factory.mktemp("spark") / "ws"
    build_demo_workspace(root, month="2026-10", seed=7, n_grids=4)
    code = main(["--workspace", str(root), "--from", str(DAYS[0]), "--to", str(DAYS[-1]), "--no-progress", "-q"])
    assert code == 0
    return root


@pytest.fixture(scope="module")
def spark():
    from trajectory.spark_engine import spark_session

    s = spark_session(app="gridpatrol-test", master="local[2]")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def both(workspace: Path, spark):
    from trajectory import store
    from trajectory.dayjob import engine_context, load_points
    from trajectory.engine import process_days
    from trajectory.spark_engine import process_days_spark
    from trajectory.workspace import load_workspace

    ws = load_workspace(workspace)
    ctx = engine_context(ws, DAYS)
    con = store.connect(ws.paths, read_only=True)
    try:
        local = process_days(load_points(con, DAYS), ctx, DAYS)
    finally:
        con.close()
    remote = process_days_spark(spark, str(ws.paths.root / "store" / "gps"), ctx, DAYS)
    return local, remote


def test_worker_day_identical(both) -> None:
    local, remote = both
    a, b = local.worker_day, remote.worker_day
    assert len(a) > 0 and list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    floats = [c for c in a.columns if a[c].dtype.kind == "f"]
    exact = [c for c in a.columns if c not in floats]
    pd.testing.assert_frame_equal(a[exact], b[exact], check_exact=True)
    for c in floats:
        np.testing.assert_allclose(b[c].to_numpy(), a[c].to_numpy(), rtol=1e-9, atol=0, err_msg=c)
    assert {"ok", "absent"} <= set(a["status"])


def test_other_outputs_same_rows(both) -> None:
    local, remote = both
    for name, key in (
        ("site_visit", ["worker_id", "date", "start_ts", "site_id"]),
        ("day_flag", ["worker_id", "date", "flag"]),
        ("point_use", ["worker_id", "ts", "lon", "lat"]),
    ):
        a = getattr(local, name)
        b = getattr(remote, name)
        assert len(a) == len(b), name
        if name == "point_use":
            a, b = (f.astype({"worker_id": str, "grid_id": str, "reason": object}) for f in (a, b))
        a = a.sort_values(key, kind="stable").reset_index(drop=True)
        b = b.sort_values(key, kind="stable").reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=name)


def test_cli_engine_spark_stores_the_same_days(workspace: Path, tmp_path: Path) -> None:
    """`trajectory.run --engine spark` writes the same worker_day and point_use as the local run."""
    import subprocess
    import sys

    import duckdb

    copy = tmp_path / "ws"
    shutil.copytree(workspace, copy)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "trajectory.run",
            "--workspace",
            str(copy),
            "--from",
            str(DAYS[0]),
            "--to",
            str(DAYS[-1]),
            "--engine",
            "spark",
            "--no-progress",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    day_sql = "SELECT worker_id, date, status, patrol_s, patrol_m, am_s, pm_s FROM worker_day ORDER BY 1, 2"
    use_sql = "SELECT count(*), count(*) FILTER (WHERE counted), count(DISTINCT reason) FROM point_use"
    got = []
    for root in (workspace, copy):
        con = duckdb.connect(str(root / "patrol.duckdb"), read_only=True)
        try:
            from trajectory.store import refresh_views
            from trajectory.workspace import WorkspacePaths

            refresh_views(con, WorkspacePaths(root), temporary=True)
            got.append((con.execute(day_sql).fetchall(), con.execute(use_sql).fetchall()))
        finally:
            con.close()
    (days_local, use_local), (days_spark, use_spark) = got
    assert len(days_local) > 0
    assert [r[:3] for r in days_spark] == [r[:3] for r in days_local]
    np.testing.assert_allclose(
        np.array([r[3:] for r in days_spark], float), np.array([r[3:] for r in days_local], float), rtol=1e-9
    )
    assert use_spark == use_local and use_local[0][0] > 0


def test_the_documented_cluster_recipe_gives_the_local_rows(workspace: Path, spark, both, tmp_path: Path) -> None:
    """docs/scale.md "On a cluster", step 3, as written there: ``engine_context`` (public) and
    ``spark_outputs``; point_use written from the executors, worker_day collected."""
    import pyarrow.parquet as pq

    from trajectory.dayjob import engine_context
    from trajectory.spark_engine import spark_outputs
    from trajectory.workspace import load_workspace

    ws = load_workspace(workspace)
    days = DAYS
    out = spark_outputs(spark, str(ws.paths.root / "store" / "gps"), engine_context(ws, days), days)
    target = tmp_path / "point_use_spark"
    out["point_use"].write.mode("overwrite").partitionBy("date").parquet(str(target))
    wd = out["worker_day"].toPandas()  # small: one row per worker-day of the workers with points
    local, _ = both
    written = pq.read_table(target).to_pandas()
    assert len(written) == len(local.point_use) > 0
    assert int(written["counted"].sum()) == int(local.point_use["counted"].sum())
    # the workers with points in the dates, all their days (an absent day too); the silent
    # workers' rows are the driver's to add (the recipe's comment)
    active = local.worker_day.groupby("worker_id")["points_total"].transform("sum") > 0
    with_points = local.worker_day[active]
    key = ["worker_id", "date"]
    got = wd.assign(date=pd.to_datetime(wd["date"]).dt.date).sort_values(key).reset_index(drop=True)
    want = with_points.sort_values(key).reset_index(drop=True)
    assert got[key].astype(str).equals(want[key].astype(str))
    np.testing.assert_allclose(got["patrol_m"].to_numpy(float), want["patrol_m"].to_numpy(float), rtol=1e-9)
