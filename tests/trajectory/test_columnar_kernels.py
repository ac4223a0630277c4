"""The columnar kernels the engine's speed rests on (issue 11, engine within 20 % of before):
each is checked against the plain NumPy/pandas way of computing the same thing, on irregular
sampling, gaps and many segments."""

import numpy as np
import pandas as pd
import pytest

from trajectory.engine import _median_by_run
from trajectory.geo import planar_distance
from trajectory.noise import noise_sample
from trajectory.segment import SegmentClock


def _track(seed: int, n_seg: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Sorted segment ids and times: 1–30 s sampling with jitter, segments of 1–3,000 fixes."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 3000, n_seg)
    seg = np.repeat(np.arange(n_seg) * 3, sizes)  # ids need not be consecutive
    dt = rng.choice([1.0, 5.0, 10.0, 30.0], n_seg)
    step = np.repeat(dt, sizes) * rng.uniform(0.5, 1.5, sizes.sum())
    t = np.cumsum(step) + 1e9  # epoch-sized seconds, as the engine has them
    return seg, t


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_window_bounds_equal_two_binary_searches(seed):
    seg, t = _track(seed)
    clock = SegmentClock(t, seg)
    for half in (5.0, 30.0, np.repeat(np.random.default_rng(seed).uniform(3, 40, 40), np.bincount(seg)[::3])):
        a, b = clock.window(half)
        # the plain way: per point, the first index of its segment at or after t - h and the
        # first after t + h, searched within its own segment
        lo, hi = np.empty(len(t), np.int64), np.empty(len(t), np.int64)
        h = np.broadcast_to(half, t.shape)
        for s in np.unique(seg):
            idx = np.flatnonzero(seg == s)
            ts = t[idx]
            lo[idx] = idx[0] + np.searchsorted(ts, ts - h[idx], side="left")
            hi[idx] = idx[0] + np.searchsorted(ts, ts + h[idx], side="right")
        assert np.array_equal(a, lo)
        assert np.array_equal(b, hi)
        assert np.all((a <= np.arange(len(t))) & (np.arange(len(t)) < b))  # a window holds its point


def test_window_bounds_of_a_width_are_computed_once():
    seg, t = _track(3)
    clock = SegmentClock(t, seg)
    assert clock.window(30.0)[0] is clock.window(30.0)[0]
    assert clock.window(30.0)[0] is not clock.window(15.0)[0]


def test_noise_sample_depends_on_the_segment_alone():
    seg, t = _track(4)
    pick = noise_sample(SegmentClock(t, seg))
    assert np.all(np.diff(pick) > 0)
    for s in np.unique(seg):
        idx = np.flatnonzero(seg == s)
        alone = noise_sample(SegmentClock(t[idx], np.zeros(len(idx), np.int64)))
        mine = pick[(pick >= idx[0]) & (pick <= idx[-1])] - idx[0]
        assert np.array_equal(mine, alone)  # the same fixes whatever precedes the segment
        stride = max(3, len(idx) // 256)
        assert np.array_equal(alone, np.arange(0, len(idx), stride))
        assert len(alone) <= 2 * 256  # a long segment: a few hundred values, not all of them


@pytest.mark.parametrize("seed", range(5))
def test_median_by_run_equals_the_median_of_every_point(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 5000))
    group = np.sort(rng.integers(0, 12, n))
    new_run = np.r_[True, (group[1:] != group[:-1]) | (rng.random(n - 1) < 0.01)]
    starts = np.flatnonzero(new_run)
    values = np.repeat(rng.choice([3.0, 4.5, 8.0, 12.0, 30.0], len(starts)), np.diff(np.r_[starts, n]))
    got = _median_by_run(values, starts, group, 14)
    want = pd.Series(values).groupby(group).median().reindex(range(14)).fillna(0.0).to_numpy()
    assert np.allclose(got, want)


def test_planar_distance_equals_hypot():
    rng = np.random.default_rng(5)
    dx, dy = rng.normal(0, 5000, 10_000), rng.normal(0, 5000, 10_000)
    assert np.allclose(planar_distance(dx, dy), np.hypot(dx, dy), rtol=1e-15, atol=0)


def _district_polygons() -> list:
    """The demo district's grids in metres, their make_valid output for a bow-tie and a ring
    with a hole, and a MultiPolygon of two islands."""
    import geopandas as gpd
    import shapely

    grids = gpd.read_file("grids_geojson/xitaihu_demo.geojson").to_crs(32650)
    polys = list(grids.geometry)
    bowtie = shapely.make_valid(shapely.Polygon([(0, 0), (400, 400), (400, 0), (0, 400)]))
    ring = shapely.Polygon([(0, 0), (600, 0), (600, 600), (0, 600)], [[(200, 200), (400, 200), (400, 400), (200, 400)]])
    islands = shapely.MultiPolygon([shapely.box(0, 0, 100, 100), shapely.box(300, 0, 500, 250)])
    return [*polys, bowtie, ring, islands]


def test_inside_points_equals_the_polygon_test_on_a_real_district():
    import shapely

    from trajectory.segment import inside_points

    rng = np.random.default_rng(7)
    geoms = np.array(_district_polygons(), dtype=object)
    xs, ys, codes = [], [], []
    for code, g in enumerate(geoms):
        x0, y0, x1, y1 = g.bounds
        pad = 0.1 * max(x1 - x0, y1 - y0)
        xs.append(rng.uniform(x0 - pad, x1 + pad, 4000))
        ys.append(rng.uniform(y0 - pad, y1 + pad, 4000))
        codes.append(np.full(4000, code))
        # and points right on the inscribed circle's rim and the boundary
        b = shapely.get_coordinates(g.boundary)
        xs.append(b[:, 0])
        ys.append(b[:, 1])
        codes.append(np.full(len(b), code))
    x, y, gcode = np.concatenate(xs), np.concatenate(ys), np.concatenate(codes)
    got = inside_points(geoms, gcode, x, y)
    want = np.array([shapely.contains_xy(geoms[c], px, py) for c, px, py in zip(gcode, x, y, strict=True)])
    assert got.any() and (~got).any()
    assert np.array_equal(got, want)
