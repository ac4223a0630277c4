"""The monthly assessment: every item of the seed table scored per grid, every lost point explained.

``score_month`` takes the month's indicator records (``scoring.inputs``), the trajectory
engine's item-2.5 findings (table ``patrol_finding``) and the policy, and returns two tables of
the contract (SPEC §2): ``grid_month_score`` and ``deduction``.

Every item is scored from its maximum down and never below 0 (分值扣完为止). The deduction rows
list *all* raw deductions, so for every grid and item ``sum(points) == max_score - raw score``
where ``score = max(0, raw score)``: an item that ran out of points shows rows adding up to more
than its maximum. Rows that lose no point (e.g. a daily-patrol finding under item 7) are not
listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from scoring.inputs import CATEGORIES, Indicators
from scoring.policy import Policy
from scoring.quality import FLAG_LABELS
from trajectory.contract import (
    DEDUCTION_COLUMNS,
    GRID_MONTH_SCORE_COLUMNS,
    ITEM_CODES,
    ITEM_PATROL,
    ITEM_TOTAL,
    PATROL_FINDING_COLUMNS,
)

# missing_tables: for an item scored from a required table the month lacks (allowed with
# --allow-missing) the table's name and score NULL (暂缺); for the total every such table, and the
# total is then provisional (暂定): the sum of the items scored, out of their maxima
SCORE_COLUMNS = (*GRID_MONTH_SCORE_COLUMNS, "item_name", "category", "rank", "policy_hash", "missing_tables")
DEDUCTION_ALL_COLUMNS = (*DEDUCTION_COLUMNS, "worker_id", "kind")
CATEGORY_REPORT_COLUMNS = ("grid_id", "month", "category_group", "minimum", "reported", "short")

# which item a record kind belongs to (the contract's kinds; points come from the policy)
COMPLAINT_ITEM = "1"
DISCIPLINE_ITEM = {
    "meeting_absent": "2.1",
    "board_missing": "2.2",
    "badge_missing": "2.2",
    "confidentiality_breach": "2.3",
    "training_absent": "2.4",
}
ITEM_INFO, ITEM_UPDATE, ITEM_HANDLING = "3", "4", "5"
ITEM_EVENTS, ITEM_SERVICE, ITEM_QUALITY = "6.1a", "6.1b", "6.2"
ITEM_FOUND, ITEM_RECTIFY = "7", "8"

# user-facing reasons (Chinese, the seed's words)
REASONS = {
    "public_complaint": "被群众投诉（经核实）",
    "inspector_complaint": "被巡查员投诉（经核实）",
    "leader_dissatisfied": "领导评价不满意",
    "meeting_absent": "未参加村（社区）网格化例会",
    "board_missing": "未按要求设立公示牌",
    "badge_missing": "未带工作证进入网格",
    "confidentiality_breach": "泄露信息造成纠纷或事故",
    "training_absent": "缺席工作培训",
    "absent_day": "工作日未巡查",
    "short_day": "工作日巡查不足（时长、里程或上下午）",
    "short_week": "周巡查时长或里程不足",
    "not_collected": "信息采集子类未采集",
    "below_rate": "信息采集子类未达标",
    "inaccurate_record": "录入信息不实、不符合要求",
    "not_updated": "平台数据未更新",
    "shirked": "推诿事项",
    "short_event": "有效上报事项不足",
    "ranking_bonus": "上报排名加分",
    "category_short": "分类上报数量不足",
    "short_record": "服务纪录不足",
    "unqualified": "不合格事项",
    "false": "虚假事项",
    "flag_unqualified": "自动检查发现的不合格事项",
    "quality_zero": "不符合要求事项超过比例，本项不得分",
    "random_check": "巡查员不定期抽查发现问题",
    "public_report": "群众投诉举报问题",
    "daily_patrol": "巡查员日常巡查发现问题",
    "center_assigned": "中心交办事项",
}
RECTIFY_REASON = "未在时限内整改或整改不到位"
SITE_REASONS = {
    "key_person": "重点人员未按周期走访",
    "special_group": "特殊人群未按周期走访",
    "care_subject": "关爱对象未按周期走访",
    "hazard_site": "重大安全隐患场所未按周期巡查",
}
PATROL_SITE_KIND = "missed_site_period"


@dataclass
class ScoreResult:
    """The month's scores (``grid_month_score``), their explanations (``deduction``), the
    6.1a category report and the warnings met on the way."""

    grid_month_score: pd.DataFrame
    deduction: pd.DataFrame
    category_report: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def score_month(
    month: str,
    grids: pd.DataFrame,
    indicators: Indicators,
    patrol_finding: pd.DataFrame,
    policy: Policy,
    event_flags: pd.DataFrame | None = None,
) -> ScoreResult:
    """Score every grid of ``grids`` on the 14 items of the seed table for ``month``.

    Parameters
    ----------
    month : str
        ``YYYY-MM``.
    grids : DataFrame
        ``grid_id, grid_name, grid_type``; every grid listed is scored, also without records.
    indicators : Indicators
        The month's records (``scoring.inputs.load_indicators``). Rows of other grids are ignored.
    patrol_finding : DataFrame
        Item 2.5 findings of the trajectory engine: ``grid_id, worker_id, month, kind, period_start,
        period_end, site_id, site_type, points, evidence``. Findings of every worker add up per grid.
    policy : Policy
    event_flags : DataFrame, optional
        ``event_id, grid_id, flag, detail`` from ``scoring.quality``. They deduct (as unqualified
        events under 6.2) only for flags listed in ``policy.events.flags_as_unqualified``.

    Returns
    -------
    ScoreResult
        Items scored from a required table listed in ``indicators.missing`` are 暂缺: score NaN,
        no deduction rows, ``missing_tables`` naming the table; the total is the sum of the items
        scored, out of their maxima.

    Examples
    --------
    >>> from scoring.policy import load_policy
    >>> grids = pd.DataFrame({"grid_id": ["G1"], "grid_name": ["一"], "grid_type": ["village"]})
    >>> r = score_month("2026-10", grids, Indicators.empty(), pd.DataFrame(), load_policy())
    >>> r.grid_month_score.set_index("item_code").loc["6.1a", "score"]  # no event at all: 80 × 0.2 > 15
    np.float64(0.0)
    """
    grid_ids = pd.Index(grids["grid_id"].astype(str).unique(), name="grid_id")
    ind = _only_grids(indicators, grid_ids)
    warnings: list[str] = []
    parts = [
        _complaints(ind.complaints, policy),
        _discipline(ind.discipline, policy),
        _patrol(patrol_finding, month, grid_ids, policy, warnings),
        _info_collection(ind.info_collection, ind.info_checks, grid_ids, policy, warnings),
        _info_updates(ind.info_checks, policy),
        _handling(ind.events, policy),
    ]
    events_rows, category_report = _event_counts(ind.events, grid_ids, month, policy)
    parts += [
        events_rows,
        _service_records(ind.service_records, grid_ids, policy),
        _inspections(ind.inspections, policy),
    ]
    raw = _concat(parts)
    # 6.1a ranking bonus and the 6.2 zero rule depend on the item's other rows: added last
    raw = _concat([raw, _ranking_bonus(ind.events, raw, grid_ids, month, policy)])
    raw = _concat([raw, _quality(ind.events, event_flags, grid_ids, policy)])
    unscored = indicators.unscored_items()
    # rows of a 暂缺 item were computed from records nobody delivered
    raw = raw[~raw["item_code"].isin(list(unscored))]
    deduction = _finish(raw, month)
    scores = _scores(deduction, grids, grid_ids, month, policy, unscored)
    return ScoreResult(scores, deduction, category_report, warnings)


# --- helpers ---------------------------------------------------------------------------------


def _only_grids(ind: Indicators, grid_ids: pd.Index) -> Indicators:
    tables = {
        name: getattr(ind, name)
        for name in (
            "complaints",
            "discipline",
            "info_collection",
            "info_checks",
            "events",
            "service_records",
            "inspections",
        )
    }
    return replace(ind, **{k: v[v["grid_id"].isin(grid_ids)] for k, v in tables.items()}, warnings=list(ind.warnings))


def _empty_rows() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c == "points" else "object") for c in DEDUCTION_ALL_COLUMNS})


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else _empty_rows()


def _finish(rows: pd.DataFrame, month: str) -> pd.DataFrame:
    """Typed deduction table in a stable order (grid, item order, kind, worker)."""
    if not len(rows):
        rows = _empty_rows()
    rows = rows.reindex(columns=DEDUCTION_ALL_COLUMNS)
    rows["month"] = month
    rows["count"] = rows["count"].astype("float64")
    rows["points"] = rows["points"].astype("float64").round(4)
    order = rows["item_code"].map({c: i for i, c in enumerate(ITEM_CODES)})
    rows = rows.assign(_o=order).sort_values(["grid_id", "_o", "kind", "worker_id"], kind="stable", na_position="first")
    rows = rows.drop(columns="_o").reset_index(drop=True)
    rows["worker_id"] = rows["worker_id"].astype(object).where(rows["worker_id"].notna(), None)
    return rows


def _date_text(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values.astype(str), format="mixed").dt.strftime("%Y-%m-%d")


def _kind_rows(
    df: pd.DataFrame,
    item_of: Mapping[str, str] | str,
    policy: Policy,
    token: pd.Series,
    weight: pd.Series | None = None,
    kind_col: str = "kind",
    sort_tokens: bool = True,
    rate: float | None = None,
    describe: bool = True,
) -> pd.DataFrame:
    """One row per (grid, kind): count = sum of weights, points = count × the item's deduction,
    evidence = the rows' tokens (dates, event ids, figures) joined."""
    if not len(df):
        return _empty_rows()
    weight = pd.Series(1, index=df.index) if weight is None else weight.fillna(1).astype("int64")
    # each record in words a grid can check: its date (or id), what it was, how many times
    what = (" " + df[kind_col].map(REASONS).fillna(df[kind_col].astype(str))) if describe else ""
    label = token.astype(str) + what + np.where(weight > 1, " " + weight.astype(str) + "次", "")
    frame = pd.DataFrame({"grid_id": df["grid_id"], "kind": df[kind_col], "n": weight, "token": label})
    g = (frame.sort_values("token", kind="stable") if sort_tokens else frame).groupby(["grid_id", "kind"], sort=True)
    out = g.agg(count=("n", "sum"), evidence=("token", "；".join)).reset_index()
    codes = out["kind"].map(item_of) if isinstance(item_of, Mapping) else pd.Series(item_of, index=out.index)
    rates = [
        rate if rate is not None else policy.items[c].deduct.get(k, 0.0)
        for c, k in zip(codes, out["kind"], strict=True)
    ]
    out["item_code"] = codes
    out["points"] = out["count"] * np.asarray(rates, dtype="float64")
    out["reason"] = out["kind"].map(REASONS)
    return out[out["points"] != 0]


