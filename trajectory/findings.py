"""Stage 6 — item 2.5 findings of a month, each with its points and Chinese evidence.

Findings add up, as the seed lists them separately (SPEC §1.1): an absent workday is one
``absent_day`` and also misses that day's hazard-site visits (``missed_site_period`` each).
Personal sites (key persons, special groups, care subjects) appear only by their code.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from scoring.policy import Policy
from trajectory.contract import PATROL_FINDING_COLUMNS, SITE_TYPE_ZH, STATUS_ABSENT, STATUS_SHORT

__all__ = [
    "FINDING_COLUMNS",
    "KINDS",
    "patrol_findings",
]

FINDING_COLUMNS = PATROL_FINDING_COLUMNS
KINDS = ("absent_day", "short_day", "short_week", "missed_site_period")
_SITE_ZH = SITE_TYPE_ZH
_SHORT_ZH = {
    "time": "时长不足{h:g}小时",
    "distance": "里程不足{km:g}公里",
    "morning": "上午不足{m:g}分钟",
    "afternoon": "下午不足{m:g}分钟",
}


def patrol_findings(
    worker_day: pd.DataFrame, worker_week: pd.DataFrame, site_check: pd.DataFrame, policy: Policy, month: str
) -> pd.DataFrame:
    """Item 2.5 findings of ``month`` ('YYYY-MM').

    Parameters
    ----------
    worker_day : DataFrame
        Engine output (``status``, ``short_reasons``, ``patrol_s``, ``patrol_m``, ``required_s``, …).
    worker_week : DataFrame
        :func:`trajectory.metrics.compute_weeks` output.
    site_check : DataFrame
        :func:`trajectory.visits.site_checks` output.
    policy : Policy
    month : str

    Returns
    -------
    DataFrame
        ``grid_id, worker_id, month, kind, period_start, period_end, site_id, site_type, points, evidence``.

    Examples
    --------
    >>> from datetime import date
    >>> from scoring.policy import load_policy
    >>> wd = pd.DataFrame({"worker_id": ["w1"], "grid_id": ["g1"], "date": [date(2026, 10, 9)],
    ...     "status": ["absent"], "patrol_s": [0.0], "patrol_m": [0.0], "required_s": [10800.0],
    ...     "required_m": [1000.0], "short_reasons": [None]})
    >>> f = patrol_findings(wd, pd.DataFrame(), pd.DataFrame(), load_policy(), "2026-10")
    >>> f[["kind", "points"]].values.tolist()
    [['absent_day', 0.5]]
    """
    parts: list[pd.DataFrame] = []
    if len(worker_day):
        in_month = pd.to_datetime(worker_day["date"]).to_numpy().astype("datetime64[M]") == np.datetime64(month, "M")
        wd = worker_day[in_month]
        parts += [
            _absent_days(wd[wd["status"] == STATUS_ABSENT], policy),
            _short_days(wd[wd["status"] == STATUS_SHORT], policy),
        ]
    if len(worker_week):
        parts.append(_short_weeks(worker_week, month, policy))
    if len(site_check):
        parts.append(_missed_site_periods(site_check, month, policy))
    parts = [x for x in parts if len(x)]
    if not parts:
        return pd.DataFrame(columns=list(FINDING_COLUMNS))
    out = pd.concat(parts, ignore_index=True)
    out["month"] = month
    for c in ("site_id", "site_type"):
        if c not in out.columns:
            out[c] = None
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    out["points"] = out["points"].astype(float)
    order = {k: i for i, k in enumerate(KINDS)}
    out["_k"] = out["kind"].map(order)
    out = out.sort_values(["grid_id", "period_start", "_k", "site_id"], na_position="first", kind="stable")
    return out[list(FINDING_COLUMNS)].reset_index(drop=True)


def _note(n: object) -> str:
    """A worker-day's note (late leave filing) appended to its evidence."""
    return f"；{n}" if isinstance(n, str) and n else ""


