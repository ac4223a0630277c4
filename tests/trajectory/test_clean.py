"""Stage 1: which points count (duplicates, accuracy, mock, spikes)."""

import numpy as np
import pandas as pd
import pytest
from walks import DAY, at, context, loop, polyline_length, walk

from scoring.policy import load_policy
from trajectory.clean import R_SPIKE, find_spikes
from trajectory.engine import process_days

RULES = load_policy().patrol.points


def _reasons(pts: pd.DataFrame) -> pd.Series:
    r = process_days(pts, context(), [DAY])
    return r.point_use["reason"].astype(object).fillna("counted").value_counts()


def test_duplicates_accuracy_mock_are_recorded_not_counted():
    w = walk(loop(200), at(9), dt_s=5)
    w.loc[10:14, "accuracy_m"] = 80.0
    w.loc[20:22, "mock"] = True
    pts = pd.concat([w, w.iloc[30:35]], ignore_index=True)
    counts = _reasons(pts)
    assert counts["duplicate"] == 5
    assert counts["accuracy"] == 5
    assert counts["mock"] == 3
    assert counts["counted"] == len(w) - 8


@pytest.mark.parametrize("burst", [1, 2, 3])
def test_spike_burst_vanishes_without_cutting_the_walk(burst):
    n = 40
    x = np.arange(n) * 6.0
    x[20 : 20 + burst] = 3000.0
    spikes = find_spikes(np.zeros(n, int), np.arange(n) * 5.0, x, np.zeros(n), RULES)
    assert np.flatnonzero(spikes).tolist() == list(range(20, 20 + burst))


def test_spike_at_the_start_of_a_day():
    x = np.arange(30) * 6.0
    x[0] = -3000.0
    assert np.flatnonzero(find_spikes(np.zeros(30, int), np.arange(30) * 5.0, x, np.zeros(30), RULES)).tolist() == [0]


def test_car_is_not_a_spike():
    # 100 km/h sampled every 5 s: fast, but consistent with its neighbours
    x = np.arange(30) * 27.8 * 5
    assert not find_spikes(np.zeros(30, int), np.arange(30) * 5.0, x, np.zeros(30), RULES).any()


def test_single_3km_spike_leaves_length_and_time_unchanged():
    route = loop(250)
    clean = walk(route, at(9), dt_s=5)
    spiked = clean.copy()
    spiked.loc[100, "lon"] += 0.03  # ~2.8 km east
    a = process_days(clean, context(), [DAY])
    b = process_days(spiked, context(), [DAY])
    wa, wb = a.worker_day.iloc[0], b.worker_day.iloc[0]
    assert wb["dropped_spike"] == 1
    assert wb["patrol_m"] == pytest.approx(wa["patrol_m"], rel=0.01)
    assert wb["patrol_m"] == pytest.approx(polyline_length(route), rel=0.05)
    # the neighbours are joined again: only the two 5 s intervals become one 10 s interval
    assert wb["patrol_s"] == pytest.approx(wa["patrol_s"])
    # one spike is ordinary GPS noise: dropped, not flagged for a reviewer
    assert "teleport" not in set(b.day_flag["flag"])
    assert (b.point_use["reason"] == "spike").sum() == 1
    assert R_SPIKE == 5


def test_repeated_isolated_spikes_are_noise_and_a_run_elsewhere_is_a_teleport():
    route = loop(250)
    spiked = walk(route, at(9), dt_s=5)
    for i in (60, 120, 180):  # three separate 2.8 km spikes: GPS noise, dropped
        spiked.loc[i, "lon"] += 0.03
    b = process_days(spiked, context(), [DAY])
    assert b.worker_day.iloc[0]["dropped_spike"] == 3
    assert "teleport" not in set(b.day_flag["flag"])
    moved = walk(route, at(9), dt_s=5)
    moved.loc[100:111, "lon"] += 0.05  # 12 fixes (1 min) 4.7 km away: the phone "was" elsewhere
    c = process_days(moved, context(), [DAY])
    assert set(c.day_flag["flag"]) == {"teleport"}
    assert "unexplained jump" in c.day_flag["detail"].iloc[0]
