"""The nightly batch: ``python -m trajectory.run --workspace DIR``.

ingest the inbox → recompute the days that received points (and yesterday) → recompute their
weeks, site checks and item 2.5 findings → with ``--month``, score the month and write the
workbook and the maps. Exit code 0 on success; otherwise one line saying why.

Crash safety (docs/operations.md): every step commits its result in one transaction together
with the deletion of its entry in ``pending_work``; a run first records the work it plans
(days, months to score). A run killed at any point therefore leaves the store consistent and
its unfinished work recorded, and the next run, whatever its arguments, finishes it; a
``--month`` is journalled (``month_request``) before ingest and is done only once its workbook
and maps are written. The run log gets a ``running`` row at the start; the next run marks a
``running`` row left behind as ``killed``. A run waits, bounded, for an analyst holding
``patrol.duckdb`` (analysts read snapshots: ``trajectory.api``).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import shutil
import sys
import time
import traceback
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from trajectory import contract as c
from trajectory import store
from trajectory.calendar import workday_flags
from trajectory.engine import DayResult, EngineContext, process_days
from trajectory.errors import GridpatrolError, StoreError
from trajectory.logs import log_step, setup_logging
from trajectory.workspace import Workspace, WorkspacePaths, load_workspace

log = logging.getLogger(__name__)

DEFAULT_DEMO_DIR = Path("demo-workspace")
DEFAULT_DEMO_MONTH = "2026-10"
DAYS_PER_BATCH = 4  # days processed and committed together
MAX_POINTS_PER_BATCH = 500_000  # points of one worker batch (≈ 300 bytes each at the engine's peak)
ENGINE_LOCAL, ENGINE_SPARK = "local", "spark"
WORKERS = min(2, os.cpu_count() or 1)  # pool processes for the worker batches of a day
# run_log.outcome values
OUTCOME_RUNNING, OUTCOME_OK, OUTCOME_FAILED, OUTCOME_KILLED = "running", "ok", "failed", "killed"
# --wait without a value: wait this long for another run, then for the database (docs/operations.md)
DEFAULT_WAIT_S = 7200.0
# without --wait, how long a run waits for a reader of patrol.duckdb (an analyst's snapshot copy, --status)
DB_LOCK_GRACE_S = 60.0


@dataclass
class RunSummary:
    """What a run did, for the closing summary and the run log."""

    run_id: str
    files: int = 0
    rows_accepted: int = 0
    rows_duplicate: int = 0
    rows_quarantined: int = 0
    days: list[date] = field(default_factory=list)
    months: list[str] = field(default_factory=list)
    scored: list[str] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --- dates ----------------------------------------------------------------------------


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (expected YYYY-MM-DD)") from None


def parse_month(text: str) -> str:
    try:
        datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a month (expected YYYY-MM)") from None
    return text


def parse_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds (expected e.g. 600)")
    return value


def month_days(month: str) -> list[date]:
    first = datetime.strptime(month, "%Y-%m").date()
    nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return [first + timedelta(days=i) for i in range((nxt - first).days)]


def date_range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def month_of(day: date) -> str:
    return day.strftime("%Y-%m")


# --- stages -----------------------------------------------------------------------------


def _engine_context(ws: Workspace, days: Iterable[date]) -> EngineContext:
    days = sorted(set(days))
    flags = workday_flags(days, ws.calendar_overrides)
    return EngineContext(
        grids=ws.grids,
        workers=ws.workers,
        sites=ws.sites,
        leave=ws.leave,
        workday=dict(zip(days, (bool(f) for f in flags), strict=True)),
        policy=ws.policy,
        tz=ws.tz,
    )


def load_points(
    con: duckdb.DuckDBPyConnection, days: Sequence[date], worker_ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """The stored points of the given local dates (of ``worker_ids`` only, when given), in the
    engine's column types, sorted by worker and time."""
    # ts as epoch microseconds: turned into datetime64[us, UTC] without a per-value conversion
    sql = f"""SELECT worker_id, epoch_us(ts) AS ts, lon::DOUBLE AS lon, lat::DOUBLE AS lat,
                     accuracy_m::DOUBLE AS accuracy_m, speed_mps::DOUBLE AS speed_mps,
                     coalesce(mock, false) AS mock
              FROM {c.GPS_POINT} WHERE date IN (SELECT unnest(?::DATE[]))"""
    params: list[object] = [list(days)]
    if worker_ids is not None:
        # batches are runs of sorted ids: the range lets Parquet row-group statistics skip reads
        sql += " AND worker_id BETWEEN ? AND ? AND worker_id IN (SELECT unnest(?::VARCHAR[]))"
        params += [min(worker_ids), max(worker_ids), list(worker_ids)]
    df = con.execute(sql + " ORDER BY worker_id, ts", params).df()
    df["ts"] = pd.to_datetime(df["ts"].to_numpy(dtype="int64"), unit="us", utc=True).astype("datetime64[us, UTC]")
    df["mock"] = df["mock"].astype(bool)
    df["worker_id"] = df["worker_id"].astype(str)
    return df


