"""Report-quality auto-checks on events (seed 6② 事项上报质量): hints for the reviewers.

The seed's 不合格事项 are "信息不全、前后照片缺失、描述不清、内容与标题不符、重复上报等". Several of
them can be spotted in the data: likely duplicates, missing photos, empty description or address,
a location outside the grid, a location far from the reporting worker's own GPS track. The flags
do not deduct by default; ``events.flags_as_unqualified`` in the policy can make some count.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from scoring.policy import Policy
from trajectory.geo import geoms_to_local, grid_frames, to_local

FLAG_COLUMNS = ("event_id", "grid_id", "flag", "detail")
FLAG_LABELS = {
    "duplicate": "疑似重复上报",
    "missing_photos": "前后照片缺失",
    "empty_description": "描述为空",
    "empty_address": "地址为空",
    "no_location": "无经纬度",
    "outside_grid": "位置不在本网格内",
    "far_from_track": "位置远离上报人轨迹",
    "no_track": "上报时段无上报人轨迹",
}


def event_quality_flags(
    events: pd.DataFrame,
    grids_gdf: pd.DataFrame,
    points_df: pd.DataFrame | None,
    workers: pd.DataFrame,
    policy: Policy,
) -> pd.DataFrame:
    """Flag events a reviewer should look at. One row per event and flag.

    Parameters
    ----------
    events : DataFrame
        ``events`` of :class:`scoring.inputs.Indicators` (``reported_at`` tz-aware, lon/lat WGS-84).
    grids_gdf : GeoDataFrame
        ``grid_id`` and polygon ``geometry`` in EPSG:4326.
    points_df : DataFrame or None
        GPS points ``worker_id, ts, lon, lat`` around the events' times; None skips the track checks.
    workers : DataFrame
        ``worker_id, full_time``: only full-time workers carry a tracked phone, so only their
        events are checked against a track.
    policy : Policy
        ``events.quality_checks`` thresholds and ``patrol.points.grid_buffer_m``.

    Returns
    -------
    DataFrame
        ``event_id, grid_id, flag, detail`` (flag names in :data:`FLAG_LABELS`), sorted.
    """
    if not len(events):
        return _frame([])
    ev = events.reset_index(drop=True)
    qc = policy.events.quality_checks
    parts = [
        _duplicates(ev, qc.duplicate_radius_m, qc.duplicate_window_h),
        _missing_fields(ev),
        _outside_grid(ev, grids_gdf, policy.patrol.points.grid_buffer_m),
    ]
    if points_df is not None:
        parts.append(_far_from_track(ev, points_df, workers, qc.far_from_track_m, qc.track_window_min))
    out = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else _frame([])
    return out.sort_values(["grid_id", "event_id", "flag"], kind="stable").reset_index(drop=True)


def _frame(rows: list[dict[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(FLAG_COLUMNS)).astype("object")


def _flag(ev: pd.DataFrame, mask: np.ndarray, flag: str, detail: pd.Series | str) -> pd.DataFrame:
    out = pd.DataFrame({"event_id": ev["event_id"], "grid_id": ev["grid_id"], "flag": flag, "detail": detail})
    return out[np.asarray(mask, dtype=bool)].astype("object")


def _distance_m(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """Metres between point pairs, in the local frame of the first point (exact enough < 10 km)."""
    x, y = to_local(lon2, lat2, lon1, lat1)
    return np.hypot(x, y)


def _duplicates(ev: pd.DataFrame, radius_m: float, window_h: float) -> pd.DataFrame:
    """Same grid and category, reported within the window and the radius: the later one is flagged."""
    e = ev.loc[ev["lon"].notna() & ev["lat"].notna(), ["event_id", "grid_id", "category", "reported_at", "lon", "lat"]]
    pairs = e.merge(e, on=["grid_id", "category"], suffixes=("_a", "_b"))
    t_a, t_b = pairs["reported_at_a"], pairs["reported_at_b"]
    # the earlier report (ties broken by id) is the original; each pair is seen once
    later = (t_b > t_a) | ((t_b == t_a) & (pairs["event_id_b"] > pairs["event_id_a"]))
    gap_h = ((t_b - t_a).dt.total_seconds() / 3600.0).to_numpy()
    dist = _distance_m(
        pairs["lon_a"].to_numpy(), pairs["lat_a"].to_numpy(), pairs["lon_b"].to_numpy(), pairs["lat_b"].to_numpy()
    )
    pairs = pairs.assign(gap_h=gap_h, dist=dist)[later.to_numpy() & (gap_h <= window_h) & (dist <= radius_m)]
    if not len(pairs):
        return _frame([])
    first = pairs.sort_values(["event_id_b", "gap_h"]).drop_duplicates("event_id_b")
    detail = [
        f"与 {a} 同类，相距 {d:.0f} 米，间隔 {h:.1f} 小时"
        for a, d, h in zip(first["event_id_a"], first["dist"], first["gap_h"], strict=True)
    ]
    return pd.DataFrame(
        {
            "event_id": first["event_id_b"].to_numpy(),
            "grid_id": first["grid_id"].to_numpy(),
            "flag": "duplicate",
            "detail": detail,
        }
    ).astype("object")


def _missing_fields(ev: pd.DataFrame) -> pd.DataFrame:
    before, after = ev["photos_before"].fillna(0), ev["photos_after"].fillna(0)
    photos = ((before == 0) | (after == 0)).to_numpy()
    detail = "整改前照片 " + before.astype(str) + " 张，整改后照片 " + after.astype(str) + " 张"
    blank = {c: (ev[c].fillna("").astype(str).str.strip() == "").to_numpy() for c in ("description", "address")}
    no_loc = (ev["lon"].isna() | ev["lat"].isna()).to_numpy()
    return pd.concat(
        [
            _flag(ev, photos, "missing_photos", detail),
            _flag(ev, blank["description"], "empty_description", "描述为空"),
            _flag(ev, blank["address"], "empty_address", "地址为空"),
            _flag(ev, no_loc, "no_location", "经纬度为空"),
        ],
        ignore_index=True,
    )


def _outside_grid(ev: pd.DataFrame, grids_gdf: pd.DataFrame, buffer_m: float) -> pd.DataFrame:
    """Location outside the grid polygon buffered like the patrol (GPS error, boundary streets)."""
    grids = grids_gdf.reset_index(drop=True)
    gi = pd.Index(grids["grid_id"].astype(str)).get_indexer(ev["grid_id"].astype(str))
    ok = (gi >= 0) & ev["lon"].notna().to_numpy() & ev["lat"].notna().to_numpy()
    if not ok.any():
        return _frame([])
    geoms = np.asarray(grids.geometry.values, dtype=object)
    lon0, lat0 = grid_frames(geoms)
    local = shapely.buffer(geoms_to_local(geoms, lon0, lat0), buffer_m)
    idx = gi[ok]
    x, y = to_local(ev["lon"].to_numpy()[ok], ev["lat"].to_numpy()[ok], lon0[idx], lat0[idx])
    inside = shapely.contains_xy(local[idx], x, y)
    mask = np.zeros(len(ev), dtype=bool)
    mask[np.flatnonzero(ok)[~inside]] = True
    detail = "经纬度 " + ev["lon"].round(6).astype(str) + ", " + ev["lat"].round(6).astype(str) + " 不在网格范围内"
    return _flag(ev, mask, "outside_grid", detail)


def _far_from_track(
    ev: pd.DataFrame, points: pd.DataFrame, workers: pd.DataFrame, far_m: float, window_min: float
) -> pd.DataFrame:
    """Nearest GPS point of the reporting worker within ±window: farther than ``far_m`` is flagged,
    none at all is 'no_track'."""
    tracked = set(workers.loc[workers["full_time"].astype(bool), "worker_id"].astype(str))
    e = ev[ev["worker_id"].notna() & ev["worker_id"].astype(str).isin(tracked) & ev["lon"].notna() & ev["lat"].notna()]
    if not len(e):
        return _frame([])
    e = e.assign(ts=e["reported_at"].astype("datetime64[us, UTC]"), worker_id=e["worker_id"].astype(str))
    p = points[["worker_id", "ts", "lon", "lat"]].rename(columns={"lon": "p_lon", "lat": "p_lat", "ts": "p_ts"})
    p = p.assign(
        worker_id=p["worker_id"].astype(str), p_ts=pd.to_datetime(p["p_ts"], utc=True).astype("datetime64[us, UTC]")
    )
    p = p.assign(ts=p["p_ts"]).sort_values("ts")
    m = pd.merge_asof(
        e.sort_values("ts"), p, on="ts", by="worker_id", direction="nearest", tolerance=pd.Timedelta(minutes=window_min)
    )
    no_track = m["p_lon"].isna().to_numpy()
    dist = _distance_m(m["lon"].to_numpy(), m["lat"].to_numpy(), m["p_lon"].to_numpy(), m["p_lat"].to_numpy())
    far = ~no_track & (dist > far_m)
    gap_min = ((m["p_ts"] - m["ts"]).dt.total_seconds().abs() / 60.0).to_numpy()
    detail_far = [
        f"上报位置距上报人最近轨迹点（相差 {g:.0f} 分钟）{d:.0f} 米" for g, d in zip(gap_min, dist, strict=True)
    ]
    return pd.concat(
        [
            _flag(m, far, "far_from_track", pd.Series(detail_far, index=m.index)),
            _flag(m, no_track, "no_track", f"上报时间前后 {window_min:g} 分钟内无上报人轨迹点"),
        ],
        ignore_index=True,
    )


__all__ = [
    "FLAG_COLUMNS",
    "FLAG_LABELS",
    "event_quality_flags",
]
