"""Monthly map pages of patrol coverage (issue 5): overview, one page per grid, playbacks, index.

Every function takes frames (the tables of ``patrol.duckdb``), so pages can be built and
tested without the engine; :func:`render_workspace_month` reads them from the store.
Pages are offline (``maps.offline``): scripts and styles come from ``out/YYYY-MM/lib/``.

Privacy (PIPL): sites are drawn by code and type only. ``sites.label`` (names, addresses) is
never read here; the frames are cut to the columns the maps need on entry. Personal sites (key
persons, special groups, care subjects) are moved to the centre of their ``privacy.site_cell_m``
cell on entry too (:func:`maps.privacy.coarsen_sites`) and drawn as that cell, never a pin.

Hostile input: every workspace string (ids, names, reasons, file names, the tile attribution)
goes through :mod:`maps.escape` on its way into a page: HTML-escaped once with ``html_text``,
into scripts only as JSON, and page and link names only from :func:`_safe_name`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import folium
import numpy as np
import pandas as pd
import shapely
from branca.element import Figure

from maps.coverage import DEFAULT_CELL_M, DEFAULT_MAX_GAP_S, GridRaster, cell_rects, grid_coverage, heat_bins
from maps.dashboard import (
    FLAG_ZH,
    INDEX_PAGE,
    DashboardLinks,
    MonthScores,
    export_files,
    read_month_scores,
    relative_href,
    write_dashboard,
)
from maps.elements import (
    GPS_DECIMALS,
    CellsLayer,
    HeatLayer,
    InfoBox,
    LinesLayer,
    PlaybackGeoJson,
    PointsLayer,
    RawHtml,
    RawScript,
    RectanglesLayer,
)
from maps.escape import html_text, html_texts, url_path
from maps.offline import LIB_DIRNAME, check_offline, install_lib, lib_href, local_assets
from maps.privacy import coarsen_sites, default_privacy
from maps.tiles import TileConfig, overlay_transform, tile_layers
from scoring.export import grid_sheet_names, workbook_name
from scoring.policy import PrivacyPolicy
from trajectory import contract as c

log = logging.getLogger(__name__)

OVERVIEW_PAGE = "overview.html"
GRIDS_DIR = "grids"
PLAYBACK_DIR = "playback"

SITE_COLUMNS = ("site_id", "site_type", "grid_id", "lon", "lat")  # never "label"
POINT_USE_COLUMNS = ("worker_id", "ts", "lon", "lat", "counted")


# Compliance classes of the overview (display bins, not assessment thresholds)
COMPLIANCE_BINS = (
    (0.95, "#1a9641", "≥ 95%"),
    (0.80, "#a6d96a", "80–95%"),
    (0.60, "#fdae61", "60–80%"),
    (0.0, "#d7191c", "< 60%"),
)
NO_WORKDAY_COLOR = "#bdbdbd"
SITE_COLORS = (("已走访", "#2e7d32"), ("有未走访周期", "#c62828"), ("本月无检查周期", "#9e9e9e"))

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

# heat maps draw every counted point, binned (maps.coverage.heat_bins): ≈ 22 m on the overview,
# ≈ 11 m on a grid page, well below the heat radius (12 px ≥ 14 m at its most detailed zoom)
MONTH_HEAT_BIN_DEG = 2e-4
GRID_HEAT_BIN_DEG = 1e-4
MAX_DISCARDED_PER_DAY = 5_000
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


# --- public functions ---------------------------------------------------------------------


def render_month(
    out_dir: Path,
    month: str,
    grids: pd.DataFrame,
    worker_day: pd.DataFrame,
    site_check: pd.DataFrame,
    sites: pd.DataFrame,
    point_use: pd.DataFrame,
    tiles: TileConfig | None = None,
    workbook_name: str | None = None,
    *,
    tz: str = "Asia/Shanghai",
    cell_m: float = DEFAULT_CELL_M,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    max_playback: int = MAX_PLAYBACK_PAGES,
    privacy: PrivacyPolicy | None = None,
    scores: MonthScores | None = None,
    day_flags: pd.DataFrame | None = None,
) -> list[Path]:
    """Write the month's map pages and its dashboard (``index.html``) to ``out_dir``.

    Parameters
    ----------
    out_dir : Path
        ``out/YYYY-MM`` of the workspace; ``lib/``, ``grids/`` and ``playback/`` are created in it.
    month : str
        ``YYYY-MM``.
    grids : GeoDataFrame
        ``grid_id, grid_name, grid_type, geometry`` (EPSG:4326).
    worker_day, site_check : DataFrame
        The store's tables (rows outside the month are ignored). ``worker_day`` may carry a
        ``flags`` column (anything non-empty = flagged for review).
    sites : DataFrame
        ``site_id, site_type, grid_id, lon, lat``; other columns (``label``) are never read.
    point_use : DataFrame
        ``worker_id, ts (UTC), lon, lat, counted`` and optionally ``date, reason, in_grid``.
    tiles : TileConfig, optional
        Background tiles; default none (fully offline).
    workbook_name : str, optional
        File name of the month's workbook in ``out_dir``, linked from the index.
    tz : str
        Local time zone of days and playback clocks.
    cell_m, max_gap_s : float
        Coverage raster cell size; longest interval joined by a walked segment.
    max_playback : int
        At most this many playback pages (flagged days first, then short, then absent with points).
    privacy : PrivacyPolicy, optional
        Cell size and the site types shown only at their cell (:mod:`maps.privacy`); default the
        default policy's ``[privacy]`` (150 m; key persons, special groups, care subjects).
    scores : MonthScores, optional
        The month's stored scores (:func:`maps.dashboard.read_month_scores`) for the dashboard's
        ranking and lost points; without them the dashboard shows the patrol sections only.
    day_flags : DataFrame, optional
        The month's ``day_flag`` rows (``worker_id, date, flag, detail``): the dashboard's flags
        with their evidence. Without them, ``worker_day.flags`` is listed without details.

    Returns
    -------
    list of Path
        Overview, grid pages, playback pages and ``index.html`` (the dashboard).
    """
    tiles = tiles or TileConfig()
    out_dir = Path(out_dir)
    data = prepare_month(month, grids, worker_day, site_check, sites, point_use, tiles, tz, privacy=privacy)
    lib_dir = install_lib(out_dir / LIB_DIRNAME)
    stats = grid_month_stats(data.grids, data.worker_day)
    tracks = data.points[data.points["counted"] & data.points["in_grid"] & data.points["grid_id"].notna()]
    coverage, rasters = grid_coverage(
        data.grids, tracks[["grid_id", "worker_id", "date", "ts", "lon", "lat"]], cell_m, max_gap_s
    )
    stats = stats.merge(coverage, on="grid_id", how="left")
    transform = overlay_transform(tiles)

    overview = out_dir / OVERVIEW_PAGE
    _write_overview(overview, lib_dir, data, stats, tiles)
    pages = [overview]
    grid_pages: dict[str, str] = {}
    for row in stats.itertuples(index=False):
        page = out_dir / GRIDS_DIR / f"{_safe_name(row.grid_id)}.html"
        raster, cells = rasters[row.grid_id]
        _write_grid_page(page, lib_dir, data, row, raster, cells, tiles, transform, max_gap_s)
        grid_pages[str(row.grid_id)] = relative_href(page, out_dir)
        pages.append(page)
    playbacks: dict[tuple[str, str], str] = {}
    for wd in select_playback_days(data.worker_day, data.points, max_playback).itertuples(index=False):
        day_points = data.points[(data.points["worker_id"] == wd.worker_id) & (data.points["day"] == wd.day)]
        page = out_dir / PLAYBACK_DIR / f"{_safe_name(wd.worker_id)}_{wd.day}.html"
        grid = data.grids[data.grids["grid_id"] == wd.grid_id]
        _write_playback(
            page,
            lib_dir,
            str(wd.worker_id),
            wd.day,
            day_points,
            grid,
            data.site_status,
            tiles,
            tz,
            max_gap_s,
            status=str(wd.status),
            why=str(wd.why),
        )
        playbacks[(str(wd.worker_id), str(wd.day))] = relative_href(page, out_dir)
        pages.append(page)
    workbook = workbook_name if workbook_name and (out_dir / workbook_name).is_file() else None
    links = DashboardLinks(
        overview=OVERVIEW_PAGE,
        grid_pages=grid_pages,
        playbacks=playbacks,
        workbook=workbook,
        sheets=grid_sheet_names(scores.scores["grid_id"].astype(str).unique()) if scores is not None else {},
        exports=export_files(out_dir),
    )
    pages.append(write_dashboard(out_dir, month, stats, data.worker_day, links, scores=scores, day_flags=day_flags))
    _remove_stale_pages(out_dir, pages)
    return pages


def _remove_stale_pages(out_dir: Path, pages: Sequence[Path]) -> None:
    """Delete pages of an earlier rendering of the month that this one did not write again.

    ``grids/`` and ``playback/`` hold only our pages: a playback of a day no longer flagged (or a
    grid renamed) would otherwise stay, linked from nowhere, and weigh on the shared folder.
    """
    keep = {Path(p).resolve() for p in pages}
    stale = [
        old for sub in (GRIDS_DIR, PLAYBACK_DIR) for old in (out_dir / sub).glob("*.html") if old.resolve() not in keep
    ]
    for old in stale:
        old.unlink()
    if stale:
        log.info("removed %d page(s) of an earlier rendering of the month", len(stale))


def render_playback(
    out_path: Path,
    worker_id: str,
    day: date | str,
    points: pd.DataFrame,
    *,
    grid: shapely.Geometry | None = None,
    tiles: TileConfig | None = None,
    tz: str = "Asia/Shanghai",
    lib_dir: Path | None = None,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> Path:
    """Write one worker-day's playback page (a time slider over the track) to ``out_path``.

    Parameters
    ----------
    out_path : Path
        The HTML file to write.
    worker_id : str
    day : date or str
        The local day (``YYYY-MM-DD``).
    points : DataFrame
        That worker-day's points: ``ts (UTC), lon, lat`` (WGS-84) and optionally ``counted``,
        ``reason``, ``in_grid``. Points without ``counted`` are all taken as counted.
    grid : shapely geometry, optional
        The worker's grid polygon (EPSG:4326), drawn as an outline.
    tiles : TileConfig, optional
    tz : str
        Time zone of the clock shown on the page.
    lib_dir : Path, optional
        Where the vendored scripts are; default ``lib/`` beside ``out_path`` (copied there).

    Returns
    -------
    Path
        ``out_path``.
    """
    tiles = tiles or TileConfig()
    out_path = Path(out_path)
    lib_dir = install_lib(Path(lib_dir) if lib_dir is not None else out_path.parent / LIB_DIRNAME)
    day_str = _day_strings(pd.Series([day]))[0]
    pts = _prepare_points(points, tiles, tz)
    pts["worker_id"] = str(worker_id)
    pts = pts.sort_values("ts", kind="stable")
    grids = (
        pd.DataFrame({"grid_id": ["-"], "display": [_display_geom(grid, overlay_transform(tiles))]})
        if grid is not None
        else None
    )
    _write_playback(out_path, lib_dir, str(worker_id), day_str, pts, grids, None, tiles, tz, max_gap_s)
    return out_path


def render_workspace_month(ws: Any, con: Any, month: str) -> list[Path]:
    """Render a workspace's month from its store (what ``trajectory.run --month`` calls).

    Parameters
    ----------
    ws : trajectory.workspace.Workspace
    con : duckdb connection (read-only is enough)
    month : str
        ``YYYY-MM``.
    """
    first, last = month_bounds(month)
    worker_day = con.execute(f"SELECT * FROM {c.WORKER_DAY} WHERE date BETWEEN ? AND ?", [first, last]).df()
    site_check = con.execute(
        f"SELECT * FROM {c.SITE_CHECK} WHERE period_start <= ? AND period_end >= ?", [last, first]
    ).df()
    point_use = con.execute("SELECT * FROM point_use WHERE CAST(date AS DATE) BETWEEN ? AND ?", [first, last]).df()
    day_flags = _read_day_flags(con, first, last)
    if day_flags is not None:
        worker_day = with_day_flags(worker_day, day_flags)
    out_dir = ws.paths.out_month(month)
    book = workbook_name(month)
    workbooks = [out_dir / book] if (out_dir / book).is_file() else sorted(out_dir.glob("*.xlsx"))
    return render_month(
        out_dir,
        month,
        ws.grids,
        worker_day,
        site_check,
        ws.sites,
        point_use,
        tiles=workspace_tiles(ws),
        workbook_name=workbooks[0].name if workbooks else None,
        tz=str(ws.tz),
        max_gap_s=float(ws.policy.patrol.points.max_gap_s),
        privacy=ws.policy.privacy,
        scores=read_month_scores(con, month, ws.policy),
        day_flags=day_flags,
    )


def workspace_tiles(ws: Any) -> TileConfig:
    """The ``[maps]`` section of the workspace's policy, as a :class:`TileConfig`."""
    maps_cfg = getattr(ws.policy, "maps", None)
    if isinstance(maps_cfg, TileConfig):
        return maps_cfg
    raw = getattr(ws.policy, "raw", {}) or {}
    return TileConfig.from_mapping(maps_cfg if isinstance(maps_cfg, dict) else raw.get("maps"))