def _plan(con: duckdb.DuckDBPyConnection, ctx: EngineContext, days: Sequence[date], max_points: int) -> list[list[str]]:
    """Worker batches of at most ``max_points`` points on ``days`` (every full-time worker in one)."""
    from trajectory.batching import full_time_ids, plan_batches

    rows = con.execute(
        f"SELECT worker_id, count(*) FROM {c.GPS_POINT} WHERE date IN (SELECT unnest(?::DATE[])) GROUP BY 1",
        [list(days)],
    ).fetchall()
    counts = pd.Series({str(w): int(n) for w, n in rows}, dtype="int64")
    counts = counts.reindex(counts.index.union(pd.Index(full_time_ids(ctx), dtype=object)), fill_value=0)
    return plan_batches(counts, max_points)


def _local_results(
    con: duckdb.DuckDBPyConnection, ctx: EngineContext, days: Sequence[date], plan: list[list[str]]
) -> Iterator[DayResult]:
    """The engine over worker batches in this process, one result per batch.

    The next batch is read from the store on a second thread (its own DuckDB cursor) while
    this one is computed.
    """
    from trajectory.batching import context_for_workers

    reader = con.cursor()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gp-read") as pool:
        ahead = pool.submit(load_points, reader, days, plan[0]) if plan else None
        for i, ids in enumerate(plan):
            assert ahead is not None
            points = ahead.result()
            ahead = pool.submit(load_points, reader, days, plan[i + 1]) if i + 1 < len(plan) else None
            yield process_days(points, context_for_workers(ctx, ids), days)
            del points
    reader.close()


def _pool_results(
    pool: ProcessPoolExecutor,
    paths: WorkspacePaths,
    writer: _PointUseWriter,
    ctx: EngineContext,
    days: Sequence[date],
    plan: list[list[str]],
) -> Iterator[DayResult]:
    """The worker batches on a process pool, in plan order, at most one batch per process in
    flight (bounded memory). Each process reads its batch from the Parquet store and writes
    its own point_use part; only the small tables come back."""
    in_flight: deque[Future[DayResult]] = deque()
    for ids in plan:
        in_flight.append(pool.submit(_batch_job, paths, writer.staging, ctx, list(days), ids, writer.next_part()))
        if len(in_flight) >= WORKERS:
            yield in_flight.popleft().result()
    while in_flight:
        yield in_flight.popleft().result()


def read_batch(paths: WorkspacePaths, days: Sequence[date], worker_ids: Sequence[str]) -> pd.DataFrame:
    """The stored points of ``worker_ids`` on ``days`` read straight from the Parquet store.

    The same rows and types as :func:`load_points`, without DuckDB: a pool process cannot open
    ``patrol.duckdb`` while the run holds it, but it can read the store's files.
    """
    import pyarrow.compute as pc

    files = store.gps_parts(paths, days)
    cols = ["worker_id", "ts", "lon", "lat", "accuracy_m", "speed_mps", "mock"]
    if not files:
        return load_points_frame(
            pa.table({k: pa.array([], pa.string() if k == "worker_id" else pa.float64()) for k in cols})
        )
    lo, hi = min(worker_ids), max(worker_ids)
    wanted = pa.array(sorted(set(worker_ids)), pa.string())
    # the range filter prunes row groups by their statistics; isin keeps exactly the batch
    flt = (pc.field("worker_id") >= lo) & (pc.field("worker_id") <= hi) & pc.field("worker_id").isin(wanted)
    tables = [pq.read_table(f, columns=cols, filters=flt) for f in files]
    table = pa.concat_tables(tables, promote_options="permissive").sort_by(
        [("worker_id", "ascending"), ("ts", "ascending")]
    )
    return load_points_frame(table)


def load_points_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table of points in the engine's column types (ts as datetime64[us, UTC])."""
    df = table.to_pandas()
    if len(df):
        df["ts"] = pd.to_datetime(df["ts"], utc=True).astype("datetime64[us, UTC]")
    else:
        df["ts"] = pd.Series([], dtype="datetime64[us, UTC]")
    for col in ("lon", "lat", "accuracy_m", "speed_mps"):
        df[col] = df[col].astype("float64")
    df["mock"] = df["mock"].fillna(False).astype(bool)
    df["worker_id"] = df["worker_id"].astype(str)
    return df


def _batch_job(
    paths: WorkspacePaths, staging: Path, ctx: EngineContext, days: list[date], ids: list[str], n: int
) -> DayResult:
    """One worker batch in a pool process: read, compute, write its point_use part.

    Returns the small tables; ``point_use`` comes back empty (its rows are on disk, counted
    in ``n_points`` of the returned frame's attrs).
    """
    from trajectory.batching import context_for_workers

    res = process_days(read_batch(paths, days, ids), context_for_workers(ctx, ids), days)
    write_point_use_parts(staging, res.point_use, n, days)
    n_points = len(res.point_use)
    res = DayResult(
        worker_day=res.worker_day, site_visit=res.site_visit, day_flag=res.day_flag, point_use=res.point_use.head(0)
    )
    res.worker_day.attrs["n_points"] = n_points
    return res


