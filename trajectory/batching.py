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

__all__ = ["balance_batches", "context_for_workers", "empty_points", "full_time_ids", "plan_batches"]


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


def balance_batches(counts: pd.Series, max_points: int, multiple: int) -> list[list[str]]:
    """:func:`plan_batches`, re-cut into a multiple of ``multiple`` batches of about equal points.

    With ``multiple`` processes taking one batch each, greedy batches of ``max_points`` leave
    a short last round (4.0 M points at 500 k: 8 full batches and one of 4 workers, so one
    process idles through the last batch). Here the batch count is rounded up to a multiple
    of ``multiple`` and the sorted workers are cut where the running point count is nearest
    to each equal share (batches are then at most ``max_points`` plus one worker's points).
    A plan of one batch stays one batch (computed in the run's process).

    Examples
    --------
    >>> six = pd.Series({f"W{i}": 4 for i in range(1, 7)})
    >>> plan_batches(six, 16)
    [['W1', 'W2', 'W3', 'W4'], ['W5', 'W6']]
    >>> balance_batches(six, 16, 2)
    [['W1', 'W2', 'W3'], ['W4', 'W5', 'W6']]
    >>> balance_batches(pd.Series({"W1": 4, "W2": 4}), 9, 2)
    [['W1', 'W2']]
    """
    greedy = plan_batches(counts, max_points)
    if multiple < 2 or len(greedy) < 2:
        return greedy
    c = pd.Series(np.asarray(counts, dtype=np.int64), index=pd.Index(counts.index).astype(str))
    c = c.groupby(level=0).sum().sort_index()
    ids = c.index.to_numpy(dtype=object)
    cum = np.cumsum(c.to_numpy())
    k = -(-len(greedy) // multiple) * multiple
    shares = cum[-1] * np.arange(1, k) / k
    # the boundary (workers before it) whose running count is nearest to each share
    j = np.searchsorted(cum, shares)
    below = np.where(j > 0, cum[np.maximum(j - 1, 0)], 0)
    ends = np.where(shares - below <= cum[j] - shares, j, j + 1)
    ends = np.unique(np.clip(np.r_[ends, len(ids)], 1, len(ids)))
    starts = np.r_[0, ends[:-1]]
    return [list(ids[lo:hi]) for lo, hi in zip(starts, ends, strict=True)]


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