def _absent_days(ab: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """One ``absent_day`` per absent workday."""
    return pd.DataFrame(
        {
            "grid_id": ab["grid_id"],
            "worker_id": ab["worker_id"],
            "kind": "absent_day",
            "period_start": ab["date"],
            "period_end": ab["date"],
            "points": policy.patrol.deductions.absent_day,
            "evidence": [
                f"{d} 工作日未巡查（网格内无有效巡查轨迹）" + _note(n)
                for d, n in zip(ab["date"], _col(ab, "leave_note"), strict=True)
            ],
        }
    )


def _short_days(sh: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """One ``short_day`` per workday patrolled short, with its figures and the rule missed."""
    p = policy.patrol
    return pd.DataFrame(
        {
            "grid_id": sh["grid_id"],
            "worker_id": sh["worker_id"],
            "kind": "short_day",
            "period_start": sh["date"],
            "period_end": sh["date"],
            "points": p.deductions.short_day,
            "evidence": [
                f"{_day(d)} 巡查{s / 3600:.1f}小时/{m / 1000:.1f}公里（上午{am / 60:.0f}分钟、下午{pm / 60:.0f}分钟），"
                f"{_short_text(r, rs, rm, p.half_day_min_min)}" + _note(n)
                for d, s, m, am, pm, r, rs, rm, n in zip(
                    sh["date"],
                    sh["patrol_s"],
                    sh["patrol_m"],
                    _col(sh, "am_s", 0.0),
                    _col(sh, "pm_s", 0.0),
                    sh["short_reasons"],
                    sh["required_s"],
                    sh["required_m"],
                    _col(sh, "leave_note"),
                    strict=True,
                )
            ],
        }
    )


def _short_weeks(worker_week: pd.DataFrame, month: str, policy: Policy) -> pd.DataFrame:
    """One ``short_week`` per week of the month (with workdays due) short of time or distance."""
    ww = worker_week[
        (worker_week["month"] == month) & ((worker_week["required_s"] > 0) | (worker_week["required_m"] > 0))
    ]
    ww = ww[~(ww["meets_time"].astype(bool) & ww["meets_distance"].astype(bool))]
    return pd.DataFrame(
        {
            "grid_id": ww["grid_id"],
            "worker_id": ww["worker_id"],
            "kind": "short_week",
            "period_start": ww["week_start"],
            "period_end": ww["week_end"],
            "points": policy.patrol.deductions.short_week,
            "evidence": [
                f"{a}至{b} 周巡查{s / 3600:.1f}小时/{m / 1000:.1f}公里，应{rs / 3600:.1f}小时/{rm / 1000:.1f}公里"
                f"（{n - e}个应巡工作日）"
                for a, b, s, m, rs, rm, n, e in zip(
                    ww["week_start"],
                    ww["week_end"],
                    ww["patrol_s"],
                    ww["patrol_m"],
                    ww["required_s"],
                    ww["required_m"],
                    ww["workdays"],
                    ww["exempt_days"],
                    strict=False,
                )
            ],
        }
    )


def _missed_site_periods(site_check: pd.DataFrame, month: str, policy: Policy) -> pd.DataFrame:
    """One ``missed_site_period`` per site period of the month without a visit."""
    sc = site_check[(site_check["month"] == month) & ~site_check["visited"].astype(bool)]
    return pd.DataFrame(
        {
            "grid_id": sc["grid_id"],
            "worker_id": sc["worker_id"],
            "kind": "missed_site_period",
            "period_start": sc["period_start"],
            "period_end": sc["period_end"],
            "site_id": sc["site_id"],
            "site_type": sc["site_type"],
            "points": policy.patrol.deductions.missed_site_period,
            # personal sites only by code (PIPL): never the label
            "evidence": [
                f"{_SITE_ZH.get(t, t)} {sid} {_day(a)}{'' if a == b else '至' + _day(b)} 未按周期走访"
                for t, sid, a, b in zip(
                    sc["site_type"], sc["site_id"], sc["period_start"], sc["period_end"], strict=False
                )
            ],
        }
    )


def _col(df: pd.DataFrame, name: str, default: object = None) -> pd.Series:
    """A column of ``df``, or ``default`` everywhere when a caller's frame lacks it."""
    return df[name] if name in df.columns else pd.Series(default, index=df.index, dtype=object)


@functools.lru_cache(maxsize=1024)
def _day(d: object) -> str:
    """A date as its evidence text (``str(date)``: 2026-10-09), once per date of a month."""
    return str(d)


@functools.lru_cache(maxsize=4096)
def _short_text(reasons: str | None, required_s: float, required_m: float, half_min: float) -> str:
    """What a short day missed, in words (once per combination: a month repeats a few)."""
    if not reasons:
        return "巡查不足"
    words = [
        _SHORT_ZH[r].format(h=round(required_s / 3600, 2), km=round(required_m / 1000, 2), m=half_min)
        for r in str(reasons).split(",")
        if r in _SHORT_ZH
    ]
    return "，".join(words)
