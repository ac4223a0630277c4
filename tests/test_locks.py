"""Issue 14, rows 13 and 14: the nightly run against analysts and against its own killed runs.

Real processes hold the locks: an analyst's query through ``trajectory.api`` in a subprocess,
kept going by a named pipe it reads (no CPU used, ended by the test), while the nightly command
starts; a raw DuckDB reader holding ``patrol.duckdb``; a ``--month`` run killed with a real
SIGKILL from outside while it is paused in ingest (``GRIDPATROL_PAUSE_AT`` only adds a delay).
Runs that need no second process (recovery, ``--status``) run in this one, to stay fast.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from db_helpers import query

from trajectory import contract as c
from trajectory import store
from trajectory.demo import build_demo_workspace
from trajectory.run import main
from trajectory.workspace import WorkspacePaths

MONTH = "2026-10"
REPO = Path(__file__).resolve().parents[1]
HOOKS = (store.CRASH_ENV, store.PAUSE_ENV, store.PAUSE_SECONDS_ENV)
# the month's results, compared between a clean --month run and a killed one finished by a plain run
MONTH_TABLES = {
    c.GRID_MONTH_SCORE: "month = ?",
    c.DEDUCTION: "month = ?",
    c.WORKER_WEEK: "month = ?",
    c.SITE_CHECK: "month = ?",
    c.PATROL_FINDING: "month = ?",
    c.WORKER_DAY: "strftime(date, '%Y-%m') = ?",
}
ANALYST = """
import sys
from trajectory.api import open_workspace

ws = open_workspace(sys.argv[1])
print("open", flush=True)
# a long query: it reads a named pipe the test writes to only when it has seen the nightly run end
df = ws.query(
    "SELECT (SELECT count(*) FROM worker_day) AS days, "
    f"(SELECT count(*) FROM read_csv('{sys.argv[2]}', header = true, columns = {{'a': 'INTEGER'}})) AS fed"
)
print(int(df["days"][0]), int(df["fed"][0]), flush=True)
"""
HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)  # a notebook that opened the file itself
print("held", flush=True)
sys.stdin.readline()
con.close()
"""


def env(**hooks: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in HOOKS}
    out.update(hooks)
    return out


def cli(ws: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trajectory.run", "--workspace", str(ws), "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(),
        cwd=REPO,
    )


def spawn(code: str, *args: str, stdin: int | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=REPO,
    )


def run_here(ws: Path, *args: str) -> int:
    """The nightly command in this process (no hooks are set here)."""
    return main(["--workspace", str(ws), "--no-progress", "-q", *args])


def status_line(ws: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """``--status``'s whole output and its line on MONTH's scoring."""
    capsys.readouterr()
    assert main(["--workspace", str(ws), "--status"]) == 0
    out = capsys.readouterr().out
    return out, next(line for line in out.splitlines() if line.strip().startswith(MONTH))


def kill_in_ingest(ws: Path, nth_file: int, *args: str) -> None:
    """Run the nightly command, and ``kill -9`` it from outside while it is paused after its
    ``nth_file``-th inbox file."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "trajectory.run", "--workspace", str(ws), "--no-progress", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env(**{store.PAUSE_ENV: f"ingest.file:{nth_file}", store.PAUSE_SECONDS_ENV: "60"}),
        cwd=REPO,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "step=pause point=ingest.file" in line:
            proc.send_signal(signal.SIGKILL)
            break
    assert proc.wait(timeout=60) == -signal.SIGKILL


def month_rows(ws: Path) -> dict[str, list[tuple]]:
    return {t: query(ws, f"SELECT * FROM {t} WHERE {w} ORDER BY ALL", [MONTH]) for t, w in MONTH_TABLES.items()}


def open_writer(fifo: Path, timeout: float = 60) -> int:
    """Open the pipe's writing end once its reader (the analyst's query) has opened it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("locks") / "pristine"
    build_demo_workspace(root, month=MONTH, seed=11, n_grids=4)
    return root


