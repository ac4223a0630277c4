"""Cross-check against MovingPandas on clean data (no jitter): clip + length per worker-day."""

import warnings
from datetime import timedelta

import geopandas as gpd
import pandas as pd
import pytest
from walks import DAY, at, context, loop, walk

from trajectory.engine import process_days

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
