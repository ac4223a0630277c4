"""The month step's window (issue 12): a nightly run recomputes the week parts of its days, the
month-long site periods and the replay pairs of its days, and stores exactly what a whole-month
recomputation stores. A 4-grid demo October delivered night by night (real DuckDB files, the
real nightly entry point in this process), with a late file for an old day, a replayed track,
the replayed day later changed, and a policy edit; after every night the four month tables
are compared with a whole-month recomputation of a copy of the store.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import re
import shutil
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from db_helpers import query

from trajectory import contract as c
from trajectory.demo import build_demo_workspace
from trajectory.logs import LOGGER_NAME
from trajectory.month_step import month_inputs_hash, month_window, recompute_month
from trajectory.run import main
from trajectory.workspace import load_workspace

MONTH = "2026-10"
MONTH_TABLES = (c.WORKER_WEEK, c.SITE_CHECK, c.PATROL_FINDING, c.DAY_FLAG)
LATE = "gps_2026-10-09_2.jsonl"  # held back, delivered after the 20th: a window of two weeks
REPLAYED, COPY = (
    date(2026, 10, 8),
    date(2026, 10, 17),
)  # W001's track of the 8th sent again for the 17th, a Saturday he sent nothing
COPY_NIGHT, CHANGE_NIGHT, POLICY_NIGHT, SITES_NIGHT = COPY, date(2026, 10, 24), date(2026, 10, 27), date(2026, 10, 29)


def month_tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """The month's rows of the four tables, without run ids, doubles rounded to 1e-6."""
    out = {}
    for table in MONTH_TABLES:
        cols = [
            f'round("{name}", 6)' if kind == "DOUBLE" else f'"{name}"'
            for name, kind, *_ in con.execute(f"DESCRIBE {table}").fetchall()
        ]
        where = "strftime(date, '%Y-%m') = ?" if table == c.DAY_FLAG else "month = ?"
        out[table] = con.execute(
            f"SELECT {', '.join(cols)} FROM {table} WHERE {where} ORDER BY ALL", [MONTH]
        ).fetchall()
    return out


def whole_month(ws: Path, tmp: Path) -> dict[str, list[tuple]]:
    """The four tables after a whole-month recomputation of a copy of the store."""
    copy = tmp / "whole.duckdb"
    shutil.copyfile(ws / "patrol.duckdb", copy)
    con = duckdb.connect(str(copy))
    try:
        recompute_month(load_workspace(ws), con, MONTH, whole=True)
        return month_tables(con)
    finally:
        con.close()
        copy.unlink()


def write_copy(ws: Path, dst: Path, worker: str, src_day: date, day: date) -> int:
    """A CSV of ``worker``'s stored points of ``src_day`` with their accuracy, shifted to ``day``
    (a replay: the same fixes, so the same points are cleaned away)."""
    sql = "SELECT ts, lon, lat, accuracy_m FROM gps_point WHERE worker_id = ? AND date = ? ORDER BY ts"
    pts = query(ws, sql, [worker, src_day])
    shift = timedelta(days=(day - src_day).days)
    with dst.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["worker_id", "ts", "lon", "lat", "accuracy_m"])
        out.writerows([worker, (ts + shift).isoformat(), lon, lat, acc] for ts, lon, lat, acc in pts)
    return len(pts)


def write_detour(dst: Path, worker: str, day: date, lon: float, lat: float) -> None:
    """An extra hour of ``worker`` on ``day`` (15:00–16:00, an eastward walk): changes the day's track."""
    with dst.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["worker_id", "ts", "lon", "lat"])
        for k in range(360):
            out.writerow([worker, f"{day}T15:{k // 6:02d}:{(k % 6) * 10:02d}+08:00", lon + k * 1e-5, lat])


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """October delivered night by night; after each night the stored month tables, those of a
    whole-month recomputation, and the month step's log line."""
    root = tmp_path_factory.mktemp("month_step")
    ws = root / "ws"
    build_demo_workspace(ws, month=MONTH, seed=11, n_grids=4)
    held = root / "held"
    held.mkdir()
    by_day: dict[date, list[Path]] = defaultdict(list)
    for f in sorted((ws / "inbox" / "gps").iterdir()):
        by_day[date.fromisoformat(re.search(r"\d{4}-\d\d-\d\d", f.name).group())].append(f.rename(held / f.name))
    by_day[date(2026, 10, 21)].append(
        by_day[date(2026, 10, 9)].pop([p.name for p in by_day[date(2026, 10, 9)]].index(LATE))
    )
    inbox = ws / "inbox" / "gps"
    log = logging.getLogger(LOGGER_NAME)
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    log.addHandler(handler)
    result: dict = {"nights": [], "ws": ws}
    try:
        for day in sorted(set(by_day) | {COPY_NIGHT, CHANGE_NIGHT, POLICY_NIGHT, SITES_NIGHT}):
            for f in by_day.get(day, []):
                f.rename(inbox / f.name)
            if day == COPY_NIGHT:
                result["copied"] = write_copy(ws, inbox / "w001_resent.csv", "W001", REPLAYED, COPY)
            if day == CHANGE_NIGHT:
                lon, lat = query(
                    ws, "SELECT lon, lat FROM gps_point WHERE worker_id = 'W001' AND date = ? LIMIT 1", [REPLAYED]
                )[0]
                write_detour(inbox / "w001_detour.csv", "W001", REPLAYED, lon, lat)
            if day == POLICY_NIGHT:
                toml = ws / "patrol.toml"
                toml.write_text(toml.read_text(encoding="utf-8") + "\n[patrol.deductions]\nshort_week = 0.4\n", "utf-8")
            if day == SITES_NIGHT:  # the hazard sites struck off sites.csv: their checks must go too
                sites = ws / "sites.csv"
                rows = sites.read_text(encoding="utf-8").splitlines(keepends=True)
                sites.write_text("".join(r for r in rows if ",hazard_site," not in r), "utf-8")
            del lines[:]
            assert main(["--workspace", str(ws), "--no-progress"]) == 0
            con = duckdb.connect(str(ws / "patrol.duckdb"), read_only=True)
            try:
                stored = month_tables(con)
            finally:
                con.close()
            step = [x for x in lines if x.startswith("step=month") and f"month={MONTH}" in x]
            result["nights"].append((day, stored, whole_month(ws, root), step))
    finally:
        log.removeHandler(handler)
    return result


