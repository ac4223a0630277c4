"""The run's stages in order: ingest → the day job → the month step → scoring and export.

:func:`run_pipeline` is what ``python -m trajectory.run`` does under the workspace lock
(the CLI, the lock, the run log and the console summary are in :mod:`trajectory.run`). Crash
safety: every stage commits its result with the deletion of its pending work
(docs/operations.md).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from trajectory import contract as c
from trajectory import store
from trajectory.calendar import month_days, month_of
from trajectory.dayjob import ENGINE_LOCAL, DayPool, engine_context, process_dates, tune_malloc
from trajectory.logs import log_step
from trajectory.month_step import recompute_month
from trajectory.workspace import Workspace

__all__ = ["RunSummary", "recompute_month", "run_pipeline", "score_and_export"]


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
    log_step("start", run=run_id)  # start-up done: imports, workspace, lock, store (bench_stages)
    summary.warnings += list(ws.warnings)
    # the month asked is journalled before any work, with the months earlier runs left unscored:
    # a run killed from here on leaves them to the next run, whatever that run is asked
    store.take_over_months(con, run_id, [month] if month else [], ws.allow_missing if month else ())
    stale = store.remove_stale_temporaries(ws.paths)
    if stale:
        summary.warnings.append(f"{stale} temporary files of an interrupted run removed")
    pool = DayPool()
    try:
        if engine == ENGINE_LOCAL and pool.workers > 1:
            pool.start()  # before ingest grows this process (DayPool)
            # the processes warm up on the core ingest leaves idle
            today = datetime.now(ws.tz).date()
            pool.warm(engine_context(ws, [today]), [today])
        _ingest(ws, con, run_id, progress, summary)
        # from here on this process works on NumPy/pandas columns (the day tables, the month
        # step): its blocks stay in the heap instead of being mapped and faulted in each time
        tune_malloc()
        summary.days = _plan_days(ws, con, days, month, run_id)
        if summary.days:
            process_dates(ws, con, summary.days, progress, run_id=run_id, engine=engine, pool=pool)
        summary.months = store.pending(con, store.PENDING_MONTH)
        for m in summary.months:
            recompute_month(ws, con, m, run_id=run_id)
            store.crash_point("month")
        _score_pending(ws, con, run_id, progress, summary)
    finally:
        pool.close()
    return summary


def _ingest(ws: Workspace, con: duckdb.DuckDBPyConnection, run_id: str, progress: bool, summary: RunSummary) -> None:
    """The inbox read into the store; its counts and warnings added to ``summary``."""
    from trajectory.ingest import ingest_inbox

    # ingest records the dates that received points as pending days, with each file's commit
    t0 = time.perf_counter()
    report = ingest_inbox(ws, con, run_id, progress=progress)
    summary.files = len(report.files)
    summary.rows_accepted = report.rows_accepted
    summary.rows_duplicate = report.rows_duplicate
    summary.rows_quarantined = report.rows_quarantined
    summary.warnings += list(report.warnings)
    log_step(
        "ingest",
        files=summary.files,
        accepted=summary.rows_accepted,
        duplicate=summary.rows_duplicate,
        quarantined=summary.rows_quarantined,
        seconds=round(time.perf_counter() - t0, 2),
    )


def _plan_days(
    ws: Workspace, con: duckdb.DuckDBPyConnection, days: Sequence[date] | None, month: str | None, run_id: str
) -> list[date]:
    """The days to recompute: those asked, those the months to score lack, those left pending."""
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
    return todo


def _score_pending(
    ws: Workspace, con: duckdb.DuckDBPyConnection, run_id: str, progress: bool, summary: RunSummary
) -> None:
    """Every month pending scoring scored and exported, journalled as done after its outputs."""
    for m in store.pending(con, store.PENDING_SCORE):
        store.month_scoring(con, m, run_id)
        summary.outputs += score_and_export(ws, con, m, progress)
        # done only now that the workbook and the maps are written
        store.month_scored(con, m, run_id)
        summary.scored.append(m)
