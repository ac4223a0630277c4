"""Stage 3: patrol time, jitter-robust distance, status, weeks."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from walks import DAY, at, context, loop, polyline_length, still, walk

from scoring.policy import load_policy
from trajectory.contract import WORKER_WEEK_COLUMNS
from trajectory.engine import process_days
from trajectory.metrics import anchor_chain, compute_weeks
from trajectory.noise import running_line

POLICY = load_policy()
STREETS = [(-400, -300), (300, -300), (300, 200), (-100, 200), (-100, -100)]


def _day(pts, **kw):
    return process_days(pts, context(**kw), [DAY]).worker_day.iloc[0]


@pytest.mark.parametrize("dt_s", [1.0, 5.0, 10.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_walk_with_4m_jitter_measures_within_5_percent(dt_s, seed):
    d = _day(walk(STREETS, at(9), dt_s=dt_s, sigma_m=4.0, seed=seed))
    assert d["patrol_m"] == pytest.approx(polyline_length(STREETS), rel=0.05)


def test_loop_inside_grid_length_and_time():
    route = loop(300)
    w = walk(route, at(8), laps=4, dt_s=5, sigma_m=4.0, seed=3)
    d = _day(w)
    assert d["patrol_m"] == pytest.approx(4 * polyline_length(route), rel=0.05)
    true_s = (w["ts"].iloc[-1] - w["ts"].iloc[0]).total_seconds()
    assert d["patrol_s"] == pytest.approx(true_s, abs=5.0)
    assert d["am_s"] == pytest.approx(true_s, abs=5.0) and d["pm_s"] == 0


@pytest.mark.parametrize("dt_s", [1.0, 5.0, 10.0])
def test_phone_lying_still_for_3h_accumulates_almost_nothing(dt_s):
    r = process_days(still((10, 10), at(9), 3 * 3600, dt_s=dt_s, sigma_m=4.0, seed=2), context(), [DAY])
    d = r.worker_day.iloc[0]
    assert d["patrol_m"] < 30.0
    # SPEC §1.1: one stationary period away from a site counts at most the policy cap (60 min)
    assert d["patrol_s"] == pytest.approx(3600.0, abs=dt_s)
    assert d["stationary_s"] == pytest.approx(3 * 3600, abs=300)
    assert d["stationary_uncounted_s"] == pytest.approx(2 * 3600, abs=300)
    assert "desk_phone" in set(r.day_flag["flag"])


def test_am_only_is_short_for_the_afternoon():
    d = _day(walk(loop(225), at(8), laps=10, speed_mps=1.5, dt_s=5))  # 08:00–11:20
    assert d["status"] == "short"
    assert d["short_reasons"] == "afternoon"


@pytest.mark.parametrize("grid_type,status,reasons", [("village", "ok", None), ("community", "short", "time")])
def test_two_hours_is_enough_in_a_village_not_in_a_community(grid_type, status, reasons):
    from walks import square

    am = walk(loop(225), at(9), laps=3, speed_mps=1.5, dt_s=5)  # 1 h, 5.4 km
    pm = walk(loop(225), at(14), laps=3, speed_mps=1.5, dt_s=5)
    d = _day(pd.concat([am, pm]), grids=[("g1", grid_type, square(500))])
    assert d["patrol_s"] == pytest.approx(2 * 3600, abs=10)
    assert d["status"] == status and d["short_reasons"] == reasons


def test_no_points_is_absent_on_a_workday_and_off_on_a_weekend():
    sat = DAY + timedelta(days=1)
    empty = walk(loop(300), at(9), dt_s=5).iloc[0:0]
    wd = process_days(empty, context(), [DAY, sat]).worker_day.set_index("date")
    assert wd.loc[DAY, "status"] == "absent" and wd.loc[sat, "status"] == "off"
    assert wd.loc[sat, "required_s"] == 0


@pytest.mark.parametrize("filed_after,exempt", [(0, True), (3, True), (4, False), (-5, True)])
def test_leave_filed_within_3_days_after_the_day_exempts(filed_after, exempt):
    leave = [("w1", DAY, DAY, DAY + timedelta(days=filed_after), "sick")]
    d = _day(walk(loop(300), at(9), dt_s=5).iloc[0:0], leave=leave)
    assert bool(d["exempt"]) is exempt
    assert d["status"] == ("exempt" if exempt else "absent")
    assert bool(d["leave_filed_late"]) is (not exempt)


def test_anchor_chain_on_still_and_walking_points():
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 2, 500), np.arange(100) * 6.0]
    y = np.r_[rng.normal(0, 2, 500), np.zeros(100)]
    seg = np.zeros(600, int)
    t = np.arange(600) * 5.0
    xs, ys = running_line(t, x, seg, 10.0), running_line(t, y, seg, 10.0)
    src, dst, moved = anchor_chain(xs, ys, seg, 15.0)
    walked = np.hypot(xs[dst] - xs[src], ys[dst] - ys[src])[moved & (src >= 500)].sum()
    assert walked == pytest.approx(594, rel=0.05)


def _wd(days, exempt=(), grid_type="community", patrol_h=4.0, km=2.0):
    cal = {d: d.weekday() < 5 for d in days}
    return pd.DataFrame(
        {
            "worker_id": "w1",
            "grid_id": "g1",
            "date": days,
            "workday": [cal[d] for d in days],
            "exempt": [d in exempt for d in days],
            "patrol_s": patrol_h * 3600.0,
            "patrol_m": km * 1000.0,
            "grid_type": grid_type,
        }
    )


def test_weeks_are_cut_at_month_edges_and_pro_rated():
    days = [date(2026, 9, 28) + timedelta(days=i) for i in range(14)]  # Mon 28 Sep .. Sun 11 Oct
    leave = {date(2026, 10, 6)}
    ww = compute_weeks(_wd(days, exempt=leave), POLICY)
    assert set(ww.columns) >= {
        *WORKER_WEEK_COLUMNS,
        "month",
        "workdays",
        "exempt_days",
    }
    ww = ww.set_index("week_start")
    # 28–30 Sep: 3 workdays → 3/5 of 18 h and 8 km
    sep = ww.loc[date(2026, 9, 28)]
    assert sep["workdays"] == 3 and sep["required_s"] == pytest.approx(18 * 3600 * 3 / 5)
    assert sep["month"] == "2026-09"
    # 1–4 Oct (Thu–Sun): 2 workdays
    assert ww.loc[date(2026, 10, 1), "required_m"] == pytest.approx(8000 * 2 / 5)
    # 5–11 Oct with one exempt day: 4/5
    full = ww.loc[date(2026, 10, 5)]
    assert full["exempt_days"] == 1 and full["required_s"] == pytest.approx(18 * 3600 * 4 / 5)
    assert bool(full["meets_time"])  # 7 days × 4 h, weekend patrol counts


def test_week_with_only_holidays_requires_nothing():
    days = [date(2026, 10, 5) + timedelta(days=i) for i in range(7)]
    wd = _wd(days, patrol_h=0, km=0)
    wd["workday"] = False
    w = compute_weeks(wd, POLICY).iloc[0]
    assert w["required_s"] == 0 and bool(w["meets_time"]) and bool(w["meets_distance"])


@pytest.mark.parametrize("grid_type,week_h", [("community", 18.0), ("village", 12.0)])
def test_six_workday_week_needs_no_more_than_the_seeds_weekly_figures(grid_type, week_h):
    """Mon 14 – Sun 20 Sep 2026: Sunday the 20th is a 调休 workday (six workdays)."""
    days = [date(2026, 9, 14) + timedelta(days=i) for i in range(7)]
    wd = _wd(days, grid_type=grid_type, patrol_h=week_h / 6, km=8.0 / 6)
    wd["workday"] = [d.weekday() < 5 or d == date(2026, 9, 20) for d in days]
    w = compute_weeks(wd, POLICY).iloc[0]
    assert w["workdays"] == 6
    assert w["required_s"] == pytest.approx(week_h * 3600)  # not 6/5 of it
    assert w["required_m"] == pytest.approx(8000.0)
    assert bool(w["meets_time"]) and bool(w["meets_distance"])