# --- preparing the frames ---------------------------------------------------------------------


def month_bounds(month: str) -> tuple[date, date]:
    """First and last day of ``YYYY-MM``.

    Examples
    --------
    >>> month_bounds("2026-02")
    (datetime.date(2026, 2, 1), datetime.date(2026, 2, 28))
    """
    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except (TypeError, ValueError):
        raise ValueError(f"month was '{month}' but is expected as YYYY-MM") from None
    last = (pd.Timestamp(first) + pd.offsets.MonthEnd(0)).date()
    return first, last


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
    g["display"] = [_display_geom(geom, transform) for geom in g["geometry"]]  # one call per grid

    wd = worker_day.copy()
    wd["worker_id"] = wd["worker_id"].astype(str)
    wd["grid_id"] = wd["grid_id"].astype(str)
    wd["day"] = _day_strings(wd["date"])
    wd = wd[(wd["day"] >= lo) & (wd["day"] <= hi)].reset_index(drop=True)
    wd["flagged"] = _flagged(wd["flags"]) if "flags" in wd.columns else False

    sc = site_check.copy()
    start, end = _day_strings(sc["period_start"]), _day_strings(sc["period_end"])
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

    pts = _prepare_points(point_use, tiles, tz)
    pts = pts[(pts["day"] >= lo) & (pts["day"] <= hi)]
    day_grid = wd.drop_duplicates(["worker_id", "day"])[["worker_id", "day", "grid_id"]]
    pts = pts.merge(day_grid, on=["worker_id", "day"], how="left")
    pts = pts.sort_values(["grid_id", "worker_id", "day", "ts"], kind="stable", na_position="last").reset_index(
        drop=True
    )
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


