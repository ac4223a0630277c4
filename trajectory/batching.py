"""Worker batches: the units the day job cuts a day's points into (trajectory.dayjob).

A worker's days never depend on another worker's points, so the points of some dates can be
cut into *worker batches* (all of a worker's points in one batch, batches sized by point
count), each batch run through :func:`trajectory.engine.process_days` on its own. Peak memory
is then bounded by the batch size instead of the day's total, and batches run side by side on
the machine's cores (docs/scale.md). The day job (:func:`trajectory.dayjob.process_dates`) is
the one path that runs them; this module plans the batches and gives each its context.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from trajectory.engine import EngineContext

__all__ = ["context_for_workers", "empty_points", "full_time_ids", "plan_batches"]


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


def full_time_ids(ctx: EngineContext) -> list[str]:
    """Sorted ids of the roster's full-time workers (they get worker_day rows)."""
    w = ctx.workers
    return sorted(set(w.loc[w["full_time"].astype(bool), "worker_id"].astype(str)))


def context_for_workers(ctx: EngineContext, ids: list[str]) -> EngineContext:
    """The context with only the workers ``ids`` full-time (the others stay known, so their
    points are still ``not_full_time`` rather than ``unknown_worker``)."""
    w = ctx.workers
    keep = w["worker_id"].astype(str).isin(set(ids))
    return replace(ctx, workers=w.assign(full_time=w["full_time"].astype(bool) & keep))


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
