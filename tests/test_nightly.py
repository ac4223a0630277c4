"""Nightly operation (issue 7), end to end with real subprocesses and real DuckDB files.

kill -9 at named points of a run (the ``GRIDPATROL_CRASH_AT`` hook of ``trajectory.store``)
and at an arbitrary moment, then a re-run, must equal a clean run; one run at a time; a late
upload re-opens exactly its days; the run log and ``--status``; unreadable inbox entries and
an unwritable store; logs without personal data. A 4-grid demo month keeps each run ~5 s.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pytest
from db_helpers import query

from trajectory import contract as c
from trajectory import ingest, store
from trajectory.demo import build_demo_workspace
from trajectory.workspace import WorkspacePaths, load_workspace

MONTH = "2026-10"
REPO = Path(__file__).resolve().parents[1]
# columns that name a run or a moment: they differ between two otherwise equal runs
RUN_COLUMNS = {"ingested_run", "ingested_at", "run_id", "first_seen_run", "first_seen_at", "added_at"}
COMPARED = (
    c.GPS_POINT,
    c.QUARANTINE,
    c.INGEST_MANIFEST,
    c.WORKER_DAY,
    c.WORKER_WEEK,
    c.SITE_CHECK,
    c.SITE_VISIT,
    c.DAY_FLAG,
    c.PATROL_FINDING,
    c.GRID_MONTH_SCORE,
    c.DEDUCTION,
    "point_use",
)
STEP_LINE = re.compile(r'^\S+ INFO step=\w+( \w+=("(?:[^"\\]|\\.)*"|[^\s"=]+))*$')


# --- helpers ----------------------------------------------------------------------------------


def cli(ws: Path, *args: str, crash_at: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m trajectory.run --workspace ws --no-progress *args`` in a fresh process."""
    env = {k: v for k, v in os.environ.items() if k != store.CRASH_ENV}
    if crash_at:
        env[store.CRASH_ENV] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "trajectory.run", "--workspace", str(ws), "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )


