"""Stage 6: item 2.5 findings add up; personal sites by code only."""

from datetime import date, timedelta

import pandas as pd
import pytest
from walks import at, context, loop, walk

from scoring.policy import load_policy
from trajectory.engine import process_days
from trajectory.findings import patrol_findings
from trajectory.metrics import compute_weeks
from trajectory.visits import site_checks

POLICY = load_policy()


def test_absent_day_and_its_hazard_site_add_up():
    days = [date(2026, 10, 5) + timedelta(days=i) for i in range(7)]  # Mon–Sun
    sites = [("H1", "hazard_site", "g1", 100.0, 0.0), ("K1", "key_person", "g1", -100.0, 0.0)]
    ctx = context(sites=sites)
    # Monday: a good patrol with a stop at both sites; Tuesday: nothing; Wed–Fri: exempt leave
    mon = days[0]
    pts = pd.concat(
        [
            walk([(100, 0), (100, 1)], at(8, 0, mon), speed_mps=0.004, dt_s=10),  # ~4 min at H1
            walk([(-100, 0), (-100, 1)], at(8, 10, mon), speed_mps=0.004, dt_s=10),  # ~4 min at K1
            walk(loop(225), at(8, 20, mon), laps=5, speed_mps=1.5, dt_s=5),
            walk(loop(225), at(14, 0, mon), laps=5, speed_mps=1.5, dt_s=5),
        ],
        ignore_index=True,
    )
    ctx.leave.loc[0] = ["w1", days[2], days[4], days[2], "training"]
    r = process_days(pts, ctx, days)
    wd = r.worker_day.set_index("date")
    assert wd.loc[mon, "status"] == "ok", wd.loc[mon].to_dict()
    assert wd.loc[days[1], "status"] == "absent"
    assert list(wd.loc[days[2] : days[4], "status"]) == ["exempt"] * 3
    ww = compute_weeks(r.worker_day, POLICY)
    sc = site_checks(r.site_visit, ctx.sites, r.worker_day, days[0], days[-1], POLICY)
    f = patrol_findings(r.worker_day, ww, sc, POLICY, "2026-10")
    kinds = f.groupby("kind")["points"].sum().to_dict()
    assert kinds == {"absent_day": 0.5, "missed_site_period": 0.2, "short_week": 0.2}
    missed = f[f["kind"] == "missed_site_period"].iloc[0]
    assert missed["site_id"] == "H1" and missed["period_start"] == days[1]
    assert f["points"].sum() == pytest.approx(0.9)
    # the week's 2 due workdays need 2/5 of 18 h: Monday's patrol alone is short of it
    assert "2026-10-05至2026-10-11" in f.loc[f["kind"] == "short_week", "evidence"].iloc[0]


def test_personal_sites_appear_by_code_never_by_label():
    sc = pd.DataFrame(
        {
            "site_id": ["K9"],
            "site_type": ["key_person"],
            "grid_id": ["g1"],
            "period_start": [date(2026, 10, 5)],
            "period_end": [date(2026, 10, 11)],
            "visited": [False],
            "worker_id": ["w1"],
            "month": ["2026-10"],
            "visit_count": [0],
        }
    )
    f = patrol_findings(pd.DataFrame(), pd.DataFrame(), sc, POLICY, "2026-10")
    assert f["evidence"].iloc[0] == "重点人员 K9 2026-10-05至2026-10-11 未按周期走访"
    assert f["points"].iloc[0] == POLICY.patrol.deductions.missed_site_period


def test_short_day_evidence_names_the_missing_half_day():
    wd = pd.DataFrame(
        {
            "worker_id": ["w1"],
            "grid_id": ["g1"],
            "date": [date(2026, 10, 9)],
            "status": ["short"],
            "patrol_s": [4320.0],
            "patrol_m": [600.0],
            "required_s": [10800.0],
            "required_m": [1000.0],
            "short_reasons": ["time,distance,afternoon"],
            "am_s": [4320.0],
            "pm_s": [0.0],
        }
    )
    f = patrol_findings(wd, pd.DataFrame(), pd.DataFrame(), POLICY, "2026-10")
    assert (
        f["evidence"].iloc[0]
        == "2026-10-09 巡查1.2小时/0.6公里（上午72分钟、下午0分钟），时长不足3小时，里程不足1公里，下午不足30分钟"
    )


def test_absent_day_on_leave_filed_late_says_why_it_was_scored():
    """Leave for 10-09 filed on 10-14 (five days later): scored absent, the evidence names the leave."""
    day = date(2026, 10, 9)
    ctx = context(leave=[("w1", day, day, date(2026, 10, 14), "病假")])
    r = process_days(walk([(0, 0), (10, 0)], at(9), dt_s=5).iloc[0:0], ctx, [date(2026, 10, 9)])
    wd = r.worker_day
    assert wd.iloc[0]["status"] == "absent" and bool(wd.iloc[0]["leave_filed_late"])
    f = patrol_findings(wd, pd.DataFrame(), pd.DataFrame(), POLICY, "2026-10")
    text = f.loc[f["kind"] == "absent_day", "evidence"].iloc[0]
    assert (
        text
        == "2026-10-09 工作日未巡查（网格内无有效巡查轨迹）；请假2026-10-09，2026-10-14报备，超过3日内报备时限，当日按常规考核"
    )
    assert "病假" not in text  # the leave's reason is personal: not repeated in the evidence
