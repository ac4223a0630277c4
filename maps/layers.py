"""The pieces every map page is built from: the base map, heat and site layers, title and legend boxes.

Every workspace string goes through :mod:`maps.escape` (``html_text``) on its way in; page and
link names come only from :func:`safe_name`.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import cast

import folium
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, Figure

from maps.coverage import heat_bins
from maps.elements import (
    CellsLayer,
    HeatLayer,
    InfoBox,
    PointsLayer,
    RawHtml,
    RawScript,
)
from maps.escape import html_text, html_texts, url_path
from maps.month_data import REASON_CATEGORIES, REASON_OTHER
from maps.offline import check_offline, lib_href, local_assets
from maps.tiles import TileConfig, tile_layers
from trajectory import contract as c

# Compliance classes of the overview (display bins, not assessment thresholds)
COMPLIANCE_BINS = (
    (0.95, "#1a9641", "≥ 95%"),
    (0.80, "#a6d96a", "80–95%"),
    (0.60, "#fdae61", "60–80%"),
    (0.0, "#d7191c", "< 60%"),
)
NO_WORKDAY_COLOR = "#bdbdbd"
SITE_COLORS = (("已走访", "#2e7d32"), ("有未走访周期", "#c62828"), ("本月无检查周期", "#9e9e9e"))

# heat maps draw every counted point, binned (maps.coverage.heat_bins): ≈ 22 m on the overview,
# ≈ 11 m on a grid page, well below the heat radius (12 px ≥ 14 m at its most detailed zoom)
MONTH_HEAT_BIN_DEG = 2e-4
GRID_HEAT_BIN_DEG = 1e-4
MAX_DISCARDED_PER_DAY = 5_000


# --- the base map and the page file ----------------------------------------------------------


def new_map(
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


def write_page(m: folium.Map, page: Path) -> Path:
    root = m.get_root()
    doc = check_offline(stable_ids(root, root.render()), str(page))
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(doc, encoding="utf-8")
    return page


_HEX_ID = re.compile(r"[0-9a-f]{32}")


def stable_ids(root: Element, doc: str) -> str:
    """``doc`` (``root`` rendered) with branca's random element ids renumbered in order of appearance.

    branca names every element ``<kind>_<32 random hex digits>``: the same month rendered twice
    gave different files. Only the ids of the elements of ``root``'s tree (after rendering) are
    renumbered, so a 32-hex string of the data stays as it is; the same inputs now give the same
    bytes, which is how the bounded store path is checked against the one-shot path.
    """
    ids: set[str] = set()
    stack = [root]
    while stack:  # one entry per element of the page, not per point
        el = stack.pop()
        ids.add(el._id)
        stack.extend(el._children.values())
    seen: dict[str, str] = {}

    def renumber(match: re.Match[str]) -> str:
        old = match.group(0)
        if old not in ids:
            return old
        return seen.setdefault(old, f"{len(seen):032x}")

    return _HEX_ID.sub(renumber, doc)


# --- layers and boxes ---------------------------------------------------------------------------


def heat_layer(counted: pd.DataFrame, step_deg: float, show: bool) -> HeatLayer:
    """Every counted point, binned by ``step_deg`` and weighted by the bin's count."""
    return binned_heat_layer(heat_bins(counted["y"].to_numpy(), counted["x"].to_numpy(), step_deg), show)


def binned_heat_layer(bins: tuple[np.ndarray, np.ndarray, np.ndarray], show: bool) -> HeatLayer:
    """The heat layer of already binned points (:func:`maps.coverage.heat_bins` or ``HeatBins.bins``)."""
    lat, lon, n = bins
    return HeatLayer(lat, lon, weight=n, name="巡查热力图（计入巡查的定位点密度）", show=show)


def site_layer(site_status: pd.DataFrame) -> folium.FeatureGroup:
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