# --- pages ------------------------------------------------------------------------------------


def _new_map(
    page: Path, lib_dir: Path, bounds: np.ndarray, tiles: TileConfig, title: str, plugins: tuple[str, ...]
) -> folium.Map:
    """A map with local scripts only, the configured tiles, fitted to ``bounds`` (minx, miny, maxx, maxy).

    ``title`` is plain text (escaped here).
    """
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=14, tiles=None, control_scale=False)
    RawScript(f"L.control.scale({{imperial: false}}).addTo({m.get_name()});").add_to(m)  # metres only
    js, css = local_assets(lib_href(page, lib_dir), plugins)
    m.default_js, m.default_css = js, css  # instance attributes: folium's class defaults stay untouched
    for layer in tile_layers(tiles):
        layer.add_to(m)
    m.fit_bounds([[miny, minx], [maxy, maxx]], padding=(10, 10))
    root = cast(Figure, m.get_root())
    # not branca's Element(text): that compiles the text as Jinja, and the title holds grid names
    root.header.add_child(RawHtml(f"<title>{html_text(title)}</title>"), name="page_title")
    if not tile_layers(tiles):
        root.header.add_child(RawHtml("<style>.leaflet-container{background:#f4f3ef;}</style>"), name="blank_bg")
    # the heat map is a faint context layer under the polygons, cells and tracks it explains
    root.header.add_child(RawHtml("<style>.leaflet-heatmap-layer{opacity:0.6;}</style>"), name="faint_heat")
    return m


