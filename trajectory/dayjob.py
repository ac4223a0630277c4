"""The day job: plan → read a worker batch → ``process_days`` → write its point_use part → commit.

One path for the nightly run, the tests and the benchmarks (issue 12): :func:`process_dates`
cuts the dates into batches of ``DAYS_PER_BATCH`` days, plans worker batches of at most
``max_points`` points (:func:`plan_worker_batches`), runs them on an executor and commits each
batch of days (its three tables in one transaction, the point_use parts swapped in). Only the
executor varies: in this process (:func:`local_results`, the next batch read on a second
thread), on a forked process pool (:func:`pool_results`, each process reads its batch from the
Parquet store and writes its own part) or on Spark (``trajectory.spark_engine``). Points are
put in the engine's column types in one place, :func:`load_points_frame`.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from trajectory import contract as c
from trajectory import store
from trajectory.calendar import month_of, workday_flags
from trajectory.engine import DayResult, EngineContext, process_days
from trajectory.logs import log_step
from trajectory.workspace import Workspace, WorkspacePaths

__all__ = [
    "DAYS_PER_BATCH",
    "ENGINE_LOCAL",
    "ENGINE_SPARK",
    "MALLOC_MMAP_THRESHOLD",
    "MALLOC_TRIM_THRESHOLD",
    "MAX_POINTS_PER_BATCH",
    "WORKERS",
    "DayPool",
    "PointUseWriter",
    "batch_job",
    "concat_frames",
    "engine_context",
    "load_points",
    "load_points_frame",
    "local_results",
    "malloc_tuned",
    "Task",
    "plan_tasks",
    "plan_worker_batches",
    "pool_results",
    "process_dates",
    "read_batch",
    "tune_malloc",
    "write_point_use_parts",
]

DAYS_PER_BATCH = 4  # days processed and committed together
MAX_POINTS_PER_BATCH = 500_000  # points of one worker batch (≈ 300 bytes each at the engine's peak)
ENGINE_LOCAL, ENGINE_SPARK = "local", "spark"
WORKERS = min(2, os.cpu_count() or 1)  # pool processes for the worker batches of a day


def engine_context(ws: Workspace, days: Iterable[date]) -> EngineContext:
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
    return load_points_frame(con.execute(sql + " ORDER BY worker_id, ts", params).df())


def plan_worker_batches(
    con: duckdb.DuckDBPyConnection,
    paths: WorkspacePaths,
    ctx: EngineContext,
    days: Sequence[date],
    max_points: int,
    processes: int = 1,
) -> list[list[str]]:
    """Worker batches of at most ``max_points`` points on ``days`` (every full-time worker in one);
    with ``processes`` > 1, a multiple of it of about equal size (``batching.balance_batches``:
    no process idles through a short last round)."""
    counts = _point_counts(con, paths, days)
    return _worker_batches(counts.groupby("worker_id")["n"].sum(), ctx, max_points, processes)


def _point_counts(con: duckdb.DuckDBPyConnection, paths: WorkspacePaths, days: Sequence[date]) -> pd.DataFrame:
    """Stored points per local date and worker (``date``, ``worker_id``, ``n``) on ``days``,
    counted in the days' parts, not through the view: binding the view reads every part's
    footer of the store."""
    files = [f.as_posix() for f in store.gps_parts(paths, days)] if days else []
    if not files:
        return pd.DataFrame({"date": pd.Series([], dtype=object), "worker_id": pd.Series([], dtype=str), "n": 0})
    df = con.execute(
        """SELECT date, worker_id, count(*) AS n
           FROM read_parquet(?::VARCHAR[], hive_partitioning = true, union_by_name = true) GROUP BY 1, 2""",
        [files],
    ).df()
    return df.assign(date=pd.to_datetime(df["date"]).dt.date, worker_id=df["worker_id"].astype(str))


def _worker_batches(counts: pd.Series, ctx: EngineContext, max_points: int, processes: int) -> list[list[str]]:
    """``balance_batches`` of the points per worker, every full-time worker in one (0 points)."""
    from trajectory.batching import balance_batches, full_time_ids

    counts = counts.astype("int64")
    counts.index = counts.index.astype(object)
    counts = counts.reindex(counts.index.union(pd.Index(full_time_ids(ctx), dtype=object)), fill_value=0)
    return balance_batches(counts, max_points, processes)


# a task of the day job: the days and the worker ids one process_days call computes
Task = tuple[tuple[date, ...], list[str]]


def plan_tasks(
    con: duckdb.DuckDBPyConnection,
    paths: WorkspacePaths,
    ctx: EngineContext,
    days: Sequence[date],
    max_points: int,
    processes: int = 1,
) -> list[Task]:
    """The day job's tasks for a batch of days: its worker batches over all the days while
    they fit one round of the processes, else worker batches day by day.

    A worker batch reads, from each of its days' parts, the row groups (32 k rows) its
    workers' range falls in: over several days of a big delivery a batch holds a few dozen
    workers, a sliver of each row group it decodes (20 files over 4 days of 4 M points: 2.6 M
    rows decoded for 500 k). Day by day a batch holds as many workers as the budget allows.
    The days' figures are the same to the last bit (``process_days(origin=)``: one clock for
    the batch of days). One count of the days' parts serves both plans.
    """
    days = tuple(days)
    counts = _point_counts(con, paths, days)
    plan = _worker_batches(counts.groupby("worker_id")["n"].sum(), ctx, max_points, processes)
    if len(days) < 2 or len(plan) <= max(processes, 1):
        return [(days, ids) for ids in plan]
    by_day = {d: c.set_index("worker_id")["n"] for d, c in counts.groupby("date")}
    empty = pd.Series([], dtype="int64", index=pd.Index([], dtype=object))
    return [
        ((day,), ids) for day in days for ids in _worker_batches(by_day.get(day, empty), ctx, max_points, processes)
    ]


def local_results(
    con: duckdb.DuckDBPyConnection, ctx: EngineContext, origin: date, plan: list[Task]
) -> Iterator[DayResult]:
    """The engine over the tasks (days, worker batch) in this process, one result per task.

    The next task's points are read from the store on a second thread (its own DuckDB
    cursor) while this one is computed.
    """
    from trajectory.batching import context_for_workers

    reader = con.cursor()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gp-read") as pool:
        ahead = pool.submit(load_points, reader, *plan[0]) if plan else None
        for i, (days, ids) in enumerate(plan):
            assert ahead is not None
            points = ahead.result()
            ahead = pool.submit(load_points, reader, *plan[i + 1]) if i + 1 < len(plan) else None
            yield process_days(points, context_for_workers(ctx, ids), days, origin=origin)
            del points
    reader.close()


def pool_results(
    pool: DayPool,
    paths: WorkspacePaths,
    writer: PointUseWriter,
    ctx: EngineContext,
    origin: date,
    plan: list[Task],
) -> Iterator[DayResult]:
    """The tasks (days, worker batch) on a process pool, in plan order, at most one per process in
    flight (bounded memory). Each process reads its batch from the Parquet store and writes
    its own point_use part; only the small tables come back. One more batch per process
    waits in the pool's queue (its ids only, no points), so a process that finishes takes the
    next batch at once instead of after the parent has collected the oldest result."""
    executor = pool.start()
    in_flight: deque[Future[DayResult]] = deque()
    for days, ids in plan:
        part = writer.next_part()
        in_flight.append(executor.submit(batch_job, paths, writer.staging, ctx, list(days), ids, part, origin))
        if len(in_flight) >= 2 * pool.workers:
            yield in_flight.popleft().result()
    while in_flight:
        yield in_flight.popleft().result()


def read_batch(paths: WorkspacePaths, days: Sequence[date], worker_ids: Sequence[str]) -> pd.DataFrame:
    """The stored points of ``worker_ids`` on ``days`` read straight from the Parquet store.

    The same rows and types as :func:`load_points` (in the store's order, not sorted: the
    engine sorts its points itself), without DuckDB: a pool process cannot open
    ``patrol.duckdb`` while the run holds it, but it can read the store's files. The day's
    parts are read as one Arrow dataset (one scan, row groups pruned by their statistics) on
    this thread (the pool has a process per core already): a night of 20 inbox files reads
    0.11–0.13 s per M points instead of 0.15–0.18 part by part; 4 files, the same.
    """
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    files = store.gps_parts(paths, days)
    if not files:
        return load_points_frame(_empty_points_table())
    lo, hi = min(worker_ids), max(worker_ids)
    wanted = pa.array(sorted(set(worker_ids)), pa.string())
    # the range filter prunes row groups by their statistics; isin keeps exactly the batch
    flt = (pc.field("worker_id") >= lo) & (pc.field("worker_id") <= hi) & pc.field("worker_id").isin(wanted)
    # the store's schema, not the first part's: parts of every version read alike
    dataset = pads.dataset([str(f) for f in files], schema=_GPS_PARTS_SCHEMA, format="parquet")
    return load_points_frame(dataset.to_table(columns=list(_BATCH_COLUMNS), filter=flt, use_threads=False))


_BATCH_COLUMNS = ("worker_id", "ts", "lon", "lat", "accuracy_m", "speed_mps", "mock")
_TS_DTYPE = pd.DatetimeTZDtype("us", "UTC")
_GPS_PARTS_SCHEMA = c.arrow_schema(c.GPS_POINT)


def load_points_frame(points: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """Points (an Arrow table from the Parquet store, or DuckDB's frame) in the engine's
    column types: the one place they are set. ``ts`` as datetime64[us, UTC] (from a
    timestamp, or from epoch microseconds: no per-value conversion)."""
    df = points.to_pandas() if isinstance(points, pa.Table) else points
    if not len(df):
        df["ts"] = pd.Series([], dtype="datetime64[us, UTC]")
    elif df["ts"].dtype == _TS_DTYPE:  # the Parquet store's timestamps: as they are
        pass
    elif pd.api.types.is_integer_dtype(df["ts"]):
        df["ts"] = pd.to_datetime(df["ts"].to_numpy(dtype="int64"), unit="us", utc=True).astype("datetime64[us, UTC]")
    else:
        df["ts"] = pd.to_datetime(df["ts"], utc=True).astype("datetime64[us, UTC]")
    for col in ("lon", "lat", "accuracy_m", "speed_mps"):
        df[col] = df[col].astype("float64")
    df["mock"] = df["mock"].fillna(False).astype(bool)
    df["worker_id"] = df["worker_id"].astype(str)
    return df


def batch_job(
    paths: WorkspacePaths,
    staging: Path,
    ctx: EngineContext,
    days: list[date],
    ids: list[str],
    n: int,
    origin: date | None = None,
) -> DayResult:
    """One worker batch in a pool process: read, compute, write its point_use part.

    Returns the small tables; ``point_use`` comes back empty (its rows are on disk, counted
    in ``n_points`` of the returned frame's attrs).
    """
    from trajectory.batching import context_for_workers

    res = process_days(read_batch(paths, days, ids), context_for_workers(ctx, ids), days, origin=origin)
    write_point_use_parts(staging, res.point_use, n, days)
    n_points = len(res.point_use)
    res = DayResult(
        worker_day=res.worker_day, site_visit=res.site_visit, day_flag=res.day_flag, point_use=res.point_use.head(0)
    )
    res.worker_day.attrs["n_points"] = n_points
    return res


# point_use parts: dictionaries for the categorical columns only, delta-coded times and
# byte-split coordinates (as the GPS parts): 400 k rows written in 25 ms instead of 44, a third
# smaller, read as fast (benchmarks/bench_stages). Statistics only for the columns readers
# filter on (a worker, a grid, a time range): min/max of the coordinates, flags and reasons
# were computed for nobody, 4–5 ms of a 400 k-row part's 27.
POINT_USE_PARQUET_OPTIONS: dict[str, object] = {
    "compression": "zstd",
    "use_dictionary": ["worker_id", "grid_id", "reason"],
    "column_encoding": {"ts": "DELTA_BINARY_PACKED", "lon": "BYTE_STREAM_SPLIT", "lat": "BYTE_STREAM_SPLIT"},
    "write_statistics": ["worker_id", "grid_id", "ts"],
}


def write_point_use_parts(staging: Path, point_use: pd.DataFrame, n: int, days: Sequence[date]) -> None:
    """Write ``point_use`` as ``staging/date=D/part-<n>.parquet``, one part per day."""
    if point_use.empty:
        return
    table = pa.Table.from_pandas(point_use.drop(columns=["date"]), preserve_index=False)
    if len(days) == 1:  # every row is of the call's one date (process_days): nothing to split
        store.write_parquet_atomic(table, _point_use_part(staging, days[0], n), **POINT_USE_PARQUET_OPTIONS)
        return
    # one factorisation instead of a comparison of date objects per day
    codes, uniques = pd.factorize(point_use["date"])
    for k, day in enumerate(uniques):
        if day in days:
            part = table if len(uniques) == 1 else table.filter(pa.array(codes == k))
            store.write_parquet_atomic(part, _point_use_part(staging, day, n), **POINT_USE_PARQUET_OPTIONS)


def _point_use_part(staging: Path, day: date, n: int) -> Path:
    return staging / f"date={day.isoformat()}" / f"part-{n:05d}.parquet"


class PointUseWriter:
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


_WARM_BARRIER: Any = None  # in a pool process: the barrier that spreads the warm-up tasks (DayPool.warm)


def _pool_init(parent: int, barrier: Any) -> None:
    global _WARM_BARRIER
    _WARM_BARRIER = barrier
    _die_with_parent(parent)
    tune_malloc()


# glibc's malloc in a pool process. By default a freed block above its (adaptive) mmap
# threshold, and a free heap top above twice that, go back to the kernel at once, so each of
# the engine's columns (1–30 MB a batch) is mapped and faulted in again, page by page, at
# every allocation: 0.9 M page faults for a 4 M-point day, a third of the engine's time. With
# blocks up to 32 MB taken from the heap and up to 256 MB of free heap kept, the next batch
# reuses the pages: the same day's read + engine in one process 4.3–4.6 → 2.9–3.0 s, peak RSS
# +20 MB (docs/scale.md, "Memory allocator"). In the pool's processes, which exist for the
# engine, and in the nightly run's own process once its ingest is done (the day tables'
# commit, the month step: pipeline.run_pipeline); a notebook calling the engine, and the run's
# ingest (Arrow's and DuckDB's own allocators: no gain there), keep the defaults.
MALLOC_MMAP_THRESHOLD = 32 << 20
MALLOC_TRIM_THRESHOLD = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
_MALLOC_TUNED = False  # whether tune_malloc took effect in this process


def tune_malloc() -> bool:
    """Set this process's glibc malloc thresholds (above); False where there is no glibc."""
    global _MALLOC_TUNED
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # another C library (musl): its defaults stay
        return False
    _MALLOC_TUNED = bool(mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD)
    )
    return _MALLOC_TUNED


def malloc_tuned() -> bool:
    """Whether this process's allocator was tuned (:func:`tune_malloc`)."""
    return _MALLOC_TUNED


def _warm_up(ctx: EngineContext, days: list[date]) -> int:
    """In a pool process, before its first batch: the batch path once on no points.

    Loads what a first batch would load (``pyarrow.dataset`` for the read's filters, the
    engine's first calls) while the run ingests; then waits (bounded) for the other processes
    so that each takes one warm-up task. Returns this process's id."""
    import pyarrow.dataset  # noqa: F401  (read_batch reads through it)

    process_days(load_points_frame(_empty_points_table()), ctx, days)
    if _WARM_BARRIER is not None:
        try:
            _WARM_BARRIER.wait(timeout=WARM_BARRIER_S)
        except threading.BrokenBarrierError:
            pass  # another process took two warm-ups or none: only its first batch is slower
    return os.getpid()


WARM_BARRIER_S = 5.0


def _empty_points_table() -> pa.Table:
    """No points, in the columns a batch is read with (``_BATCH_COLUMNS``)."""
    return pa.table({k: pa.array([], pa.string() if k == "worker_id" else pa.float64()) for k in _BATCH_COLUMNS})


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

    def __init__(self, workers: int | None = None) -> None:
        self.workers = WORKERS if workers is None else workers
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            fork = multiprocessing.get_context("fork")
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=fork,
                initializer=_pool_init,
                initargs=(os.getpid(), fork.Barrier(self.workers)),
            )
            self._pool.submit(int).result()  # a fork pool starts all its processes on the first task
        return self._pool

    def warm(self, ctx: EngineContext, days: Sequence[date]) -> list[Future[int]]:
        """One warm-up task per process (:func:`_warm_up`), queued ahead of the day job's
        batches: the run starts it before ingest, so the processes warm up on the core ingest
        leaves idle (their first batch was ≈ 0.2 s slower than the next ones at 500 k points)."""
        executor = self.start()
        return [executor.submit(_warm_up, ctx, list(days)) for _ in range(self.workers)]

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
            ctx = engine_context(ws, batch)
            writer = PointUseWriter(ws.paths.point_use_store, batch)
            results: Iterable[DayResult]
            t_plan = time.perf_counter()  # Spark plans its own work: it is all batches_s
            if spark is not None and ws.paths.gps_store.is_dir():
                from trajectory.spark_engine import process_days_spark

                # Spark reads the whole Parquet store and keeps the batch's date partitions
                results = [process_days_spark(spark, str(ws.paths.gps_store), ctx, batch)]
            else:
                plan = plan_tasks(con, ws.paths, ctx, batch, max_points, day_pool.workers)
                t_plan = time.perf_counter()
                if len(plan) > 1 and day_pool.workers > 1:
                    results = pool_results(day_pool, ws.paths, writer, ctx, batch[0], plan)
                else:
                    results = local_results(con, ctx, batch[0], plan)
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
            t_batches = time.perf_counter()
            writer.commit()
            where = "date IN (SELECT unnest(?::DATE[]))"
            with store.transaction(con):
                store.replace_rows(con, c.WORKER_DAY, concat_frames(worker_day), where, [batch], own_transaction=False)
                store.replace_rows(con, c.SITE_VISIT, concat_frames(site_visit), where, [batch], own_transaction=False)
                store.replace_rows(
                    con,
                    c.DAY_FLAG,
                    concat_frames(day_flag),
                    f"flag <> 'replay' AND {where}",
                    [batch],
                    own_transaction=False,
                )
                # the days are done; the weeks and findings of their months are now out of date
                store.done_pending(con, store.PENDING_DAY, batch)
                store.add_pending(con, store.PENDING_MONTH, {month_of(d) for d in batch}, run_id)
                store.add_pending(con, store.PENDING_MONTH_DAY, batch, run_id)  # the month step's window
            log_step(
                "days",
                first=batch[0],
                last=batch[-1],
                points=n_points,
                worker_days=sum(len(w) for w in worker_day),
                engine=engine,
                seconds=round(time.perf_counter() - t0, 2),
                # where the seconds went: planning, the worker batches, the commit
                plan_s=round(t_plan - t0, 2),
                batches_s=round(t_batches - t_plan, 2),
                commit_s=round(time.perf_counter() - t_batches, 2),
            )
            store.crash_point("days")
    finally:
        if own_pool:
            day_pool.close()
        if spark is not None:
            spark.stop()
    store.refresh_views(con, ws.paths, only_changed=True)


def concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)] or frames[:1]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