def write_point_use_parts(staging: Path, point_use: pd.DataFrame, n: int, days: Sequence[date]) -> None:
    """Write ``point_use`` as ``staging/date=D/part-<n>.parquet``, one part per day."""
    if point_use.empty:
        return
    # one factorisation instead of a comparison of date objects per day
    codes, uniques = pd.factorize(point_use["date"])
    for k, day in enumerate(uniques):
        if day in days:
            part = point_use.iloc[np.flatnonzero(codes == k)]
            path = staging / f"date={day.isoformat()}" / f"part-{n:05d}.parquet"
            store.write_parquet_atomic(pa.Table.from_pandas(part.drop(columns=["date"]), preserve_index=False), path)


class _PointUseWriter:
    """Writes a batch of days' ``point_use`` in parts, then swaps each day's folder in at once.

    Parts go to ``point_use/.staging/date=D/part-NNNNN.parquet`` (not matched by the view's
    ``date=*/*.parquet``); :meth:`commit` renames each staged day over the old one. A run
    killed before the swap leaves the old day; one killed during it leaves the day pending,
    so the next run writes it again (the tables' transaction comes after the swap).
    """

    def __init__(self, root: Path, days: Sequence[date]) -> None:
        self.root, self.days = root, list(days)
        self.staging = root / ".staging"
        shutil.rmtree(self.staging, ignore_errors=True)
        self.n = 0
        # Parquet encoding runs outside the GIL: parts are written while the next batch computes
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gp-write")
        self.pending: list[Future[None]] = []

    def write(self, point_use: pd.DataFrame) -> None:
        if point_use.empty:
            return
        # at most one part in flight: bounded memory
        self._wait()
        self.pending.append(self.pool.submit(self._write, point_use, self.n))
        self.n += 1

    def _wait(self) -> None:
        for fut in self.pending:
            fut.result()
        self.pending.clear()

    def close(self) -> None:
        self._wait()
        self.pool.shutdown(wait=True)

    def _write(self, point_use: pd.DataFrame, n: int) -> None:
        write_point_use_parts(self.staging, point_use, n, self.days)

    def next_part(self) -> int:
        """A part number for a pool process that writes its own part."""
        self.n += 1
        return self.n - 1

    def commit(self) -> None:
        self.close()
        for day in self.days:
            final = self.root / f"date={day.isoformat()}"
            staged = self.staging / final.name
            trash = self.root / f".trash-{final.name}"
            shutil.rmtree(trash, ignore_errors=True)
            if final.exists():
                os.replace(final, trash)
            if staged.exists():
                os.replace(staged, final)
            shutil.rmtree(trash, ignore_errors=True)
        shutil.rmtree(self.staging, ignore_errors=True)