def _write_page(m: folium.Map, page: Path) -> Path:
    doc = check_offline(m.get_root().render(), str(page))
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(doc, encoding="utf-8")
    return page


def _write_overview(page: Path, lib_dir: Path, data: MonthData, stats: pd.DataFrame, tiles: TileConfig) -> None:
    display = np.asarray(data.grids["display"].to_numpy(), dtype=object)
    bounds = _bounds(display)
    m = _new_map(page, lib_dir, bounds, tiles, f"{data.month} 网格巡查总览", ("heat",))
    st = stats.set_index("grid_id").loc[data.grids["grid_id"]].reset_index()
    fill = compliance_colors(st["compliance"].to_numpy())
    props = pd.DataFrame(
        {
            "grid_id": html_texts(st["grid_id"]),
            "grid_name": html_texts(st["grid_name"]),
            "type_zh": html_texts(st["grid_type"].map(c.GRID_TYPE_ZH).fillna(st["grid_type"])),
            "compliance": _pct(st["compliance"])
            + " ("
            + st["ok_days"].astype(str)
            + "/"
            + st["workdays"].astype(str)
            + " 工作日)",
            "coverage": _pct(st["coverage"])
            + " ("
            + st["walked_cells"].fillna(0).astype(int).astype(str)
            + "/"
            + st["grid_cells"].fillna(0).astype(int).astype(str)
            + " 单元)",
            "km": st["patrol_km"].map("{:.1f}".format),
            "hours": st["patrol_h"].map("{:.1f}".format),
            "fill": fill,
            "link": "<a href='"
            + st["grid_id"].map(lambda g: html_text(url_path(f"{GRIDS_DIR}/{_safe_name(g)}.html")))
            + "'>打开网格页面 "
            + html_texts(st["grid_id"])
            + "</a>",
        }
    )
    features = {
        "type": "FeatureCollection",
        "features": [
            # our own feature ids: folium would otherwise pick a unique property (a grid id) as the key
            {"type": "Feature", "id": str(i), "geometry": shapely.geometry.mapping(geom), "properties": p}
            for i, (geom, p) in enumerate(zip(display, props.to_dict("records"), strict=True))  # one per grid
        ],
    }
    folium.GeoJson(
        features,
        name="网格巡查达标率",
        style_function=lambda f: {
            "fillColor": f["properties"]["fill"],
            "color": "#333",
            "weight": 1.5,
            "fillOpacity": 0.7,
        },
        highlight_function=lambda f: {"weight": 3, "fillOpacity": 0.85},
        tooltip=folium.GeoJsonTooltip(
            fields=["grid_id", "grid_name", "type_zh", "compliance", "coverage", "km", "hours"],
            aliases=["网格编号", "网格名称", "类型", "巡查达标率", "覆盖率", "巡查里程 (km)", "巡查时长 (h)"],
        ),
        popup=folium.GeoJsonPopup(fields=["link"], labels=False),
        zoom_on_click=False,
    ).add_to(m)
    counted = data.points[data.points["counted"]]
    if len(counted):
        # off by default: the compliance colours are what a first look should see
        _heat_layer(counted, MONTH_HEAT_BIN_DEG, show=False).add_to(m)
    _site_layer(data.site_status).add_to(m)
    _title_box(m, f"{data.month} 网格巡查总览", _overview_summary(stats), tiles)
    InfoBox(_legend_html(heat="overview"), position="bottomright").add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    _write_page(m, page)


