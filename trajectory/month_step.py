"""The month step: weeks, site checks, replay flags and item 2.5 findings of a month, from the
stored days (``worker_day``, ``site_visit``); no step reads the month's points (issue 12).

A nightly run recomputes one day, and a month's weeks, checks and findings change only in the
periods that day falls in. The step recomputes, for the days recomputed since it last ran
(``pending_work`` kind ``month_day``): their absent and short days and their daily site
periods (hazard sites); the **week parts** they fall in (weeks, short weeks, weekly site
periods of key persons); the month-long site periods (special groups, care subjects: one row a
site, from the month's five small columns); and the replay pairs with one of those days.
Everything else stays as stored: a night's step costs its window, the month's five small
columns and the new day's replay comparison with the earlier days, not the whole month's periods
(0.08 → 0.24 s over a month of 700 workers, ``benchmarks/bench_month.py``'s paired nights; the
whole month was 0.5–0.74 s by its end). The whole month is recomputed when the policy or ``sites.csv`` differ from those the month
was last computed with (``month_step``), when the days are not known (a store from before the
window) and on request (``recompute_month(..., whole=True)``). Either way the rows stored are
those a whole-month recomputation writes (``tests/test_month_step.py`` compares them night by night).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd

from trajectory import contract as c
from trajectory import store
from trajectory.calendar import date_range, month_days
from trajectory.findings import patrol_findings
from trajectory.flags import replay_partner_sql, replays_from_signatures
from trajectory.logs import log_step
from trajectory.metrics import compute_weeks, week_part_end, week_part_start
from trajectory.visits import site_checks
from trajectory.workspace import Workspace

__all__ = ["MonthWindow", "month_inputs_hash", "month_window", "recompute_month"]

_DATES = "(SELECT unnest(?::DATE[]))"
_TEXTS = "(SELECT unnest(?::VARCHAR[]))"
_SIGNATURE_COLUMNS = ("track_signature", "track_duration_s", "track_spread_m")


@dataclass(frozen=True)
class MonthWindow:
    """What one month step recomputes.

    ``touched``: the days recomputed (their day findings, daily site periods and replay
    pairs); ``dates``: every day of the week parts they fall in (weeks and weekly site
    periods). The whole month has both equal to its days. ``pending``: the month's
    ``month_day`` keys read, deleted with the step's result.
    """

    month: str
    dates: tuple[date, ...]
    touched: tuple[date, ...]
    whole: bool
    pending: tuple[str, ...] = ()

    @property
    def first(self) -> date:
        return month_days(self.month)[0]

    @property
    def last(self) -> date:
        return month_days(self.month)[-1]


def month_inputs_hash(ws: Workspace) -> str:
    """What a month's weeks, checks and findings depend on besides its days: the policy and
    the registered sites (a change to either recomputes the whole month)."""
    h = hashlib.sha256(ws.policy.hash.encode())
    h.update(pd.util.hash_pandas_object(ws.sites, index=False).to_numpy().tobytes())
    h.update(",".join(map(str, ws.sites.columns)).encode())
    return h.hexdigest()[:16]


def month_window(con: duckdb.DuckDBPyConnection, month: str, inputs_hash: str, whole: bool = False) -> MonthWindow:
    """The window of ``month``'s next step: the week parts of the days recomputed since its
    last step, or the whole month (see the module's docstring for when)."""
    days = month_days(month)
    stored = con.execute(f"SELECT inputs_hash FROM {c.MONTH_STEP} WHERE month = ?", [month]).fetchone()
    keys = tuple(k for k in store.pending(con, store.PENDING_MONTH_DAY) if k[:7] == month)
    touched = sorted({date.fromisoformat(k) for k in keys})
    if whole or not touched or stored is None or stored[0] != inputs_hash:
        return MonthWindow(month, tuple(days), tuple(days), whole=True, pending=keys)
    starts = sorted(set(week_part_start(pd.Series(touched))))
    dates = sorted({d for s in starts for d in date_range(s, week_part_end(s))})
    return MonthWindow(month, tuple(dates), tuple(touched), whole=False, pending=keys)


def recompute_month(
    ws: Workspace, con: duckdb.DuckDBPyConnection, month: str, *, run_id: str = "", whole: bool = False
) -> None:
    """Weeks, site checks, replay flags and item 2.5 findings of ``month``, from the stored days:
    those of the window (:func:`month_window`) replaced in one transaction."""
    t0 = time.perf_counter()
    inputs = month_inputs_hash(ws)
    window = month_window(con, month, inputs, whole)
    month_wd = _dates_fixed(
        con.execute(
            f"SELECT grid_id, worker_id, date, workday, exempt FROM {c.WORKER_DAY} WHERE date BETWEEN ? AND ?",
            [window.first, window.last],
        ).df()
    )
    if month_wd.empty:
        with store.transaction(con):
            store.done_pending(con, store.PENDING_MONTH, [month])
            store.done_pending(con, store.PENDING_MONTH_DAY, window.pending)
        return
    worker_day = _dates_fixed(
        con.execute(
            f"SELECT * FROM {c.WORKER_DAY} WHERE date IN {_DATES} ORDER BY worker_id, date", [list(window.dates)]
        ).df()
    )
    visits = _dates_fixed(
        con.execute(f"SELECT * FROM {c.SITE_VISIT} WHERE date BETWEEN ? AND ?", [window.first, window.last]).df()
    )
    touched_wd = worker_day[worker_day["date"].isin(set(window.touched))]
    periods = _period_types(ws)
    weeks = compute_weeks(worker_day, ws.policy)
    checks = _site_checks(ws, window, month_wd, visits)
    replays = _replays(ws, con, window)
    findings = patrol_findings(touched_wd, weeks, checks, ws.policy, month)
    _store(con, window, weeks, checks, findings, replays, periods, inputs, run_id)
    log_step(
        "month",
        month=month,
        window="month" if window.whole else f"{window.dates[0]}..{window.dates[-1]}",
        weeks=len(weeks),
        site_checks=len(checks),
        findings=len(findings),
        replays=len(replays),
        seconds=round(time.perf_counter() - t0, 2),
    )


def _dates_fixed(df: pd.DataFrame) -> pd.DataFrame:
    # also when empty: a month without visits (say, only its 1st computed) must compare dates with dates
    df["date"] = pd.to_datetime(df["date"]).dt.date
    return df


def _period_types(ws: Workspace) -> dict[str, list[str]]:
    """The site types visited weekly and monthly; any other type is checked daily (a
    ``workday`` period), as :func:`trajectory.visits.site_checks` does."""
    kinds = dict(ws.policy.patrol.visits.period)
    return {p: sorted(t for t, k in kinds.items() if k == p) for p in ("week", "month")}


def _site_checks(ws: Workspace, window: MonthWindow, month_wd: pd.DataFrame, visits: pd.DataFrame) -> pd.DataFrame:
    """The window's site checks: daily periods of the touched days, weekly ones of their week
    parts, the month-long ones; from the month's days (each check names the grid's workers
    of the month, a month period's due days are the month's)."""
    days = None if window.whole else {"workday": window.touched, "week": window.dates}
    return site_checks(visits, ws.sites, month_wd, window.first, window.last, ws.policy, days)


def _periods_sql(periods: dict[str, list[str]], window: MonthWindow) -> tuple[str, list[object]]:
    """SQL selecting the site periods the window recomputes (``site_type``, ``period_start``)."""
    sql = (
        f"((site_type NOT IN {_TEXTS} AND period_start IN {_DATES}) "
        f"OR (site_type IN {_TEXTS} AND period_start IN {_DATES}) OR site_type IN {_TEXTS})"
    )
    both = [*periods["week"], *periods["month"]]
    return sql, [both, list(window.touched), periods["week"], list(window.dates), periods["month"]]


def _replays(ws: Workspace, con: duckdb.DuckDBPyConnection, window: MonthWindow) -> pd.DataFrame:
    """Replay rows of the pairs with a touched day, from the month's stored day signatures.

    Only the days that can pair with a touched day are read: a replay copies the timing
    (duration within 1 %) of a day that went somewhere (spread above 4 × the largest offset),
    the tests :func:`trajectory.flags.replay_pairs` applies first; they are applied here in
    SQL to keep the rows read few, and again there exactly.
    """
    have = {r[0] for r in con.execute(f"DESCRIBE {c.WORKER_DAY}").fetchall()}
    if not set(_SIGNATURE_COLUMNS) <= have:
        return pd.DataFrame(columns=list(c.DAY_FLAG_COLUMNS))  # a store from before the signatures
    noise = "noise_m" if "noise_m" in have else "0.0 AS noise_m"
    spread = 4 * ws.policy.patrol.anomalies.replay_max_offset_m
    touched = list(window.touched)
    days = con.sql(
        # (the signatures decoded in the outer query: only those of the rows kept)
        f"""WITH m AS (
                SELECT worker_id, grid_id, date, {noise}, track_signature, track_duration_s, track_spread_m
                FROM {c.WORKER_DAY}
                WHERE date BETWEEN ? AND ? AND track_signature IS NOT NULL),
            t AS (SELECT worker_id, track_duration_s AS d FROM m WHERE date IN {_DATES} AND track_spread_m > ?)
            SELECT m.worker_id, m.grid_id, m.date, m.noise_m, from_base64(m.track_signature) AS track_signature,
                m.track_duration_s, m.track_spread_m, m.date IN {_DATES} AS touched FROM m
            WHERE m.date IN {_DATES} OR (m.track_spread_m > ? AND EXISTS (
                SELECT 1 FROM t WHERE t.worker_id = m.worker_id
                AND abs(t.d - m.track_duration_s) <= 0.01 * greatest(t.d, m.track_duration_s)))
            ORDER BY worker_id, date""",
        params=[window.first, window.last, touched, spread, touched, touched, spread],
    ).to_arrow_table()
    # the signatures stay in Arrow's buffer (10 MB at a month of 700 workers): no object a day
    signatures = days.column("track_signature")
    rows = _dates_fixed(days.drop_columns(["track_signature"]).to_pandas())
    return replays_from_signatures(rows, ws.policy, rows["touched"].to_numpy(bool), signatures)


def _store(
    con: duckdb.DuckDBPyConnection,
    window: MonthWindow,
    weeks: pd.DataFrame,
    checks: pd.DataFrame,
    findings: pd.DataFrame,
    replays: pd.DataFrame,
    periods: dict[str, list[str]],
    inputs: str,
    run_id: str,
) -> None:
    """Replace the window's rows of the four tables, record the inputs and clear the pending
    work, in one transaction (a crash leaves the month as it was, still pending)."""
    month, dates, touched = window.month, list(window.dates), list(window.touched)
    site_periods, site_params = _periods_sql(periods, window)
    with store.transaction(con):
        store.replace_rows(
            con, c.WORKER_WEEK, weeks, f"month = ? AND week_start IN {_DATES}", [month, dates], own_transaction=False
        )
        store.replace_rows(
            con, c.SITE_CHECK, checks, f"month = ? AND {site_periods}", [month, *site_params], own_transaction=False
        )
        store.replace_rows(
            con,
            c.PATROL_FINDING,
            findings,
            f"""month = ? AND ((kind IN ('absent_day', 'short_day') AND period_start IN {_DATES})
                OR (kind = 'short_week' AND period_start IN {_DATES})
                OR (kind = 'missed_site_period' AND {site_periods}))""",
            [month, touched, dates, *site_params],
            own_transaction=False,
        )
        store.replace_rows(
            con,
            c.DAY_FLAG,
            replays,
            f"flag = 'replay' AND date BETWEEN ? AND ? "
            f"AND (date IN {_DATES} OR {replay_partner_sql('detail')} IN {_TEXTS})",
            [window.first, window.last, touched, [d.isoformat() for d in touched]],
            own_transaction=False,
        )
        con.execute(f"DELETE FROM {c.MONTH_STEP} WHERE month = ?", [month])
        con.execute(
            f"INSERT INTO {c.MONTH_STEP} (month, inputs_hash, run_id) VALUES (?, ?, ?)", [month, inputs, run_id]
        )
        store.done_pending(con, store.PENDING_MONTH, [month])
        store.done_pending(con, store.PENDING_MONTH_DAY, window.pending)
