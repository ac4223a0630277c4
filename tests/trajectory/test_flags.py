"""Stage 5: anomaly flags (evidence, not deductions)."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from walks import DAY, at, context, loop, polyline_length, walk

from scoring.policy import load_policy
from trajectory.engine import process_days
from trajectory.flags import detect_replays

POLICY = load_policy()


def test_car_segment_is_excluded_and_flagged():
    foot1 = walk([(-400, 0), (-200, 0)], at(9), dt_s=5)
    # 2 km by car at 40 km/h (~3 min), then on foot again
    car = walk(
        [(-200, 0), (-200, 450), (450, 450), (450, -450)], at(9) + pd.Timedelta(seconds=170), speed_mps=11.0, dt_s=5
    )
    foot2 = walk([(450, -450), (450, -250)], at(9) + pd.Timedelta(seconds=355), dt_s=5)
    r = process_days(pd.concat([foot1, car, foot2], ignore_index=True), context(), [DAY])
    d = r.worker_day.iloc[0]
    assert "vehicle" in set(r.day_flag["flag"])
    assert d["patrol_m"] == pytest.approx(400, rel=0.1)  # 200 m + 200 m on foot, 2 km by car excluded
    assert d["dropped_vehicle"] > 10
    assert d["max_speed_kmh"] == pytest.approx(39.6, rel=0.1)


def test_mock_location_points_are_excluded_and_flagged():
    w = walk(loop(200), at(9), dt_s=5)
    w["mock"] = np.arange(len(w)) >= len(w) // 2
    r = process_days(w, context(), [DAY])
    d = r.worker_day.iloc[0]
    assert d["dropped_mock"] == (w["mock"]).sum()
    assert d["patrol_m"] == pytest.approx(polyline_length(loop(200)) / 2, rel=0.05)
    assert r.day_flag.loc[r.day_flag["flag"] == "mock_location", "detail"].iloc[0].startswith(str(d["dropped_mock"]))
    assert d["flags"] == "mock_location"


def _pu(df, day):
    return df.assign(date=day, reason=None, grid_id="g1")


def test_replayed_track_is_flagged_and_a_fresh_walk_is_not():
    d2, d3 = DAY + timedelta(days=3), DAY + timedelta(days=4)
    day1 = walk(loop(300), at(9), dt_s=5, sigma_m=4.0, seed=1)
    replay = day1.assign(ts=day1["ts"] + pd.Timedelta(days=3, minutes=17))
    fresh = walk(loop(300), at(9, 0, d3), dt_s=5, speed_mps=1.3, sigma_m=4.0, seed=2)
    pu = pd.concat([_pu(day1, DAY), _pu(replay, d2), _pu(fresh, d3)], ignore_index=True)
    out = detect_replays(pu, POLICY)
    assert sorted(out["date"]) == [DAY, d2]
    assert set(out["flag"]) == {"replay"}
    assert str(d2) in out.loc[out["date"] == DAY, "detail"].iloc[0]


def test_replay_pairs_in_chunks_equal_all_pairs_at_once(monkeypatch):
    # 4 workers × 12 days of signatures; worker 1 copies day 0 on day 7 (the same positions,
    # 0.2 m of jitter), worker 3 on days 2 and 9; every other day a fresh walk
    from trajectory import flags

    policy = load_policy()
    rng = np.random.default_rng(5)
    m = 60
    rows = []
    for w in range(4):
        base = np.cumsum(rng.normal(0, 40, (12, m, 2)), axis=1)
        if w == 1:
            base[7] = base[0] + rng.normal(0, 0.2, (m, 2))
        if w == 3:
            base[9] = base[2] + rng.normal(0, 0.2, (m, 2))
        sig = flags.encode_signatures(base[:, :, 0], base[:, :, 1])
        for d in range(12):
            rows.append((f"W{w}", "G1", DAY + timedelta(days=d), 8.0, sig[d], 9000.0, 2000.0))
    wd = pd.DataFrame(
        rows,
        columns=["worker_id", "grid_id", "date", "noise_m", "track_signature", "track_duration_s", "track_spread_m"],
    )
    whole = flags.replays_from_signatures(wd, policy)
    monkeypatch.setattr(flags, "_PAIRS_PER_CHUNK", 7)  # 264 pairs in 38 chunks
    chunked = flags.replays_from_signatures(wd, policy)
    pd.testing.assert_frame_equal(chunked, whole)
    assert sorted(zip(whole["worker_id"], whole["date"], strict=True)) == sorted(
        [("W1", DAY), ("W1", DAY + timedelta(days=7)), ("W3", DAY + timedelta(days=2)), ("W3", DAY + timedelta(days=9))]
    )


def test_the_replay_count_test_keeps_exactly_the_pairs_within_their_limit() -> None:
    # pairs of days: copies at 0–40 m offsets with some far-off positions, and unrelated days;
    # the count pre-test may skip a pair's median only when that median is above its limit
    from trajectory.flags import _median_offsets

    rng = np.random.default_rng(7)
    n, m = 400, 60
    rx, ry = rng.normal(0, 500, (n, m)), rng.normal(0, 500, (n, m))
    half = n // 2
    shift = rng.uniform(0, 40, half)[:, None]
    rx[half:] = rx[:half] + shift + rng.normal(0, 3, (half, m))
    ry[half:] = ry[:half] + rng.normal(0, 3, (half, m))
    far = rng.random((half, m)) < rng.uniform(0, 0.7, half)[:, None]  # up to 70 % of positions elsewhere
    rx[half:][far] += 5_000
    i = np.r_[np.arange(half), rng.integers(0, n, 2_000)]
    j = np.r_[np.arange(half) + half, rng.integers(0, n, 2_000)]
    limit = rng.uniform(5, 30, len(i))
    exact = _median_offsets(rx, ry, i, j)
    quick = _median_offsets(rx, ry, i, j, limit)
    assert np.array_equal(exact <= limit, quick <= limit)
    assert 50 < int((exact <= limit).sum()) < half  # some copies within their limit, some not
    finite = np.isfinite(quick)
    assert np.array_equal(quick[finite], exact[finite]) and (~finite).sum() > 1_000
