"""Stage 2: segments, gaps, clipping to the buffered grid."""

import numpy as np
import pandas as pd
import pytest
from walks import DAY, at, context, polyline_length, walk

from trajectory.engine import process_days


def _day(pts, **kw):
    return process_days(pts, context(**kw), [DAY]).worker_day.iloc[0]


def test_edge_street_inside_the_buffer_counts():
    # the grid is ±500 m; a street 20 m outside its edge is within the 30 m buffer
    route = [(-400, 520), (400, 520)]
    d = _day(walk(route, at(9), dt_s=5))
    assert d["patrol_m"] == pytest.approx(800, rel=0.03)
    assert d["dropped_outside"] == 0


def test_street_beyond_the_buffer_counts_nothing():
    d = _day(walk([(-400, 560), (400, 560)], at(9), dt_s=5))
    assert d["patrol_m"] == 0 and d["patrol_s"] == 0
    assert d["status"] == "absent"


@pytest.mark.parametrize("dt_s", [5.0, 60.0])
def test_crossing_the_boundary_counts_the_inside_part(dt_s):
    # from x=0 to x=1000 east: inside up to the buffered edge at x=530
    w = walk([(0, 0), (1000, 0)], at(9), speed_mps=1.0, dt_s=dt_s)
    d = _day(w)
    assert d["patrol_m"] == pytest.approx(530, rel=0.03)
    assert d["patrol_s"] == pytest.approx(530, abs=1.0)


def test_gaps_longer_than_max_gap_count_nothing():
    w = walk([(0, 0), (400, 0)], at(9), speed_mps=1.0, dt_s=5)
    w2 = walk([(0, 100), (400, 100)], at(9, 20), speed_mps=1.0, dt_s=5)
    # the last point of the first walk and the first of the second are 100 m and ~13 min apart
    d = _day(pd.concat([w, w2], ignore_index=True))
    assert d["patrol_s"] == pytest.approx(800, abs=1)
    assert d["patrol_m"] == pytest.approx(800, rel=0.04)
    assert d["gap_s"] == pytest.approx(20 * 60 - 400, abs=1)


def test_sparse_points_six_minutes_apart_count_nothing():
    w = walk([(0, 0), (400, 0)], at(9), speed_mps=1.0, dt_s=360)
    d = _day(w)
    assert d["patrol_s"] == 0 and d["patrol_m"] == 0


def test_other_workers_grid_counts_nothing_for_this_grid():
    from walks import square

    grids = [("g1", "community", square(500)), ("g2", "community", square(500, cx=3000))]
    w = walk([(2700, 0), (3300, 0)], at(9), dt_s=5)
    d = _day(w, grids=grids)
    assert d["patrol_m"] == 0
    assert d["dropped_outside"] == len(w)


def test_midnight_splits_the_day():
    nxt = DAY.__class__.fromordinal(DAY.toordinal() + 1)
    w = walk([(0, 0), (0, 300), (0, 0)], at(23, 55), speed_mps=1.0, dt_s=5)
    r = process_days(w, context(), [DAY, nxt]).worker_day.set_index("date")
    assert r.loc[DAY, "patrol_s"] == pytest.approx(300, abs=5)
    assert r.loc[nxt, "patrol_s"] == pytest.approx(300, abs=5)
    assert r["patrol_s"].sum() == pytest.approx(600 - 5, abs=1)  # the interval across midnight is not bridged
    assert np.isclose(r["patrol_m"].sum(), polyline_length([(0, 0), (0, 300), (0, 0)]), rtol=0.05)