def _die_with_parent(parent: int) -> None:
    """In a pool process: be killed with the run (Linux ``PR_SET_PDEATHSIG``).

    An idle pool process waits on a queue whose other end it holds itself, so it would
    outlive a run killed with SIGKILL (and keep the run's stdout open).
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except OSError:
        return
    if os.getppid() != parent:  # the run died before the call
        os._exit(1)


class DayPool:
    """The process pool of the day job, forked when :meth:`start` is called.

    The nightly run starts it before ingest: a forked process begins with its parent's
    resident memory, and the run's process is small then; forked after ingest, each pool
    process began with what ingest had grown to (940 MB instead of 710 MB peak at 1.5 M points
    a night, benchmarks/bench_month.py). The processes never touch DuckDB.
    """

    def __init__(self, workers: int = WORKERS) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_die_with_parent,
                initargs=(os.getpid(),),
            )
            self._pool.submit(int).result()  # a fork pool starts all its processes on the first task
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def process_dates(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    days: Sequence[date],
    progress: bool,
    *,
    run_id: str = "",
    engine: str = ENGINE_LOCAL,
    max_points: int = MAX_POINTS_PER_BATCH,
    pool: DayPool | None = None,
) -> None:
    """Recompute worker_day, site_visit, day_flag and the point_use store for ``days``.

    Each batch of days commits its three tables in one transaction, which also clears the
    days from the pending work and marks their months as pending. ``engine`` is ``local``
    (DuckDB + NumPy over worker batches on this machine's cores) or ``spark``. ``pool``: a
    started :class:`DayPool` to use (and leave open); without it one is made when needed.
    """
    days = sorted(set(days))
    batches = [days[i : i + DAYS_PER_BATCH] for i in range(0, len(days), DAYS_PER_BATCH)]
    spark = None
    if engine == ENGINE_SPARK:
        from trajectory.spark_engine import spark_session

        spark = spark_session()
    own_pool = pool is None
    day_pool = pool or DayPool()
    bar = tqdm(batches, desc="巡查计算 days", unit="batch", disable=not progress, file=sys.stderr)
    try:
        for batch in bar:
            t0 = time.perf_counter()
            ctx = _engine_context(ws, batch)
            writer = _PointUseWriter(ws.paths.point_use_store, batch)
            results: Iterable[DayResult]
            if spark is not None and ws.paths.gps_store.is_dir():
                from trajectory.spark_engine import process_days_spark

                # Spark reads the whole Parquet store and keeps the batch's date partitions
                results = [process_days_spark(spark, str(ws.paths.gps_store), ctx, batch)]
            else:
                plan = _plan(con, ctx, batch, max_points)
                if len(plan) > 1 and day_pool.workers > 1:
                    results = _pool_results(day_pool.start(), ws.paths, writer, ctx, batch, plan)
                else:
                    results = _local_results(con, ctx, batch, plan)
            worker_day, site_visit, day_flag = [], [], []
            n_points = 0
            try:
                for res in results:
                    writer.write(res.point_use)
                    n_points += len(res.point_use) + int(res.worker_day.attrs.get("n_points", 0))
                    worker_day.append(res.worker_day)
                    site_visit.append(res.site_visit)
                    day_flag.append(res.day_flag)
            finally:
                writer.close()
            writer.commit()
            where = "date IN (SELECT unnest(?::DATE[]))"
            with store.transaction(con):
                store.replace_rows(con, c.WORKER_DAY, _concat(worker_day), where, [batch], own_transaction=False)
                store.replace_rows(con, c.SITE_VISIT, _concat(site_visit), where, [batch], own_transaction=False)
                store.replace_rows(
                    con, c.DAY_FLAG, _concat(day_flag), f"flag <> 'replay' AND {where}", [batch], own_transaction=False
                )
                # the days are done; the weeks and findings of their months are now out of date
                store.done_pending(con, store.PENDING_DAY, batch)
                store.add_pending(con, store.PENDING_MONTH, {month_of(d) for d in batch}, run_id)
            log_step(
                "days",
                first=batch[0],
                last=batch[-1],
                points=n_points,
                worker_days=sum(len(w) for w in worker_day),
                engine=engine,
                seconds=round(time.perf_counter() - t0, 2),
            )
            store.crash_point("days")
    finally:
        if own_pool:
            day_pool.close()
        if spark is not None:
            spark.stop()
    store.refresh_views(con, ws.paths)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)] or frames[:1]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)


def recompute_month(ws: Workspace, con: duckdb.DuckDBPyConnection, month: str) -> None:
    """Weeks, site checks, replay flags and item 2.5 findings of a month, from the stored days."""
    from trajectory.findings import patrol_findings
    from trajectory.flags import replays_from_signatures
    from trajectory.metrics import compute_weeks
    from trajectory.visits import site_checks

    days = month_days(month)
    worker_day = con.execute(
        f"SELECT * FROM {c.WORKER_DAY} WHERE strftime(date, '%Y-%m') = ? ORDER BY worker_id, date", [month]
    ).df()
    if worker_day.empty:
        store.done_pending(con, store.PENDING_MONTH, [month])
        return
    worker_day["date"] = pd.to_datetime(worker_day["date"]).dt.date
    visits = con.execute(f"SELECT * FROM {c.SITE_VISIT} WHERE strftime(date, '%Y-%m') = ?", [month]).df()
    # also when empty: a month without visits (say, only its 1st computed) must compare dates with dates
    visits["date"] = pd.to_datetime(visits["date"]).dt.date
    weeks = compute_weeks(worker_day, ws.policy)
    checks = site_checks(visits, ws.sites, worker_day, days[0], days[-1], ws.policy)
    # replays from the days' stored track signatures: the month step reads no points (issue 12)
    replays = replays_from_signatures(worker_day, ws.policy)
    findings = patrol_findings(worker_day, weeks, checks, ws.policy, month)
    by_month = "month = ?"
    with store.transaction(con):
        store.replace_rows(con, c.WORKER_WEEK, weeks, by_month, [month], own_transaction=False)
        store.replace_rows(con, c.SITE_CHECK, checks, by_month, [month], own_transaction=False)
        store.replace_rows(con, c.PATROL_FINDING, findings, by_month, [month], own_transaction=False)
        store.replace_rows(
            con,
            c.DAY_FLAG,
            replays,
            "flag = 'replay' AND date BETWEEN ? AND ?",
            [days[0], days[-1]],
            own_transaction=False,
        )
        store.done_pending(con, store.PENDING_MONTH, [month])
    log_step(
        "month", month=month, weeks=len(weeks), site_checks=len(checks), findings=len(findings), replays=len(replays)
    )


def score_and_export(ws: Workspace, con: duckdb.DuckDBPyConnection, month: str, progress: bool) -> list[Path]:
    """Score the month, write the workbook and the maps; returns the files written.

    The month is scored with this run's ``--allow-missing`` and those its request was journalled
    with (a killed ``--month M --allow-missing T`` finished by a plain run).
    """
    from maps.build import render_workspace_month
    from scoring.export import export_month, score_and_store

    result = score_and_store(
        ws, con, month, allow_missing=set(ws.allow_missing) | set(store.month_allowance(con, month))
    )
    store.crash_point("score")
    outputs = list(
        export_month(con, ws.paths.out_month(month), month, ws.grids, ws.policy, source=str(ws.paths.duckdb))
    )
    # the maps last: their index page links the workbook and the tables just written
    outputs += list(render_workspace_month(ws, con, month))
    log_step("score", month=month, grids=int(result.grid_month_score["grid_id"].nunique()), outputs=len(outputs))
    return outputs


# --- the run ------------------------------------------------------------------------------


def run_pipeline(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    *,
    days: Sequence[date] | None,
    month: str | None,
    progress: bool,
    run_id: str,
    summary: RunSummary | None = None,
    engine: str = ENGINE_LOCAL,
) -> RunSummary:
    """Ingest, recompute and (with ``month``) score. The caller holds the workspace lock.

    The work done is the work asked (docs/decisions.md, "Days recomputed by a nightly run")
    plus any left pending by an earlier run that was killed or failed. ``summary``, when
    given, is filled in place (so a failed run's log shows how far it got).
    """

    summary = summary or RunSummary(run_id=run_id)
    summary.warnings += list(ws.warnings)
    # the month asked is journalled before any work, with the months earlier runs left unscored:
    # a run killed from here on leaves them to the next run, whatever that run is asked
    store.take_over_months(con, run_id, [month] if month else [], ws.allow_missing if month else ())
    stale = store.remove_stale_temporaries(ws.paths)
    if stale:
        summary.warnings.append(f"{stale} temporary files of an interrupted run removed")
    pool = DayPool()
    try:
        _run_stages(ws, con, days=days, month=month, progress=progress, run_id=run_id, summary=summary,
                    engine=engine, pool=pool)  # fmt: skip
    finally:
        pool.close()
    return summary


def _run_stages(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    *,
    days: Sequence[date] | None,
    month: str | None,
    progress: bool,
    run_id: str,
    summary: RunSummary,
    engine: str,
    pool: DayPool,
) -> None:
    from trajectory.ingest import ingest_inbox

    if engine == ENGINE_LOCAL and pool.workers > 1:
        pool.start()  # before ingest grows this process (DayPool)
    # ingest records the dates that received points as pending days, with each file's commit
    report = ingest_inbox(ws, con, run_id, progress=progress)
    summary.files = len(report.files)
    summary.rows_accepted = sum(f["accepted"] for f in report.files)
    summary.rows_duplicate = sum(f["duplicate"] for f in report.files)
    summary.rows_quarantined = sum(f["quarantined"] for f in report.files)
    summary.warnings += list(report.warnings)
    log_step(
        "ingest",
        files=summary.files,
        accepted=summary.rows_accepted,
        duplicate=summary.rows_duplicate,
        quarantined=summary.rows_quarantined,
    )

    today = datetime.now(ws.tz).date()
    asked: set[date] = set()
    if days is not None:
        asked |= set(days)
    elif month is None:
        # the plain nightly run also closes yesterday: a worker who sent nothing is absent
        asked.add(today - timedelta(days=1))
    # every month to score (this run's --month, or one a killed or failed run left) needs all its days
    to_score = store.pending(con, store.PENDING_SCORE)
    if to_score:
        done = {
            d
            for (d,) in con.execute(
                f"SELECT DISTINCT date FROM {c.WORKER_DAY} WHERE strftime(date, '%Y-%m') IN (SELECT unnest(?::VARCHAR[]))",
                [to_score],
            ).fetchall()
        }
        asked |= {d for m in to_score for d in month_days(m) if d not in done}
    # the plan is recorded before any of it is done: a killed run leaves it for the next one
    with store.transaction(con):
        store.add_pending(con, store.PENDING_DAY, {d for d in asked if d <= today}, run_id)
        todo = [d for d in map(date.fromisoformat, store.pending(con, store.PENDING_DAY)) if d <= today]
        # months already scored that receive recomputed days are scored again (late uploads re-open them)
        scored_before = {m for (m,) in con.execute(f"SELECT DISTINCT month FROM {c.GRID_MONTH_SCORE}").fetchall()}
        store.request_months(con, {month_of(d) for d in todo} & scored_before, run_id)
    summary.days = todo
    if summary.days:
        process_dates(ws, con, summary.days, progress, run_id=run_id, engine=engine, pool=pool)
    summary.months = store.pending(con, store.PENDING_MONTH)
    for m in summary.months:
        recompute_month(ws, con, m)
        store.crash_point("month")
    for m in store.pending(con, store.PENDING_SCORE):
        store.month_scoring(con, m, run_id)
        summary.outputs += score_and_export(ws, con, m, progress)
        # done only now that the workbook and the maps are written
        store.month_scored(con, m, run_id)
        summary.scored.append(m)


def mark_killed_runs(con: duckdb.DuckDBPyConnection, run_id: str) -> list[str]:
    """Mark run log rows still ``running`` as ``killed``; returns their run ids.

    Called under the workspace lock: no other run is going, so a ``running`` row is a run
    that died without writing its end (SIGKILL, power cut, out of memory).
    """
    killed = [
        r[0] for r in con.execute(f"SELECT run_id FROM {c.RUN_LOG} WHERE outcome = ?", [OUTCOME_RUNNING]).fetchall()
    ]
    if killed:
        con.execute(
            f"UPDATE {c.RUN_LOG} SET outcome = ?, message = ? WHERE outcome = ?",
            [OUTCOME_KILLED, f"{KILLED_MESSAGE}; run {run_id} takes over its unfinished work", OUTCOME_RUNNING],
        )
    return killed


KILLED_MESSAGE = "stopped before its end (killed, power cut or out of memory)"


def mark_taken_over(con: duckdb.DuckDBPyConnection, killed: Sequence[str], run_id: str) -> None:
    """``run_id`` ended ``ok``: the unfinished work of the ``killed`` runs is done now, and only now
    does their run log say so."""
    if killed:
        con.execute(
            f"UPDATE {c.RUN_LOG} SET message = ? WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
            [f"{KILLED_MESSAGE}; its unfinished work was done by run {run_id}", list(killed)],
        )


def write_run_log(
    con: duckdb.DuckDBPyConnection,
    summary: RunSummary,
    started: datetime,
    command: str,
    policy_hash: str,
    outcome: str,
    message: str,
) -> None:
    row = pd.DataFrame(
        [
            {
                "run_id": summary.run_id,
                "started_at": started,
                "ended_at": None if outcome == OUTCOME_RUNNING else datetime.now().astimezone(),
                "command": command,
                "files": summary.files,
                "rows_accepted": summary.rows_accepted,
                "rows_duplicate": summary.rows_duplicate,
                "rows_quarantined": summary.rows_quarantined,
                "days_recomputed": ",".join(d.isoformat() for d in summary.days),
                "months_scored": ",".join(summary.scored),
                "warnings": json.dumps(summary.warnings, ensure_ascii=False),
                "policy_hash": policy_hash,
                "outcome": outcome,
                "message": message,
            }
        ]
    )
    store.replace_rows(con, c.RUN_LOG, row, "run_id = ?", [summary.run_id])


def print_summary(ws: Workspace, summary: RunSummary, seconds: float) -> None:
    days = summary.days
    span = f"{days[0]} … {days[-1]}（{len(days)} 天）" if days else "无"
    lines = [
        f"gridpatrol 运行完成 run={summary.run_id} 用时 {seconds:.1f} s",
        f"  工作区 workspace: {ws.root}",
        f"  入库 ingest: 文件 {summary.files} 个，接收 {summary.rows_accepted} 点，重复 {summary.rows_duplicate}，隔离 {summary.rows_quarantined}",
        f"  重算日期 days: {span}",
    ]
    if summary.scored:
        lines.append(f"  月度考核 scored: {', '.join(summary.scored)}")
        for m in summary.scored:
            out = ws.paths.out_month(m)
            for p in summary.outputs:
                if p.suffix == ".xlsx" and p.parent == out:
                    lines.append(f"    考核得分表 workbook: {p}")
    for w in summary.warnings[:20]:
        lines.append(f"  注意 warning: {w}")
    if len(summary.warnings) > 20:
        lines.append(f"  … 另有 {len(summary.warnings) - 20} 条 warnings（见 run_log）")
    for m in summary.scored:  # last: what to open after `make demo` or a month-end run
        lines.append(f"首页看板 dashboard（浏览器打开）: {ws.paths.out_month(m) / 'index.html'}")
    print("\n".join(lines))


def print_status(ws: Workspace, limit: int = 10) -> None:
    """Print the last runs of the workspace, newest first, and whether a run is going now."""
    holder = store.lock_holder(ws.paths)
    if holder:
        print(f"运行中 a run is in progress ({holder})")
    try:
        con = store.connect(ws.paths, read_only=True)
    except StoreError:
        if holder is None:
            raise
        # the running process holds the database's write lock: DuckDB refuses readers meanwhile
        print("  the store is busy until that run ends; ask again later")
        return
    try:
        rows = con.execute(
            f"""SELECT run_id, started_at, ended_at, outcome, files, rows_accepted, rows_duplicate, rows_quarantined,
                       days_recomputed, months_scored, policy_hash, message, warnings
                FROM {c.RUN_LOG} ORDER BY started_at DESC LIMIT ?""",
            [limit],
        ).fetchall()
        outcomes = dict(con.execute(f"SELECT run_id, outcome FROM {c.RUN_LOG}").fetchall())
        requests = store.month_requests(con)
    finally:
        con.close()
    if not rows:
        print("尚无运行记录 no runs yet")
        return
    print("run_id           开始 started             结果 outcome  文件 接收 重复 隔离  重算天数 月份  注意 policy")
    for r in rows:
        ndays = len(r[8].split(",")) if r[8] else 0
        # a run that is not going any more but never wrote its end was killed
        outcome = OUTCOME_KILLED if r[3] == OUTCOME_RUNNING and holder is None else r[3]
        nwarn = len(json.loads(r[12])) if r[12] else 0
        print(
            f"{r[0]:<16} {str(r[1])[:19]:<22} {outcome:<12} {r[4]:>4} {r[5]:>8} {r[6]:>6} {r[7]:>5}  {ndays:>4}  "
            f"{r[9] or '-':<8} {nwarn:>3}  {r[10]}"
        )
        if r[11]:
            print(f"                 {r[11]}")
    for line in month_request_lines(requests, outcomes, holder is not None):
        print(line)


def month_request_lines(requests: pd.DataFrame, outcomes: dict[str, str], running: bool) -> list[str]:
    """``--status``'s lines on month scoring: each month asked for and what became of it.

    A month is ``done`` only once its workbook and maps were written (``month_request``);
    until then it shows as pending, failed or killed with the run concerned, never as done.
    """
    if requests.empty:
        return []
    lines = ["月度考核 month scoring (--month, or re-opened by late points):"]
    for r in requests.itertuples(index=False):
        last = r.last_run or r.requested_run
        outcome = outcomes.get(last, OUTCOME_KILLED)
        if outcome == OUTCOME_RUNNING and not running:
            outcome = OUTCOME_KILLED
        if r.state == store.REQUEST_DONE:
            text = f"完成 done      scored by run {r.done_run} at {str(r.done_at)[:16]}; workbook and maps written"
        elif r.state == store.REQUEST_FAILED:
            text = f"失败 failed    {r.message or ''}; the next run tries again"
        elif outcome == OUTCOME_RUNNING:
            text = f"进行中 running  run {last} is scoring it"
        elif outcome == OUTCOME_KILLED:
            text = (
                f"中断 killed    run {last} stopped before the workbook and maps were written; "
                "pending, the next run (any command) scores it"
            )
        elif outcome == OUTCOME_FAILED:
            text = f"待完成 pending  run {last} failed before scoring it: {r.message or ''}; the next run tries again"
        else:
            text = "待完成 pending  the next run (any command) scores it"
        lines.append(f"  {r.month}  {text}  (asked by run {r.requested_run})")
    return lines


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m trajectory.run",
        description="gridpatrol 夜间批处理：入库 GPS、按日计算巡查轨迹、（--month）月度考核与导出。",
    )
    p.add_argument(
        "--workspace", type=Path, help="workspace folder (SPEC §2); with --demo defaults to ./demo-workspace"
    )
    when = p.add_mutually_exclusive_group()
    when.add_argument("--date", type=parse_day, help="reprocess one local date YYYY-MM-DD")
    when.add_argument("--from", dest="date_from", type=parse_day, help="reprocess from this date (with --to)")
    p.add_argument("--to", dest="date_to", type=parse_day, help="reprocess up to this date (inclusive)")
    p.add_argument("--month", type=parse_month, help="also score this month YYYY-MM and write the workbook and maps")
    p.add_argument(
        "--allow-missing",
        action="append",
        default=[],
        metavar="TABLE",
        help="score although the required indicator table TABLE is missing; its items are 暂缺 (repeatable)",
    )
    p.add_argument("--demo", action="store_true", help="build the demo workspace (if absent) and run everything on it")
    p.add_argument("--seed", type=int, default=20261001, help="demo generator seed (with --demo)")
    p.add_argument("--status", action="store_true", help="print the last runs of the workspace and exit")
    p.add_argument(
        "--wait",
        nargs="?",
        type=parse_seconds,
        const=DEFAULT_WAIT_S,
        metavar="SECONDS",
        help=f"wait for another run on the same workspace, then for any other process holding patrol.duckdb, "
        f"instead of refusing; at most SECONDS in all (default {DEFAULT_WAIT_S:g}). Without it a run still waits "
        f"{DB_LOCK_GRACE_S:g} s for a reader of patrol.duckdb",
    )
    p.add_argument(
        "--engine",
        choices=(ENGINE_LOCAL, ENGINE_SPARK),
        default=ENGINE_LOCAL,
        help="local (default: DuckDB + NumPy on this machine's cores) or spark (PySpark; docs/scale.md)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only in the log")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(logging.WARNING if args.quiet else logging.INFO)
    if (args.date_from is None) != (args.date_to is None):
        print("error: --from and --to go together", file=sys.stderr)
        return 2
    if args.date_from and args.date_to < args.date_from:
        print("error: --to is before --from", file=sys.stderr)
        return 2
    if args.workspace is None and not args.demo:
        print("error: --workspace DIR is required (or --demo)", file=sys.stderr)
        return 2
    progress = not args.no_progress and sys.stderr.isatty()
    root = args.workspace or DEFAULT_DEMO_DIR
    month = args.month
    days: list[date] | None = None
    if args.date:
        days = [args.date]
    elif args.date_from:
        days = date_range(args.date_from, args.date_to)
    try:
        if args.demo:
            month = month or DEFAULT_DEMO_MONTH
            if not (Path(root) / "workers.csv").exists():
                from trajectory.demo import build_demo_workspace

                log_step("demo", workspace=root, month=month, seed=args.seed)
                build_demo_workspace(Path(root), month=month, seed=args.seed)
        ws = load_workspace(root, allow_missing=args.allow_missing)
        from maps.build import workspace_tiles

        workspace_tiles(ws)  # a wrong [maps] section fails now, not after the night's work
        if args.status:
            print_status(ws)
            return 0
        return _run_locked(ws, days, month, progress, args.wait, " ".join(sys.argv), args.engine)
    except GridpatrolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; the store keeps its last consistent state, run again", file=sys.stderr)
        return 130


def _run_locked(
    ws: Workspace,
    days: list[date] | None,
    month: str | None,
    progress: bool,
    wait: float | None,
    command: str,
    engine: str = ENGINE_LOCAL,
) -> int:
    started = datetime.now().astimezone()
    run_id = started.strftime("%Y%m%d%H%M") + uuid.uuid4().hex[:4]
    deadline = time.monotonic() + (wait or 0.0)
    with store.workspace_lock(ws.paths, wait=wait or 0.0, on_wait=lambda who: _tell_waiting(who, wait or 0.0, "run")):
        # a nightly run never loses to an analyst: a reader of patrol.duckdb excludes our writer, so wait
        # for it (bounded) instead of failing on DuckDB's "Could not set lock on file"
        db_wait = DB_LOCK_GRACE_S if wait is None else max(deadline - time.monotonic(), 0.0)
        con = store.connect(ws.paths, wait_s=db_wait, on_wait=lambda who: _tell_waiting(who, db_wait, "store"))
        summary = RunSummary(run_id=run_id)
        t0 = time.perf_counter()
        try:
            killed = mark_killed_runs(con, run_id)
            if killed:
                summary.warnings.append(
                    f"run(s) {', '.join(killed)} stopped before their end; this run finishes their work"
                )
            write_run_log(con, summary, started, command, ws.policy.hash, OUTCOME_RUNNING, "")
            run_pipeline(
                ws, con, days=days, month=month, progress=progress, run_id=run_id, summary=summary, engine=engine
            )
            store.crash_point("end")
        except Exception as exc:
            message = _failure_message(exc)
            log.debug(traceback.format_exc())
            try:
                store.months_failed(con, run_id, message)
                write_run_log(con, summary, started, command, ws.policy.hash, OUTCOME_FAILED, message)
                con.close()
            except duckdb.Error:
                pass  # the store itself failed: the next run marks this one killed
            if isinstance(exc, GridpatrolError):
                raise
            if not isinstance(exc, (OSError, duckdb.IOException)):
                traceback.print_exc(file=sys.stderr)  # a bug: keep the trace for the report
            print(f"error: run failed: {message}", file=sys.stderr)
            return 1
        write_run_log(con, summary, started, command, ws.policy.hash, OUTCOME_OK, "")
        mark_taken_over(con, killed, run_id)
        con.close()
    print_summary(ws, summary, time.perf_counter() - t0)
    return 0


def _tell_waiting(holder: str, seconds: float, what: str) -> None:
    """The console line of a run that waits: who holds what, and for how long at most."""
    if what == "run":
        text = f"另一次运行正在使用此工作区（{holder}），最多等待 {round(seconds, 1):g} 秒 another run is using this workspace"
    else:
        text = (
            f"数据库 patrol.duckdb 正被 {holder} 占用（分析查询、--status 或导出），最多等待 {round(seconds, 1):g} 秒 "
            f"the store is held by {holder}"
        )
    log.warning(f"{text}; waiting up to {round(seconds, 1):g} s")


def _failure_message(exc: Exception) -> str:
    """One line for the operator: what failed, and for a file system error, where and what to do."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f" at {exc.filename}" if exc.filename else ""
        return (
            f"cannot write the workspace{where}: {exc.strerror}; check free disk space and that the path is a "
            "writable folder, then run again (the store keeps its last consistent state)"
        )
    text = " ".join(str(exc).split())
    if isinstance(exc, duckdb.IOException):
        return f"cannot write the store patrol.duckdb: {text}; check free disk space, then run again"
    return f"{type(exc).__name__}: {text}"


if __name__ == "__main__":
    sys.exit(main())