@pytest.fixture(scope="module")
def scored(pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pristine workspace after one uninterrupted ``--month`` run."""
    ws = tmp_path_factory.mktemp("scored") / "ws"
    shutil.copytree(pristine, ws)
    assert run_here(ws, "--month", MONTH) == 0
    return ws


# --- row 13: locks ----------------------------------------------------------------------------


def test_nightly_run_is_not_blocked_by_a_long_analyst_query(scored: Path, tmp_path: Path) -> None:
    """Before: the analyst's read-only connection excluded the run's writer, and the run exited 2
    "Could not set lock on file", with --wait too. Now the query runs on a snapshot."""
    ws = tmp_path / "ws"
    shutil.copytree(scored, ws)
    fifo = tmp_path / "feed.csv"
    os.mkfifo(fifo)
    analyst = spawn(ANALYST, str(ws), str(fifo))
    assert analyst.stdout is not None
    assert analyst.stdout.readline().strip() == "open", analyst.stderr.read() if analyst.stderr else ""
    writer = open_writer(fifo)  # the query is now reading the pipe: it is in progress
    try:
        run = cli(ws, "-q")  # the plain nightly command; --wait waited only for the run lock before
        assert analyst.poll() is None, "the analyst's query must still be going"
    finally:
        os.write(writer, b"a\n1\n2\n3\n")
        os.close(writer)
    out, err = analyst.communicate(timeout=60)
    assert run.returncode == 0, run.stderr
    assert "正被" not in run.stderr  # it never had to wait for the database
    assert analyst.returncode == 0, err
    n_days = query(ws, f"SELECT count(*) FROM {c.WORKER_DAY} WHERE strftime(date, '%Y-%m') = ?", [MONTH])[0][0]
    days, fed = map(int, out.split())
    assert fed == 3 and days >= n_days > 0  # the query saw the store as it was when it started
    assert query(ws, "SELECT outcome FROM run_log ORDER BY started_at DESC LIMIT 1") == [("ok",)]


def test_analyst_reads_the_last_snapshot_while_the_nightly_run_writes(scored: Path, tmp_path: Path) -> None:
    """Before: every analyst call failed ("Could not set lock on file") while the run held the store."""
    from trajectory.api import open_workspace

    ws = tmp_path / "ws"
    shutil.copytree(scored, ws)
    analyst = open_workspace(ws)
    before = analyst.scores(MONTH)
    assert len(before) == 4 * (len(c.ITEM_CODES) + 1)
    # another process plays the nightly run: the store's only writer, with a commit in its WAL
    writer = spawn(
        "import sys, duckdb; con = duckdb.connect(sys.argv[1]); "
        "con.execute(\"UPDATE run_log SET message = 'being written'\"); print('writing', flush=True); "
        "sys.stdin.readline()",
        str(ws / "patrol.duckdb"),
        stdin=subprocess.PIPE,
    )
    assert writer.stdout is not None and writer.stdin is not None
    try:
        assert writer.stdout.readline().strip() == "writing"
        with pytest.warns(UserWarning) as got:
            during = analyst.scores(MONTH)
        note = str(got[0].message)
        assert "读取的是" in note and "reading the snapshot taken at" in note and f"pid {writer.pid}" in note
    finally:
        writer.stdin.close()
        writer.wait(timeout=30)
    assert during.equals(before)
    # the run has ended: the next call takes a new snapshot and sees what it wrote
    assert set(analyst.query("SELECT DISTINCT message FROM run_log")["message"]) == {"being written"}


def test_wait_waits_for_the_database_and_says_who_holds_it(scored: Path, tmp_path: Path) -> None:
    """A reader that is not trajectory.api (a notebook's own duckdb.connect) holds the file:
    --wait waits for it, says in Chinese who holds it and for how long it waits, then runs."""
    ws = tmp_path / "ws"
    shutil.copytree(scored, ws)
    holder = spawn(HOLDER, str(ws / "patrol.duckdb"), stdin=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "held"
    run = subprocess.Popen(
        [sys.executable, "-m", "trajectory.run", "--workspace", str(ws), "--no-progress", "-q", "--wait", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=REPO,
    )
    assert run.stderr is not None
    line = run.stderr.readline()  # the waiting message comes first
    assert f"数据库 patrol.duckdb 正被 pid {holder.pid}" in line and "最多等待 60 秒" in line, line
    assert "python" in line  # the holder's program, without its arguments
    time.sleep(1)
    assert run.poll() is None, "--wait must wait for the database"
    holder.stdin.write("done\n")
    holder.stdin.close()
    assert holder.wait(timeout=30) == 0
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err


def test_wait_is_bounded_and_names_the_holder(
    scored: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(scored, ws)
    holder = spawn(HOLDER, str(ws / "patrol.duckdb"), stdin=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "held"
    capsys.readouterr()
    try:
        t0 = time.monotonic()
        code = run_here(ws, "--wait", "1.5")
        took = time.monotonic() - t0
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    err = capsys.readouterr().err
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: 数据库被占用") and f"pid {holder.pid}" in last and "1.5 s" in last, last
    assert 1.5 <= took < 30
    # the other run's lock is bounded too (flock: a second open file conflicts even in one process)
    with store.workspace_lock(WorkspacePaths(ws)):
        code = run_here(ws, "--wait", "1")
    err = capsys.readouterr().err
    assert code == 2
    assert "另一次运行正在使用此工作区（pid" in caplog.text and "最多等待 1 秒" in caplog.text
    assert err.strip().splitlines()[-1].startswith("error: another run is still using this workspace")


# --- row 14: the month asked of a killed run ----------------------------------------------------


def test_month_of_a_run_killed_in_ingest_is_scored_by_the_next_plain_run(
    pristine: Path, scored: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: the next run finished the points but never scored the month, and --status said
    the killed run's work was done."""
    ws = tmp_path / "ws"
    shutil.copytree(pristine, ws)
    kill_in_ingest(ws, 3, "--month", MONTH)
    n_files = len(list((ws / "inbox" / "gps").iterdir()))
    assert query(ws, "SELECT count(*) FROM ingest_manifest")[0][0] == 3 < n_files
    killed_id = query(ws, "SELECT run_id FROM run_log")[0][0]

    out, month_line = status_line(ws, capsys)
    assert "killed" in month_line and "pending" in month_line and killed_id in month_line
    assert "done" not in out

    assert run_here(ws) == 0  # the plain nightly command: no --month
    log = query(ws, "SELECT run_id, outcome, months_scored, message FROM run_log ORDER BY started_at")
    assert [r[1] for r in log] == ["killed", "ok"]
    assert log[1][2] == MONTH
    assert f"its unfinished work was done by run {log[1][0]}" in log[0][3]
    assert month_rows(ws) == month_rows(scored)  # as if the --month run had never been killed
    out = ws / "out" / MONTH
    assert (out / "index.html").exists() and list(out.glob("*.xlsx"))
    assert query(ws, f"SELECT count(*) FROM {store.PENDING_WORK}") == [(0,)]

    _, month_line = status_line(ws, capsys)
    assert "done" in month_line and log[1][0] in month_line and killed_id in month_line


def test_failed_month_scoring_shows_as_failed_then_is_retried(
    scored: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(scored, ws)
    complaints = ws / "indicators" / MONTH / "complaints.csv"
    good = complaints.read_text(encoding="utf-8")
    complaints.write_text(good.replace("public_complaint", "no_such_kind", 1), encoding="utf-8")
    capsys.readouterr()
    assert run_here(ws, "--month", MONTH) == 2
    assert "complaints.csv" in capsys.readouterr().err.strip().splitlines()[-1]
    assert query(ws, "SELECT outcome FROM run_log ORDER BY started_at DESC LIMIT 1") == [("failed",)]

    _, month_line = status_line(ws, capsys)
    assert "failed" in month_line and "complaints.csv" in month_line and "done" not in month_line

    complaints.write_text(good, encoding="utf-8")  # fixed: the plain nightly run scores the month
    assert run_here(ws) == 0
    assert query(ws, "SELECT months_scored FROM run_log ORDER BY started_at DESC LIMIT 1") == [(MONTH,)]
    _, month_line = status_line(ws, capsys)
    assert "done" in month_line
    assert month_rows(ws) == month_rows(scored)


def test_allow_missing_of_a_killed_month_run_is_kept(scored: Path, tmp_path: Path) -> None:
    """The request is journalled with its options: the plain run that finishes a killed
    ``--month M --allow-missing T`` scores M without T, as asked, instead of refusing."""
    ws = tmp_path / "ws"
    shutil.copytree(scored, ws)
    (ws / "indicators" / MONTH / "service_records.csv").unlink()  # a required table
    assert run_here(ws, "--month", MONTH) == 2  # refused without the allowance

    kill_in_ingest(ws, 1, "--month", MONTH, "--allow-missing", "service_records")
    assert run_here(ws) == 0  # the plain nightly command, no options
    log = query(ws, "SELECT outcome, months_scored FROM run_log ORDER BY started_at")
    assert [r[0] for r in log] == ["ok", "failed", "killed", "ok"] and log[-1][1] == MONTH
    assert query(ws, f"SELECT state FROM {store.MONTH_REQUEST} WHERE month = ?", [MONTH]) == [("done",)]
