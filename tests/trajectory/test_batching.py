"""Worker batches: process_days_batched equals process_days on the whole input."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the benchmarks' generator, from the repo root
from benchmarks.generate import make_data  # noqa: E402
from trajectory.batching import plan_batches, process_days_batched  # noqa: E402
from trajectory.engine import process_days  # noqa: E402


@pytest.fixture(scope="module")
def data():
    # 9 workers × 2 days with stays at sites, spikes, mock points, repeats, a part-time
    # worker, an unknown phone and a full-time worker without points
    pts, ctx = make_data(9 * 2 * 600, days=2, extras=True, per_day=600)
    ctx.workers.loc[len(ctx.workers)] = ["W99999", "silent", "G0000", True]
    dates = sorted(ctx.workday)
    return pts, ctx, dates, process_days(pts, ctx, dates)


def _assert_same(got, want) -> None:
    for name in ("worker_day", "site_visit", "day_flag", "point_use"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(want, name), check_exact=True, obj=name)


def test_input_has_every_case(data) -> None:
    _, _, _, whole = data
    assert set(whole.worker_day["status"]) >= {"ok", "short", "absent"} or len(whole.worker_day) > 0
    assert len(whole.site_visit) > 0
    assert {"teleport", "mock_location"} <= set(whole.day_flag["flag"])
    assert {"duplicate", "spike", "mock", "not_full_time", "unknown_worker"} <= set(whole.point_use["reason"].dropna())
    assert "W99999" in set(whole.worker_day["worker_id"])


@pytest.mark.parametrize(
    "executor,workers,max_points",
    [
        ("serial", 1, 2_000),
        ("thread", 2, 3_000),
        ("process", 2, 2_500),
        ("process", 2, 10_000_000),
    ],
)
def test_batched_equals_whole(data, executor, workers, max_points) -> None:
    pts, ctx, dates, whole = data
    got = process_days_batched(pts, ctx, dates, max_points_per_batch=max_points, workers=workers, executor=executor)
    _assert_same(got, whole)


def test_loader_source(data) -> None:
    pts, ctx, dates, whole = data
    asked = []

    def load(ids: list[str]) -> pd.DataFrame:
        asked.append(list(ids))
        return pts[pts["worker_id"].isin(ids)]

    counts = pts["worker_id"].value_counts()
    got = process_days_batched(load, ctx, dates, max_points_per_batch=2_500, counts=counts, workers=2)
    _assert_same(got, whole)
    assert len(asked) > 3 and all(sum(counts.get(w, 0) for w in ids) <= 2_500 or len(ids) == 1 for ids in asked)


def test_unsorted_input_same_rows(data) -> None:
    pts, ctx, dates, whole = data
    shuffled = pts.sample(frac=1.0, random_state=3).reset_index(drop=True)
    got = process_days_batched(shuffled, ctx, dates, max_points_per_batch=2_500, executor="serial")
    for name in ("worker_day", "site_visit", "day_flag"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(whole, name), obj=name)
    key = ["worker_id", "ts", "lon"]
    a = got.point_use.astype({"worker_id": str, "grid_id": str}).sort_values(key).reset_index(drop=True)
    b = whole.point_use.astype({"worker_id": str, "grid_id": str}).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_plan_batches() -> None:
    counts = pd.Series({"b": 3, "a": 5, "c": 9, "d": 1, "e": 1})
    plan = plan_batches(counts, 8)
    assert plan == [["a", "b"], ["c"], ["d", "e"]]
    assert sum(plan, []) == sorted(counts.index)
    assert plan_batches(pd.Series(dtype=np.int64), 8) == []
    with pytest.raises(ValueError, match="max_points"):
        plan_batches(counts, 0)
