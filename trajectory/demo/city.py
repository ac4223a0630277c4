"""The demo city: grid polygons that tile an area near 常州西太湖, and their GeoJSON text.

The shipped sample of these grids (40 grids, the default seed) is package data,
``trajectory/demo/data/xitaihu_demo.geojson`` (docs/decisions.md); ``write_sample_grids``
rewrites it and ``tests/trajectory/test_demo.py`` checks it is what ``make_grids`` gives.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from trajectory.demo.base import (
    CENTER_LAT,
    CENTER_LON,
    COMMUNITY_CELL_M2,
    COMMUNITY_SHARE,
    DEFAULT_N_GRIDS,
    DEFAULT_SEED,
    GRID_TYPE_COMMUNITY,
    GRID_TYPE_VILLAGE,
    NUMERALS,
    S_GRIDS,
    VILLAGE_CELL_M2,
    stream_rng,
)
from trajectory.geo import from_local, to_local

__all__ = ["SAMPLE_GRIDS_PATH", "grids_geojson_text", "make_grids", "to_local_geom", "write_sample_grids"]

SAMPLE_GRIDS_PATH = Path(__file__).resolve().parent / "data" / "xitaihu_demo.geojson"

# invented, clearly fictional place names (no real community or village)
_COMMUNITY_NAMES = ("湖韵", "澄波", "柳岸", "翠湾", "星澜", "锦荷", "清漪", "云帆", "鹭汀", "兰舟", "晴川", "汀芷")
_VILLAGE_NAMES = ("苇风", "桑青", "菱歌", "芦雪", "渔火", "荷风", "竹影", "稻香", "莼湾", "萍川", "蒲月", "藕塘")


def make_grids(seed: int = DEFAULT_SEED, n_grids: int = DEFAULT_N_GRIDS) -> gpd.GeoDataFrame:
    """Grid polygons that tile an area near 常州西太湖: 社区 in the core, larger 村 around it.

    Cells are a Voronoi tessellation of seeded points relaxed by Lloyd iterations, separately
    in a smooth core and in the ring around it, so cells are irregular but even in size.

    Parameters
    ----------
    seed : int
    n_grids : int
        Number of grids, at least 4.

    Returns
    -------
    GeoDataFrame
        EPSG:4326; ``grid_id`` ('XTH-001', ...), ``grid_name``, ``grid_type`` ('社区' or '村').

    Examples
    --------
    >>> g = make_grids(seed=1, n_grids=8)
    >>> list(g.columns), bool(g.geometry.is_valid.all())
    (['grid_id', 'grid_name', 'grid_type', 'geometry'], True)
    """
    if not 4 <= n_grids <= 500:
        raise ValueError(f"'n_grids' was {n_grids} but is expected to be between 4 and 500")
    rng = stream_rng(seed, S_GRIDS)
    n_comm = max(2, round(n_grids * COMMUNITY_SHARE))
    n_vill = n_grids - n_comm
    if n_vill < 2:
        n_comm, n_vill = n_grids - 2, 2
    r_in = math.sqrt(n_comm * COMMUNITY_CELL_M2 / math.pi)
    r_out = math.sqrt((n_comm * COMMUNITY_CELL_M2 + n_vill * VILLAGE_CELL_M2) / math.pi)
    core = _blob(r_in, rng, amplitude=1.0)
    outer = _blob(r_out, rng, amplitude=1.0)
    core = shapely.intersection(core, shapely.buffer(outer, -0.15 * (r_out - r_in)))
    ring = shapely.difference(outer, core)
    cells_c = _relaxed_cells(ring_or_core=core, n=n_comm, rng=rng)
    cells_v = _relaxed_cells(ring_or_core=ring, n=n_vill, rng=rng)
    rows = []
    for kind, cells, names, (lo, hi) in (
        (GRID_TYPE_COMMUNITY, cells_c, _COMMUNITY_NAMES, (3, 5)),
        (GRID_TYPE_VILLAGE, cells_v, _VILLAGE_NAMES, (2, 3)),
    ):
        c = shapely.get_coordinates(shapely.centroid(cells))
        order = np.argsort(np.arctan2(c[:, 1], c[:, 0]), kind="stable")
        group, in_group, size = 0, 0, int(rng.integers(lo, hi + 1))
        for i in order:
            if in_group == size:
                group, in_group, size = group + 1, 0, int(rng.integers(lo, hi + 1))
            in_group += 1
            base = names[group % len(names)] + ("" if group < len(names) else NUMERALS[group // len(names)])
            rows.append((f"{base}{kind}第{in_group}网格", kind, cells[i]))
    geoms = np.array([r[2] for r in rows], dtype=object)
    geoms = _coverage(geoms)
    lonlat = np.array([_to_lonlat_geom(g) for g in geoms], dtype=object)
    lonlat = shapely.orient_polygons(lonlat)  # RFC 7946: exterior rings counter-clockwise
    return gpd.GeoDataFrame(
        {
            "grid_id": [f"XTH-{i + 1:03d}" for i in range(len(rows))],
            "grid_name": [r[0] for r in rows],
            "grid_type": [r[1] for r in rows],
        },
        geometry=list(lonlat),
        crs=4326,
    )


def _coverage(geoms: np.ndarray) -> np.ndarray:
    """Make shared boundaries vertex-identical, so rounding to 1e-7° keeps the tiling exact.

    Core and ring cells are clipped separately, so a vertex on one side of the core outline
    may lie mid-segment on the other; snapping every cell to all vertices inserts it.
    """
    geoms = shapely.set_precision(geoms, 0.01)
    verts = shapely.multipoints(np.unique(shapely.get_coordinates(geoms), axis=0))
    return np.array([shapely.set_precision(shapely.snap(g, verts, 0.02), 0.01) for g in geoms], dtype=object)


def _blob(radius: float, rng: np.random.Generator, amplitude: float) -> shapely.Polygon:
    """A smooth closed outline around the frame origin: a circle with low-frequency waves."""
    theta = np.linspace(0.0, 2.0 * np.pi, 240, endpoint=False)
    r = np.ones_like(theta)
    for k, amp in ((2, 0.06), (3, 0.045), (5, 0.02)):
        r += amplitude * amp * rng.uniform(0.5, 1.0) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r *= radius
    return shapely.Polygon(np.column_stack([r * np.cos(theta), r * np.sin(theta)]))


def _relaxed_cells(ring_or_core: shapely.Geometry, n: int, rng: np.random.Generator) -> list[shapely.Geometry]:
    region = ring_or_core
    points = _points_in(region, n, rng)
    for _ in range(12):  # Lloyd relaxation: cells of even size, still irregular
        cells = _voronoi_cells(points, region)
        points = shapely.get_coordinates(shapely.centroid(cells))
    return _single_polygons(list(_voronoi_cells(points, region)))


def _points_in(region: shapely.Geometry, n: int, rng: np.random.Generator) -> np.ndarray:
    minx, miny, maxx, maxy = region.bounds
    found = np.empty((0, 2))
    while len(found) < n:
        cand = rng.uniform([minx, miny], [maxx, maxy], size=(4 * n, 2))
        found = np.vstack([found, cand[shapely.contains_xy(region, cand[:, 0], cand[:, 1])]])
    return found[:n]


def _voronoi_cells(points: np.ndarray, region: shapely.Geometry) -> np.ndarray:
    vor = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=region, ordered=True)
    cells = shapely.intersection(shapely.get_parts(vor), region)
    return np.array([_polygon_parts(c) for c in cells], dtype=object)


def _polygon_parts(geom: shapely.Geometry) -> shapely.Geometry:
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon") and p.area > 0]
    return shapely.union_all(parts) if len(parts) != 1 else parts[0]


def _single_polygons(cells: list[shapely.Geometry]) -> list[shapely.Geometry]:
    """Give each stray piece of a split cell to the neighbour it shares most boundary with."""
    for i in range(len(cells)):
        if cells[i].geom_type != "MultiPolygon":
            continue
        parts = sorted(shapely.get_parts(cells[i]), key=lambda g: -g.area)
        cells[i] = parts[0]
        for part in parts[1:]:
            shared = [
                -1.0 if j == i else shapely.intersection(part.boundary, c.boundary).length for j, c in enumerate(cells)
            ]
            j = int(np.argmax(shared))
            cells[j] = _polygon_parts(shapely.union(cells[j], part))
    return cells


def _to_lonlat_geom(geom: shapely.Geometry) -> shapely.Geometry:
    def f(c: np.ndarray) -> np.ndarray:
        lon, lat = from_local(c[:, 0], c[:, 1], CENTER_LON, CENTER_LAT)
        return np.round(np.column_stack([lon, lat]), 7)

    return shapely.transform(geom, f)


def to_local_geom(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda c: np.column_stack(to_local(c[:, 0], c[:, 1], CENTER_LON, CENTER_LAT)))


def grids_geojson_text(grids: gpd.GeoDataFrame, name: str = "xitaihu_demo") -> str:
    """GeoJSON text of :func:`make_grids` output, one feature per line, byte-stable."""
    lines = []
    for gid, gname, gtype, geom in zip(
        grids["grid_id"], grids["grid_name"], grids["grid_type"], grids.geometry, strict=True
    ):
        feature = {
            "type": "Feature",
            "properties": {"grid_id": gid, "grid_name": gname, "grid_type": gtype},
            "geometry": shapely.geometry.mapping(geom),
        }
        lines.append(json.dumps(feature, ensure_ascii=False, separators=(",", ":")))
    return '{"type":"FeatureCollection","name":"' + name + '","features":[\n' + ",\n".join(lines) + "\n]}\n"


def write_sample_grids(
    path: Path = SAMPLE_GRIDS_PATH, seed: int = DEFAULT_SEED, n_grids: int = DEFAULT_N_GRIDS
) -> Path:
    """Write the shipped sample grids (package data ``trajectory/demo/data/xitaihu_demo.geojson``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(grids_geojson_text(make_grids(seed, n_grids), path.stem), encoding="utf-8")
    return path