# --- items -----------------------------------------------------------------------------------


def _complaints(df: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Item 1: public and inspector complaints count once verified; a leader's dissatisfaction always."""
    counted = df[df["verified"].fillna(False).astype(bool) | (df["kind"] == "leader_dissatisfied")]
    return _kind_rows(counted, COMPLAINT_ITEM, policy, _date_text(counted["date"]))


def _discipline(df: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Items 2.1–2.4: discipline findings × count."""
    return _kind_rows(df, DISCIPLINE_ITEM, policy, _date_text(df["date"]), df["count"])


def _patrol(
    findings: pd.DataFrame, month: str, grid_ids: pd.Index, policy: Policy, warnings: list[str]
) -> pd.DataFrame:
    """Item 2.5: the engine's findings, one row per grid, worker and kind (and site type)."""
    if findings is None or not len(findings):
        return _empty_rows()
    f = findings.reindex(columns=PATROL_FINDING_COLUMNS)
    if f["month"].notna().any():
        f = f[f["month"].astype(str) == month]
    unknown = sorted(set(f["grid_id"].astype(str)) - set(grid_ids))
    if unknown:
        warnings.append(f"patrol_finding: findings of unknown grids {', '.join(unknown)} not scored")
        f = f[f["grid_id"].isin(grid_ids)]
    if not len(f):
        return _empty_rows()
    per_kind = {
        k: getattr(policy.patrol.deductions, k) for k in ("absent_day", "short_day", "short_week", PATROL_SITE_KIND)
    }
    points = f["points"].astype("float64").fillna(f["kind"].map(per_kind))
    start, end = (
        _date_text(f["period_start"]),
        _date_text(f["period_end"].astype(object).where(f["period_end"].notna(), f["period_start"])),
    )
    token = start.where(start == end, start + "~" + end)
    # personal sites appear by code only (PIPL): the site_id, never a label
    token = token.where(f["site_id"].isna(), token + " " + f["site_id"].astype(str))
    # the finding's own words carry its figures (hours, km, half-days, the rule missed, late
    # leave); the bare period only where a caller's findings have none
    text = f["evidence"].astype(object)
    token = text.where(text.notna() & (text.astype(str) != ""), token).astype(str)
    is_site = f["kind"] == PATROL_SITE_KIND
    frame = pd.DataFrame(
        {
            "grid_id": f["grid_id"],
            "worker_id": f["worker_id"].astype(str),
            "kind": f["kind"],
            "site_type": f["site_type"].where(is_site, ""),
            "points": points,
            "token": token,
        }
    )
    g = frame.sort_values("token").groupby(["grid_id", "worker_id", "kind", "site_type"], sort=True)
    out = g.agg(count=("token", "size"), points=("points", "sum"), evidence=("token", "；".join)).reset_index()
    reason = out["kind"].map(REASONS)
    out["reason"] = reason.where(out["kind"] != PATROL_SITE_KIND, out["site_type"].map(SITE_REASONS))
    out["reason"] = out["reason"].fillna(out["kind"])
    out["item_code"] = ITEM_PATROL
    return out.drop(columns="site_type")


def _info_collection(
    collection: pd.DataFrame, checks: pd.DataFrame, grid_ids: pd.Index, policy: Policy, warnings: list[str]
) -> pd.DataFrame:
    """Item 3: per required sub-category, not collected at all −0.5 (not also −0.2), below the
    rate −0.2; plus every inaccurate record found."""
    required = list(policy.info_collection.required_subcategories)
    extra = sorted(set(collection["subcategory"]) - set(required))
    if extra:
        warnings.append(
            f"info_collection: sub-categories {', '.join(extra)} are not in the policy's "
            "info_collection.required_subcategories; not scored"
        )
    sums = collection.groupby(["grid_id", "subcategory"])[["required", "collected"]].sum()
    full = pd.MultiIndex.from_product([grid_ids, required], names=["grid_id", "subcategory"])
    t = sums.reindex(full).reset_index()
    t["has_row"] = t["required"].notna()
    req, got = t["required"].astype("float64"), t["collected"].astype("float64")
    # a sub-category with nothing to collect (required 0) cannot be missed
    not_collected = ~t["has_row"] | ((got.fillna(0) == 0) & (req > 0))
    below = ~not_collected & (req > 0) & (got / req < policy.info_collection.min_rate)
    t["token"] = [
        f"{sub}（无记录）" if not has else f"{sub} {g:.0f}/{r:.0f}" + (f" = {g / r:.1%}" if b else "")
        for sub, has, g, r, b in zip(t["subcategory"], t["has_row"], got.fillna(0), req.fillna(0), below, strict=True)
    ]
    t["kind"] = np.where(not_collected, "not_collected", np.where(below, "below_rate", ""))
    flagged = t[t["kind"] != ""]
    rows = _kind_rows(flagged, ITEM_INFO, policy, flagged["token"], sort_tokens=False, describe=False)  # policy order
    inaccurate = checks[checks["kind"] == "inaccurate_record"]
    rows2 = _kind_rows(inaccurate, ITEM_INFO, policy, _date_text(inaccurate["date"]), inaccurate["count"])
    return _concat([rows, rows2])


def _info_updates(checks: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Item 4: records found not updated."""
    df = checks[checks["kind"] == "not_updated"]
    return _kind_rows(df, ITEM_UPDATE, policy, _date_text(df["date"]), df["count"])


def _handling(events: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Item 5: shirked events (推诿)."""
    df = events[events["shirked"].fillna(False).astype(bool)]
    return _kind_rows(df.assign(kind="shirked"), ITEM_HANDLING, policy, df["event_id"].astype(str))


def _shortfall(
    grid_ids: pd.Index, counts: pd.Series, minimum: int, rate: float, item: str, kind: str, what: str
) -> pd.DataFrame:
    n = counts.reindex(grid_ids, fill_value=0).astype("int64")
    short = (minimum - n).clip(lower=0)
    out = pd.DataFrame({"grid_id": grid_ids, "count": short.to_numpy(), "kind": kind, "item_code": item})
    out["points"] = out["count"] * rate
    out["reason"] = REASONS[kind]
    out["evidence"] = [f"{what} {k} 条，要求不少于 {minimum} 条，少 {s} 条" for k, s in zip(n, short, strict=True)]
    return out[out["count"] > 0]


def _category_groups(policy: Policy) -> dict[str, list[str]]:
    """'社会治安+公共安全' -> ['public_security', 'public_safety'] (policy keys in either language)."""
    names = {k: k for k in CATEGORIES} | {a: k for k, aliases in CATEGORIES.items() for a in aliases}
    return {
        group: [names.get(part.strip(), part.strip()) for part in group.split("+")]
        for group in policy.events.category_minimums
    }


def _event_counts(
    events: pd.DataFrame, grid_ids: pd.Index, month: str, policy: Policy
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Item 6.1a: valid events short of the minimum; the category-group report (deducts only when
    ``events.category_minimums_deduct`` is on, 可根据实际情况适当调整)."""
    ev = policy.events
    valid = events[events["valid"].fillna(False).astype(bool)]
    rows = [
        _shortfall(
            grid_ids,
            valid.groupby("grid_id").size(),
            ev.min_valid_events,
            policy.items[ITEM_EVENTS].deduct["short_event"],
            ITEM_EVENTS,
            "short_event",
            "有效上报事项",
        )
    ]
    report = []
    for group, cats in _category_groups(policy).items():
        n = valid[valid["category"].isin(cats)].groupby("grid_id").size().reindex(grid_ids, fill_value=0)
        minimum = policy.events.category_minimums[group]
        report.append(
            pd.DataFrame(
                {
                    "grid_id": grid_ids,
                    "month": month,
                    "category_group": group,
                    "minimum": minimum,
                    "reported": n.to_numpy(),
                    "short": (minimum - n).clip(lower=0).to_numpy(),
                }
            )
        )
        if ev.category_minimums_deduct:
            r = _shortfall(grid_ids, n, minimum, ev.category_short_deduct, ITEM_EVENTS, "category_short", group)
            r["reason"] = REASONS["category_short"] + "：" + group
            rows.append(r)
    category_report = pd.concat(report, ignore_index=True) if report else pd.DataFrame(columns=CATEGORY_REPORT_COLUMNS)
    return _concat(rows), category_report


def _ranking_bonus(
    events: pd.DataFrame, rows: pd.DataFrame, grid_ids: pd.Index, month: str, policy: Policy
) -> pd.DataFrame:
    """6.1a 按照网格上报排名情况酌情加分: a negative-points row. The bonus makes up the item's lost
    points first, then lifts it above its maximum by at most ``events.ranking_bonus_cap``."""
    bonus_table = policy.events.ranking_bonus
    if not bonus_table:
        return _empty_rows()
    valid = events[events["valid"].fillna(False).astype(bool)].groupby("grid_id").size()
    n = valid.reindex(grid_ids, fill_value=0)
    rank = n.rank(method="min", ascending=False).astype(int)
    bonus = rank.map(lambda r: bonus_table.get(int(r), 0.0)).astype("float64")
    lost = rows[rows["item_code"] == ITEM_EVENTS].groupby("grid_id")["points"].sum().reindex(grid_ids, fill_value=0.0)
    cap = policy.events.ranking_bonus_cap
    applied = np.minimum(bonus, lost.clip(lower=0) + cap)
    out = pd.DataFrame(
        {
            "grid_id": grid_ids,
            "item_code": ITEM_EVENTS,
            "kind": "ranking_bonus",
            "count": 1,
            "points": -applied.to_numpy(),
            "reason": REASONS["ranking_bonus"],
        }
    )
    out["evidence"] = [
        f"有效上报 {k} 条，排名第 {r}，加 {b:g} 分（本项最多超出满分 {cap:g} 分，实加 {a:g} 分）"
        for k, r, b, a in zip(n, rank, bonus, applied, strict=True)
    ]
    return out[out["points"] != 0]


def _quality(events: pd.DataFrame, flags: pd.DataFrame | None, grid_ids: pd.Index, policy: Policy) -> pd.DataFrame:
    """Item 6.2: unqualified −0.2, false −1 each; more than 30 % of all events unqualified or false
    makes the item 0, explained by a row taking the points the others left."""
    ev = events.copy()
    counted = ev["review"].isin(["unqualified", "false"])
    parts = [_kind_rows(ev[counted], ITEM_QUALITY, policy, ev.loc[counted, "event_id"].astype(str), kind_col="review")]
    if flags is not None and len(flags) and policy.events.flags_as_unqualified:
        hit = flags[flags["flag"].isin(policy.events.flags_as_unqualified)]
        labels = (
            hit.assign(label=hit["flag"].map(FLAG_LABELS).fillna(hit["flag"]))
            .groupby("event_id")["label"]
            .agg(lambda s: "/".join(sorted(set(s))))
        )
        extra = ev[~counted & ev["event_id"].isin(labels.index)].copy()
        extra["kind"] = "flag_unqualified"
        token = extra["event_id"].astype(str) + "（" + extra["event_id"].map(labels) + "）"
        # a flagged event counts as one unqualified event (seed 6② 不合格事项), however many flags
        parts.append(
            _kind_rows(
                extra,
                ITEM_QUALITY,
                policy,
                token,
                rate=policy.items[ITEM_QUALITY].deduct["unqualified"],
                describe=False,
            )
        )
        counted = counted | ev.index.isin(extra.index)
    out = _concat(parts)
    total = ev.groupby("grid_id").size().reindex(grid_ids, fill_value=0)
    bad = ev[counted].groupby("grid_id").size().reindex(grid_ids, fill_value=0)
    share = (bad / total.where(total > 0)).fillna(0.0)
    zero = share > policy.events.quality_zero_share + 1e-12
    if zero.any():
        maximum = policy.items[ITEM_QUALITY].max_score
        lost = out.groupby("grid_id")["points"].sum().reindex(grid_ids, fill_value=0.0)
        z = pd.DataFrame(
            {
                "grid_id": grid_ids[zero],
                "item_code": ITEM_QUALITY,
                "kind": "quality_zero",
                "count": 1,
                "points": (maximum - lost[zero]).clip(lower=0).to_numpy(),
                "reason": REASONS["quality_zero"],
            }
        )
        z["evidence"] = [
            f"不合格及虚假事项 {b} 条 / 全部上报事项 {t} 条 = {s:.1%}，超过 {policy.events.quality_zero_share:.0%}"
            for b, t, s in zip(bad[zero], total[zero], share[zero], strict=True)
        ]
        out = _concat([out, z])
    return out


def _service_records(df: pd.DataFrame, grid_ids: pd.Index, policy: Policy) -> pd.DataFrame:
    """Item 6.1b: service records short of the minimum."""
    counts = df.groupby("grid_id")["count"].sum()
    return _shortfall(
        grid_ids,
        counts,
        policy.events.min_service_records,
        policy.items[ITEM_SERVICE].deduct["short_record"],
        ITEM_SERVICE,
        "short_record",
        "服务纪录",
    )


def _inspections(df: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Item 7: problems found by others, by source; item 8: those not rectified in time.

    With ``items."7".double_if_not_rectified`` (不及时整改双倍扣分, read literally) a random-check
    finding not rectified in time costs item 7 twice its deduction.
    """
    token = _date_text(df["date"])
    weight = None
    if policy.items[ITEM_FOUND].double_if_not_rectified and len(df):
        doubled = (df["source"] == "random_check") & ~df["rectified_in_time"].fillna(True).astype(bool)
        weight = pd.Series(np.where(doubled, 2, 1), index=df.index)
        token = token.where(~doubled, token + "（未及时整改，双倍扣分）")
    found = _kind_rows(df, ITEM_FOUND, policy, token, weight=weight, kind_col="source")
    late = df[~df["rectified_in_time"].fillna(True).astype(bool)]
    rectify = _kind_rows(late, ITEM_RECTIFY, policy, _date_text(late["date"]), kind_col="source")
    rectify["reason"] = rectify["reason"] + RECTIFY_REASON
    return _concat([found, rectify])


def _scores(
    deduction: pd.DataFrame,
    grids: pd.DataFrame,
    grid_ids: pd.Index,
    month: str,
    policy: Policy,
    unscored: Mapping[str, tuple[str, ...]],
) -> pd.DataFrame:
    lost = deduction.groupby(["grid_id", "item_code"])["points"].sum()
    full = pd.MultiIndex.from_product([grid_ids, list(ITEM_CODES)], names=["grid_id", "item_code"])
    t = lost.reindex(full, fill_value=0.0).rename("lost").reset_index()
    t["max_score"] = t["item_code"].map({c: policy.items[c].max_score for c in ITEM_CODES})
    t["score"] = (t["max_score"] - t["lost"]).clip(lower=0.0).round(4)
    t["missing_tables"] = t["item_code"].map({c: ",".join(unscored.get(c, ())) for c in ITEM_CODES})
    pending = t["missing_tables"] != ""
    t.loc[pending, "score"] = np.nan
    t["item_name"] = t["item_code"].map({c: policy.items[c].name for c in ITEM_CODES})
    t["category"] = t["item_code"].map({c: policy.items[c].category for c in ITEM_CODES})
    total = (
        t[~pending].groupby("grid_id", sort=False)[["max_score", "score"]].sum().reindex(grid_ids, fill_value=0.0)
    ).reset_index()
    total["score"] = total["score"].round(4)
    total["missing_tables"] = ",".join(sorted({x for v in unscored.values() for x in v}))
    total["item_code"], total["item_name"], total["category"] = ITEM_TOTAL, "总分", ""
    # ties share the rank ('min'): two grids on 92.4 are both 3rd, the next is 5th
    total["rank"] = total["score"].rank(method="min", ascending=False).astype("Int64")
    t["rank"] = pd.Series(pd.NA, index=t.index, dtype="Int64")
    out = pd.concat([t.drop(columns="lost"), total], ignore_index=True)
    out["month"] = month
    out["policy_hash"] = policy.hash
    order = {c: i for i, c in enumerate((*ITEM_CODES, ITEM_TOTAL))}
    out = out.assign(_o=out["item_code"].map(order)).sort_values(["grid_id", "_o"], kind="stable").drop(columns="_o")
    return out.reindex(columns=SCORE_COLUMNS).reset_index(drop=True)


__all__ = [
    "SCORE_COLUMNS",
    "DEDUCTION_ALL_COLUMNS",
    "CATEGORY_REPORT_COLUMNS",
    "COMPLAINT_ITEM",
    "DISCIPLINE_ITEM",
    "ITEM_INFO",
    "ITEM_UPDATE",
    "ITEM_HANDLING",
    "ITEM_EVENTS",
    "ITEM_SERVICE",
    "ITEM_QUALITY",
    "ITEM_FOUND",
    "ITEM_RECTIFY",
    "REASONS",
    "RECTIFY_REASON",
    "SITE_REASONS",
    "PATROL_SITE_KIND",
    "ScoreResult",
    "score_month",
]
