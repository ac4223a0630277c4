"""Issue 11: patrol distance, stays and flags at the GPS noise real phones produce.

Ground truth: a phone lying still for 5 h (truth 0 m) and walks of known length (the issue's
480 m square loop and a walk along city blocks, 1.0 m/s, 2 × 2.5 h) under white noise σ 3–30 m
and AR(1) drift σ 10–30 m (time constant 30–300 s) with 1 % multipath outliers, sampled every
1–30 s, with ``accuracy_m`` (1.51 σ, Android's 68 % radius) and without it. The full table is
in docs/methods.md (``python -m benchmarks.bench_noise``); the cells asserted here are those
the targets name, sampled so that the suite stays short.
"""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from walks import (
    DAY,
    at,
    context,
    loop_positions,
    patrol_schedule,
    phone_noise,
    square,
    street_positions,
    track,
    walked_metres,
)

from scoring.policy import load_policy
from trajectory.engine import process_days
from trajectory.flags import detect_replays, replays_from_signatures
from trajectory.noise import RAYLEIGH_68

CTX = context(grids=[("g1", "community", square(1000))])
POLICY = load_policy()

WHITE = [("white", s, 0.0) for s in (3, 8, 15, 30)]
DRIFT = [("ar1", 10, 30.0), ("ar1", 15, 100.0), ("ar1", 10, 300.0), ("ar1", 30, 30.0), ("ar1", 30, 300.0)]


def _day(x, y, t, model, sigma, tau, with_accuracy, seed):
    noise = phone_noise(len(t), float(np.median(np.diff(t))), sigma, model, tau or 100.0,
                        0.01 if model == "ar1" else 0.0, seed=seed)  # fmt: skip
    pts = track(x, y, t, at(8), noise, RAYLEIGH_68 * sigma if with_accuracy else None)
    return process_days(pts, CTX, [DAY])


@pytest.mark.parametrize("dt_s", [1.0, 10.0, 30.0])
@pytest.mark.parametrize("model,sigma,tau", WHITE + DRIFT[:3] + [DRIFT[4]])
def test_phone_lying_still_with_accuracy_earns_under_150_m_and_is_flagged(dt_s, model, sigma, tau):
    t = patrol_schedule(dt_s)
    r = _day(np.zeros(len(t)), np.zeros(len(t)), t, model, sigma, tau, True, seed=int(sigma + tau + dt_s))
    d = r.worker_day.iloc[0]
    assert d["patrol_m"] < 150.0
    assert "desk_phone" in (d["flags"] or "")
    assert d["status"] == "short"
    if model == "white":  # two stationary periods of 2.5 h: each counts at most the 60 min cap
        assert d["patrol_s"] <= 2 * 3600.0 + 2 * dt_s


@pytest.mark.parametrize("dt_s", [1.0, 10.0, 30.0])
@pytest.mark.parametrize("model,sigma,tau", WHITE + DRIFT)
def test_phone_lying_still_without_accuracy_earns_under_150_m(dt_s, model, sigma, tau):
    t = patrol_schedule(dt_s)
    d = _day(np.zeros(len(t)), np.zeros(len(t)), t, model, sigma, tau, False, seed=int(sigma + tau + dt_s)).worker_day
    assert d.iloc[0]["patrol_m"] < 150.0


# the cells asserted: white noise on both routes at the sampling where the targets hold, drift
# σ ≤ 15 m with accuracy_m along city blocks; docs/methods.md lists every cell measured, those
# outside the targets included (drift of 30 m, drift at 1 s, the small loop at 30 s)
CELLS = (
    [("street", dt, acc, *m) for dt in (1.0, 5.0, 10.0, 30.0) for acc in (True, False) for m in WHITE]
    + [("street", dt, True, *m) for dt in (5.0, 10.0, 30.0) for m in DRIFT[:3]]
    + [("street", dt, False, *m) for dt in (5.0, 10.0, 30.0) for m in DRIFT[:3]]
    # a drift at 1 s: the fit holds enough *independent* fixes (was +6 … +9 %)
    + [("street", 1.0, acc, *m) for acc in (True, False) for m in DRIFT[:3]]
    + [("loop", 1.0, acc, *m) for acc in (True, False) for m in DRIFT[:3]]
    + [("loop", dt, acc, *m) for dt in (1.0, 5.0, 10.0) for acc in (True, False) for m in WHITE[:2] + WHITE[3:]]
    + [("loop", dt, True, *WHITE[2]) for dt in (1.0, 5.0, 10.0)]
    # the small loop's corners under a drift: kept by the corner split (was −11 % at 30 s)
    + [("loop", 30.0, True, *DRIFT[1]), ("loop", 30.0, True, *DRIFT[2]), ("loop", 5.0, False, *DRIFT[0])]
)


