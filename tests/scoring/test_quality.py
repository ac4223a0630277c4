"""scoring.quality: report-quality flags on events."""

from __future__ import annotations

import pandas as pd
import pytest
from scoring_helpers import LAT0, LON0

from scoring.quality import FLAG_COLUMNS, event_quality_flags

T0 = pd.Timestamp("2026-10-05 09:00", tz="Asia/Shanghai").tz_convert("UTC")
M_LAT = 1 / 111_000  # ≈ degrees per metre of latitude


def ev(event_id, grid="G01", minutes=0, north_m=0.0, lon=LON0 + 0.005, category="city_management", **kw):
    row = {
        "event_id": event_id,
        "grid_id": grid,
        "worker_id": "W1",
        "reported_at": T0 + pd.Timedelta(minutes=minutes),
        "category": category,
        "title": "t",
        "description": "占道",
        "address": "湖滨路",
        "lon": lon,
        "lat": LAT0 + 0.005 + north_m * M_LAT,
        "photos_before": 1,
        "photos_after": 1,
    }
    row.update(kw)
    return row


def events(*rows):
    df = pd.DataFrame(rows)
    df["photos_before"] = df["photos_before"].astype("Int64")
    df["photos_after"] = df["photos_after"].astype("Int64")
    return df


WORKERS = pd.DataFrame({"worker_id": ["W1", "P9"], "full_time": [True, False]})


def flags_of(df, grids_gdf, policy, points=None):
    out = event_quality_flags(df, grids_gdf, points, WORKERS, policy)
    assert list(out.columns) == list(FLAG_COLUMNS)
    return {(e, f) for e, f in zip(out["event_id"], out["flag"], strict=True)}, out


def test_clean_events_have_no_flags(grids_gdf, policy):
    got, _ = flags_of(events(ev("E1"), ev("E2", minutes=60 * 30)), grids_gdf, policy)
    assert got == set()


@pytest.mark.parametrize(
    ("second", "duplicate"),
    [
        (dict(minutes=60, north_m=50), True),  # 50 m, 1 h later: the later one is the duplicate
        (dict(minutes=60, north_m=150), False),  # beyond 100 m
        (dict(minutes=60 * 25, north_m=10), False),  # beyond 24 h
        (dict(minutes=60, north_m=10, category="public_security"), False),  # another category
    ],
)
def test_duplicates(second, duplicate, grids_gdf, policy):
    got, out = flags_of(events(ev("E1"), ev("E2", **second)), grids_gdf, policy)
    assert (("E2", "duplicate") in got) is duplicate
    assert ("E1", "duplicate") not in got
    if duplicate:
        assert out.loc[out["flag"] == "duplicate", "detail"].iloc[0].startswith("与 E1 同类，相距 50 米")


@pytest.mark.parametrize(
    ("change", "flag"),
    [
        (dict(photos_before=0), "missing_photos"),
        (dict(photos_after=pd.NA), "missing_photos"),
        (dict(description="  "), "empty_description"),
        (dict(address=""), "empty_address"),
        (dict(lon=float("nan")), "no_location"),
        (dict(lon=LON0 + 0.015), "outside_grid"),  # inside G02, reported for G01
    ],
)
def test_field_flags(change, flag, grids_gdf, policy):
    got, _ = flags_of(events(ev("E1", **change)), grids_gdf, policy)
    assert got == {("E1", flag)}


def test_boundary_buffer_tolerates_gps_error(grids_gdf, policy):
    # 20 m east of G01's east edge is within the 30 m buffer; 60 m is not
    m_lon = 1 / 94_850
    got, _ = flags_of(
        events(ev("E1", lon=LON0 + 0.01 + 20 * m_lon), ev("E2", lon=LON0 + 0.01 + 60 * m_lon, minutes=3000)),
        grids_gdf,
        policy,
    )
    assert got == {("E2", "outside_grid")}


def test_track_checks(grids_gdf, policy):
    e = events(
        ev("NEAR", minutes=0),
        ev("FAR", minutes=60 * 30),
        ev("NOTRACK", minutes=60 * 60),
        ev("PART", minutes=60 * 90, worker_id="P9"),  # part-time: no tracked phone, not checked
    )
    pts = pd.DataFrame(
        {
            "worker_id": ["W1", "W1", "W1"],
            "ts": [
                T0 + pd.Timedelta(minutes=10),
                T0 + pd.Timedelta(minutes=60 * 30 - 5),
                T0 + pd.Timedelta(minutes=60 * 60 + 45),
            ],
            "lon": [LON0 + 0.005, LON0 + 0.005, LON0 + 0.005],
            "lat": [LAT0 + 0.005 + 40 * M_LAT, LAT0 + 0.005 + 900 * M_LAT, LAT0 + 0.005],
        }
    )
    got, out = flags_of(e, grids_gdf, policy, pts)
    assert got == {("FAR", "far_from_track"), ("NOTRACK", "no_track")}
    detail = out.loc[out["flag"] == "far_from_track", "detail"].iloc[0]
    assert (
        detail.startswith("上报位置距上报人最近轨迹点（相差 5 分钟）")
        and 895 <= int(detail.split("）")[1].split(" ")[0]) <= 905
    )
