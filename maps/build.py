"""Monthly map pages of patrol coverage (issue 5): overview, one page per grid, playbacks, index.

This module wires the stages together; each stage is its own module (docs/maps.md, "Modules"):
:mod:`maps.month_data` reads and prepares the month's frames, :mod:`maps.pages` writes the
overview, grid and playback pages from the pieces in :mod:`maps.layers`, and
:mod:`maps.dashboard` writes the index. The public names of those modules stay importable from
here (``from maps.build import prepare_month``).

Every function takes frames (the tables of ``patrol.duckdb``), so pages can be built and
tested without the engine; :func:`render_workspace_month` reads them from the store.
Pages are offline (``maps.offline``): scripts and styles come from ``out/YYYY-MM/lib/``.

Privacy (PIPL): sites are drawn by code and type only. ``sites.label`` (names, addresses) is
never read here; the frames are cut to the columns the maps need on entry. Personal sites (key
persons, special groups, care subjects) are moved to the centre of their ``privacy.site_cell_m``
cell on entry too (:func:`maps.privacy.coarsen_sites`) and drawn as that cell, never a pin.

Hostile input: every workspace string (ids, names, reasons, file names, the tile attribution)
goes through :mod:`maps.escape` on its way into a page: HTML-escaped once with ``html_text``,
into scripts only as JSON, and page and link names only from :func:`maps.layers.safe_name`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import shapely

from maps.coverage import DEFAULT_CELL_M, DEFAULT_MAX_GAP_S, GridRaster, HeatBins, grid_coverage
from maps.dashboard import (
    DashboardLinks,
    MonthScores,
    export_files,
    read_month_scores,
    relative_href,
    write_dashboard,
)
from maps.layers import (
    COMPLIANCE_BINS,
    GRID_HEAT_BIN_DEG,
    HEAT_SWATCH,
    MAX_DISCARDED_PER_DAY,
    MONTH_HEAT_BIN_DEG,
    NO_WORKDAY_COLOR,
    SITE_COLORS,
    compliance_colors,
    safe_name,
)
from maps.month_data import (
    MAP_POINT_COLUMNS,
    MAX_PLAYBACK_PAGES,
    POINT_USE_COLUMNS,
    REASON_CATEGORIES,
    REASON_OTHER,
    SITE_COLUMNS,
    MonthData,
    PointBatch,
    day_grids,
    day_strings,
    display_geom,
    flag_names,
    grid_month_stats,
    month_bounds,
    month_points,
    plan_point_batches,
    point_counts,
    prepare_month,
    prepare_points,
    read_month_frames,
    read_month_tables,
    read_points,
    reason_categories,
    select_playback_days,
    with_day_flags,
)
from maps.offline import LIB_DIRNAME, install_lib
from maps.pages import GRIDS_DIR, OVERVIEW_PAGE, PLAYBACK_DIR, write_grid_page, write_overview, write_playback
from maps.tiles import TileConfig, overlay_transform
from scoring.export import grid_sheet_names, workbook_name
from scoring.policy import PrivacyPolicy

log = logging.getLogger(__name__)

# rows of point_use one read of the store path may return (render_workspace_month). Measured
# (benchmarks/bench_maps.py, docs/maps.md "Bounded memory"): ≈ 0.4 KB of peak RSS a row over a
# ≈ 0.4 GB base, so ≈ 0.8 GB at 1 M rows; a grid whose workers sent more is read alone
MAX_BATCH_ROWS = 1_000_000


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
    data = prepare_month(month, grids, worker_day, site_check, sites, point_use, tiles, tz, privacy=privacy)
    everything = frozenset(data.grids["grid_id"]) | frozenset(data.worker_day["grid_id"])
    return _render_batches(
        Path(out_dir),
        data,
        [(everything, data.points)],  # the whole month as one batch
        data.points[["worker_id", "day"]],
        tiles,
        workbook_name,
        tz=tz,
        cell_m=cell_m,
        max_gap_s=max_gap_s,
        max_playback=max_playback,
        scores=scores,
        day_flags=day_flags,
    )


def _render_batches(
    out_dir: Path,
    data: MonthData,
    batches: Iterable[tuple[frozenset[str], pd.DataFrame]],
    days_with_points: pd.DataFrame,
    tiles: TileConfig,
    workbook_name: str | None,
    *,
    tz: str,
    cell_m: float,
    max_gap_s: float,
    max_playback: int,
    scores: MonthScores | None,
    day_flags: pd.DataFrame | None,
) -> list[Path]:
    """Write the month's pages from its points in ``batches``: both paths of the maps run this.

    Each batch is (grid ids, points): the prepared points (:func:`maps.month_data.month_points`)
    of those grids' worker-days, all of them, and points without a grid (no ``worker_day`` row)
    in exactly one batch. A batch writes its grids' pages, their coverage and the playbacks of
    its worker-days, and adds its counted points to the overview's heat bins; then it is dropped.
    The overview and the index come last, from the summed bins and the per-grid numbers.
    ``days_with_points`` (``worker_id, day``) tells :func:`select_playback_days` which days sent points.
    """
    lib_dir = install_lib(out_dir / LIB_DIRNAME)
    stats = grid_month_stats(data.grids, data.worker_day)
    selected = select_playback_days(data.worker_day, days_with_points, max_playback)
    # the batch holding a playback's points: that of its worker-day's grid (as the points got it)
    points_grid = selected[["worker_id", "day"]].merge(day_grids(data.worker_day), on=["worker_id", "day"], how="left")
    heat = HeatBins(MONTH_HEAT_BIN_DEG)
    coverages: list[pd.DataFrame] = []
    grid_pages: dict[str, Path] = {}
    playbacks: dict[tuple[str, str], Path] = {}
    for grid_ids, points in batches:  # one step per batch of grids, not per point
        batch = replace(data, points=points)
        tracks = points[points["counted"] & points["in_grid"] & points["grid_id"].notna()]
        coverage, rasters = grid_coverage(
            data.grids[data.grids["grid_id"].isin(grid_ids)],
            tracks[["grid_id", "worker_id", "date", "ts", "lon", "lat"]],
            cell_m,
            max_gap_s,
        )
        coverages.append(coverage)
        batch_stats = stats[stats["grid_id"].isin(grid_ids)].merge(coverage, on="grid_id", how="left")
        grid_pages.update(_write_grid_pages(out_dir, lib_dir, batch, batch_stats, rasters, tiles, max_gap_s))
        counted = points[points["counted"]]
        heat.add(counted["y"].to_numpy(), counted["x"].to_numpy())
        mine = selected[points_grid["grid_id"].isin(grid_ids).to_numpy()]
        playbacks.update(_write_playbacks(out_dir, lib_dir, batch, mine, tiles, tz, max_gap_s))
        del batch, tracks, counted, points
    coverage = pd.concat([c for c in coverages if len(c)] or coverages[:1] or [_no_coverage()], ignore_index=True)
    stats = stats.merge(coverage, on="grid_id", how="left")

    overview = out_dir / OVERVIEW_PAGE
    write_overview(overview, lib_dir, data, stats, tiles, heat)
    grid_order = [(str(g), grid_pages[str(g)]) for g in stats["grid_id"] if str(g) in grid_pages]
    play_order = [
        (k, playbacks[k])
        for k in zip(selected["worker_id"].astype(str), selected["day"].astype(str), strict=True)
        if k in playbacks
    ]
    pages = [overview] + [page for _, page in (*grid_order, *play_order)]
    workbook = workbook_name if workbook_name and (out_dir / workbook_name).is_file() else None
    links = DashboardLinks(
        overview=OVERVIEW_PAGE,
        grid_pages={g: relative_href(page, out_dir) for g, page in grid_order},
        playbacks={key: relative_href(page, out_dir) for key, page in play_order},
        workbook=workbook,
        sheets=grid_sheet_names(scores.scores["grid_id"].astype(str).unique()) if scores is not None else {},
        exports=export_files(out_dir),
    )
    pages.append(
        write_dashboard(out_dir, data.month, stats, data.worker_day, links, scores=scores, day_flags=day_flags)
    )
    _remove_stale_pages(out_dir, pages)
    return pages


def _no_coverage() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "grid_id": pd.Series([], dtype=object),
            "grid_cells": pd.Series([], dtype="int64"),
            "walked_cells": pd.Series([], dtype="int64"),
            "coverage": pd.Series([], dtype="float64"),
        }
    )


def _write_grid_pages(
    out_dir: Path,
    lib_dir: Path,
    data: MonthData,
    stats: pd.DataFrame,
    rasters: dict[str, tuple[GridRaster, Any]],
    tiles: TileConfig,
    max_gap_s: float,
) -> list[tuple[str, Path]]:
    """Write one page per grid of ``stats``; (grid id, page) in the order of ``stats``."""
    transform = overlay_transform(tiles)
    grid_pages: list[tuple[str, Path]] = []
    for row in stats.itertuples(index=False):
        page = out_dir / GRIDS_DIR / f"{safe_name(row.grid_id)}.html"
        raster, cells = rasters[row.grid_id]
        write_grid_page(page, lib_dir, data, row, raster, cells, tiles, transform, max_gap_s)
        grid_pages.append((str(row.grid_id), page))
    return grid_pages


def _write_playbacks(
    out_dir: Path,
    lib_dir: Path,
    data: MonthData,
    selected: pd.DataFrame,
    tiles: TileConfig,
    tz: str,
    max_gap_s: float,
) -> list[tuple[tuple[str, str], Path]]:
    """Write the playbacks of ``selected`` (rows of :func:`select_playback_days` whose points are
    in ``data.points``); ((worker, day), page) in that order."""
    playbacks: list[tuple[tuple[str, str], Path]] = []
    for wd in selected.itertuples(index=False):
        day_points = data.points[(data.points["worker_id"] == wd.worker_id) & (data.points["day"] == wd.day)]
        page = out_dir / PLAYBACK_DIR / f"{safe_name(wd.worker_id)}_{wd.day}.html"
        grid = data.grids[data.grids["grid_id"] == wd.grid_id]
        write_playback(
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
        playbacks.append(((str(wd.worker_id), str(wd.day)), page))
    return playbacks


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
    day_str = day_strings(pd.Series([day]))[0]
    pts = prepare_points(points, tiles, tz)
    pts["worker_id"] = str(worker_id)
    pts = pts.sort_values("ts", kind="stable")
    grids = (
        pd.DataFrame({"grid_id": ["-"], "display": [display_geom(grid, overlay_transform(tiles))]})
        if grid is not None
        else None
    )
    write_playback(out_path, lib_dir, str(worker_id), day_str, pts, grids, None, tiles, tz, max_gap_s)
    return out_path


def render_workspace_month(ws: Any, con: Any, month: str, *, max_batch_rows: int | None = None) -> list[Path]:
    """Render a workspace's month from its store (what ``trajectory.run --month`` calls).

    The month's points are never read at once: :func:`maps.month_data.plan_point_batches` packs
    the grids into batches of at most ``max_batch_rows`` point rows (default
    :data:`MAX_BATCH_ROWS`; a grid bigger than that is a batch alone), each read with
    :func:`maps.month_data.read_points` and drawn by the code of :func:`render_month`, so the
    pages are the same bytes as from the whole month's frame, and memory follows the biggest batch.

    Parameters
    ----------
    ws : trajectory.workspace.Workspace
    con : duckdb connection (read-only is enough)
    month : str
        ``YYYY-MM``.
    max_batch_rows : int, optional
        Row budget of one read of ``point_use`` (tests use a tiny one).
    """
    budget = MAX_BATCH_ROWS if max_batch_rows is None else int(max_batch_rows)
    if budget < 1:
        raise ValueError(f"max_batch_rows was {budget} but is expected to be ≥ 1")
    first, last = month_bounds(month)
    lo, hi = first.isoformat(), last.isoformat()
    worker_day, site_check, day_flags = read_month_tables(con, month)
    tiles = workspace_tiles(ws)
    tz = str(ws.tz)
    no_points = read_points(con, first, last, ())
    data = prepare_month(
        month, ws.grids, worker_day, site_check, ws.sites, no_points, tiles, tz, privacy=ws.policy.privacy
    )
    day_grid = day_grids(data.worker_day)
    counts = point_counts(con, first, last)
    grid_ids = list(dict.fromkeys([*data.grids["grid_id"], *day_grid["grid_id"]]))
    plan = plan_point_batches(grid_ids, day_grid, counts, budget)
    log.info(
        "step=maps_plan month=%s rows=%d batches=%d budget=%d largest=%d",  # the nightly log's key=value form
        month,
        int(counts["rows"].sum()),
        len(plan),
        budget,
        max((b.rows for b in plan), default=0),
    )

    def batches() -> Iterator[tuple[frozenset[str], pd.DataFrame]]:
        for i, b in enumerate(plan, 1):
            raw = read_points(con, first, last, b.workers)
            pts = month_points(raw, day_grid, tiles, tz, lo, hi)
            own = (
                pts["grid_id"].isin(list(b.grid_ids)).to_numpy()
                | (pts["grid_id"].isna() & pts["worker_id"].isin(list(b.home_workers))).to_numpy()
            )
            log.info(
                "step=maps_batch month=%s batch=%d batches=%d grids=%d rows=%d",
                month,
                i,
                len(plan),
                len(b.grid_ids),
                len(raw),
                extra={
                    "maps_batch": i,
                    "maps_batches": len(plan),
                    "maps_rows": len(raw),
                    "maps_grids": len(b.grid_ids),
                },
            )
            del raw
            pts = pts[own].reset_index(drop=True)
            yield frozenset(b.grid_ids), pts
            del pts  # before the next read: one batch in memory at a time

    out_dir = ws.paths.out_month(month)
    book = workbook_name(month)
    workbooks = [out_dir / book] if (out_dir / book).is_file() else sorted(out_dir.glob("*.xlsx"))
    return _render_batches(
        Path(out_dir),
        data,
        batches(),
        counts[["worker_id", "day"]].astype({"worker_id": str}),
        tiles,
        workbooks[0].name if workbooks else None,
        tz=tz,
        cell_m=DEFAULT_CELL_M,
        max_gap_s=float(ws.policy.patrol.points.max_gap_s),
        max_playback=MAX_PLAYBACK_PAGES,
        scores=read_month_scores(con, month, ws.policy),
        day_flags=day_flags,
    )


def render_workspace_month_at_once(ws: Any, con: Any, month: str, workbook: str | None = None) -> list[Path]:
    """The month's maps from the whole month's frames read at once (the path before issue 12).

    Memory grows with the month's points: kept to prove that :func:`render_workspace_month`
    writes the same bytes (tests, ``benchmarks.bench_maps``) and for small workspaces in a
    notebook. ``workbook`` names the month's workbook the dashboard links to.
    """
    worker_day, site_check, point_use, day_flags = read_month_frames(con, month)
    return render_month(
        ws.paths.out_month(month),
        month,
        ws.grids,
        worker_day,
        site_check,
        ws.sites,
        point_use,
        tiles=workspace_tiles(ws),
        workbook_name=workbook,
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


__all__ = [
    # this module
    "render_month",
    "render_playback",
    "render_workspace_month",
    "render_workspace_month_at_once",
    "workspace_tiles",
    "MAX_BATCH_ROWS",
    # re-exported: maps.month_data
    "MonthData",
    "SITE_COLUMNS",
    "POINT_USE_COLUMNS",
    "REASON_CATEGORIES",
    "REASON_OTHER",
    "MAX_PLAYBACK_PAGES",
    "month_bounds",
    "prepare_month",
    "read_month_frames",
    "read_month_tables",
    "read_points",
    "point_counts",
    "plan_point_batches",
    "PointBatch",
    "MAP_POINT_COLUMNS",
    "month_points",
    "day_grids",
    "grid_month_stats",
    "select_playback_days",
    "flag_names",
    "reason_categories",
    "with_day_flags",
    # re-exported: maps.layers, maps.pages
    "COMPLIANCE_BINS",
    "NO_WORKDAY_COLOR",
    "SITE_COLORS",
    "HEAT_SWATCH",
    "MONTH_HEAT_BIN_DEG",
    "GRID_HEAT_BIN_DEG",
    "MAX_DISCARDED_PER_DAY",
    "compliance_colors",
    "safe_name",
    "OVERVIEW_PAGE",
    "GRIDS_DIR",
    "PLAYBACK_DIR",
]
