"""Cross-check against MovingPandas on clean data (no jitter): clip + length per worker-day."""

import warnings
from datetime import timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from walks import DAY, at, context, loop, loop_positions, patrol_schedule, phone_noise, square, track, walk

from trajectory.engine import process_days
from trajectory.noise import RAYLEIGH_68

mpd = pytest.importorskip("movingpandas")

CASES = {
    "loop": lambda: walk(loop(300), at(9), laps=2, dt_s=5),
    "crossing": lambda: walk([(-200, -100), (900, -100), (900, 300), (-100, 300)], at(9), dt_s=10),
    "gap": lambda: pd.concat(
        [walk([(0, 0), (400, 0)], at(9), dt_s=5), walk([(400, 200), (-300, 200), (-300, -300)], at(9, 30), dt_s=5)],
        ignore_index=True,
    ),
}


def _movingpandas_length(pts: pd.DataFrame, ctx) -> tuple[float, float]:
    warnings.filterwarnings("ignore")
    gdf = gpd.GeoDataFrame(
        {"traj": "w1", "t": pts["ts"].dt.tz_localize(None)},
        geometry=gpd.points_from_xy(pts["lon"], pts["lat"]),
        crs="EPSG:4326",
    ).to_crs(32650)
    poly = ctx.grids.to_crs(32650).geometry.buffer(ctx.policy.patrol.points.grid_buffer_m).iloc[0]
    tc = mpd.TrajectoryCollection(gdf, traj_id_col="traj", t="t")
    tc = mpd.ObservationGapSplitter(tc).split(gap=timedelta(seconds=ctx.policy.patrol.points.max_gap_s))
    clipped = tc.clip(poly)
    length = sum(tr.get_length() for tr in clipped.trajectories)
    duration = sum(tr.get_duration().total_seconds() for tr in clipped.trajectories)
    return length, duration


@pytest.mark.parametrize("case", sorted(CASES))
def test_clip_and_length_match_movingpandas_within_1_percent(case):
    pts = CASES[case]()
    ctx = context()
    d = process_days(pts, ctx, [DAY]).worker_day.iloc[0]
    length, duration = _movingpandas_length(pts, ctx)
    assert length > 500
    assert d["patrol_m"] == pytest.approx(length, rel=0.01)
    assert d["patrol_s"] == pytest.approx(duration, rel=0.01)


@pytest.mark.parametrize(
    "model,sigma,tau,moving",
    [("white", 15.0, 0.0, True), ("ar1", 15.0, 100.0, True), ("white", 8.0, 0.0, False), ("ar1", 30.0, 30.0, False)],
)
def test_noisy_distance_never_exceeds_movingpandas_raw_length(model, sigma, tau, moving):
    """Issue 11 cross-check: on noisy points our distance never exceeds the raw clipped length."""
    t = patrol_schedule(5.0)
    x, y = loop_positions(t) if moving else (np.zeros(len(t)), np.zeros(len(t)))
    noise = phone_noise(len(t), 5.0, sigma, model, tau or 100.0, 0.01 if model == "ar1" else 0.0, seed=5)
    pts = track(x, y, t, at(8), noise, RAYLEIGH_68 * sigma)
    ctx = context(grids=[("g1", "community", square(1000))])
    d = process_days(pts, ctx, [DAY]).worker_day.iloc[0]
    raw_length, _ = _movingpandas_length(pts, ctx)
    assert d["patrol_m"] <= raw_length