def test_every_night_stores_what_a_whole_month_recomputation_stores(nights: dict) -> None:
    assert len(nights["nights"]) >= 20
    for day, stored, whole, _ in nights["nights"]:
        for table in MONTH_TABLES:
            assert stored[table] == whole[table], f"night {day}: {table} differs from a whole-month recomputation"
    last = nights["nights"][-1][1]
    assert len(last[c.WORKER_WEEK]) > 0 and len(last[c.SITE_CHECK]) > 0 and len(last[c.PATROL_FINDING]) > 0
    before = {day: stored for day, stored, _, _ in nights["nights"]}[POLICY_NIGHT]
    assert any(r[1] == "hazard_site" for r in before[c.SITE_CHECK])
    assert not any(r[1] == "hazard_site" for r in last[c.SITE_CHECK])


def test_nights_recompute_only_the_week_parts_of_their_days(nights: dict) -> None:
    windows = {day: re.search(r"window=(\S+)", step[0]).group(1) for day, _, _, step in nights["nights"] if step}
    first = min(windows)
    assert windows[first] == "month"  # no inputs recorded yet: the whole month
    assert windows[POLICY_NIGHT] == "month"  # the policy changed: the whole month again
    assert windows[SITES_NIGHT] == "month"  # and sites.csv
    # 2026-10-22 is a Thursday: its week part is Monday 19th – Sunday 25th
    assert windows[date(2026, 10, 22)] == "2026-10-19..2026-10-25"
    # the late file of the 9th, delivered on the 21st: both weeks, not the month
    assert windows[date(2026, 10, 21)] == "2026-10-05..2026-10-25"
    windowed = [d for d, w in windows.items() if w != "month"]
    assert len(windowed) >= len(windows) - 3


def test_a_replay_is_flagged_and_cleared_when_its_original_changes(nights: dict) -> None:
    assert nights["copied"] > 100
    by_day = {day: stored[c.DAY_FLAG] for day, stored, _, _ in nights["nights"]}

    def replays(rows: list[tuple]) -> set[tuple[str, str]]:
        return {(str(r[2]), r[4][:24]) for r in rows if r[0] == "W001" and r[3] == "replay"}

    flagged = replays(by_day[COPY_NIGHT])
    assert (str(COPY), f"same track as {REPLAYED}") in flagged
    assert (str(REPLAYED), f"same track as {COPY}") in flagged
    # the 8th got an extra hour: the night that recomputed it deleted the pair from both days
    # (the row on the 18th by the day it names), and nothing else put it back
    after = replays(by_day[CHANGE_NIGHT])
    assert not {f for f in after if REPLAYED.isoformat() in f[0] + f[1] and COPY.isoformat() in f[0] + f[1]}


def test_a_month_without_pending_days_or_with_other_sites_is_recomputed_whole(nights: dict, tmp_path: Path) -> None:
    ws = nights["ws"]
    workspace = load_workspace(ws)
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(ws / "patrol.duckdb", copy)
    con = duckdb.connect(str(copy))
    try:
        h = month_inputs_hash(workspace)
        assert month_window(con, MONTH, h).whole  # nothing pending: nothing known to narrow it
        con.execute("INSERT INTO pending_work VALUES ('month_day', '2026-10-14', 'r', now())")
        narrow = month_window(con, MONTH, h)
        assert not narrow.whole and narrow.dates == tuple(date(2026, 10, d) for d in range(12, 19))
        assert narrow.touched == (date(2026, 10, 14),)
        assert month_window(con, MONTH, "another-inputs-hash").whole
    finally:
        con.close()
    # sites.csv edited (a site less): the month's inputs differ, so its next step is whole
    assert month_inputs_hash(workspace) != month_inputs_hash(
        dataclasses.replace(workspace, sites=workspace.sites.iloc[1:])
    )