def copy_ws(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def snapshot(ws: Path) -> dict[str, list[tuple]]:
    """Every row of the result tables, without run ids and times; doubles rounded to 1e-6."""
    con = store.connect(WorkspacePaths(ws), read_only=True)
    try:
        out = {}
        for table in COMPARED:
            cols = [
                f'round("{name}", 6)' if kind == "DOUBLE" else f'"{name}"'
                for name, kind, *_ in con.execute(f"DESCRIBE {table}").fetchall()
                if name not in RUN_COLUMNS
            ]
            out[table] = con.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY ALL").fetchall()
        return out
    finally:
        con.close()


def assert_same(got: dict[str, list[tuple]], want: dict[str, list[tuple]]) -> None:
    for table in COMPARED:
        assert len(got[table]) == len(want[table]), f"{table}: {len(got[table])} rows, clean run {len(want[table])}"
        assert got[table] == want[table], f"{table} differs from the clean run"


def run_log(ws: Path) -> list[dict]:
    con = duckdb.connect(str(ws / "patrol.duckdb"), read_only=True)
    try:
        return con.execute("SELECT * FROM run_log ORDER BY started_at").df().to_dict("records")
    finally:
        con.close()


def leftovers(ws: Path) -> list[Path]:
    return sorted(ws.rglob("*.tmp"))


def assert_recovered(ws: Path, clean: dict[str, list[tuple]]) -> None:
    assert_same(snapshot(ws), clean)
    assert leftovers(ws) == []
    assert query(ws, f"SELECT count(*) FROM {store.PENDING_WORK}") == [(0,)]


def yesterday() -> date:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date() - timedelta(days=1)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-grid demo workspace of October 2026, never run."""
    root = tmp_path_factory.mktemp("nightly") / "pristine"
    build_demo_workspace(root, month=MONTH, seed=11, n_grids=4)
    return root


@pytest.fixture(scope="module")
def clean_month(pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """The pristine workspace after one uninterrupted ``--month`` run, and that run's output."""
    ws = copy_ws(pristine, tmp_path_factory.mktemp("clean") / "ws")
    proc = cli(ws, "--month", MONTH)
    assert proc.returncode == 0, proc.stderr
    return ws, proc


@pytest.fixture(scope="module")
def clean(clean_month: tuple[Path, subprocess.CompletedProcess]) -> dict[str, list[tuple]]:
    return snapshot(clean_month[0])


# --- kill -9 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "crash_at",
    [
        "ingest.parts:3",  # points of the 3rd file written, its manifest row not yet
        "ingest.file:6",  # 6 files committed, the rest of the inbox not read
        "days:2",  # two day batches committed
        "month",  # days and the month's weeks done, not scored
        "score",  # scores stored, workbook and maps not written
    ],
)
def test_kill_9_then_rerun_equals_a_clean_run(crash_at: str, pristine: Path, clean: dict, tmp_path: Path) -> None:
    ws = copy_ws(pristine, tmp_path / "ws")
    killed = cli(ws, "--month", MONTH, crash_at=crash_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [r["outcome"] for r in run_log(ws)] == ["running"]

    again = cli(ws, "--month", MONTH)
    assert again.returncode == 0, again.stderr
    assert_recovered(ws, clean)
    log = run_log(ws)
    assert [r["outcome"] for r in log] == ["killed", "ok"]
    assert log[1]["run_id"] in log[0]["message"]
    assert any(log[0]["run_id"] in w for w in json.loads(log[1]["warnings"]))
    assert (ws / "out" / MONTH / "index.html").exists()


def test_kill_9_at_an_arbitrary_moment(pristine: Path, clean: dict, tmp_path: Path) -> None:
    """SIGKILL from outside while the day batches run, whatever the process is doing."""
    ws = copy_ws(pristine, tmp_path / "ws")
    proc = subprocess.Popen(
        [sys.executable, "-m", "trajectory.run", "--workspace", str(ws), "--no-progress", "--month", MONTH],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "step=days" in line:
            proc.send_signal(signal.SIGKILL)
            break
    assert proc.wait(timeout=60) == -signal.SIGKILL
    again = cli(ws, "--month", MONTH)
    assert again.returncode == 0, again.stderr
    assert_recovered(ws, clean)


def late_file(ws: Path, dst: Path, n_days: int = 2) -> tuple[str, list[date]]:
    """A CSV of points for ``n_days`` old dates on which one worker sent nothing: a copy of
    the worker's best day, shifted. Returns the worker and the dates."""
    worker = query(ws, "SELECT worker_id FROM worker_day ORDER BY worker_id LIMIT 1")[0][0]
    empty = [
        d
        for (d,) in query(
            ws,
            """SELECT date FROM worker_day d WHERE worker_id = ? AND strftime(date, '%Y-%m') = ?
                 AND NOT EXISTS (SELECT 1 FROM gps_point g WHERE g.worker_id = d.worker_id AND g.date = d.date)
               ORDER BY workday DESC, date""",
            [worker, MONTH],
        )
    ][:n_days]
    assert len(empty) == n_days
    best = query(ws, "SELECT date FROM worker_day WHERE worker_id = ? ORDER BY patrol_s DESC LIMIT 1", [worker])[0][0]
    pts = query(ws, "SELECT ts, lon, lat FROM gps_point WHERE worker_id = ? AND date = ? ORDER BY ts", [worker, best])
    with dst.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["worker_id", "ts", "lon", "lat"])
        for day in empty:
            shift = timedelta(days=(day - best).days)
            out.writerows([worker, (ts + shift).isoformat(), lon, lat] for ts, lon, lat in pts)
    return worker, empty


def test_late_upload_reopens_exactly_its_days(clean_month: tuple, tmp_path: Path) -> None:
    ws = copy_ws(clean_month[0], tmp_path / "ws")
    before = pd.DataFrame(query(ws, "SELECT * FROM worker_day ORDER BY ALL"))
    worker, dates = late_file(ws, ws / "inbox" / "gps" / "late_upload.csv")

    proc = cli(ws)  # the plain nightly command: no dates, no month
    assert proc.returncode == 0, proc.stderr
    last = run_log(ws)[-1]
    assert last["outcome"] == "ok"
    # decisions.md: the dates that received points, plus yesterday
    assert last["days_recomputed"].split(",") == sorted(d.isoformat() for d in {*dates, yesterday()})
    assert last["months_scored"] == MONTH  # October was scored: re-opened and scored again
    after = pd.DataFrame(query(ws, "SELECT * FROM worker_day WHERE date <> ? ORDER BY ALL", [yesterday()]))
    cols = [r[0] for r in query(ws, "DESCRIBE worker_day")]
    before.columns = after.columns = cols
    key = ["worker_id", "date"]
    merged = before.merge(after, on=key, suffixes=("_before", "_after"))
    assert len(merged) == len(before) == len(after)
    changed = merged[merged["patrol_s_before"] != merged["patrol_s_after"]]
    assert sorted(changed[key].itertuples(index=False, name=None)) == [(worker, d) for d in dates]
    assert (changed["patrol_s_after"] > 0).all()
    untouched = merged[~merged["date"].isin(dates)]
    for col in ("patrol_s", "patrol_m", "status"):
        assert (untouched[f"{col}_before"] == untouched[f"{col}_after"]).all()


def test_nightly_run_killed_after_ingest_still_recomputes_the_late_days(clean_month: tuple, tmp_path: Path) -> None:
    """A late upload ingested, then kill -9: the next plain run must still recompute its days
    (nothing new in the inbox any more), and equal an uninterrupted nightly run."""
    reference = copy_ws(clean_month[0], tmp_path / "reference")
    _, dates = late_file(reference, reference / "inbox" / "gps" / "late_upload.csv")
    ws = copy_ws(reference, tmp_path / "ws")
    assert cli(reference).returncode == 0

    killed = cli(ws, crash_at="days:1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert cli(ws, crash_at="month").returncode == -signal.SIGKILL  # and once more, later
    again = cli(ws)
    assert again.returncode == 0, again.stderr
    assert_recovered(ws, snapshot(reference))
    log = run_log(ws)
    assert [r["outcome"] for r in log[-3:]] == ["killed", "killed", "ok"]
    assert log[-2]["files"] == 0 or log[-2]["rows_accepted"] == 0  # the second run found nothing new to ingest


# --- one run at a time --------------------------------------------------------------------------


def test_second_run_refuses_then_waits(clean_month: tuple, tmp_path: Path) -> None:
    ws = copy_ws(clean_month[0], tmp_path / "ws")
    paths = WorkspacePaths(ws)
    with store.workspace_lock(paths):  # this process plays the first run
        refused = cli(ws)
        assert refused.returncode == 2
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: another run is using this workspace")
        assert f"pid {os.getpid()}" in lines[0] and "--wait" in lines[0]

        # --status says a run is going; with the store open for writing, it says the store is busy
        con = duckdb.connect(str(paths.duckdb))
        try:
            status = cli(ws, "--status")
        finally:
            con.close()
        assert status.returncode == 0, status.stderr
        assert "a run is in progress" in status.stdout and "busy" in status.stdout

        waiting = subprocess.Popen(
            [sys.executable, "-m", "trajectory.run", "--workspace", str(ws), "--no-progress", "-q", "--wait"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        time.sleep(3)
        assert waiting.poll() is None, "--wait must wait for the lock"
        n_before = len(run_log(ws))
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    log = run_log(ws)
    assert len(log) == n_before + 1 and log[-1]["outcome"] == "ok"


# --- run log and --status ---------------------------------------------------------------------


def test_status_prints_the_last_runs(clean_month: tuple, tmp_path: Path) -> None:
    ws = copy_ws(clean_month[0], tmp_path / "ws")
    assert cli(ws, "--date", "2026-10-09", crash_at="days").returncode == -signal.SIGKILL
    # not yet recovered: no run is going, so the dangling row shows as killed
    status = cli(ws, "--status")
    assert status.returncode == 0, status.stderr
    ids = [r["run_id"] for r in run_log(ws)]
    lines = status.stdout.splitlines()
    assert lines[1].startswith(ids[-1]) and " killed " in lines[1]
    assert any(line.startswith(ids[0]) and " ok " in line for line in lines)
    assert "a run is in progress" not in status.stdout


def test_every_ingested_file_reconciles(clean_month: tuple) -> None:
    rows = query(
        clean_month[0],
        "SELECT file_name, rows_read, rows_accepted, rows_duplicate, rows_quarantined FROM ingest_manifest",
    )
    assert len(rows) > 10
    for name, read, accepted, duplicate, quarantined in rows:
        assert accepted + duplicate + quarantined == read, name
    # and the quarantine table holds exactly the quarantined rows
    assert query(clean_month[0], "SELECT count(*) FROM quarantine") == [(sum(r[4] for r in rows),)]
    assert query(clean_month[0], "SELECT count(*) FROM quarantine WHERE coalesce(reason, '') = ''") == [(0,)]


# --- unreadable inbox entries, unwritable store -----------------------------------------------


def test_unreadable_inbox_entries_are_reported_not_fatal(pristine: Path, tmp_path: Path) -> None:
    """Root reads any regular file (chmod 000 does not stop it): what fails for root is an
    entry that is not a file: a folder named like one, a broken link, a pipe."""
    ws = copy_ws(pristine, tmp_path / "ws")
    gps = ws / "inbox" / "gps"
    (gps / "gps_folder.csv").mkdir()
    (gps / "gps_broken.csv").symlink_to(tmp_path / "gone.csv")
    os.mkfifo(gps / "gps_pipe.jsonl")  # opening it would block the run forever
    proc = cli(ws)
    assert proc.returncode == 0, proc.stderr
    warnings = json.loads(run_log(ws)[-1]["warnings"])
    for name, what in (("gps_folder.csv", "a folder"), ("gps_broken.csv", "broken"), ("gps_pipe.jsonl", "pipe")):
        assert any(name in w and what in w for w in warnings), (name, warnings)
        assert name in proc.stdout  # the closing summary shows them
    n_files = len([p for p in pristine.joinpath("inbox", "gps").iterdir()])
    assert query(ws, "SELECT count(*) FROM ingest_manifest")[0][0] == n_files - 1  # one re-sent copy


def test_file_that_cannot_be_opened_is_skipped_and_retried(pristine: Path, tmp_path: Path, monkeypatch) -> None:
    """chmod 000 as a non-root service user: simulated, the run cannot drop root here."""
    ws = load_workspace(copy_ws(pristine, tmp_path / "ws"))
    victim = sorted(ws.paths.inbox_gps.glob("*.csv"))[0].name
    real = ingest._sha256

    def sha256(path: Path) -> str:
        if path.name == victim:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(ingest, "_sha256", sha256)
    con = store.connect(ws.paths)
    try:
        report = ingest.ingest_inbox(ws, con, "r1", progress=False)
        assert victim not in {f["name"] for f in report.files}
        assert any(victim in w and "Permission denied" in w and "next run" in w for w in report.warnings)
        monkeypatch.setattr(ingest, "_sha256", real)
        report = ingest.ingest_inbox(ws, con, "r2", progress=False)
        assert [f["name"] for f in report.files if not f["skipped_as_known"]] == [victim]
    finally:
        con.close()


def test_unwritable_store_fails_in_one_line_then_recovers(pristine: Path, clean: dict, tmp_path: Path) -> None:
    ws = copy_ws(pristine, tmp_path / "ws")
    (ws / "store").mkdir()
    (ws / "store" / "gps").write_text("not a folder")  # every Parquet write into the store fails
    proc = cli(ws, "--month", MONTH)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr
    assert errors[0] == proc.stderr.strip().splitlines()[-1]
    assert "cannot write the workspace" in errors[0] and "store/gps" in errors[0] and "Not a directory" in errors[0]
    log = run_log(ws)
    assert log[-1]["outcome"] == "failed" and "Not a directory" in log[-1]["message"]

    (ws / "store" / "gps").unlink()  # fixed
    again = cli(ws, "--month", MONTH)
    assert again.returncode == 0, again.stderr
    assert_recovered(ws, clean)


# --- logs ---------------------------------------------------------------------------------------


def test_logs_are_key_value_lines_without_personal_data(clean_month: tuple) -> None:
    ws, proc = clean_month
    names = pd.read_csv(ws / "workers.csv", dtype=str)["worker_name"].dropna().tolist()
    labels = pd.read_csv(ws / "sites.csv", dtype=str)["label"].dropna().unique().tolist()
    assert names and labels
    for text in names + labels:
        assert text not in proc.stderr, f"personal data in the log: {text}"
        assert text not in proc.stdout, f"personal data in the summary: {text}"
    lines = proc.stderr.splitlines()
    steps = {m.group(1) for line in lines if (m := re.search(r" step=(\w+)", line))}
    assert {"ingest_file", "ingest", "days", "month", "score"} <= steps
    for line in lines:
        if " INFO " in line:
            assert STEP_LINE.match(line), f"not a key=value step line: {line}"


def test_month_step_reads_no_points(demo_workspace: Path, tmp_path: Path) -> None:
    """Issue 12: replays come from the days' stored track signatures; with the point stores gone
    the month step still finds exactly the same replays."""
    from trajectory.run import main, recompute_month

    root = tmp_path / "ws"
    shutil.copytree(demo_workspace, root)
    ws = load_workspace(root)
    con = store.connect(ws.paths)
    try:
        # a copied track: one worker's busiest day replayed on a day that worker sent nothing
        days = con.execute(
            "SELECT worker_id, date, count(*) AS n FROM gps_point GROUP BY ALL ORDER BY n DESC, worker_id, date"
        ).df()
        days["date"] = pd.to_datetime(days["date"]).dt.date
        full_time = set(ws.workers.loc[ws.workers["full_time"].astype(bool), "worker_id"].astype(str))
        days = days[days["worker_id"].astype(str).isin(full_time)]
        worker, day = days.iloc[0]["worker_id"], days.iloc[0]["date"]
        have = set(days.loc[days["worker_id"] == worker, "date"])
        target = next(d for d in pd.date_range("2026-10-01", "2026-10-31").date if d not in have)
        pts = con.execute(
            "SELECT worker_id, ts, lon, lat, accuracy_m, speed_mps, mock FROM gps_point WHERE worker_id = ? AND date = ?",
            [worker, day],
        ).df()
    finally:
        con.close()
    shift = pd.Timestamp(target) - pd.Timestamp(day)
    pts["ts"] = (pd.to_datetime(pts["ts"], utc=True) + shift).dt.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    pts.to_csv(ws.paths.inbox_gps / "replayed.csv", index=False)
    assert main(["--workspace", str(root), "--month", "2026-10", "--no-progress", "-q"]) == 0
    con = store.connect(ws.paths)
    try:
        before = con.execute(
            "SELECT worker_id, date, detail FROM day_flag WHERE flag = 'replay' ORDER BY ALL"
        ).fetchall()
        assert {(str(w), d) for w, d, _ in before} >= {(str(worker), day), (str(worker), target)}
        for folder in ("point_use", "gps"):  # the month's points: gone
            shutil.rmtree(ws.paths.store / folder)
        store.refresh_views(con, ws.paths)
        assert con.execute("SELECT count(*) FROM point_use").fetchone()[0] == 0
        recompute_month(ws, con, "2026-10")
        after = con.execute(
            "SELECT worker_id, date, detail FROM day_flag WHERE flag = 'replay' ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()
    assert after == before
