"""Worker batches through the one day-job path (trajectory.dayjob.process_dates) equal
``process_days`` on the whole input, in this process and on the process pool.

The workspace is real: grids, roster and sites written as files, the points ingested from a
Parquet inbox into the store, the tables written to ``patrol.duckdb`` and the point_use store.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the benchmarks' generator, from the repo root
from db_helpers import DAY_TABLES, day_tables  # noqa: E402

from benchmarks.generate import make_data, write_workspace  # noqa: E402
from trajectory import dayjob, store  # noqa: E402
from trajectory.batching import full_time_ids, plan_batches  # noqa: E402
from trajectory.engine import process_days  # noqa: E402
from trajectory.ingest import ingest_inbox  # noqa: E402
from trajectory.workspace import load_workspace  # noqa: E402


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    # 9 workers × 2 days with stays at sites, spikes, mock points, repeats, a part-time
    # worker, an unknown phone and a full-time worker without points
    pts, ctx = make_data(9 * 2 * 600, days=2, extras=True, per_day=600)
    ctx.workers.loc[len(ctx.workers)] = ["W99999", "silent", "G0000", True]
    root = tmp_path_factory.mktemp("batching") / "ws"
    write_workspace(root, pts, ctx, files=2)
    ws = load_workspace(root)
    con = store.connect(ws.paths)
    try:
        ingest_inbox(ws, con, "t0", progress=False)
        dates = [r[0] for r in con.execute("SELECT DISTINCT date FROM gps_point ORDER BY 1").fetchall()]
    finally:
        con.close()
    return root, dates


@pytest.fixture(scope="module")
def whole(ingested):
    """process_days on every stored point at once, and its frames."""
    root, dates = ingested
    ws = load_workspace(root)
    con = store.connect(ws.paths, read_only=True)
    try:
        points = dayjob.load_points(con, dates)
    finally:
        con.close()
    return process_days(points, dayjob.engine_context(ws, dates), dates)


def test_input_has_every_case(whole) -> None:
    assert len(whole.worker_day) > 0 and len(whole.site_visit) > 0
    assert {"teleport", "mock_location"} <= set(whole.day_flag["flag"])
    assert {"spike", "mock", "not_full_time"} <= set(whole.point_use["reason"].dropna())
    assert "W99999" in set(whole.worker_day["worker_id"])


def test_one_batch_in_this_process_equals_process_days_on_everything(ingested, whole, tmp_path, monkeypatch) -> None:
    root, dates = ingested
    ws = tmp_path / "ws"
    shutil.copytree(root, ws)
    got = day_tables(ws, dates, workers=1, max_points=10_000_000, monkeypatch=monkeypatch)
    for name in (*DAY_TABLES, "point_use"):
        assert len(got[name]) == len(getattr(whole, name)), name
    con = store.connect(load_workspace(ws).paths, read_only=True)
    try:
        cols = ["worker_id", "date", "patrol_s", "patrol_m", "am_s", "pm_s", "status", "flags"]
        stored = con.execute(f"SELECT {', '.join(cols)} FROM worker_day ORDER BY worker_id, date").df()
    finally:
        con.close()
    want = whole.worker_day.sort_values(["worker_id", "date"]).reset_index(drop=True)
    for col in ("patrol_s", "patrol_m", "am_s", "pm_s"):
        np.testing.assert_array_equal(stored[col].to_numpy(float), want[col].to_numpy(float), err_msg=col)
    assert list(stored["status"]) == list(want["status"])
    assert list(stored["flags"].fillna("")) == list(want["flags"].fillna(""))


@pytest.mark.parametrize("workers,max_points", [(1, 2_000), (2, 2_500), (2, 10_000_000)])
def test_batches_equal_one_batch(ingested, tmp_path, monkeypatch, workers, max_points) -> None:
    root, dates = ingested
    one, many = tmp_path / "one", tmp_path / "many"
    shutil.copytree(root, one)
    shutil.copytree(root, many)
    want = day_tables(one, dates, workers=1, max_points=10_000_000, monkeypatch=monkeypatch)
    got = day_tables(many, dates, workers=workers, max_points=max_points, monkeypatch=monkeypatch)
    assert got == want
    assert not list((many / "store" / "point_use").glob(".*")), "staging or trash folders left behind"


def test_tasks_go_day_by_day_once_the_days_need_more_than_a_round(ingested) -> None:
    """Over several days a worker batch holds few workers and reads a sliver of each row group
    of every part: past one round of the processes the day job plans day by day (the tables
    stay those of one batch: test_batches_equal_one_batch)."""
    root, dates = ingested
    ws = load_workspace(root)
    ctx = dayjob.engine_context(ws, dates)
    con = store.connect(ws.paths, read_only=True)
    try:
        roomy = dayjob.plan_tasks(con, ws.paths, ctx, dates, 10_000_000, 2)
        tight = dayjob.plan_tasks(con, ws.paths, ctx, dates, 2_500, 2)
        per_day = [dayjob.plan_worker_batches(con, ws.paths, ctx, [d], 2_500, 2) for d in dates]
    finally:
        con.close()
    assert [days for days, _ in roomy] == [tuple(dates)]
    assert all(len(days) == 1 for days, _ in tight)
    assert [ids for _, ids in tight] == [ids for plan in per_day for ids in plan]
    for d in dates:  # every full-time worker has each day in exactly one task
        covered = sorted(w for days, ids in tight if days == (d,) for w in ids)
        assert covered == sorted(set(covered)) and set(full_time_ids(ctx)) <= set(covered)


def test_inbox_row_order_does_not_change_the_tables(ingested, tmp_path, monkeypatch) -> None:
    root, dates = ingested
    shuffled = tmp_path / "shuffled"
    shutil.copytree(root, shuffled, ignore=shutil.ignore_patterns("patrol.duckdb*", "store"))
    # rows in a random order, copies of one (worker, ts) kept in theirs: the first copy stays (docs/ingest.md)
    for f in (shuffled / "inbox" / "gps").glob("*.parquet"):
        t = pq.read_table(f)
        key = t.select(["worker_id", "ts"]).to_pandas()
        group = key.groupby(["worker_id", "ts"], sort=False).ngroup().to_numpy()
        rank = np.random.default_rng(3).permutation(group.max() + 1)[group]
        pq.write_table(t.take(np.argsort(rank, kind="stable")), f)
    ws = load_workspace(shuffled)
    con = store.connect(ws.paths)
    try:
        ingest_inbox(ws, con, "t1", progress=False)
    finally:
        con.close()
    fresh = tmp_path / "fresh"
    shutil.copytree(root, fresh)
    want = day_tables(fresh, dates, workers=1, max_points=2_000, monkeypatch=monkeypatch)
    got = day_tables(shuffled, dates, workers=2, max_points=2_000, monkeypatch=monkeypatch)
    for name in want:
        diff = [(a, b) for a, b in zip(got[name], want[name], strict=True) if a != b]
        assert not diff, (name, diff[:1])


def test_plan_batches() -> None:
    counts = pd.Series({"b": 3, "a": 5, "c": 9, "d": 1, "e": 1})
    plan = plan_batches(counts, 8)
    assert plan == [["a", "b"], ["c"], ["d", "e"]]
    assert sum(plan, []) == sorted(counts.index)
    assert plan_batches(pd.Series(dtype=np.int64), 8) == []
    with pytest.raises(ValueError, match="max_points"):
        plan_batches(counts, 0)


_POOL_TUNING = """
from trajectory import dayjob
pool = dayjob.DayPool(2)
try:
    executor = pool.start()
    children = all(executor.submit(dayjob.malloc_tuned).result() for _ in range(4))
