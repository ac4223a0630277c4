"""The month's frames for the map pages: read from the store, checked, cut to the columns the maps use.

:func:`prepare_month` keeps the month's rows, adds display coordinates (``x``/``y`` in the tiles'
datum) and snaps personal sites to their privacy cell (:func:`maps.privacy.coarsen_sites`) before
any page sees them; ``sites.label`` is never copied. :func:`read_month_frames` reads the month's
tables from ``patrol.duckdb``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import shapely

from maps.dashboard import (
    FLAG_ZH,
)
from maps.privacy import coarsen_sites, default_privacy
from maps.tiles import TileConfig, overlay_transform
from scoring.policy import PrivacyPolicy
from trajectory import contract as c
from trajectory.errors import InputError

SITE_COLUMNS = ("site_id", "site_type", "grid_id", "lon", "lat")  # never "label"
POINT_USE_COLUMNS = ("worker_id", "ts", "lon", "lat", "counted")
# what the maps read of the store's point_use (its grid_id is not needed: a point's grid is its
# worker-day's, from worker_day)
MAP_POINT_COLUMNS = ("worker_id", "ts", "lon", "lat", "date", "counted", "reason", "in_grid")

# Why a point did not count: the engine's reason codes (English, or already Chinese) matched by
# keyword, in this order; the first match wins. Grey = harmless, orange = suspicious.
REASON_CATEGORIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("模拟定位", "#e65100", ("mock", "fake", "spoof", "模拟")),
    ("车速", "#f4511e", ("speed", "vehicle", "too_fast", "driving", "车速")),
    ("漂移点", "#ff9800", ("jump", "drift", "spike", "teleport", "outlier", "implaus", "漂移")),
    ("精度差", "#757575", ("accura", "precision", "精度")),
    ("重复", "#9e9e9e", ("dup", "重复")),
    ("无效坐标", "#616161", ("invalid", "无效")),
    ("网格外", "#8d6e63", ("outside", "out_of_grid", "not_in_grid", "off_grid", "网格外")),
    ("间隔过长", "#90a4ae", ("gap", "间隔")),
    ("静止", "#b0bec5", ("stay", "still", "stationary", "静止")),
)
REASON_OTHER = ("其他", "#607d8b")
MAX_PLAYBACK_PAGES = 60


@dataclass(frozen=True)
class MonthData:
    """The month's frames, cut to what the maps use, with display coordinates ``x``/``y``."""

    month: str
    grids: pd.DataFrame  # grid_id, grid_name, grid_type, geometry (WGS-84), display (overlay datum)
    worker_day: pd.DataFrame  # + day (YYYY-MM-DD), flagged
    # site_id, site_type, grid_id, lon, lat, x, y, k, n, coarse, cell_m and the display corners
    # west, south, east, north of the privacy cell; personal sites already at their cell centre
    site_status: pd.DataFrame
    points: pd.DataFrame  # point_use + grid_id, day, t_s, x, y, reason_cat; sorted grid, worker, day, ts


# --- reading and preparing the frames ----------------------------------------------------------


def month_bounds(month: str) -> tuple[date, date]:
    """First and last day of ``YYYY-MM``; :class:`~trajectory.errors.InputError` for anything else.

    Examples
    --------
    >>> month_bounds("2026-02")
    (datetime.date(2026, 2, 1), datetime.date(2026, 2, 28))
    """
    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except (TypeError, ValueError):
        raise InputError("--month", f"month was '{month}' but is expected as YYYY-MM") from None
    last = (pd.Timestamp(first) + pd.offsets.MonthEnd(0)).date()
    return first, last


