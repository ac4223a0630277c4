"""Stage 4: visits (a continuous stay ≥ 2 min within the radius) and per-period checks."""

from datetime import date, timedelta

import pandas as pd
import pytest
from walks import DAY, at, context, still, walk

from scoring.policy import load_policy
from trajectory.engine import process_days
from trajectory.visits import site_checks

POLICY = load_policy()
SITES = [("K1", "key_person", "g1", 200.0, 0.0), ("H1", "hazard_site", "g1", -200.0, 0.0)]


def _visits(pts):
    return process_days(pts, context(sites=SITES), [DAY]).site_visit


def test_a_three_minute_stop_is_a_visit_and_walking_past_is_not():
    # walk east along y=0 through both sites; stop 3 min at K1 only
    a = walk([(-400, 0), (200, 0)], at(9), dt_s=5)
    stop = still((200, 5), at(9) + pd.Timedelta(seconds=505), 180, dt_s=5, sigma_m=4.0)
    b = walk([(200, 0), (400, 0)], at(9) + pd.Timedelta(seconds=690), dt_s=5)
    v = _visits(pd.concat([a, stop, b], ignore_index=True))
    assert v["site_id"].tolist() == ["K1"]
    assert v["duration_s"].iloc[0] >= 180
    assert v["worker_id"].iloc[0] == "w1" and v["date"].iloc[0] == DAY


def test_a_stay_broken_by_a_gap_is_not_a_visit():
    a = still((200, 0), at(9), 90, dt_s=5, sigma_m=2.0)
    b = still((200, 0), at(9, 10), 90, dt_s=5, sigma_m=2.0)  # 8.5 min later: the gap breaks the stay
    assert _visits(pd.concat([a, b], ignore_index=True)).empty


def _wd(days, status_exempt=()):
    return pd.DataFrame(
        {
            "worker_id": "w1",
            "grid_id": "g1",
            "date": days,
            "workday": [d.weekday() < 5 for d in days],
            "exempt": [d in status_exempt for d in days],
        }
    )


def _sites():
    return pd.DataFrame(
        {
            "site_id": ["K1", "H1", "C1"],
            "site_type": ["key_person", "hazard_site", "care_subject"],
            "grid_id": "g1",
            "lon": 0.0,
            "lat": 0.0,
            "radius_m": 50.0,
            "label": "secret",
        }
    )


def test_site_checks_periods():
    days = [date(2026, 10, 1) + timedelta(days=i) for i in range(31)]
    visits = pd.DataFrame(
        {
            "worker_id": "w1",
            "grid_id": "g1",
            "site_id": ["K1", "H1"],
            "site_type": ["key_person", "hazard_site"],
            "date": [date(2026, 10, 6), date(2026, 10, 6)],
            "start_ts": pd.NaT,
            "end_ts": pd.NaT,
            "duration_s": 200.0,
        }
    )
    leave = {date(2026, 10, 12) + timedelta(days=i) for i in range(5)}  # the whole week 12–16 Oct exempt
    sc = site_checks(visits, _sites(), _wd(days, leave), date(2026, 10, 1), date(2026, 10, 31), POLICY)
    k = sc[sc["site_id"] == "K1"].set_index("period_start")
    # week parts: 1–4 (Thu–Sun), 5–11, [12–18 exempt: nothing], 19–25, 26–31
    assert list(k.index) == [date(2026, 10, 1), date(2026, 10, 5), date(2026, 10, 19), date(2026, 10, 26)]
    assert k.loc[date(2026, 10, 5), "visited"] and not k.loc[date(2026, 10, 1), "visited"]
    assert k.loc[date(2026, 10, 1), "period_end"] == date(2026, 10, 4)
    h = sc[sc["site_id"] == "H1"]
    assert len(h) == 22 - 5  # October 2026 has 22 Mon–Fri days, 5 exempt
    assert h["visited"].sum() == 1
    c = sc[sc["site_id"] == "C1"]
    assert len(c) == 1 and c["period_end"].iloc[0] == date(2026, 10, 31) and not c["visited"].iloc[0]
    assert set(sc["month"]) == {"2026-10"} and set(sc["worker_id"]) == {"w1"}


@pytest.mark.parametrize("radius,visited", [(50.0, True), (5.0, False)])
def test_site_radius_is_respected(radius, visited):
    ctx = context(sites=[("K1", "key_person", "g1", 0.0, 30.0)])
    ctx.sites["radius_m"] = radius
    v = process_days(still((0, 0), at(9), 300, dt_s=5, sigma_m=1.0), ctx, [DAY]).site_visit
    assert (len(v) == 1) is visited