def title_box(m: folium.Map, title: str, summary: str, tiles: TileConfig, back: str | None = None) -> None:
    """The page's title box: ``title`` plain text (escaped here), ``summary`` HTML (ours, with any
    workspace text in it already escaped), ``back`` a relative URL of ours."""
    parts = [f"<h1>{html_text(title)}</h1>", f"<div>{summary}</div>"]
    if tiles.withheld_note:
        parts.append(f"<div style='color:#8d6e63'>{html_text(tiles.withheld_note)}</div>")
    if back:
        parts.append(f"<div><a href='{html_text(url_path(back))}'>返回首页看板</a></div>")
    InfoBox("".join(parts), position="topleft").add_to(m)


HEAT_SWATCH = "linear-gradient(90deg, blue, cyan, lime, yellow, red)"  # leaflet.heat's default gradient


def legend_html(
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
            f"<div><span class='sw dot' style='background:{col}'></span>{label}</div>" for label, col in reason_legend()
        ]
    return "".join(rows)


def reason_legend() -> list[tuple[str, str]]:
    return [(label, col) for label, col, _ in REASON_CATEGORIES] + [REASON_OTHER]


def reason_texts(pts: pd.DataFrame) -> pd.Series:
    labels = np.array([label for label, _ in reason_legend()], dtype=object)
    text = pd.Series(labels[pts["reason_cat"].to_numpy()], index=pts.index)
    other = pts["reason_cat"].to_numpy() == len(REASON_CATEGORIES)
    if other.any():
        raw = html_texts(pts["reason"].fillna("未说明"))
        text = text.where(~other, "其他：" + raw)
    return "未计入：" + text


def geom_bounds(geoms: np.ndarray) -> np.ndarray:
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


def pct_text(values: pd.Series) -> pd.Series:
    v = pd.to_numeric(values, errors="coerce")
    return (v * 100).round(0).map(lambda x: "—" if pd.isna(x) else f"{x:.0f}%")


def stride(n: int, max_n: int) -> np.ndarray:
    """Deterministic subsample: every k-th index so that at most ``max_n`` remain."""
    step = max(1, int(np.ceil(n / max_n))) if max_n > 0 else n + 1
    return np.arange(0, n, step)


def local_clock(ts: pd.Series, tz: str) -> pd.Series:
    return ts.dt.tz_convert(tz).dt.strftime("%H:%M:%S")


_UNSAFE_IN_NAME = re.compile(r"[^\w\-.]")
_MAX_NAME = 48  # characters kept of an id: a page path stays far below Windows' 260
# names Windows reserves for devices, with any extension (pages are opened from shared folders)
_WINDOWS_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", *(f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10))})


def safe_name(value: object) -> str:
    """A portable file name from an id: letters and digits of any script, ``-_.``; ``_`` for the rest.

    An id that had to change, or is longer than 48 characters, gets 8 hex digits of its SHA-256
    appended, so two ids never share a page (``a/b`` and ``a?b``) and a 5 000-character id is
    still a short name.

    Examples
    --------
    >>> safe_name("G01"), safe_name("西太湖-1")
    ('G01', '西太湖-1')
    >>> safe_name("a/b"), safe_name("a?b")
    ('a_b-c14cddc0', 'a_b-c2a7b64a')
    """
    text = str(value)
    safe = _UNSAFE_IN_NAME.sub("_", text).strip(".")[:_MAX_NAME]
    if safe == text and safe and safe.split(".")[0].upper() not in _WINDOWS_RESERVED:
        return safe
    return f"{safe or '_'}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"


__all__ = [
    "COMPLIANCE_BINS",
    "NO_WORKDAY_COLOR",
    "SITE_COLORS",
    "HEAT_SWATCH",
    "MONTH_HEAT_BIN_DEG",
    "GRID_HEAT_BIN_DEG",
    "MAX_DISCARDED_PER_DAY",
    "new_map",
    "write_page",
    "stable_ids",
    "heat_layer",
    "binned_heat_layer",
    "site_layer",
    "title_box",
    "legend_html",
    "reason_legend",
    "reason_texts",
    "geom_bounds",
    "compliance_colors",
    "pct_text",
    "stride",
    "local_clock",
    "safe_name",
]