def _write_grid_page(
    page: Path,
    lib_dir: Path,
    data: MonthData,
    row: Any,
    raster: GridRaster,
    cells: np.ndarray,
    tiles: TileConfig,
    transform: Any,
    max_gap_s: float,
) -> None:
    grid = data.grids[data.grids["grid_id"] == row.grid_id].iloc[0]
    m = _new_map(
        page, lib_dir, shapely.bounds(grid["display"]), tiles, f"{data.month} {row.grid_id} {row.grid_name}", ("heat",)
    )
    # the tooltip is a property shown by GeoJsonTooltip, not folium.Tooltip(text): that one puts
    # its text in a JavaScript template literal, where a backtick or ${...} is code
    boundary = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "0",
                "geometry": shapely.geometry.mapping(grid["display"]),
                "properties": {"tip": html_text(f"{row.grid_id} {row.grid_name}")},
            }
        ],
    }
    folium.GeoJson(
        boundary,
        name="网格边界",
        style_function=lambda f: {"color": "#1a237e", "weight": 2.5, "fillOpacity": 0.04},
        tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False),
        control=False,
    ).add_to(m)
    if len(cells):
        RectanglesLayer(
            *cell_rects(raster, cells, transform),
            name=f"已巡查单元（{raster.cell_m:g} m 方格，覆盖率 {_pct(pd.Series([row.coverage])).iloc[0]}）",
        ).add_to(m)
    pts = data.points[data.points["grid_id"] == row.grid_id]
    counted = pts[pts["counted"]]
    if len(counted):
        _heat_layer(counted, GRID_HEAT_BIN_DEG, show=True).add_to(m)
    _site_layer(data.site_status[data.site_status["grid_id"] == row.grid_id]).add_to(m)
    days = data.worker_day[data.worker_day["grid_id"] == row.grid_id].set_index(["worker_id", "day"])
    if len(pts):
        key = pts["worker_id"] + "|" + pts["day"]
        starts = np.flatnonzero(np.r_[True, key.to_numpy()[1:] != key.to_numpy()[:-1]])
        for s, e in zip(starts, np.r_[starts[1:], len(pts)], strict=True):  # one layer per worker-day
            _worker_day_layer(pts.iloc[s:e], days, max_gap_s).add_to(m)
    _title_box(
        m,
        f"{row.grid_id} {row.grid_name}（{c.GRID_TYPE_ZH.get(row.grid_type, row.grid_type)}）",
        f"{data.month}：达标率 {_pct(pd.Series([row.compliance])).iloc[0]}（{row.ok_days}/{row.workdays} 工作日），"
        f"覆盖率 {_pct(pd.Series([row.coverage])).iloc[0]}，{row.patrol_km:.1f} km，{row.patrol_h:.1f} h"
        "<br>每个工作日轨迹为一个图层（右上角勾选）：实线 = 计入巡查，圆点 = 未计入（悬停看原因）",
        tiles,
        back="../" + INDEX_PAGE,
    )
    InfoBox(
        _legend_html(with_compliance=False, with_reasons=True, heat="grid", cell_m=raster.cell_m, tracks=True),
        position="bottomright",
    ).add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)
    _write_page(m, page)


def _worker_day_layer(pts: pd.DataFrame, days: pd.DataFrame, max_gap_s: float) -> folium.FeatureGroup:
    worker, day = str(pts["worker_id"].iloc[0]), str(pts["day"].iloc[0])
    label = f"{worker} {day}"
    if (worker, day) in days.index:
        d = days.loc[(worker, day)]
        d = d.iloc[0] if isinstance(d, pd.DataFrame) else d
        label += f" {c.STATUS_ZH.get(str(d['status']), d['status'])} {float(d['patrol_m'] or 0) / 1000:.1f} km {float(d['patrol_s'] or 0) / 3600:.1f} h"
    shown = html_text(label)  # the layer control's label and the track's tooltip are HTML
    group = folium.FeatureGroup(name=shown, show=False)
    counted = pts[pts["counted"].to_numpy()]
    if len(counted) >= 2:
        gap = np.r_[False, np.diff(counted["t_s"].to_numpy()) > max_gap_s]
        LinesLayer(
            counted["y"].to_numpy(), counted["x"].to_numpy(), np.cumsum(gap), tooltip=shown, control=False
        ).add_to(group)
    dropped = pts[~pts["counted"].to_numpy()]
    idx = _stride(len(dropped), MAX_DISCARDED_PER_DAY)
    if len(idx):
        dropped = dropped.iloc[idx]
        PointsLayer(
            dropped["y"].to_numpy(),
            dropped["x"].to_numpy(),
            dropped["reason_cat"].to_numpy(),
            _reason_legend(),
            texts=_reason_texts(dropped).tolist(),
            radius=2.5,
            control=False,
            decimals=GPS_DECIMALS,
        ).add_to(group)
    return group