def read_month_frames(con: Any, month: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """The month's ``worker_day``, ``site_check``, ``point_use`` and ``day_flag`` rows from the store.

    ``worker_day.flags`` also holds the ``day_flag`` rows' flags (:func:`with_day_flags`); the
    day flags are None when the store has no ``day_flag`` table yet. ``point_use`` is the whole
    month (only :data:`MAP_POINT_COLUMNS`): for notebooks and small stores; the store path of
    :func:`maps.build.render_workspace_month` reads it in bounded batches (:func:`read_points`).
    """
    worker_day, site_check, day_flags = read_month_tables(con, month)
    first, last = month_bounds(month)
    return worker_day, site_check, read_points(con, first, last), day_flags


def read_month_tables(con: Any, month: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """The month's ``worker_day`` (with the day flags), ``site_check`` and ``day_flag`` rows: no points."""
    first, last = month_bounds(month)
    worker_day = con.execute(f"SELECT * FROM {c.WORKER_DAY} WHERE date BETWEEN ? AND ?", [first, last]).df()
    site_check = con.execute(
        f"SELECT * FROM {c.SITE_CHECK} WHERE period_start <= ? AND period_end >= ?", [last, first]
    ).df()
    day_flags = read_day_flags(con, first, last)
    if day_flags is not None:
        worker_day = with_day_flags(worker_day, day_flags)
    return worker_day, site_check, day_flags


def _point_columns(con: Any) -> list[str]:
    """:data:`MAP_POINT_COLUMNS` that the store's ``point_use`` has (an old store may lack ``in_grid``)."""
    have = {r[0] for r in con.execute(f"DESCRIBE {c.POINT_USE}").fetchall()}
    missing = [col for col in POINT_USE_COLUMNS if col not in have]
    if missing:
        raise ValueError(f"{c.POINT_USE} has no column(s) {', '.join(missing)}; found {', '.join(sorted(have))}")
    return [col for col in MAP_POINT_COLUMNS if col in have]


def read_points(con: Any, first: date, last: date, workers: Sequence[object] | None = None) -> pd.DataFrame:
    """``point_use`` rows of ``first`` .. ``last`` (of ``workers`` only, when given), only the
    columns the maps draw (:data:`MAP_POINT_COLUMNS`; never ``label`` or the engine's extras).

    Rows come in the store's order (no ``ORDER BY``): the pages sort them stably, so the rows of a
    worker-day are in the same order whichever workers are read together.
    """
    cols = ", ".join(_point_columns(con))
    sql = f"SELECT {cols} FROM {c.POINT_USE} WHERE CAST(date AS DATE) BETWEEN ? AND ?"
    params: list[object] = [first, last]
    if workers is not None:
        if not len(workers):
            return con.execute(sql + " AND false", params).df()
        sql += f" AND worker_id IN ({', '.join('?' * len(workers))})"
        params += list(workers)
    return con.execute(sql, params).df()


def point_counts(con: Any, first: date, last: date) -> pd.DataFrame:
    """Rows of ``point_use`` per worker-day of ``first`` .. ``last``: ``worker_id`` (as stored), ``day``, ``rows``.

    One aggregate over the month (DuckDB streams it; nothing the size of the month is held): what
    :func:`plan_point_batches` packs and :func:`select_playback_days` needs to know which days have points.
    """
    df = con.execute(
        f"SELECT worker_id, CAST(date AS DATE) AS date, count(*) AS n FROM {c.POINT_USE} "
        "WHERE CAST(date AS DATE) BETWEEN ? AND ? GROUP BY ALL ORDER BY ALL",
        [first, last],
    ).df()
    return pd.DataFrame({"worker_id": df["worker_id"], "day": day_strings(df["date"]), "rows": df["n"].astype("int64")})


@dataclass(frozen=True)
class PointBatch:
    """Grids whose pages one batch writes and the workers whose month of points it reads.

    ``grid_ids`` hold the grid ids (from ``grids`` and ``worker_day``) whose points (by the
    worker-day's grid) this batch owns; ``home_workers`` the workers whose points on days without
    a ``worker_day`` row (no grid) this batch adds to the overview's heat map; ``workers`` every
    worker read (their raw store ids) and ``rows`` the rows that read returns.
    """

    grid_ids: tuple[str, ...]
    workers: tuple[object, ...]
    home_workers: frozenset[str]
    rows: int


def plan_point_batches(
    grid_ids: Sequence[str], day_grid: pd.DataFrame, counts: pd.DataFrame, max_rows: int
) -> list[PointBatch]:
    """Pack grids (in the order of ``grid_ids``) into batches that read at most ``max_rows`` rows.

    A grid needs the month of every worker with a day in it (``day_grid``: ``worker_id, day,
    grid_id``); a batch reads its workers' rows once (:func:`read_points`), so a grid joins the
    batch while the batch's distinct workers' rows stay within ``max_rows``. A grid whose own
    workers exceed ``max_rows`` is a batch by itself (it cannot be split: its coverage and page
    need all its points); so is a worker whose month alone exceeds it. Workers with points on
    days without a grid come last, packed the same way, for the overview's heat map only.
    """
    counts = counts.assign(key=counts["worker_id"].astype(str))
    worker_rows = counts.groupby("key", sort=True)["rows"].sum()
    raw_id = counts.drop_duplicates("key").set_index("key")["worker_id"]
    pts_days = counts.merge(
        day_grid.astype({"worker_id": str}), left_on=["key", "day"], right_on=["worker_id", "day"], how="left"
    )
    with_grid = pts_days[pts_days["grid_id"].notna()]
    grid_workers = with_grid.groupby("grid_id", sort=False)["key"].unique().to_dict()
    no_grid = set(pts_days.loc[pts_days["grid_id"].isna(), "key"])
    units: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
        ((g,), tuple(sorted(grid_workers.get(g, ())))) for g in dict.fromkeys(map(str, grid_ids))
    ]
    units += [((), (w,)) for w in sorted(no_grid - set(with_grid["key"]))]

    batches: list[PointBatch] = []
    grids: list[str] = []
    workers: dict[str, None] = {}
    homes: set[str] = set()
    rows = 0

    def close() -> None:
        nonlocal rows
        if grids or workers:
            home = frozenset(w for w in workers if w in no_grid and w not in homes)
            homes.update(home)
            batches.append(PointBatch(tuple(grids), tuple(raw_id[w] for w in workers), home, rows))
        grids.clear()
        workers.clear()
        rows = 0

    for unit_grids, unit_workers in units:  # one step per grid, not per point
        new = [w for w in unit_workers if w not in workers]
        extra = int(worker_rows.reindex(new).sum()) if new else 0
        if (grids or workers) and rows + extra > max_rows:
            close()
            new, extra = list(unit_workers), int(worker_rows.reindex(list(unit_workers)).sum()) if unit_workers else 0
        grids.extend(unit_grids)
        workers.update(dict.fromkeys(new))
        rows += extra
    close()
    return batches


def day_grids(worker_day: pd.DataFrame) -> pd.DataFrame:
    """``worker_id, day, grid_id`` of the prepared ``worker_day``: the grid a worker-day's points belong to."""
    return worker_day.drop_duplicates(["worker_id", "day"])[["worker_id", "day", "grid_id"]]


def month_points(
    point_use: pd.DataFrame, day_grid: pd.DataFrame, tiles: TileConfig, tz: str, lo: str, hi: str
) -> pd.DataFrame:
    """:func:`prepare_points` of the days ``lo`` .. ``hi`` with their worker-day's ``grid_id``,
    sorted (stably) by grid, worker, day and time: what the pages draw, for the month or one batch."""
    pts = prepare_points(point_use, tiles, tz)
    pts = pts[(pts["day"] >= lo) & (pts["day"] <= hi)]
    pts = pts.merge(day_grid, on=["worker_id", "day"], how="left")
    return pts.sort_values(["grid_id", "worker_id", "day", "ts"], kind="stable", na_position="last").reset_index(
        drop=True
    )


def prepare_month(
    month: str,
    grids: pd.DataFrame,
    worker_day: pd.DataFrame,
    site_check: pd.DataFrame,
    sites: pd.DataFrame,
    point_use: pd.DataFrame,
    tiles: TileConfig,
    tz: str = "Asia/Shanghai",
    *,
    privacy: PrivacyPolicy | None = None,
) -> MonthData:
    """Validate the inputs, keep the month's rows and the columns the maps use, add display coordinates.

    Personal sites are snapped to their privacy cell here (``privacy``, default the default
    policy's), before anything else sees them: no page can draw an exact personal position.
    """
    first, last = month_bounds(month)
    lo, hi = first.isoformat(), last.isoformat()
    privacy = privacy or default_privacy()
    _require(grids, ("grid_id", "grid_name", "grid_type", "geometry"), "grids")
    _require(
        worker_day,
        ("worker_id", "grid_id", "date", "workday", "exempt", "patrol_s", "patrol_m", "status"),
        "worker_day",
    )
    _require(site_check, ("site_id", "site_type", "grid_id", "period_start", "period_end", "visited"), "site_check")
    _require(sites, SITE_COLUMNS, "sites")
    _require(point_use, POINT_USE_COLUMNS, "point_use")
    transform = overlay_transform(tiles)

    g = pd.DataFrame(
        {
            "grid_id": grids["grid_id"].astype(str).to_numpy(),
            "grid_name": grids["grid_name"].fillna("").astype(str).to_numpy(),
            "grid_type": grids["grid_type"].astype(str).to_numpy(),
            "geometry": np.asarray(
                grids.geometry.values if hasattr(grids, "geometry") else grids["geometry"], dtype=object
            ),
        }
    )
    g["display"] = [display_geom(geom, transform) for geom in g["geometry"]]  # one call per grid

    wd = worker_day.copy()
    wd["worker_id"] = wd["worker_id"].astype(str)
    wd["grid_id"] = wd["grid_id"].astype(str)
    wd["day"] = day_strings(wd["date"])
    wd = wd[(wd["day"] >= lo) & (wd["day"] <= hi)].reset_index(drop=True)
    wd["flagged"] = _flagged(wd["flags"]) if "flags" in wd.columns else False

    sc = site_check.copy()
    start, end = day_strings(sc["period_start"]), day_strings(sc["period_end"])
    sc = sc[(start <= hi) & (end >= lo)]
    k_n = (
        sc.assign(visited=sc["visited"].fillna(False).astype(bool))
        .groupby(sc["site_id"].astype(str))["visited"]
        .agg(k="sum", n="size")
    )
    st = pd.DataFrame({col: sites[col] for col in SITE_COLUMNS})  # the label column is not copied
    st["site_id"] = st["site_id"].astype(str)
    st["grid_id"] = st["grid_id"].astype(str)
    st = st.join(k_n, on="site_id")
    st[["k", "n"]] = st[["k", "n"]].fillna(0).astype(int)
    st = coarsen_sites(st, privacy)  # PIPL: from here on personal sites exist only as their cell
    lon, lat = st["lon"].to_numpy(dtype=float), st["lat"].to_numpy(dtype=float)
    hx, hy = st.pop("cell_half_dlon").to_numpy(), st.pop("cell_half_dlat").to_numpy()
    st["cell_m"] = np.where(st["coarse"], float(privacy.site_cell_m), 0.0)
    st["x"], st["y"] = transform(lon, lat)
    # the cell's corners in the overlay datum, to draw it as an area (a point for exact sites)
    st["west"], st["south"] = transform(lon - hx, lat - hy)
    st["east"], st["north"] = transform(lon + hx, lat + hy)

    pts = month_points(point_use, day_grids(wd), tiles, tz, lo, hi)
    return MonthData(month, g, wd, st, pts)


def grid_month_stats(grids: pd.DataFrame, worker_day: pd.DataFrame) -> pd.DataFrame:
    """Per grid: workdays (non-exempt), ok days, compliance, km and hours patrolled in the month.

    Compliance = days with status ok / non-exempt workdays (NaN when there is none).
    """
    wd = worker_day
    scored = (
        wd["workday"].fillna(False).astype(bool)
        & ~wd["exempt"].fillna(False).astype(bool)
        & (wd["status"] != c.STATUS_EXEMPT)
    )
    agg = (
        pd.DataFrame(
            {
                "grid_id": wd["grid_id"],
                "workdays": scored.astype(int),
                "ok_days": (scored & (wd["status"] == c.STATUS_OK)).astype(int),
                "patrol_km": wd["patrol_m"].fillna(0.0) / 1000.0,
                "patrol_h": wd["patrol_s"].fillna(0.0) / 3600.0,
            }
        )
        .groupby("grid_id", sort=False)
        .sum()
    )
    out = grids[["grid_id", "grid_name", "grid_type"]].join(agg, on="grid_id")
    out[["workdays", "ok_days"]] = out[["workdays", "ok_days"]].fillna(0).astype(int)
    out[["patrol_km", "patrol_h"]] = out[["patrol_km", "patrol_h"]].fillna(0.0)
    out["compliance"] = np.where(
        out["workdays"] > 0, out["ok_days"] / out["workdays"].where(out["workdays"] > 0, 1), np.nan
    )
    return out.reset_index(drop=True)


def select_playback_days(
    worker_day: pd.DataFrame, points: pd.DataFrame, max_pages: int = MAX_PLAYBACK_PAGES
) -> pd.DataFrame:
    """Worker-days worth a playback: flagged, short, or absent although points were sent.

    Ordered flagged, short, absent-with-points, then by date and worker; at most ``max_pages``.
    Adds ``why`` (Chinese reason for the page).
    """
    has_points = worker_day.set_index(["worker_id", "day"]).index.isin(
        points.set_index(["worker_id", "day"]).index.unique()
    )
    flagged = worker_day["flagged"].to_numpy(dtype=bool) & has_points
    short = (worker_day["status"] == c.STATUS_SHORT).to_numpy() & has_points
    absent = (worker_day["status"] == c.STATUS_ABSENT).to_numpy() & has_points
    rank = np.select([flagged, short, absent], [0, 1, 2], default=-1)
    why = np.select([flagged, short, absent], ["有异常标记", "巡查不足", "有轨迹但判缺勤"], default="")
    if "flags" in worker_day.columns:  # name the flags: 有异常标记：挂机、轨迹复用
        names = worker_day["flags"].map(flag_names).to_numpy(dtype=object)
        why = np.where(flagged & (names != ""), "有异常标记：" + names, why)
    out = worker_day.assign(rank=rank, why=why)
    out = out[out["rank"] >= 0].sort_values(["rank", "day", "worker_id"], kind="stable")
    return out.head(max(int(max_pages), 0)).reset_index(drop=True)


def flag_names(flags: object) -> str:
    """The Chinese short names of comma-separated flag codes (unknown codes as they are).

    Examples
    --------
    >>> flag_names("desk_phone,replay"), flag_names(None)
    ('挂机、轨迹复用', '')
    """
    if not isinstance(flags, str):
        return ""
    codes = [k.strip() for k in flags.split(",") if k.strip()]
    return "、".join(FLAG_ZH.get(k, k).split("（")[0] for k in codes)


def reason_categories(reason: pd.Series, in_grid: pd.Series | None = None) -> np.ndarray:
    """Index into :data:`REASON_CATEGORIES` (+ other last) of each point's reason, vectorised.

    Examples
    --------
    >>> reason_categories(pd.Series(["duplicate", "speed_vehicle", None, "xyz"])).tolist()
    [4, 1, 9, 9]
    """
    codes, uniques = pd.factorize(reason.fillna("").astype(str).str.lower())  # a handful of distinct reasons
    low = pd.Series(uniques, dtype=object)
    conds = [low.str.contains("|".join(keys), regex=True).to_numpy(dtype=bool) for _, _, keys in REASON_CATEGORIES]
    per_unique = np.select(conds, np.arange(len(REASON_CATEGORIES)), default=len(REASON_CATEGORIES))
    cat = per_unique[codes] if len(codes) else np.empty(0, dtype=np.int64)
    if in_grid is not None:
        outside = next(i for i, r in enumerate(REASON_CATEGORIES) if r[0] == "网格外")
        no_reason = (low == "").to_numpy()[codes] if len(codes) else np.empty(0, dtype=bool)
        cat = np.where(no_reason & ~in_grid.fillna(True).astype(bool).to_numpy(), outside, cat)
    return cat


# --- helpers ------------------------------------------------------------------------------------


def prepare_points(point_use: pd.DataFrame, tiles: TileConfig, tz: str) -> pd.DataFrame:
    """Columns the maps use, ``ts`` as UTC, local ``day``, ``t_s`` seconds, display ``x``/``y``."""
    pts = pd.DataFrame(
        {
            "worker_id": point_use["worker_id"].astype(str).to_numpy() if "worker_id" in point_use else "",
            "ts": pd.to_datetime(point_use["ts"], utc=True).array,
            "lon": point_use["lon"].to_numpy(dtype=np.float64),
            "lat": point_use["lat"].to_numpy(dtype=np.float64),
            "counted": point_use["counted"].fillna(False).astype(bool).to_numpy() if "counted" in point_use else True,
            "reason": point_use["reason"].to_numpy(dtype=object) if "reason" in point_use else None,
            "in_grid": point_use["in_grid"].fillna(True).astype(bool).to_numpy() if "in_grid" in point_use else True,
        }
    )
    pts["ts"] = pd.to_datetime(pts["ts"], utc=True)
    if "date" in point_use.columns:
        pts["day"] = day_strings(point_use["date"]).to_numpy()
    else:
        pts["day"] = pts["ts"].dt.tz_convert(tz).dt.strftime("%Y-%m-%d")
    pts["date"] = pts["day"]
    pts["t_s"] = (pts["ts"] - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
    pts["x"], pts["y"] = overlay_transform(tiles)(pts["lon"].to_numpy(), pts["lat"].to_numpy())
    pts["reason_cat"] = reason_categories(pts["reason"], pts["in_grid"])
    return pts


def read_day_flags(con: Any, first: date, last: date) -> pd.DataFrame | None:
    """The month's ``day_flag`` rows (``worker_id, grid_id, date, flag, detail``), None without that table."""
    try:
        cols = {r[0] for r in con.execute(f"DESCRIBE {c.DAY_FLAG}").fetchall()}
    except Exception:  # table not created (yet): no flags
        return None
    if not {"worker_id", "date", "flag"} <= cols:
        return None
    return con.execute(
        f"SELECT * FROM {c.DAY_FLAG} WHERE CAST(date AS DATE) BETWEEN ? AND ? ORDER BY worker_id, date, flag",
        [first, last],
    ).df()


def with_day_flags(worker_day: pd.DataFrame, day_flags: pd.DataFrame) -> pd.DataFrame:
    """``worker_day`` whose ``flags`` (comma-separated codes) also hold the ``day_flag`` rows' flags.

    The engine writes a day's own flags into ``worker_day.flags``; replays (轨迹复用) are found at
    month end and stored only in ``day_flag``: a replayed day must be flagged on the maps too.

    Examples
    --------
    >>> wd = pd.DataFrame({"worker_id": ["W1", "W1"], "date": ["2026-10-08", "2026-10-09"], "flags": ["vehicle", None]})
    >>> df = pd.DataFrame({"worker_id": ["W1"], "date": ["2026-10-09"], "flag": ["replay"]})
    >>> with_day_flags(wd, df)["flags"].tolist()
    ['vehicle', 'replay']
    """
    wd = worker_day.copy()
    key = wd["worker_id"].astype(str) + "|" + day_strings(wd["date"])
    extra = pd.Series(
        day_flags["flag"].astype(str).to_numpy(),
        index=day_flags["worker_id"].astype(str) + "|" + day_strings(day_flags["date"]).to_numpy(),
    )
    own = wd["flags"] if "flags" in wd.columns else pd.Series(None, index=wd.index, dtype=object)
    codes = pd.concat(
        [
            pd.Series(own.fillna("").astype(str).str.split(",").to_numpy(), index=key.to_numpy()).explode(),
            extra,
        ]
    )
    codes = codes[codes.astype(str).str.strip() != ""]
    joined = codes.groupby(level=0).agg(lambda s: ",".join(dict.fromkeys(s.astype(str).str.strip())))
    wd["flags"] = key.map(joined).to_numpy()
    wd["flags"] = wd["flags"].astype(object).where(wd["flags"].notna(), None)
    return wd


def _flagged(flags: pd.Series) -> np.ndarray:
    """Anything non-empty, non-zero and non-false means flagged (text, count, bool or list)."""

    def one(v: object) -> bool:  # per worker-day, not per point
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return False
        if isinstance(v, str):
            return v.strip().lower() not in ("", "0", "false", "none", "[]")
        try:
            return bool(len(v))  # type: ignore[arg-type]
        except TypeError:
            return bool(v)

    return np.fromiter((one(v) for v in flags.to_numpy(dtype=object)), dtype=bool, count=len(flags))


def day_strings(values: pd.Series) -> pd.Series:
    """Dates (date, Timestamp or text) as ``YYYY-MM-DD`` strings."""
    if len(values) == 0:
        return pd.Series([], dtype=object, index=values.index)
    return pd.Series(
        pd.to_datetime(values.astype(str).str.slice(0, 10), format="%Y-%m-%d").dt.strftime("%Y-%m-%d").to_numpy(),
        index=values.index,
    )


def display_geom(geom: shapely.Geometry, transform: Any) -> shapely.Geometry:
    return shapely.transform(geom, lambda xy: np.column_stack(transform(xy[:, 0], xy[:, 1])))


def _require(df: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [col for col in columns if col not in df.columns]
    if missing:
        raise ValueError(f"{name} has no column(s) {', '.join(missing)}; found {', '.join(map(str, df.columns))}")


__all__ = [
    "SITE_COLUMNS",
    "POINT_USE_COLUMNS",
    "REASON_CATEGORIES",
    "REASON_OTHER",
    "MAX_PLAYBACK_PAGES",
    "MonthData",
    "month_bounds",
    "MAP_POINT_COLUMNS",
    "PointBatch",
    "read_month_frames",
    "read_month_tables",
    "read_points",
    "point_counts",
    "plan_point_batches",
    "day_grids",
    "month_points",
    "prepare_month",
    "grid_month_stats",
    "select_playback_days",
    "flag_names",
    "reason_categories",
    "prepare_points",
    "read_day_flags",
    "with_day_flags",
    "day_strings",
    "display_geom",
]
