"""The three kinds of map page: the month's overview, one page per grid, one playback per worker-day.

Each ``write_*`` function takes the prepared month (:class:`maps.month_data.MonthData`) or one
worker-day's points and writes one offline HTML file (:func:`maps.layers.write_page`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import folium
import numpy as np
import pandas as pd
import shapely

from maps.coverage import GridRaster, HeatBins, cell_rects
from maps.dashboard import (
    INDEX_PAGE,
)
from maps.elements import (
    GPS_DECIMALS,
    InfoBox,
    LinesLayer,
    PlaybackGeoJson,
    PointsLayer,
    RectanglesLayer,
)
from maps.escape import html_text, html_texts, url_path
from maps.layers import (
    GRID_HEAT_BIN_DEG,
    MAX_DISCARDED_PER_DAY,
    MONTH_HEAT_BIN_DEG,
    binned_heat_layer,
    compliance_colors,
    geom_bounds,
    heat_layer,
    legend_html,
    local_clock,
    new_map,
    pct_text,
    reason_legend,
    reason_texts,
    safe_name,
    site_layer,
    stride,
    title_box,
    write_page,
)
from maps.month_data import MonthData
from maps.tiles import TileConfig
from trajectory import contract as c

OVERVIEW_PAGE = "overview.html"
GRIDS_DIR = "grids"
PLAYBACK_DIR = "playback"


def write_overview(
    page: Path,
    lib_dir: Path,
    data: MonthData,
    stats: pd.DataFrame,
    tiles: TileConfig,
    heat: HeatBins | None = None,
) -> None:
    """The month's overview; its heat map from ``heat`` (the month's counted points binned by
    :data:`MONTH_HEAT_BIN_DEG`, summed batch by batch), else binned from ``data.points``."""
    display = np.asarray(data.grids["display"].to_numpy(), dtype=object)
    bounds = geom_bounds(display)
    m = new_map(page, lib_dir, bounds, tiles, f"{data.month} 网格巡查总览", ("heat",))
    st = stats.set_index("grid_id").loc[data.grids["grid_id"]].reset_index()
    fill = compliance_colors(st["compliance"].to_numpy())
    props = pd.DataFrame(
        {
            "grid_id": html_texts(st["grid_id"]),
            "grid_name": html_texts(st["grid_name"]),
            "type_zh": html_texts(st["grid_type"].map(c.GRID_TYPE_ZH).fillna(st["grid_type"])),
            "compliance": pct_text(st["compliance"])
            + " ("
            + st["ok_days"].astype(str)
            + "/"
            + st["workdays"].astype(str)
            + " 工作日)",
            "coverage": pct_text(st["coverage"])
            + " ("
            + st["walked_cells"].fillna(0).astype(int).astype(str)
            + "/"
            + st["grid_cells"].fillna(0).astype(int).astype(str)
            + " 单元)",
            "km": st["patrol_km"].map("{:.1f}".format),
            "hours": st["patrol_h"].map("{:.1f}".format),
            "fill": fill,
            "link": "<a href='"
            + st["grid_id"].map(lambda g: html_text(url_path(f"{GRIDS_DIR}/{safe_name(g)}.html")))
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
    if heat is None:
        heat = HeatBins(MONTH_HEAT_BIN_DEG)
        counted = data.points[data.points["counted"]]
        heat.add(counted["y"].to_numpy(), counted["x"].to_numpy())
    bins = heat.bins()
    if len(bins[2]):
        # off by default: the compliance colours are what a first look should see
        binned_heat_layer(bins, show=False).add_to(m)
    site_layer(data.site_status).add_to(m)
    title_box(m, f"{data.month} 网格巡查总览", _overview_summary(stats), tiles)
    InfoBox(legend_html(heat="overview"), position="bottomright").add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    write_page(m, page)


def write_grid_page(
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
    m = new_map(
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
            name=f"已巡查单元（{raster.cell_m:g} m 方格，覆盖率 {pct_text(pd.Series([row.coverage])).iloc[0]}）",
        ).add_to(m)
    pts = data.points[data.points["grid_id"] == row.grid_id]
    counted = pts[pts["counted"]]
    if len(counted):
        heat_layer(counted, GRID_HEAT_BIN_DEG, show=True).add_to(m)
    site_layer(data.site_status[data.site_status["grid_id"] == row.grid_id]).add_to(m)
    days = data.worker_day[data.worker_day["grid_id"] == row.grid_id].set_index(["worker_id", "day"])
    if len(pts):
        key = pts["worker_id"] + "|" + pts["day"]
        starts = np.flatnonzero(np.r_[True, key.to_numpy()[1:] != key.to_numpy()[:-1]])
        for s, e in zip(starts, np.r_[starts[1:], len(pts)], strict=True):  # one layer per worker-day
            _worker_day_layer(pts.iloc[s:e], days, max_gap_s).add_to(m)
    title_box(
        m,
        f"{row.grid_id} {row.grid_name}（{c.GRID_TYPE_ZH.get(row.grid_type, row.grid_type)}）",
        f"{data.month}：达标率 {pct_text(pd.Series([row.compliance])).iloc[0]}（{row.ok_days}/{row.workdays} 工作日），"
        f"覆盖率 {pct_text(pd.Series([row.coverage])).iloc[0]}，{row.patrol_km:.1f} km，{row.patrol_h:.1f} h"
        "<br>每个工作日轨迹为一个图层（右上角勾选）：实线 = 计入巡查，圆点 = 未计入（悬停看原因）",
        tiles,
        back="../" + INDEX_PAGE,
    )
    InfoBox(
        legend_html(with_compliance=False, with_reasons=True, heat="grid", cell_m=raster.cell_m, tracks=True),
        position="bottomright",
    ).add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)
    write_page(m, page)


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
    if len(dropped):
        _discarded_points(dropped, radius=2.5, control=False).add_to(group)
    return group


def _discarded_points(
    dropped: pd.DataFrame, tz: str | None = None, *, name: str | None = None, radius: float, control: bool = True
) -> PointsLayer:
    """A day's discarded points (at most :data:`MAX_DISCARDED_PER_DAY`, evenly strided) coloured by
    reason, the reason their tooltip (and with ``tz``, the local clock time after it)."""
    dropped = dropped.iloc[stride(len(dropped), MAX_DISCARDED_PER_DAY)]
    texts = reason_texts(dropped)
    if tz is not None:
        texts = texts + " " + local_clock(dropped["ts"], tz)
    return PointsLayer(
        dropped["y"].to_numpy(),
        dropped["x"].to_numpy(),
        dropped["reason_cat"].to_numpy(),
        reason_legend(),
        texts=texts.tolist(),
        name=name,
        radius=radius,
        control=control,
        decimals=GPS_DECIMALS,
    )


def write_playback(
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
        bounds = geom_bounds(np.asarray(grids["display"].to_numpy(), dtype=object))
    elif len(pts):
        bounds = np.array([pts["x"].min(), pts["y"].min(), pts["x"].max(), pts["y"].max()])
    else:
        bounds = np.array([119.9, 31.7, 120.0, 31.8])  # nothing to show; any extent will do
    m = new_map(page, lib_dir, bounds, tiles, f"轨迹回放 {worker_id} {day}", ("timedimension",))
    if grids is not None and len(grids):
        folium.GeoJson(
            shapely.geometry.mapping(grids["display"].iloc[0]),
            name="网格边界",
            style_function=lambda f: {"color": "#1a237e", "weight": 2.5, "fillOpacity": 0.04},
            control=False,
        ).add_to(m)
    if site_status is not None and grids is not None and len(grids):
        site_layer(site_status[site_status["grid_id"] == grids["grid_id"].iloc[0]]).add_to(m)
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
        _discarded_points(dropped, tz, name="未计入的点（按原因）", radius=3).add_to(m)
    head = f"轨迹回放：{worker_id} {day}"  # plain text: title_box escapes it
    if status:
        head += f"（{c.STATUS_ZH.get(status, status)}{'，' + why if why else ''}）"
    summary = (
        f"定位点 {len(pts)} 个，计入巡查 {int(counted.sum())} 个。时间为 {html_text(tz)} 当地时间；"
        "拖动左下角时间轴或点 ▶ 播放。灰色虚线 = 全部定位点，蓝色 = 计入巡查。"
    )
    title_box(m, head, summary, tiles, back=("../" + INDEX_PAGE) if page.parent.name == PLAYBACK_DIR else None)
    InfoBox(
        legend_html(with_compliance=False, with_sites=site_status is not None, with_reasons=True, tracks=True),
        position="bottomright",
    ).add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)
    write_page(m, page)


def _overview_summary(stats: pd.DataFrame) -> str:
    wd, ok = int(stats["workdays"].sum()), int(stats["ok_days"].sum())
    rate = f"{ok / wd:.0%}" if wd else "—"
    return (
        f"{len(stats)} 个网格；全部工作日巡查达标率 {rate}（{ok}/{wd}）。"
        "<br>悬停网格看覆盖率、里程和时长；点击网格可打开该网格的页面。"
    )


__all__ = ["OVERVIEW_PAGE", "GRIDS_DIR", "PLAYBACK_DIR", "write_overview", "write_grid_page", "write_playback"]