finally:
    pool.close()
print(children, dayjob.malloc_tuned())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_the_pool_processes_tune_their_allocator_and_the_caller_keeps_its_own() -> None:
    # the pool's processes keep the engine's big blocks in the heap between batches
    # (dayjob.tune_malloc); the process that starts the pool is left as it was. In a fresh
    # interpreter: a nightly run in this one (another test) tunes it after its ingest
    out = subprocess.run([sys.executable, "-c", _POOL_TUNING], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


def test_a_nightly_run_tunes_its_own_allocator_after_ingest(tmp_path: Path) -> None:
    # the run's ingest keeps the defaults (Arrow's and DuckDB's buffers: no gain), what follows
    # (the day tables, the month step: pandas and NumPy columns) runs tuned
    pts, ctx = make_data(2 * 600, days=1, extras=True, per_day=600)
    write_workspace(tmp_path / "ws", pts, ctx, files=1)
    code = (
        "import sys; from trajectory import dayjob, pipeline; seen = []\n"
        "orig = pipeline._plan_days\n"
        "def plan(*a, **k):\n    seen.append(dayjob.malloc_tuned()); return orig(*a, **k)\n"
        "pipeline._plan_days = plan\n"
        "orig_ingest = pipeline._ingest\n"
        "def ingest(*a, **k):\n    seen.append(dayjob.malloc_tuned()); return orig_ingest(*a, **k)\n"
        "pipeline._ingest = ingest\n"
        "from trajectory.run import main\n"
        f"rc = main(['--workspace', {str(tmp_path / 'ws')!r}, '--no-progress', '-q'])\n"
        "print(rc, *seen)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1].split() == ["0", "False", "True"]  # after the run's summary
