"""Bounded-memory, multi-core day job: :func:`trajectory.engine.process_days` over worker batches.

A worker's days never depend on another worker's points, so the points of some dates can be
cut into *worker batches* (all of a worker's points in one batch, batches sized by point
count), each batch run through ``process_days`` on its own and the outputs concatenated.
Peak memory is then bounded by the batch size instead of the day's total, and batches run
side by side on the machine's cores (docs/scale.md).

The concatenation is exactly ``process_days`` on the whole input (same rows, same order, same
dtypes and categories) when the points are sorted by ``worker_id`` — as
``trajectory.run.load_points`` returns them (``ORDER BY worker_id, ts``). With unsorted input
only the order of the ``point_use`` rows of workers who are not full-time (or unknown) can
differ.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from typing import TypeAlias

import numpy as np
import pandas as pd

from trajectory import clean as cl
from trajectory.engine import DayResult, EngineContext, process_days
from trajectory.flags import DAY_FLAG_COLUMNS
from trajectory.visits import SITE_VISIT_COLUMNS

PointsLoader: TypeAlias = Callable[[list[str]], pd.DataFrame]
PointsSource: TypeAlias = pd.DataFrame | PointsLoader
EXECUTORS = ("process", "thread", "serial")
_NOT_COUNTED_ELSEWHERE = {cl.REASONS[cl.R_NOT_FULL_TIME - 1], cl.REASONS[cl.R_UNKNOWN - 1]}


def plan_batches(counts: pd.Series, max_points: int) -> list[list[str]]:
    """Cut workers into batches of at most ``max_points`` points, in worker-id order.

    Parameters
    ----------
    counts : Series
        Points per worker, indexed by ``worker_id``.
    max_points : int
        Target size of a batch. A worker with more points than this gets a batch of their own
        (a worker's points are never split).

    Returns
    -------
    list of list of str
        Consecutive runs of the sorted worker ids (so the concatenated outputs keep
        ``process_days``' worker order).

    Examples
    --------
    >>> plan_batches(pd.Series({"W3": 5, "W1": 4, "W2": 4, "W4": 20}), 8)
    [['W1', 'W2'], ['W3'], ['W4']]
    """
    if max_points < 1:
        raise ValueError(f"max_points was {max_points} but is expected to be at least 1")
    c = pd.Series(np.asarray(counts, dtype=np.int64), index=pd.Index(counts.index).astype(str))
    c = c.groupby(level=0).sum().sort_index()
    ids = c.index.to_numpy(dtype=object)
    n = c.to_numpy()
    batches: list[list[str]] = []
    lo, total = 0, 0
    for i in range(len(ids)):  # one step per worker, not per point
        if i > lo and total + n[i] > max_points:
            batches.append(list(ids[lo:i]))
            lo, total = i, 0
        total += int(n[i])
    if len(ids):
        batches.append(list(ids[lo:]))
    return batches


def process_days_batched(
    points_source: PointsSource,
    ctx: EngineContext,
    dates: Sequence[date],
    *,
    max_points_per_batch: int = 1_000_000,
    workers: int = 2,
    counts: pd.Series | None = None,
    executor: str = "process",
) -> DayResult:
    """:func:`~trajectory.engine.process_days` over worker batches, on ``workers`` cores.

    Parameters
    ----------
    points_source : DataFrame or callable
        The points (``process_days``' columns), or ``load(worker_ids) -> DataFrame`` returning
        the points of those workers on ``dates`` (e.g. a DuckDB query on ``gps_point`` with
        ``worker_id IN (...)``, ``ORDER BY worker_id, ts``).
    ctx : EngineContext
    dates : sequence of datetime.date
    max_points_per_batch : int
        Points per batch (memory of one batch ≈ 300 bytes per point at peak).
    workers : int
        Batches processed at the same time.
    counts : Series, optional
        Points per worker (index ``worker_id``) on ``dates``; needed to plan the batches of
        a loader (``SELECT worker_id, count(*) ... GROUP BY worker_id``). Without it a
        loader's batches are planned from the roster alone, ``max_points_per_batch //
        2_000`` workers each (≈ one 5-s day of points per worker-day).
    executor : {'process', 'thread', 'serial'}
        'process' (default): a fork/forkserver process pool; batches are loaded in this
        process and pickled to the pool. 'thread' shares memory but the pandas parts hold
        the GIL (docs/scale.md has the measurements).

    Returns
    -------
    DayResult
        Equal to ``process_days`` on all the points (see the module docstring about order).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor was '{executor}' but is expected to be one of {EXECUTORS}")
    if workers < 1:
        raise ValueError(f"workers was {workers} but is expected to be at least 1")
    dates = sorted(set(dates))
    full_time = full_time_ids(ctx)
    if isinstance(points_source, pd.DataFrame):
        frame = points_source
        if counts is None:
            counts = frame["worker_id"].astype(str).value_counts()
        rows_of = _row_index(frame)

        def load(ids: list[str]) -> pd.DataFrame:
            return frame.iloc[np.sort(np.concatenate([rows_of.get(w, _EMPTY) for w in ids]))]  # one per worker
    elif callable(points_source):
        load = points_source  # type: ignore[assignment]
        if counts is None:
            per = max(1, max_points_per_batch // 2_000)
            counts = pd.Series(max_points_per_batch // per, index=full_time)
    else:
        raise TypeError(
            f"points_source was a {type(points_source).__name__} but is expected to be a DataFrame or "
            "a callable load(worker_ids) -> DataFrame"
        )
    # full-time workers without points still get their worker_day rows (absent)
    counts = counts.copy()
    counts.index = counts.index.astype(str)
    counts = counts.groupby(level=0).sum()
    counts = counts.reindex(counts.index.union(pd.Index(full_time, dtype=object)), fill_value=0)
    plan = plan_batches(counts, max_points_per_batch)
    if not plan:
        return process_days(empty_points(), ctx, dates)

    parts: list[DayResult | None] = [None] * len(plan)
    frame_in_pool = isinstance(points_source, pd.DataFrame) and executor != "serial"
    state = {"ctx": ctx, "dates": dates, "load": load if frame_in_pool else None}
    pool = _executor(executor, workers, state)
    try:
        pending: dict[Future[DayResult], int] = {}
        for i, ids in enumerate(plan):
            if pool is None:
                parts[i] = process_days(load(ids), context_for_workers(ctx, ids), dates)
                continue
            # a frame is sliced in the pool (inherited by fork, or shared by threads); a
            # loader's batch is read here (one DuckDB connection) and sent to the pool
            pts = None if frame_in_pool else _compact(load(ids))
            args = (ids, pts, state) if executor == "thread" else (ids, pts, None)
            pending[pool.submit(_run_batch, *args)] = i
            del pts
            # at most ``workers`` batches in flight (+ the one being loaded): bounded memory
            while len(pending) >= workers:
                _collect(pending, parts)
        while pending:
            _collect(pending, parts)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return combine_results([p for p in parts if p is not None], ctx)


def combine_results(parts: Sequence[DayResult], ctx: EngineContext) -> DayResult:
    """Concatenate the results of worker batches (in plan order) into ``process_days``' form."""
    worker_day = _concat([p.worker_day for p in parts])
    day_flag = _concat([p.day_flag for p in parts], columns=DAY_FLAG_COLUMNS)
    if len(day_flag):
        day_flag = day_flag.sort_values(["worker_id", "date", "flag"]).reset_index(drop=True)
    site_visit = _concat([p.site_visit for p in parts], columns=SITE_VISIT_COLUMNS)
    if len(site_visit):
        # process_days orders visits by site row, then worker-day and time
        site_pos = pd.Series(np.arange(len(ctx.sites)), index=ctx.sites["site_id"].astype(str))
        site_pos = site_pos[~site_pos.index.duplicated()]
        key = site_visit["site_id"].astype(str).map(site_pos)
        site_visit = (
            site_visit.assign(_k=key.to_numpy())
            .sort_values(["_k", "worker_id", "date", "start_ts"], kind="stable")
            .drop(columns="_k")
            .reset_index(drop=True)
        )
    point_use = _combine_point_use([p.point_use for p in parts], ctx)
    return DayResult(worker_day=worker_day, point_use=point_use, site_visit=site_visit, day_flag=day_flag)


# --- helpers ----------------------------------------------------------------------------------
_EMPTY = np.zeros(0, np.int64)


def full_time_ids(ctx: EngineContext) -> list[str]:
    """Sorted ids of the roster's full-time workers (they get worker_day rows)."""
    w = ctx.workers
    return sorted(set(w.loc[w["full_time"].astype(bool), "worker_id"].astype(str)))


def _row_index(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Row positions of each worker (one factorize, no per-row work)."""
    codes, uniq = pd.factorize(frame["worker_id"].astype(str))
    order = np.argsort(codes, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(codes, minlength=len(uniq)))]
    return {str(u): order[bounds[i] : bounds[i + 1]] for i, u in enumerate(uniq)}


def context_for_workers(ctx: EngineContext, ids: list[str]) -> EngineContext:
    """The context with only the workers ``ids`` full-time (the others stay known, so their
    points are still ``not_full_time`` rather than ``unknown_worker``)."""
    w = ctx.workers
    keep = w["worker_id"].astype(str).isin(set(ids))
    return replace(ctx, workers=w.assign(full_time=w["full_time"].astype(bool) & keep))


def _compact(pts: pd.DataFrame) -> pd.DataFrame:
    """Worker ids as a categorical: pickles as codes instead of one string per point."""
    if pts["worker_id"].dtype == object:
        pts = pts.assign(worker_id=pts["worker_id"].astype("category"))
    return pts


_STATE: dict = {}  # a pool process's context, dates and frame slicer (set by _init_pool)


def _init_pool(state: dict) -> None:
    _STATE.clear()
    _STATE.update(state)


def _run_batch(ids: list[str], pts: pd.DataFrame | None, state: dict | None) -> DayResult:
    st = state if state is not None else _STATE
    if pts is None:
        pts = st["load"](ids)
    res = process_days(pts, context_for_workers(st["ctx"], ids), st["dates"])
    return _pack(res) if state is None else res


def _pack(res: DayResult) -> DayResult:
    pu = res.point_use
    if len(pu):
        days = pd.Categorical(pu["date"])
        pu = pu.assign(date=days)
    return DayResult(worker_day=res.worker_day, point_use=pu, site_visit=res.site_visit, day_flag=res.day_flag)


def _unpack(res: DayResult) -> DayResult:
    pu = res.point_use
    if len(pu) and isinstance(pu["date"].dtype, pd.CategoricalDtype):
        cats = np.asarray(pu["date"].cat.categories, dtype=object)
        codes = pu["date"].cat.codes.to_numpy()
        pu = pu.assign(date=cats[codes])
    return DayResult(worker_day=res.worker_day, point_use=pu, site_visit=res.site_visit, day_flag=res.day_flag)


def _collect(pending: dict[Future[DayResult], int], parts: list[DayResult | None]) -> None:
    from concurrent.futures import FIRST_COMPLETED, wait

    done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
    for f in done:
        parts[pending.pop(f)] = _unpack(f.result())


def _executor(kind: str, workers: int, state: dict) -> Executor | None:
    if kind == "serial":
        return None
    if kind == "thread":
        return ThreadPoolExecutor(max_workers=workers)
    # fork: the pool inherits the context and the frame instead of unpickling them
    method = "fork" if "fork" in mp.get_all_start_methods() and os.name == "posix" else "spawn"
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=mp.get_context(method), initializer=_init_pool, initargs=(state,)
    )


def empty_points() -> pd.DataFrame:
    """A frame of no points with the engine's columns."""
    return pd.DataFrame(
        {
            "worker_id": pd.Series([], dtype=object),
            "ts": pd.Series([], dtype="datetime64[us, UTC]"),
            "lon": np.zeros(0),
            "lat": np.zeros(0),
        }
    )


def _concat(frames: Sequence[pd.DataFrame], columns: Sequence[str] | None = None) -> pd.DataFrame:
    full = [f for f in frames if len(f)]
    if not full:
        return frames[0] if frames else pd.DataFrame(columns=list(columns or []))
    return pd.concat(full, ignore_index=True) if len(full) > 1 else full[0].reset_index(drop=True)


def _combine_point_use(frames: Sequence[pd.DataFrame], ctx: EngineContext) -> pd.DataFrame:
    """point_use of the batches: full-time workers' points first, then the others (as process_days)."""
    full = [f for f in frames if len(f)]
    if not full:
        return frames[0] if frames else pd.DataFrame()
    if len(full) == 1:
        return full[0].reset_index(drop=True)
    other_mask = [f["reason"].isin(_NOT_COUNTED_ELSEWHERE).to_numpy() for f in full]
    wids = [f["worker_id"].astype(object).to_numpy() for f in full]
    gids = [f["grid_id"].astype(object).to_numpy() for f in full]
    pieces = [f[~m] for f, m in zip(full, other_mask, strict=True)] + [
        f[m] for f, m in zip(full, other_mask, strict=True)
    ]
    w_all = np.concatenate(
        [w[~m] for w, m in zip(wids, other_mask, strict=True)] + [w[m] for w, m in zip(wids, other_mask, strict=True)]
    )
    g_all = np.concatenate(
        [g[~m] for g, m in zip(gids, other_mask, strict=True)] + [g[m] for g, m in zip(gids, other_mask, strict=True)]
    )
    out = pd.concat([p.drop(columns=["worker_id", "grid_id"]) for p in pieces], ignore_index=True)
    # the whole-input categories: every full-time worker, then the others as first met
    w = ctx.workers
    ft = w[w["full_time"].astype(bool)].assign(worker_id=lambda d: d["worker_id"].astype(str))
    ft = ft.drop_duplicates("worker_id").sort_values("worker_id")
    n_ft = int(sum(len(f) - int(m.sum()) for f, m in zip(full, other_mask, strict=True)))
    others = pd.unique(w_all[n_ft:])
    wcats = pd.Index(np.r_[ft["worker_id"].to_numpy(dtype=object), np.asarray(others, dtype=object)], dtype=object)
    grid_of = dict(zip(w["worker_id"].astype(str), w["grid_id"].astype(str), strict=False))
    gall = np.r_[
        ft["grid_id"].astype(str).to_numpy(dtype=object), np.array([grid_of.get(x) for x in others], dtype=object)
    ]  # one per other worker
    gcats = np.unique(np.array([str(g) if g is not None else "" for g in gall], dtype=object))
    out.insert(0, "worker_id", pd.Categorical(w_all, categories=wcats))
    out.insert(1, "grid_id", pd.Categorical(g_all, categories=pd.Index(gcats, dtype=object)))
    return out