def _write_playback(
    page: Path,
    lib_dir: Path,
    worker_id: str,
    day: str,
    pts: pd.DataFrame,
    grids: pd.DataFrame | None,
    site_status: pd.DataFrame | None,
    tiles: TileConfig,
    tz: str,
    max_gap_s: float,
    status: str | None = None,
    why: str = "",
) -> None:
    if grids is not None and len(grids):
        bounds = _bounds(np.asarray(grids["display"].to_numpy(), dtype=object))
    elif len(pts):
        bounds = np.array([pts["x"].min(), pts["y"].min(), pts["x"].max(), pts["y"].max()])
    else:
        bounds = np.array([119.9, 31.7, 120.0, 31.8])  # nothing to show; any extent will do
    m = _new_map(page, lib_dir, bounds, tiles, f"轨迹回放 {worker_id} {day}", ("timedimension",))
    if grids is not None and len(grids):
        folium.GeoJson(
            shapely.geometry.mapping(grids["display"].iloc[0]),
            name="网格边界",
            style_function=lambda f: {"color": "#1a237e", "weight": 2.5, "fillOpacity": 0.04},
            control=False,
        ).add_to(m)
    if site_status is not None and grids is not None and len(grids):
        _site_layer(site_status[site_status["grid_id"] == grids["grid_id"].iloc[0]]).add_to(m)
    offset = int((ZoneInfo(tz).utcoffset(datetime.fromisoformat(day + "T12:00")) or timedelta(0)).total_seconds() // 60)
    ms = ((pts["ts"] - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(milliseconds=1)).to_numpy(dtype=np.int64)
    counted = pts["counted"].to_numpy(dtype=bool)
    if len(pts):
        span_s = (ms.max() - ms.min()) / 1000
        step_min = max(1, int(np.ceil(span_s / 60 / 600)))  # ≤ ~600 steps on the slider
        PlaybackGeoJson(
            pts["y"].to_numpy(),
            pts["x"].to_numpy(),
            ms,
            [
                (None, {"color": "#757575", "weight": 2, "dashArray": "4 4"}, "全部定位点"),
                (counted, {"color": "#1f6fd1", "weight": 4}, "计入巡查"),
            ],
            utc_offset_min=offset,
            period=f"PT{step_min}M",
            transition_time=100,
            auto_play=False,
            loop=False,
            add_last_point=True,
            date_options="YYYY-MM-DD HH:mm:ss",
            duration=None,
        ).add_to(m)
    dropped = pts[~counted]
    if len(dropped):
        idx = _stride(len(dropped), MAX_DISCARDED_PER_DAY)
        dropped = dropped.iloc[idx]
        PointsLayer(
            dropped["y"].to_numpy(),
            dropped["x"].to_numpy(),
            dropped["reason_cat"].to_numpy(),
            _reason_legend(),
            texts=(_reason_texts(dropped) + " " + _local_clock(dropped["ts"], tz)).tolist(),
            name="未计入的点（按原因）",
            radius=3,
            decimals=GPS_DECIMALS,
        ).add_to(m)
    head = f"轨迹回放：{worker_id} {day}"  # plain text: _title_box escapes it
    if status:
        head += f"（{c.STATUS_ZH.get(status, status)}{'，' + why if why else ''}）"
    summary = (
        f"定位点 {len(pts)} 个，计入巡查 {int(counted.sum())} 个。时间为 {html_text(tz)} 当地时间；"
        "拖动左下角时间轴或点 ▶ 播放。灰色虚线 = 全部定位点，蓝色 = 计入巡查。"
    )
    _title_box(m, head, summary, tiles, back=("../" + INDEX_PAGE) if page.parent.name == PLAYBACK_DIR else None)
    InfoBox(
        _legend_html(with_compliance=False, with_sites=site_status is not None, with_reasons=True, tracks=True),
        position="bottomright",
    ).add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)
    _write_page(m, page)


# --- layers and boxes ---------------------------------------------------------------------------


def _heat_layer(counted: pd.DataFrame, step_deg: float, show: bool) -> HeatLayer:
    """Every counted point, binned by ``step_deg`` and weighted by the bin's count."""
    lat, lon, n = heat_bins(counted["y"].to_numpy(), counted["x"].to_numpy(), step_deg)
    return HeatLayer(lat, lon, weight=n, name="巡查热力图（计入巡查的定位点密度）", show=show)


def _site_layer(site_status: pd.DataFrame) -> folium.FeatureGroup:
    """Sites by code and type only (no label): green all periods visited, red some missed.

    Hazard sites are circle markers at their position; personal sites (``coarse``) are the
    translucent square of their privacy cell, so nobody reads the centre as a door.
    """
    st = site_status
    cat = np.where(st["n"].to_numpy() == 0, 2, np.where(st["k"].to_numpy() >= st["n"].to_numpy(), 0, 1))
    texts = (
        html_texts(st["site_id"])
        + " · "
        + st["site_type"].map(c.SITE_TYPE_ZH).fillna("场所")
        + " · 走访周期 "
        + st["k"].astype(str)
        + "/"
        + st["n"].astype(str)
    )
    coarse = st["coarse"].to_numpy(dtype=bool)
    cell = st["cell_m"].round().astype(int).astype(str)  # astype, not map: an empty frame stays text
    texts = texts.where(~coarse, texts + " · 位置仅显示所在约 " + cell + " m 方格")
    group = folium.FeatureGroup(name="走访对象（编号）")
    if (~coarse).any():
        exact = st[~coarse]
        PointsLayer(
            exact["y"].to_numpy(),
            exact["x"].to_numpy(),
            cat[~coarse],
            SITE_COLORS,
            texts=texts[~coarse].tolist(),
            radius=6,
            weight=2,
            fill_opacity=0.7,
            control=False,
        ).add_to(group)
    if coarse.any():
        cells = st[coarse]
        CellsLayer(
            cells["south"].to_numpy(),
            cells["west"].to_numpy(),
            cells["north"].to_numpy(),
            cells["east"].to_numpy(),
            cat[coarse],
            SITE_COLORS,
            texts=texts[coarse].tolist(),
            control=False,
        ).add_to(group)
    return group


def _title_box(m: folium.Map, title: str, summary: str, tiles: TileConfig, back: str | None = None) -> None:
    """The page's title box: ``title`` plain text (escaped here), ``summary`` HTML (ours, with any
    workspace text in it already escaped), ``back`` a relative URL of ours."""
    parts = [f"<h1>{html_text(title)}</h1>", f"<div>{summary}</div>"]
    if tiles.withheld_note:
        parts.append(f"<div style='color:#8d6e63'>{html_text(tiles.withheld_note)}</div>")
    if back:
        parts.append(f"<div><a href='{html_text(url_path(back))}'>返回首页看板</a></div>")
    InfoBox("".join(parts), position="topleft").add_to(m)


def _overview_summary(stats: pd.DataFrame) -> str:
    wd, ok = int(stats["workdays"].sum()), int(stats["ok_days"].sum())
    rate = f"{ok / wd:.0%}" if wd else "—"
    return (
        f"{len(stats)} 个网格；全部工作日巡查达标率 {rate}（{ok}/{wd}）。"
        "<br>悬停网格看覆盖率、里程和时长；点击网格可打开该网格的页面。"
    )


HEAT_SWATCH = "linear-gradient(90deg, blue, cyan, lime, yellow, red)"  # leaflet.heat's default gradient


def _legend_html(
    with_compliance: bool = True,
    with_sites: bool = True,
    with_reasons: bool = False,
    heat: str | None = None,
    cell_m: float | None = None,
    tracks: bool = False,
) -> str:
    """The legend box: every colour of the page in Chinese, with what it counts and its unit.

    ``heat`` is ``"overview"`` (off by default, in the layer control) or ``"grid"``.
    """
    rows = []
    if with_compliance:
        rows.append("<b>巡查达标率</b>（达标工作日 ÷ 应巡工作日，%）")
        rows += [
            f"<div><span class='sw' style='background:{col}'></span>{label}</div>" for _, col, label in COMPLIANCE_BINS
        ]
        rows.append(f"<div><span class='sw' style='background:{NO_WORKDAY_COLOR}'></span>无考核工作日</div>")
    if cell_m is not None:
        rows.append(
            f"<div><span class='sw' style='background:rgba(38,166,154,0.5)'></span>已巡查单元（{cell_m:g} m × {cell_m:g} m 方格；"
            "覆盖率 = 已巡查单元 ÷ 网格内单元）</div>"
        )
    if tracks:
        rows.append(
            "<div><span class='sw' style='background:#1f6fd1;height:4px;vertical-align:3px'></span>计入巡查的轨迹</div>"
        )
    if heat:
        where = "默认关闭，在右上角图层中勾选" if heat == "overview" else "右上角图层中可关闭"
        rows.append(
            f"<div><span class='sw' style='background:{HEAT_SWATCH};width:40px'></span>巡查热力图：计入巡查的定位点"
            f"密度，蓝 → 红 由少到多（{where}）</div>"
        )
    if with_sites:
        rows.append("<b>走访对象（仅显示编号）</b>")
        rows += [
            f"<div><span class='sw dot' style='background:{col}'></span>{label}</div>" for label, col in SITE_COLORS
        ]
        rows.append(
            "<div><span class='sw' style='background:rgba(158,158,158,0.3)'></span>"
            "方格 = 重点人员、特殊人群、关爱对象：仅显示所在方格，不显示确切位置</div>"
        )
    if with_reasons:
        rows.append("<b>未计入的点</b>（不计巡查时长和里程）")
        rows += [
            f"<div><span class='sw dot' style='background:{col}'></span>{label}</div>"
            for label, col in _reason_legend()
        ]
    return "".join(rows)


def _reason_legend() -> list[tuple[str, str]]:
    return [(label, col) for label, col, _ in REASON_CATEGORIES] + [REASON_OTHER]


def _reason_texts(pts: pd.DataFrame) -> pd.Series:
    labels = np.array([label for label, _ in _reason_legend()], dtype=object)
    text = pd.Series(labels[pts["reason_cat"].to_numpy()], index=pts.index)
    other = pts["reason_cat"].to_numpy() == len(REASON_CATEGORIES)
    if other.any():
        raw = html_texts(pts["reason"].fillna("未说明"))
        text = text.where(~other, "其他：" + raw)
    return "未计入：" + text


# --- helpers ------------------------------------------------------------------------------------


def _prepare_points(point_use: pd.DataFrame, tiles: TileConfig, tz: str) -> pd.DataFrame:
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
        pts["day"] = _day_strings(point_use["date"]).to_numpy()
    else:
        pts["day"] = pts["ts"].dt.tz_convert(tz).dt.strftime("%Y-%m-%d")
    pts["date"] = pts["day"]
    pts["t_s"] = (pts["ts"] - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
    pts["x"], pts["y"] = overlay_transform(tiles)(pts["lon"].to_numpy(), pts["lat"].to_numpy())
    pts["reason_cat"] = reason_categories(pts["reason"], pts["in_grid"])
    return pts


def _read_day_flags(con: Any, first: date, last: date) -> pd.DataFrame | None:
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
    key = wd["worker_id"].astype(str) + "|" + _day_strings(wd["date"])
    extra = pd.Series(
        day_flags["flag"].astype(str).to_numpy(),
        index=day_flags["worker_id"].astype(str) + "|" + _day_strings(day_flags["date"]).to_numpy(),
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


def _day_strings(values: pd.Series) -> pd.Series:
    """Dates (date, Timestamp or text) as ``YYYY-MM-DD`` strings."""
    if len(values) == 0:
        return pd.Series([], dtype=object, index=values.index)
    return pd.Series(
        pd.to_datetime(values.astype(str).str.slice(0, 10), format="%Y-%m-%d").dt.strftime("%Y-%m-%d").to_numpy(),
        index=values.index,
    )


def _display_geom(geom: shapely.Geometry, transform: Any) -> shapely.Geometry:
    return shapely.transform(geom, lambda xy: np.column_stack(transform(xy[:, 0], xy[:, 1])))


def _bounds(geoms: np.ndarray) -> np.ndarray:
    b = shapely.bounds(geoms)
    return np.array([np.nanmin(b[:, 0]), np.nanmin(b[:, 1]), np.nanmax(b[:, 2]), np.nanmax(b[:, 3])])


def compliance_colors(rate: np.ndarray) -> np.ndarray:
    """The overview's fill of each compliance rate (:data:`COMPLIANCE_BINS`; grey for NaN).

    Examples
    --------
    >>> compliance_colors(np.array([1.0, 0.5, np.nan])).tolist()
    ['#1a9641', '#d7191c', '#bdbdbd']
    """
    colors = np.full(len(rate), NO_WORKDAY_COLOR, dtype=object)
    for threshold, color, _ in reversed(COMPLIANCE_BINS):
        colors[np.nan_to_num(rate, nan=-1.0) >= threshold] = color
    return colors


def _pct(values: pd.Series) -> pd.Series:
    v = pd.to_numeric(values, errors="coerce")
    return (v * 100).round(0).map(lambda x: "—" if pd.isna(x) else f"{x:.0f}%")


def _stride(n: int, max_n: int) -> np.ndarray:
    """Deterministic subsample: every k-th index so that at most ``max_n`` remain."""
    step = max(1, int(np.ceil(n / max_n))) if max_n > 0 else n + 1
    return np.arange(0, n, step)


def _local_clock(ts: pd.Series, tz: str) -> pd.Series:
    return ts.dt.tz_convert(tz).dt.strftime("%H:%M:%S")


_UNSAFE_IN_NAME = re.compile(r"[^\w\-.]")
_MAX_NAME = 48  # characters kept of an id: a page path stays far below Windows' 260
# names Windows reserves for devices, with any extension (pages are opened from shared folders)
_WINDOWS_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", *(f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10))})


def _safe_name(value: object) -> str:
    """A portable file name from an id: letters and digits of any script, ``-_.``; ``_`` for the rest.

    An id that had to change, or is longer than 48 characters, gets 8 hex digits of its SHA-256
    appended, so two ids never share a page (``a/b`` and ``a?b``) and a 5 000-character id is
    still a short name.

    Examples
    --------
    >>> _safe_name("G01"), _safe_name("西太湖-1")
    ('G01', '西太湖-1')
    >>> _safe_name("a/b"), _safe_name("a?b")
    ('a_b-c14cddc0', 'a_b-c2a7b64a')
    """
    text = str(value)
    safe = _UNSAFE_IN_NAME.sub("_", text).strip(".")[:_MAX_NAME]
    if safe == text and safe and safe.split(".")[0].upper() not in _WINDOWS_RESERVED:
        return safe
    return f"{safe or '_'}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"


def _require(df: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [col for col in columns if col not in df.columns]
    if missing:
        raise ValueError(f"{name} has no column(s) {', '.join(missing)}; found {', '.join(map(str, df.columns))}")


__all__ = [
    "render_month",
    "render_playback",
    "render_workspace_month",
    "with_day_flags",
    "month_bounds",
    "prepare_month",
    "grid_month_stats",
    "select_playback_days",
    "reason_categories",
    "compliance_colors",
    "workspace_tiles",
]