@pytest.mark.parametrize("route,dt_s,with_accuracy,model,sigma,tau", CELLS)
def test_walk_measures_within_target_of_its_true_length(route, dt_s, with_accuracy, model, sigma, tau):
    t = patrol_schedule(dt_s)
    x, y = (loop_positions if route == "loop" else street_positions)(t)
    d = _day(x, y, t, model, sigma, tau, with_accuracy, seed=int(sigma + tau + dt_s)).worker_day.iloc[0]
    truth = walked_metres(t)
    tolerance = 0.05 if sigma <= 15 else 0.10  # the targets
    assert d["patrol_m"] == pytest.approx(truth, rel=tolerance)
    assert d["patrol_s"] == pytest.approx(5 * 3600, rel=0.01)  # walking time counts in full
    assert "desk_phone" not in (d["flags"] or "")
    assert "teleport" not in (d["flags"] or "")


@pytest.mark.parametrize("route", ["loop", "street"])
def test_a_30_m_drift_without_accuracy_is_not_counted_as_walking(route):
    # σ read from the data misses most of a drift (second differences see little of it): the
    # smoothing must not take its correlated fixes for independent ones (was +73 % at 1 s)
    t = patrol_schedule(1.0)
    x, y = (loop_positions if route == "loop" else street_positions)(t)
    d = _day(x, y, t, "ar1", 30, 30.0, False, seed=61).worker_day.iloc[0]
    assert d["patrol_m"] == pytest.approx(walked_metres(t), rel=0.25)


@pytest.mark.parametrize(
    "model,sigma,tau,with_accuracy,dt_s",
    [("white", 5.0, 0.0, True, 5.0), ("white", 15.0, 0.0, True, 5.0), ("white", 15.0, 0.0, False, 10.0),
     ("ar1", 10.0, 100.0, True, 1.0), ("ar1", 15.0, 100.0, False, 5.0), ("ar1", 10.0, 300.0, True, 10.0)],
)  # fmt: skip
def test_household_visits_add_no_distance_and_their_time_counts(model, sigma, tau, with_accuracy, dt_s):
    """Walk the street route with three stops of 10, 20 and 30 min at doors (走访)."""
    t = patrol_schedule(dt_s)
    x, y = street_positions(t)
    stops = [(1.0, 600.0), (2.0, 1200.0), (6.5, 1800.0)]  # (hours after 08:00, seconds)
    walking = np.ones(len(t), bool)
    moved = t.copy()
    paused = 0.0
    for h, dur in stops:
        s0 = h * 3600.0
        inside = (t >= s0) & (t < s0 + dur)
        walking &= ~inside
        moved = np.where(t >= s0 + dur, moved - dur, np.where(inside, s0 - paused, moved))
        paused += dur
    x, y = street_positions(moved)
    d = _day(x, y, t, model, sigma, tau, with_accuracy, seed=7).worker_day.iloc[0]
    truth = walked_metres(moved)
    assert d["patrol_m"] == pytest.approx(truth, rel=0.05)
    assert d["patrol_s"] == pytest.approx(5 * 3600, rel=0.01)  # stops ≤ 60 min count in full
    assert "desk_phone" not in (d["flags"] or "")


def test_multipath_spikes_at_1_s_are_not_a_teleport():
    t = patrol_schedule(1.0)
    x, y = loop_positions(t)
    r = _day(x, y, t, "ar1", 10, 100.0, True, seed=3)
    assert "teleport" not in (r.worker_day.iloc[0]["flags"] or "")


def _replay_frames(jitter_m, seed):
    t = patrol_schedule(5.0)
    x, y = loop_positions(t)
    day1 = track(x, y, t, at(8), phone_noise(len(t), 5.0, 8.0, seed=seed), 12.0)
    rng = np.random.default_rng(seed + 100)
    copy = day1.copy()
    copy["ts"] = copy["ts"] + pd.Timedelta(days=1)
    if jitter_m:
        copy["lon"] += rng.normal(0, jitter_m, len(copy)) / 94_800.0
        copy["lat"] += rng.normal(0, jitter_m, len(copy)) / 111_000.0
    rewalk = track(x, y, t + 2 * 86400.0, at(8), phone_noise(len(t), 5.0, 8.0, seed=seed + 1), 12.0)
    return pd.concat([day1, copy, rewalk], ignore_index=True)


@pytest.mark.parametrize("jitter_m", [0.0, 0.5])
def test_replay_flags_a_copied_track_and_never_the_same_route_walked_again(jitter_m):
    pts = _replay_frames(jitter_m, seed=11)
    days = [DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)]
    r = process_days(pts, CTX, days)
    pu = r.point_use[r.point_use["counted"]]
    out = detect_replays(pu, POLICY, r.worker_day[["worker_id", "date", "noise_m"]])
    assert sorted(out["date"]) == days[:2]  # the copy and its original, not the re-walk
    # the month step's way: the days' stored signatures alone give the same rows (issue 12)
    from_rows = replays_from_signatures(r.worker_day, POLICY)
    assert sorted(from_rows["date"]) == days[:2]
    assert r.worker_day["track_signature"].notna().all()
