"""scoring.rules: every item's deduction rule on small hand-computed cases."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import numpy as np
import pandas as pd
import pytest
from scoring_helpers import FINDINGS, GRID_IDS, MONTH, clean_tables, with_rows

from scoring.rules import score_month
from trajectory.contract import ITEM_CODES, ITEM_TOTAL


def _score(result, grid="G01", item=None):
    s = result.grid_month_score.set_index(["grid_id", "item_code"])["score"]
    return s.loc[grid] if item is None else float(s.loc[(grid, item)])


def _invalidate(tables, grid, n, **changes):
    """Change the first n events of a grid (e.g. valid=false, review=unqualified)."""
    ev = tables["events"].copy()
    idx = ev.index[ev["grid_id"] == grid][:n]
    for col, value in changes.items():
        ev.loc[idx, col] = value
    return {**tables, "events": ev}


def _info(tables, sub, required, collected, grid="G01"):
    info = tables["info_collection"].copy()
    m = (info["grid_id"] == grid) & (info["subcategory"] == sub)
    if collected is None:
        info = info[~m]
    else:
        info.loc[m, ["required", "collected"]] = [required, collected]
    return {**tables, "info_collection": info}


def _service(tables, count, grid="G01"):
    s = tables["service_records"].copy()
    s.loc[s["grid_id"] == grid, "count"] = count
    return {**tables, "service_records": s}


def _c(kind, verified="true", date="2026-10-05"):
    return {"date": date, "grid_id": "G01", "kind": kind, "verified": verified}


def _d(kind, count=1, date="2026-10-06"):
    return {"date": date, "grid_id": "G01", "kind": kind, "count": count}


def _i(source, rectified="true", date="2026-10-07"):
    return {"date": date, "grid_id": "G01", "source": source, "rectified_in_time": rectified}


# (case id, change to a clean month, item, expected score of G01) — each computed from the seed
CASES = [
    (
        "1 verified public + inspector; unverified ignored",
        lambda t: with_rows(
            t, complaints=[_c("public_complaint"), _c("inspector_complaint"), _c("inspector_complaint", "false")]
        ),
        "1",
        2.0,
    ),
    (
        "1 leader dissatisfied ×3 floors at 0",
        lambda t: with_rows(t, complaints=[_c("leader_dissatisfied", "false")] * 3),
        "1",
        0.0,
    ),
    ("2.1 meeting absent ×3", lambda t: with_rows(t, discipline=[_d("meeting_absent", 3)]), "2.1", 0.4),
    (
        "2.2 board −0.5, badge ×2 −0.4",
        lambda t: with_rows(t, discipline=[_d("board_missing"), _d("badge_missing", 2)]),
        "2.2",
        0.1,
    ),
    ("2.3 one leak", lambda t: with_rows(t, discipline=[_d("confidentiality_breach")]), "2.3", 1.0),
    ("2.4 training absent ×6 floors", lambda t: with_rows(t, discipline=[_d("training_absent", 6)]), "2.4", 0.0),
    ("3 not collected −0.5 (not also −0.2)", lambda t: _info(t, "户籍人口", 100, 0), "3", 11.5),
    ("3 missing row = not collected", lambda t: _info(t, "境外人员", 0, None), "3", 11.5),
    ("3 below 95 % −0.2", lambda t: _info(t, "流动人口", 100, 94), "3", 11.8),
    ("3 exactly 95 % is met", lambda t: _info(t, "流动人口", 100, 95), "3", 12.0),
    ("3 nothing to collect is no deduction", lambda t: _info(t, "境外人员", 0, 0), "3", 12.0),
    ("3 inaccurate records ×2", lambda t: with_rows(t, info_checks=[_d("inaccurate_record", 2)]), "3", 11.0),
    ("4 not updated ×3", lambda t: with_rows(t, info_checks=[_d("not_updated", 3)]), "4", 1.5),
    ("5 two shirked events", lambda t: _invalidate(t, "G01", 2, shirked="true"), "5", 5.0),
    ("6.1a 70 valid of 80", lambda t: _invalidate(t, "G01", 10, valid="false"), "6.1a", 13.0),
    ("6.1b 75 records", lambda t: _service(t, 75), "6.1b", 9.0),
    ("6.1b none floors", lambda t: _service(t, 0), "6.1b", 0.0),
    (
        "6.2 3 unqualified + 1 false",
        lambda t: _invalidate(_invalidate(t, "G01", 4, review="unqualified"), "G01", 1, review="false"),
        "6.2",
        6.4,
    ),
    ("6.2 exactly 30 % is not over", lambda t: _invalidate(t, "G01", 24, review="unqualified"), "6.2", 3.2),
    ("6.2 over 30 % is 0", lambda t: _invalidate(t, "G01", 25, review="unqualified"), "6.2", 0.0),
    (
        "7 random ×2, public, daily ×3 free",
        lambda t: with_rows(
            t, inspections=[_i("random_check"), _i("random_check"), _i("public_report"), *[_i("daily_patrol")] * 3]
        ),
        "7",
        14.4,
    ),
    (
        "8 not rectified: random −1, centre ×2 and daily −0.5",
        lambda t: with_rows(
            t,
            inspections=[
                _i("random_check", "false"),
                _i("center_assigned", "false"),
                _i("center_assigned", "false"),
                _i("daily_patrol", "false"),
                _i("public_report", "true"),
            ],
        ),
        "8",
        12.5,
    ),
    (
        "7 for the same not-rectified records",
        lambda t: with_rows(
            t, inspections=[_i("random_check", "false"), _i("center_assigned", "false"), _i("daily_patrol", "false")]
        ),
        "7",
        14.8,
    ),
]


@pytest.mark.parametrize(("change", "item", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_item_rule(change, item, expected, policy, grids, load_month):
    ind = load_month(change(clean_tables(policy)))
    r = score_month(MONTH, grids, ind, pd.DataFrame(), policy)
    assert _score(r, "G01", item) == pytest.approx(expected)
    others = r.grid_month_score[(r.grid_month_score["item_code"] == item) & (r.grid_month_score["grid_id"] != "G01")]
    assert (others["score"] == others["max_score"]).all(), "other grids keep full marks"
    _assert_rows_add_up(r)


def _assert_rows_add_up(r):
    """For every grid and item: sum(points) == max − raw score, and score == max(0, raw)."""
    s = r.grid_month_score[r.grid_month_score["item_code"] != ITEM_TOTAL].set_index(["grid_id", "item_code"])
    lost = r.deduction.groupby(["grid_id", "item_code"])["points"].sum().reindex(s.index, fill_value=0.0)
    raw = s["max_score"] - lost
    np.testing.assert_allclose(s["score"], raw.clip(lower=0), atol=1e-9)
    floored = raw < 0
    np.testing.assert_allclose(lost[~floored], (s["max_score"] - s["score"])[~floored], atol=1e-9)
    assert (lost[floored] > s["max_score"][floored]).all()
    total = r.grid_month_score[r.grid_month_score["item_code"] == ITEM_TOTAL].set_index("grid_id")["score"]
    np.testing.assert_allclose(total, s["score"].groupby(level=0).sum().reindex(total.index), atol=1e-9)


def test_clean_month_is_full_marks(policy, grids, load_month):
    r = score_month(MONTH, grids, load_month(clean_tables(policy)), pd.DataFrame(), policy)
    assert len(r.deduction) == 0
    assert set(r.grid_month_score["item_code"]) == {*ITEM_CODES, ITEM_TOTAL}
    assert len(r.grid_month_score) == len(GRID_IDS) * (len(ITEM_CODES) + 1)
    assert (r.grid_month_score.query("item_code == 'total'")["score"] == 100).all()
    assert (r.grid_month_score.query("item_code == 'total'")["rank"] == 1).all()


def test_30_percent_rule_rows_add_to_max(policy, grids, load_month):
    ind = load_month(_invalidate(clean_tables(policy), "G01", 25, review="unqualified"))
    r = score_month(MONTH, grids, ind, pd.DataFrame(), policy)
    rows = r.deduction.query("grid_id == 'G01' and item_code == '6.2'").set_index("kind")
    assert rows.loc["unqualified", "points"] == pytest.approx(5.0)
    assert rows.loc["quality_zero", "points"] == pytest.approx(3.0)  # the rest, so rows add to 8
    assert "31.2%" in rows.loc["quality_zero", "evidence"]


def test_30_percent_rule_when_already_over_max(policy, grids, load_month):
    # 10 false events of 80 = 12.5 %: −10 > 8; 16 unqualified more: 26/80 > 30 %
    t = _invalidate(_invalidate(clean_tables(policy), "G01", 26, review="unqualified"), "G01", 10, review="false")
    r = score_month(MONTH, grids, load_month(t), pd.DataFrame(), policy)
    assert _score(r, "G01", "6.2") == 0.0
    zero = r.deduction.query("grid_id == 'G01' and kind == 'quality_zero'")
    assert len(zero) == 1 and zero["points"].iloc[0] == 0.0  # explained, takes nothing more
    _assert_rows_add_up(r)


def test_patrol_findings_of_several_workers_add_up(policy, grids, load_month):
    r = score_month(MONTH, grids, load_month(clean_tables(policy)), FINDINGS, policy)
    assert _score(r, "G01", "2.5") == pytest.approx(6 - (0.5 * 3 + 0.2 + 0.2 + 0.2 * 2 + 0.2))
    rows = r.deduction.query("item_code == '2.5'").set_index(["worker_id", "kind"])
    assert rows.loc[("W1", "absent_day"), "count"] == 2
    assert rows.loc[("W1", "absent_day"), "evidence"] == "2026-10-08；2026-10-09"
    assert rows.loc[("W1", "missed_site_period"), "evidence"] == "2026-10-05~2026-10-11 KP-07"
    assert rows.loc[("W1", "missed_site_period"), "reason"] == "重点人员未按周期走访"
    assert rows.loc[("W4", "missed_site_period"), "points"] == pytest.approx(0.4)
    assert rows.loc[("W4", "short_week"), "evidence"] == "2026-10-05~2026-10-11"
    _assert_rows_add_up(r)


def test_patrol_floor_keeps_every_row(policy, grids, load_month):
    many = pd.DataFrame(
        {
            "grid_id": "G02",
            "worker_id": "W2",
            "month": MONTH,
            "kind": "absent_day",
            "period_start": [f"2026-10-{d:02d}" for d in range(8, 23)],
            "points": 0.5,
        }
    )
    r = score_month(MONTH, grids, load_month(clean_tables(policy)), many, policy)
    assert _score(r, "G02", "2.5") == 0.0
    assert r.deduction.query("grid_id == 'G02'")["points"].sum() == pytest.approx(7.5)


def test_ranking_ties_share_the_rank(policy, grids, load_month):
    # G01 and G02 both lose 1 point (94→ tie), G03 loses 2
    t = with_rows(
        clean_tables(policy),
        complaints=[
            _c("public_complaint"),
            {**_c("public_complaint"), "grid_id": "G02"},
            {**_c("leader_dissatisfied"), "grid_id": "G03"},
        ],
    )
    r = score_month(MONTH, grids, load_month(t), pd.DataFrame(), policy)
    total = r.grid_month_score.query("item_code == 'total'").set_index("grid_id")
    assert total["score"].to_dict() == {"G01": 99.0, "G02": 99.0, "G03": 98.0}
    assert total["rank"].to_dict() == {"G01": 1, "G02": 1, "G03": 3}


@pytest.mark.parametrize("cap", [1.0, 0.0])
def test_ranking_bonus_reaches_the_top_grids_up_to_its_cap(cap, policy, grids, load_month):
    p = dataclasses.replace(
        policy,
        events=dataclasses.replace(
            policy.events, ranking_bonus=MappingProxyType({1: 1.5, 2: 0.5}), ranking_bonus_cap=cap
        ),
    )
    # G01 80 valid (rank 1, nothing lost); G02 78 (rank 2, 0.4 lost); G03 70 (rank 3, no bonus)
    t = _invalidate(_invalidate(clean_tables(policy), "G02", 2, valid="false"), "G03", 10, valid="false")
    r = score_month(MONTH, grids, load_month(t), pd.DataFrame(), p)
    assert _score(r, "G01", "6.1a") == pytest.approx(15.0 + min(1.5, cap))  # rewarded above 15 by ≤ cap
    assert _score(r, "G02", "6.1a") == pytest.approx(15 - 0.4 + min(0.5, 0.4 + cap))
    assert _score(r, "G03", "6.1a") == pytest.approx(13.0)
    bonus = r.deduction.query("kind == 'ranking_bonus'").set_index("grid_id")
    assert (bonus["reason"] == "上报排名加分").all()
    assert "排名第 1" in bonus.loc["G01", "evidence"] if cap else "G01" not in bonus.index
    total = r.grid_month_score.query("item_code == 'total'").set_index("grid_id")["score"]
    assert total["G01"] == pytest.approx(100.0 + min(1.5, cap))
    _assert_rows_add_up(r)


def test_evidence_names_date_kind_and_count(policy, grids, load_month):
    t = with_rows(
        clean_tables(policy),
        discipline=[_d("meeting_absent", 2, "2026-10-12")],
        complaints=[_c("public_complaint", date="2026-10-05")],
    )
    r = score_month(MONTH, grids, load_month(t), pd.DataFrame(), policy)
    ev = r.deduction.set_index("kind")["evidence"]
    assert ev["meeting_absent"] == "2026-10-12 未参加村（社区）网格化例会 2次"
    assert ev["public_complaint"] == "2026-10-05 被群众投诉（经核实）"


def test_patrol_evidence_carries_the_findings_figures(policy, grids, load_month):
    f = FINDINGS.head(1).assign(
        kind="short_day", evidence="2026-10-09 巡查1.2小时/0.6公里（上午72分钟、下午0分钟），时长不足3小时"
    )
    r = score_month(MONTH, grids, load_month(clean_tables(policy)), f, policy)
    row = r.deduction.query("item_code == '2.5'")
    assert row["evidence"].iloc[0] == "2026-10-09 巡查1.2小时/0.6公里（上午72分钟、下午0分钟），时长不足3小时"


@pytest.mark.parametrize("literal,item7", [(False, 15 - 0.2 - 0.2), (True, 15 - 0.4 - 0.2)])
def test_item_7_doubling_reading_is_a_policy_choice(literal, item7, policy, grids, load_month):
    items = dict(policy.items)
    items["7"] = dataclasses.replace(items["7"], double_if_not_rectified=literal)
    p = dataclasses.replace(policy, items=MappingProxyType(items))
    t = with_rows(clean_tables(policy), inspections=[_i("random_check", "false"), _i("random_check", "true")])
    r = score_month(MONTH, grids, load_month(t), pd.DataFrame(), p)
    assert _score(r, "G01", "7") == pytest.approx(item7)
    assert _score(r, "G01", "8") == pytest.approx(14.0)  # item 8's −1 either way
    if literal:
        assert "未及时整改，双倍扣分" in r.deduction.query("item_code == '7'")["evidence"].iloc[0]
    _assert_rows_add_up(r)


@pytest.mark.parametrize("deduct", [False, True])
def test_category_minimums_reported_and_optionally_deducted(deduct, policy, grids, load_month):
    p = dataclasses.replace(policy, events=dataclasses.replace(policy.events, category_minimums_deduct=deduct))
    ev = clean_tables(policy)
    # move 5 city-management events of G01 to public_safety: still 80, 城市管理+环境保护 35 < 40
    e = ev["events"].copy()
    idx = e.index[(e["grid_id"] == "G01") & (e["category"] == "city_management")][:5]
    e.loc[idx, "category"] = "公共安全"
    r = score_month(MONTH, grids, load_month({**ev, "events": e}), pd.DataFrame(), p)
    rep = r.category_report.query("grid_id == 'G01'").set_index("category_group")
    assert rep.loc["城市管理+环境保护", ["reported", "short"]].tolist() == [35, 5]
    assert rep.loc["社会治安+公共安全", "reported"] == 20
    assert _score(r, "G01", "6.1a") == pytest.approx(14.0 if deduct else 15.0)


def test_flags_count_as_unqualified_only_when_switched_on(policy, grids, load_month):
    flags = pd.DataFrame(
        {
            "event_id": ["G01-E001", "G01-E001", "G01-E002"],
            "grid_id": "G01",
            "flag": ["missing_photos", "duplicate", "no_track"],
            "detail": "",
        }
    )
    ind = load_month(clean_tables(policy))
    r = score_month(MONTH, grids, ind, pd.DataFrame(), policy, flags)
    assert _score(r, "G01", "6.2") == 8.0
    p = dataclasses.replace(
        policy, events=dataclasses.replace(policy.events, flags_as_unqualified=("missing_photos", "duplicate"))
    )
    r = score_month(MONTH, grids, ind, pd.DataFrame(), p, flags)
    row = r.deduction.query("kind == 'flag_unqualified'")
    assert _score(r, "G01", "6.2") == pytest.approx(7.8)  # one event, counted once
    assert row["evidence"].iloc[0] == "G01-E001（前后照片缺失/疑似重复上报）"


def test_every_grid_and_item_adds_up_on_a_busy_month(policy, grids, load_month):
    t = clean_tables(policy)
    for change, _item, _exp in [c[1:] for c in CASES]:
        t = change(t)
    r = score_month(MONTH, grids, load_month(t), FINDINGS, policy)
    _assert_rows_add_up(r)
    assert (r.deduction["points"] != 0).all()
    assert r.deduction["reason"].str.len().gt(0).all() and r.deduction["evidence"].str.len().gt(0).all()
