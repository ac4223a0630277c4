"""A realistic, deterministic demo workspace (SPEC §2), built from a seed.

``build_demo_workspace`` writes a whole workspace near 常州西太湖: grid polygons that tile an
area (a relaxed Voronoi tessellation, communities 社区 in the core and larger villages 村 on
the outskirts), a roster with one full-time worker per grid plus part-timers, key sites,
leave, a calendar override, a month of phone GPS in mixed file formats, and the centre's
indicator tables. Every full-time worker follows a behaviour profile (diligent, lazy, phone
left on a desk, car patrols, absences with leave filed in time or late, mock locations,
mornings only, a replayed track), so each rule of the assessment has something to find.

Everything is synthetic: names are placeholders (网格员甲一, 重点人员（示例）) and no record
describes a real person. The same seed gives byte-identical files.

Examples
--------
>>> import tempfile
>>> grids = make_grids(seed=7, n_grids=6)
>>> len(grids), sorted(set(grids["grid_type"]))
(6, ['村', '社区'])

Command line: ``python -m trajectory.demo --out DIR [--month 2026-10] [--seed N]``.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import heapq
import json
import math
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from scoring.policy import load_policy
from trajectory.calendar import is_official_workday, workday_flags
from trajectory.contract import (
    CALENDAR_COLUMNS,
    LEAVE_COLUMNS,
    SITE_CARE_SUBJECT,
    SITE_HAZARD,
    SITE_KEY_PERSON,
    SITE_SPECIAL_GROUP,
    WORKERS_COLUMNS,
)
from trajectory.errors import WorkspaceError
from trajectory.geo import from_local, to_local
from trajectory.workspace import WorkspacePaths

__all__ = ["DemoManifest", "PROFILES", "build_demo_workspace", "make_grids", "main"]

DEFAULT_MONTH = "2026-10"
DEFAULT_SEED = 20261001
DEFAULT_N_GRIDS = 40

# the demo area: 常州西太湖, one local metric frame for everything (trajectory.geo)
CENTER_LON, CENTER_LAT = 119.90, 31.675
TIMEZONE = "Asia/Shanghai"
UTC_OFFSET_S = 8 * 3600  # Asia/Shanghai has had no daylight saving since 1991
GRID_TYPE_COMMUNITY, GRID_TYPE_VILLAGE = "社区", "村"
COMMUNITY_SHARE = 0.55
COMMUNITY_CELL_M2 = 0.48e6  # target cell areas: relaxed cells end within ~0.3–1.5 km²
VILLAGE_CELL_M2 = 0.85e6
GPS_NOISE_M = 4.0
SAMPLE_S = (5, 10)

GRIDS_FILE_NAME = "grids.geojson"
SAMPLE_GRIDS_PATH = Path(__file__).resolve().parent.parent / "grids_geojson" / "xitaihu_demo.geojson"

# behaviour profiles of full-time workers
DILIGENT = "diligent"
LAZY = "lazy"
DESK_PHONE = "desk_phone"
CAR = "car"
ABSENT_LEAVE_IN_TIME = "absent_leave_in_time"
ABSENT_LEAVE_LATE = "absent_leave_late"
MOCK_LOCATION = "mock_location"
MORNING_ONLY = "morning_only"
REPLAY = "replay"
PART_TIME = "part_time"
PROFILES = (
    DILIGENT,
    LAZY,
    DESK_PHONE,
    CAR,
    ABSENT_LEAVE_IN_TIME,
    ABSENT_LEAVE_LATE,
    MOCK_LOCATION,
    MORNING_ONLY,
    REPLAY,
)
# handed out in this order to randomly chosen workers; the rest are diligent
_SPECIAL_ORDER = (
    LAZY,
    DESK_PHONE,
    CAR,
    ABSENT_LEAVE_IN_TIME,
    ABSENT_LEAVE_LATE,
    MOCK_LOCATION,
    MORNING_ONLY,
    REPLAY,
    LAZY,
)

# invented, clearly fictional place names (no real community or village)
_COMMUNITY_NAMES = ("湖韵", "澄波", "柳岸", "翠湾", "星澜", "锦荷", "清漪", "云帆", "鹭汀", "兰舟", "晴川", "汀芷")
_VILLAGE_NAMES = ("苇风", "桑青", "菱歌", "芦雪", "渔火", "荷风", "竹影", "稻香", "莼湾", "萍川", "蒲月", "藕塘")
_STEMS = "甲乙丙丁戊己庚辛壬癸"
_NUMERALS = ("一", "二", "三", "四", "五", "六", "七", "八", "九", "十")
_SITE_CODES = {SITE_KEY_PERSON: "KP", SITE_SPECIAL_GROUP: "SG", SITE_CARE_SUBJECT: "CS", SITE_HAZARD: "HZ"}
_SITE_LABELS = {
    SITE_KEY_PERSON: ("重点人员（示例）",),
    SITE_SPECIAL_GROUP: ("特殊人群（示例）",),
    SITE_CARE_SUBJECT: ("关爱对象（示例）",),
    SITE_HAZARD: (
        "加油站（示例）",
        "液化气供应点（示例）",
        "在建工地（示例）",
        "危化品仓库（示例）",
        "老旧厂房（示例）",
    ),
}
# stay at a site on a visit (s): 2–5 min for hazard sites, a household call for people
_VISIT_PAUSE_S = {
    SITE_HAZARD: (130, 300),
    SITE_KEY_PERSON: (300, 720),
    SITE_SPECIAL_GROUP: (240, 600),
    SITE_CARE_SUBJECT: (240, 600),
}

# rng stream keys (np.random.default_rng([seed, key, ...])): independent of loop order
_S_GRIDS, _S_STREETS, _S_SITES, _S_PROFILES, _S_PLAN, _S_DAY, _S_FILES, _S_INDICATORS = range(1, 9)


@dataclass(frozen=True)
class DemoManifest:
    """What :func:`build_demo_workspace` wrote.

    Attributes
    ----------
    root : Path
        The workspace folder.
    month : str
        ``YYYY-MM``.
    grid_ids : tuple of str
    profiles : dict
        ``worker_id -> profile`` for every worker (part-timers are ``'part_time'``).
    counts : dict
        Numbers of grids, workers, sites, GPS points and files, bad rows, events, ...
    """

    root: Path
    month: str
    grid_ids: tuple[str, ...]
    profiles: dict[str, str]
    counts: dict[str, int] = field(default_factory=dict)


# =========================================================================================
# grids
# =========================================================================================


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
    rng = _rng(seed, _S_GRIDS)
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
            base = names[group % len(names)] + ("" if group < len(names) else _NUMERALS[group // len(names)])
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


def _to_local_geom(geom: shapely.Geometry) -> shapely.Geometry:
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


# =========================================================================================
# streets and walks
# =========================================================================================


@dataclass
class _Network:
    """A street graph inside one grid (local metres): nodes, edges as polylines, routing."""

    node_xy: np.ndarray
    edge_coords: list[np.ndarray]
    edge_len: np.ndarray
    adj: list[list[tuple[int, int, bool]]]  # node -> (neighbour, edge, forward)
    _pred: dict[int, np.ndarray] = field(default_factory=dict)

    def route(self, a: int, b: int) -> list[tuple[np.ndarray, float]]:
        """Shortest path a → b as oriented edge polylines with their lengths."""
        pred = self._pred.get(a)
        if pred is None:
            pred = self._pred[a] = self._dijkstra(a)
        out = []
        node = b
        while node != a:
            prev, edge, forward = self.adj[node][pred[node]]
            coords = self.edge_coords[edge]
            # adj[node] holds the edge seen from `node`; the walk goes prev -> node
            out.append((coords[::-1] if forward else coords, float(self.edge_len[edge])))
            node = prev
        return out[::-1]

    def _dijkstra(self, a: int) -> np.ndarray:
        n = len(self.node_xy)
        dist = np.full(n, np.inf)
        pred = np.full(n, -1, dtype=np.int64)  # index into adj[node] of the edge back to the tree
        dist[a] = 0.0
        heap = [(0.0, a)]
        while heap:
            d, u = heapq.heappop(heap)
            if d > dist[u]:
                continue
            for v, e, _ in self.adj[u]:
                nd = d + self.edge_len[e]
                if nd < dist[v]:
                    dist[v] = nd
                    pred[v] = next(k for k, (w, ee, _) in enumerate(self.adj[v]) if w == u and ee == e)
                    heapq.heappush(heap, (nd, v))
        return pred


def _street_network(poly: shapely.Polygon, rng: np.random.Generator, spacing: float) -> _Network:
    """Jittered, slightly rotated street grid clipped to the polygon, plus its edge ring.

    Lines are noded against the ring before clipping so every street meets the boundary road
    exactly; about 15 % of inner street pieces are removed (cul-de-sacs, T-junctions).
    """
    minx, miny, maxx, maxy = poly.bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half = math.hypot(maxx - minx, maxy - miny) / 2 + spacing
    angle = rng.uniform(0, np.pi / 2)
    lines = []
    for direction in (0, 1):
        a = angle + direction * (np.pi / 2 + rng.normal(0, 0.08))
        ux, uy = math.cos(a), math.sin(a)  # along the street
        px, py = -uy, ux  # across
        for off in np.arange(-half, half, spacing) + rng.uniform(0, spacing):
            along = np.arange(-half, half + spacing / 2, spacing / 2)
            across = off + rng.normal(0, 0.1 * spacing) + rng.normal(0, 0.05 * spacing, along.size)
            lines.append(shapely.linestrings(cx + along * ux + across * px, cy + along * uy + across * py))
    ring = poly.exterior
    noded = shapely.get_parts(shapely.union_all(np.array([*lines, ring], dtype=object)))
    mid = shapely.line_interpolate_point(noded, 0.5, normalized=True)
    inside = shapely.contains_xy(shapely.buffer(poly, 0.05), *shapely.get_coordinates(mid).T)
    on_ring = shapely.distance(mid, ring) < 0.01
    keep = inside & (on_ring | (rng.random(len(noded)) > 0.15)) & (shapely.length(noded) > 0.5)
    edges = noded[keep]
    coords = [shapely.get_coordinates(e) for e in edges]
    ends = np.array([[c[0], c[-1]] for c in coords]).reshape(-1, 2)
    key = np.round(ends, 2)
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.reshape(-1, 2)
    # keep the largest connected component
    parent = list(range(len(uniq)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for u, v in inv:
        parent[find(int(u))] = find(int(v))
    roots = np.array([find(i) for i in range(len(uniq))])
    big = np.bincount(roots).argmax()
    edge_keep = roots[inv[:, 0]] == big
    node_ids = np.flatnonzero(roots == big)
    remap = np.full(len(uniq), -1)
    remap[node_ids] = np.arange(len(node_ids))
    adj: list[list[tuple[int, int, bool]]] = [[] for _ in node_ids]
    edge_coords: list[np.ndarray] = []
    edge_len: list[float] = []
    for (u, v), c, k in zip(inv, coords, edge_keep, strict=True):
        if not k or u == v:
            continue
        e = len(edge_coords)
        edge_coords.append(c)
        edge_len.append(float(np.hypot(*np.diff(c, axis=0).T).sum()))
        adj[remap[u]].append((int(remap[v]), e, True))
        adj[remap[v]].append((int(remap[u]), e, False))
    return _Network(uniq[node_ids].astype(float), edge_coords, np.array(edge_len), adj)


@dataclass
class _Track:
    """Samples of one patrol piece: seconds since local midnight, local metres, phone fields."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    speed: np.ndarray
    accuracy: np.ndarray
    mock: np.ndarray

    @staticmethod
    def concat(parts: Sequence[_Track]) -> _Track:
        return _Track(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in ("t", "x", "y", "speed", "accuracy", "mock"))
        )


def _walk(
    net: _Network,
    rng: np.random.Generator,
    start: int,
    t0: int,
    duration_s: float,
    visits: list[tuple[int, float]],
    sample_s: tuple[int, int],
    car_window: tuple[float, float] | None = None,
) -> tuple[_Track, int]:
    """Walk (or drive) shortest routes between waypoints, pausing at visits; sample it.

    The route is a polyline; time maps to distance along it piecewise linearly (per-edge
    speeds, flat during pauses), then samples interpolate both, all in NumPy.
    """
    base_v = rng.uniform(1.0, 1.5)
    n_nodes = len(net.node_xy)
    verts = [net.node_xy[start][None, :]]
    knot_t, knot_s, knot_v = [0.0], [0.0], []
    t = s = 0.0
    cur = start
    queue = list(visits)
    while t < duration_s:
        if queue:
            target, pause = queue.pop(0)
        else:
            target = int(rng.integers(n_nodes))
            r = rng.random()
            pause = rng.uniform(20, 120) if r < 0.25 else (rng.uniform(240, 720) if r < 0.31 else 0.0)
        for coords, length in net.route(cur, target):
            in_car = car_window is not None and car_window[0] <= t < car_window[1]
            v = rng.uniform(8.3, 13.9) if in_car else base_v * rng.uniform(0.88, 1.12)
            verts.append(coords[1:])
            t += length / v
            s += length
            knot_t.append(t)
            knot_s.append(s)
            knot_v.append(v)
        if pause > 0:
            t += pause
            knot_t.append(t)
            knot_s.append(s)
            knot_v.append(0.0)
        cur = target
    kt, ks, kv = np.array(knot_t), np.array(knot_s), np.array(knot_v)
    tt = _sample_times(rng, min(duration_s, kt[-1]), sample_s)
    dist = np.interp(tt, kt, ks)
    vx = np.concatenate(verts)
    step = np.hypot(*np.diff(vx, axis=0).T)
    moving = step > 1e-6
    vx = vx[np.concatenate([[True], moving])]
    cum = np.concatenate([[0.0], np.cumsum(step[moving])])
    x = np.interp(dist, cum, vx[:, 0])
    y = np.interp(dist, cum, vx[:, 1])
    seg = np.clip(np.searchsorted(kt, tt, side="right") - 1, 0, len(kv) - 1)
    speed = kv[seg]
    n = len(tt)
    return _Track(tt + t0, x, y, speed, np.zeros(n), np.zeros(n, dtype=bool)), cur


def _stay(rng: np.random.Generator, xy: np.ndarray, t0: int, duration_s: float, sample_s: tuple[int, int]) -> _Track:
    """A phone lying still (on a desk): one position for the whole time."""
    tt = _sample_times(rng, duration_s, sample_s)
    n = len(tt)
    return _Track(tt + t0, np.full(n, xy[0]), np.full(n, xy[1]), np.zeros(n), np.zeros(n), np.zeros(n, dtype=bool))


def _sample_times(rng: np.random.Generator, duration_s: float, sample_s: tuple[int, int]) -> np.ndarray:
    n = int(duration_s / sample_s[0]) + 2
    tt = np.concatenate([[0], np.cumsum(rng.integers(sample_s[0], sample_s[1] + 1, size=n))])
    return tt[tt <= duration_s].astype(np.int64)


def _degrade(rng: np.random.Generator, tr: _Track, indoor: bool = False) -> _Track:
    """What a phone makes of a true track: noise, accuracy, speed, spikes and gaps."""
    n = len(tr.t)
    if n == 0:
        return tr
    acc = np.exp(rng.normal(math.log(12.0 if indoor else 6.5), 0.35, n))
    acc = np.clip(acc, 3.0, 40.0 if indoor else 15.0)
    poor = rng.random(n) < (0.05 if indoor else 0.012)  # under trees, indoors: accuracy > 50 m
    acc[poor] = rng.uniform(55, 160, int(poor.sum()))
    sigma = np.where(poor, acc / 2.5, GPS_NOISE_M * (1.3 if indoor else 1.0))
    x = tr.x + rng.normal(0, 1, n) * sigma
    y = tr.y + rng.normal(0, 1, n) * sigma
    speed = np.clip(tr.speed + rng.normal(0, 0.25, n), 0, None)
    if n > 20 and rng.random() < 0.35:  # a spike: one fix 1–3 km away
        for i in rng.choice(np.arange(5, n - 5), size=int(rng.integers(1, 3)), replace=False):
            d, a = rng.uniform(1000, 3000), rng.uniform(0, 2 * np.pi)
            x[i] += d * math.cos(a)
            y[i] += d * math.sin(a)
    keep = np.ones(n, dtype=bool)
    span = tr.t[-1] - tr.t[0]
    if span > 3600 and rng.random() < 0.15:  # phone off 10–30 min
        g0 = tr.t[0] + rng.uniform(600, span - 2400)
        keep &= ~((tr.t >= g0) & (tr.t < g0 + rng.uniform(600, 1800)))
    return _Track(tr.t[keep], x[keep], y[keep], speed[keep], acc[keep], tr.mock[keep])


# =========================================================================================
# the month: calendar, profiles, plans
# =========================================================================================


def _month_days(month: str) -> list[dt.date]:
    try:
        year, mon = (int(p) for p in month.split("-"))
        first = dt.date(year, mon, 1)
    except ValueError:
        raise ValueError(f"'month' was '{month}' but is expected to be YYYY-MM") from None
    return [first + dt.timedelta(days=i) for i in range(calendar.monthrange(year, mon)[1])]


@dataclass
class _Grid:
    grid_id: str
    grid_type: str
    group: str
    poly: shapely.Polygon  # local metres
    net: _Network
    office: int  # node where sessions start
    desk_xy: np.ndarray
    sites: list[tuple[str, str, int, np.ndarray]] = field(default_factory=list)  # id, type, node, xy


@dataclass
class _Worker:
    worker_id: str
    name: str
    grid: int
    full_time: bool
    profile: str
    device: str
    sample_s: tuple[int, int]


def _build_grid(i: int, gid: str, name: str, gtype: str, poly_ll: shapely.Geometry, seed: int) -> _Grid:
    rng = _rng(seed, _S_STREETS, i)
    poly = _to_local_geom(poly_ll)
    if poly.geom_type == "MultiPolygon":
        poly = max(shapely.get_parts(poly), key=lambda g: g.area)
    village = gtype == GRID_TYPE_VILLAGE
    net = _street_network(poly, rng, spacing=rng.uniform(210, 280) if village else rng.uniform(120, 170))
    centre = shapely.get_coordinates(shapely.point_on_surface(poly))[0]
    office = int(np.argmin(np.hypot(*(net.node_xy - centre).T)))
    a = rng.uniform(0, 2 * np.pi)
    desk = net.node_xy[office] + 12.0 * np.array([math.cos(a), math.sin(a)])
    group = name.split("第")[0]
    g = _Grid(gid, gtype, group, poly, net, office, desk)
    # sites: near a street node well inside the grid
    srng = _rng(seed, _S_SITES, i)
    for margin in (40.0, 20.0, 5.0):  # well inside the grid when the grid allows
        inner = shapely.buffer(poly, -margin)
        cand = np.flatnonzero(shapely.contains_xy(inner, net.node_xy[:, 0], net.node_xy[:, 1]))
        if len(cand) >= 10:
            break
    counts = {
        SITE_KEY_PERSON: int(srng.integers(1, 4)),
        SITE_SPECIAL_GROUP: int(srng.integers(1, 4)),
        SITE_CARE_SUBJECT: int(srng.integers(1, 3)),
        SITE_HAZARD: int(srng.integers(0, 3)),
    }
    nodes = srng.choice(cand, size=min(len(cand), sum(counts.values())), replace=False)
    k = 0
    for stype, c in counts.items():
        for j in range(c):
            if k >= len(nodes):
                break
            node = int(nodes[k])
            k += 1
            angles = srng.uniform(0, 2 * np.pi) + np.arange(8) * np.pi / 4  # a house by the street, inside
            ring = net.node_xy[node] + srng.uniform(4, 12) * np.column_stack([np.cos(angles), np.sin(angles)])
            ok = shapely.contains_xy(shapely.buffer(poly, -1.0), ring[:, 0], ring[:, 1])
            xy = ring[int(np.argmax(ok))] if ok.any() else net.node_xy[node].copy()
            g.sites.append((f"{_SITE_CODES[stype]}-{gid}-{j + 1}", stype, node, xy))
    return g


def _plan_absences(
    profile: str, workdays: list[dt.date], rng: np.random.Generator
) -> tuple[set[dt.date], list[tuple[dt.date, dt.date, dt.date, str]]]:
    """Absent workdays and the leave rows filed for them (start, end, filed, reason)."""
    absent: set[dt.date] = set()
    leave: list[tuple[dt.date, dt.date, dt.date, str]] = []
    if len(workdays) < 8:
        return absent, leave
    if profile == ABSENT_LEAVE_IN_TIME:
        i = int(rng.integers(3, len(workdays) - 5))
        days = workdays[i : i + 3]
        absent.update(days)
        # 3日内报备: filed the day after the first absent day
        leave.append((days[0], days[-1], days[0] + dt.timedelta(days=1), "请假"))
        j = int(rng.integers(0, 2))
        absent.add(workdays[j])
        leave.append((workdays[j], workdays[j], workdays[j], "工作冲突"))
    elif profile == ABSENT_LEAVE_LATE:
        i = int(rng.integers(2, len(workdays) - 6))
        days = workdays[i : i + 2]
        absent.update(days)
        leave.append((days[0], days[-1], days[-1] + dt.timedelta(days=int(rng.integers(6, 9))), "工作冲突"))
    elif profile == LAZY:
        absent.update(workdays[int(k)] for k in rng.choice(len(workdays), size=2, replace=False))
    return absent, leave


def _plan_visits(
    grid: _Grid, profile: str, active: list[dt.date], rng: np.random.Generator
) -> dict[dt.date, list[tuple[str, int]]]:
    """Which sites a worker visits on which day (site type, node), by the seed's periods."""
    plan: dict[dt.date, list[tuple[str, int]]] = {d: [] for d in active}
    if not active:
        return plan
    lazy = profile == LAZY
    weeks: dict[tuple[int, int], list[dt.date]] = {}
    for d in active:
        weeks.setdefault(d.isocalendar()[:2], []).append(d)
    for _, stype, node, _ in grid.sites:
        if stype == SITE_HAZARD:  # 重大安全隐患场所每天走访巡查一次
            for d in active:
                if not lazy or rng.random() < 0.6:
                    plan[d].append((stype, node))
        elif stype == SITE_KEY_PERSON:  # 重点人员走访每周覆盖一次
            for wk in sorted(weeks):
                if not lazy or rng.random() < 0.5:
                    plan[weeks[wk][int(rng.integers(len(weeks[wk])))]].append((stype, node))
        elif not lazy or rng.random() < 0.6:  # 特殊人群、关爱对象走访每月覆盖一次
            plan[active[int(rng.integers(len(active)))]].append((stype, node))
    return plan


def _worker_day(
    w: _Worker,
    grid: _Grid,
    day: dt.date,
    workday: bool,
    visits: list[tuple[str, int]],
    seed: int,
    wi: int,
) -> list[_Track]:
    """The tracks of one worker on one day according to the profile."""
    rng = _rng(seed, _S_DAY, wi, day.toordinal())
    village = grid.grid_type == GRID_TYPE_VILLAGE
    net = grid.net

    def visit_list(items: list[tuple[str, int]]) -> list[tuple[int, float]]:
        out = [(node, float(rng.uniform(*_VISIT_PAUSE_S[stype]))) for stype, node in items]
        order = rng.permutation(len(out))
        return [out[i] for i in order]

    def clock(h0: float, h1: float) -> int:
        return int(rng.uniform(h0, h1) * 3600)

    if not w.full_time:
        if not workday or rng.random() > 0.2:
            return []
        tr, _ = _walk(net, rng, grid.office, clock(9.0, 15.0), rng.uniform(0.6, 1.4) * 3600, [], w.sample_s)
        return [_degrade(rng, tr)]
    if not workday:  # a few patrols on days off (weekend duty, 国庆 值班)
        if w.profile in (DILIGENT, REPLAY, MOCK_LOCATION) and rng.random() < 0.08:
            tr, _ = _walk(net, rng, grid.office, clock(8.8, 9.8), rng.uniform(1.0, 2.0) * 3600, [], w.sample_s)
            return [_degrade(rng, tr)]
        return []

    # session lengths (h): community needs >= 3 h a day, village >= 2 h
    am_h = rng.uniform(1.2, 1.8) if village else rng.uniform(1.8, 2.4)
    pm_h = rng.uniform(1.1, 1.6) if village else rng.uniform(1.7, 2.3)
    am_start, pm_start = clock(8.2, 9.0), clock(13.8, 14.5)
    has_am, has_pm = True, True
    if w.profile == LAZY:
        am_h, pm_h = rng.uniform(0.5, 1.2), rng.uniform(0.4, 1.0)
        r = rng.random()
        has_am, has_pm = (r >= 0.15, r < 0.15 or r >= 0.3)
    elif w.profile == MORNING_ONLY:
        am_h = rng.uniform(2.0, 3.0)
        has_pm = rng.random() < 0.15
    elif w.profile == DILIGENT and rng.random() < 0.04:
        pm_h *= 0.4  # even the diligent have a short afternoon now and then

    split = rng.random(len(visits)) < (0.5 if has_am and has_pm else (0.0 if has_am else 1.0))
    am_visits = visit_list([v for v, s in zip(visits, split, strict=True) if not s])
    pm_visits = visit_list([v for v, s in zip(visits, split, strict=True) if s])
    tracks: list[_Track] = []
    if has_am:
        tr, _ = _walk(net, rng, grid.office, am_start, am_h * 3600, am_visits, w.sample_s)
        tracks.append(_degrade(rng, tr))
    if not has_pm:
        return tracks

    if w.profile == DESK_PHONE and rng.random() < 0.6:
        # 挂机: the phone lies on the office desk for hours while "on patrol"
        desk_s = rng.uniform(2.0, 3.0) * 3600
        desk = _degrade(rng, _stay(rng, grid.desk_xy, pm_start, desk_s, w.sample_s), indoor=True)
        tr, _ = _walk(
            net, rng, grid.office, pm_start + int(desk_s) + 60, rng.uniform(0.2, 0.4) * 3600, pm_visits, w.sample_s
        )
        return [*tracks, desk, _degrade(rng, tr)]
    car = None
    if w.profile == CAR and rng.random() < 0.55:  # 车巡: part of the afternoon by car at 30–50 km/h
        c0 = rng.uniform(0.2, 0.5) * 3600
        car = (c0, c0 + rng.uniform(0.5, 1.0) * 3600)
    tr, _ = _walk(net, rng, grid.office, pm_start, pm_h * 3600, pm_visits, w.sample_s, car_window=car)
    tr = _degrade(rng, tr)
    if w.profile == MOCK_LOCATION and rng.random() < 0.3 and len(tr.t) > 400:
        # 虚拟定位: 30–60 min pinned to a fake spot (flagged mock), teleporting in and out
        fake = grid.sites[-1][3] if grid.sites else grid.desk_xy
        i0 = int(rng.integers(50, len(tr.t) - 350))
        block = (tr.t >= tr.t[i0]) & (tr.t < tr.t[i0] + rng.uniform(1800, 3600))
        nb = int(block.sum())
        tr.x[block] = fake[0] + rng.normal(0, 0.3, nb)
        tr.y[block] = fake[1] + rng.normal(0, 0.3, nb)
        tr.speed[block] = 0.0
        tr.accuracy[block] = 5.0
        tr.mock[block] = True
    tracks.append(tr)
    return tracks


# =========================================================================================
# the workspace
# =========================================================================================


def build_demo_workspace(
    root: Path,
    month: str = DEFAULT_MONTH,
    seed: int = DEFAULT_SEED,
    n_grids: int = DEFAULT_N_GRIDS,
    sample_s: tuple[int, int] = SAMPLE_S,
    *,
    overwrite: bool = False,
) -> DemoManifest:
    """Write a complete demo workspace (SPEC §2) for one month.

    Parameters
    ----------
    root : Path
        Workspace folder; created if missing, must be empty unless ``overwrite``.
    month : str
        ``YYYY-MM``; GPS covers every workday (and a few days off) of it.
    seed : int
        Same seed, same bytes.
    n_grids : int
        Number of grids (one full-time worker each), at least 4.
    sample_s : tuple of int
        Range of the phones' sampling interval in seconds (inclusive).
    overwrite : bool
        Replace the demo's files in a non-empty folder.

    Returns
    -------
    DemoManifest

    Examples
    --------
    >>> import tempfile, pathlib
    >>> m = build_demo_workspace(pathlib.Path(tempfile.mkdtemp()) / "ws", n_grids=4)  # doctest: +SKIP
    """
    days = _month_days(month)
    if not (len(sample_s) == 2 and 1 <= sample_s[0] <= sample_s[1]):
        raise ValueError(f"'sample_s' was {sample_s} but is expected to be (min_s, max_s) with 1 <= min_s <= max_s")
    root = Path(root)
    paths = WorkspacePaths(root)
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise WorkspaceError(f"demo workspace folder is not empty: {root} (pass overwrite=True / --overwrite)")
        for p in (paths.inbox_gps, paths.indicators(month)):
            shutil.rmtree(p, ignore_errors=True)
    for p in (paths.grids_dir, paths.inbox_gps, paths.indicators(month)):
        p.mkdir(parents=True, exist_ok=True)

    grids_ll = make_grids(seed, n_grids)
    (paths.grids_dir / GRIDS_FILE_NAME).write_text(grids_geojson_text(grids_ll, "xitaihu_demo"), encoding="utf-8")
    grids = [
        _build_grid(i, gid, name, gtype, geom, seed)
        for i, (gid, name, gtype, geom) in enumerate(
            zip(grids_ll["grid_id"], grids_ll["grid_name"], grids_ll["grid_type"], grids_ll.geometry, strict=True)
        )
    ]
    workers = _make_workers(grids, seed, sample_s)

    # the centre's override (calendar.csv): the month's last official day off becomes a workday (加班日)
    off_days = [d for d in days if not is_official_workday(d)]
    overrides = {off_days[-1]: True} if off_days else {}
    workday = dict(zip(days, (bool(f) for f in workday_flags(days, overrides)), strict=True))
    workdays = [d for d in days if workday[d]]

    leave_rows: list[tuple[str, dt.date, dt.date, dt.date, str]] = []
    per_day: dict[dt.date, list[tuple[str, str, _Track]]] = {d: [] for d in days}
    candidates: list[tuple[int, str, int, float, float]] = []  # grid, worker, t_epoch, x, y
    for wi, w in enumerate(workers):
        grid = grids[w.grid]
        prng = _rng(seed, _S_PLAN, wi)
        absent, leave = _plan_absences(w.profile, workdays, prng) if w.full_time else (set(), [])
        leave_rows += [(w.worker_id, *row) for row in leave]
        active = [d for d in workdays if d not in absent]
        visits = _plan_visits(grid, w.profile, active, prng) if w.full_time else {}
        replay_days: list[dt.date] = []
        if w.profile == REPLAY and len(active) > 8:
            replay_days = [active[int(k)] for k in sorted(prng.choice(np.arange(3, len(active)), 4, replace=False))]
        template: list[_Track] | None = None
        for d in days:
            if d in absent:
                continue
            epoch0 = _local_midnight_epoch(d)
            if d in replay_days and template is not None:
                # 轨迹复用: yesterday's file re-sent, same coordinates, times shifted
                shift = int(prng.integers(-600, 601))
                tracks = [_Track(tr.t + shift, tr.x, tr.y, tr.speed, tr.accuracy, tr.mock) for tr in template]
            else:
                tracks = _worker_day(w, grid, d, workday[d], visits.get(d, []), seed, wi)
                if w.profile == REPLAY and template is None and workday[d] and tracks:
                    template = tracks
            if not tracks:
                continue
            tr = _Track.concat(tracks)
            per_day[d].append((w.worker_id, w.device, tr))
            if w.full_time and workday[d]:
                crng = _rng(seed, _S_PLAN, wi, d.toordinal())
                ok = np.flatnonzero(~tr.mock)
                for i in crng.choice(ok, size=min(len(ok), 8), replace=False) if len(ok) else []:
                    candidates.append((w.grid, w.worker_id, int(epoch0 + tr.t[i]), float(tr.x[i]), float(tr.y[i])))

    counts = _write_gps(paths.inbox_gps, per_day, {d.isoformat() for d in workdays}, seed)
    _write_roster(paths, grids, workers, leave_rows, overrides, seed)
    counts.update(_write_indicators(paths.indicators(month), grids, workers, workdays, candidates, seed, month))
    counts.update(
        grids=len(grids),
        workers=len(workers),
        full_time_workers=sum(w.full_time for w in workers),
        part_time_workers=sum(not w.full_time for w in workers),
        sites=sum(len(g.sites) for g in grids),
        leave_rows=len(leave_rows),
        workdays=len(workdays),
    )
    return DemoManifest(
        root=root,
        month=month,
        grid_ids=tuple(g.grid_id for g in grids),
        profiles={w.worker_id: w.profile for w in workers},
        counts=counts,
    )


def _make_workers(grids: list[_Grid], seed: int, sample_s: tuple[int, int]) -> list[_Worker]:
    rng = _rng(seed, _S_PROFILES)
    n = len(grids)
    n_special = min(len(_SPECIAL_ORDER), n - math.ceil(n / 2))
    profiles = [DILIGENT] * n
    for k, wi in enumerate(rng.permutation(n)[:n_special]):
        profiles[int(wi)] = _SPECIAL_ORDER[k]
    workers = []
    for i in range(n):
        lo = int(rng.integers(sample_s[0], sample_s[1] + 1))
        workers.append(
            _Worker(
                worker_id=f"W{i + 1:03d}",
                name=f"网格员{_STEMS[i % 10]}{_NUMERALS[(i // 10) % 10]}",
                grid=i,
                full_time=True,
                profile=profiles[i],
                device=f"DEV-{i + 1:03d}",
                sample_s=(lo, max(lo, min(sample_s[1], lo + 3))),
            )
        )
    n_part = 2 + int(rng.integers(0, 2))
    for k, gi in enumerate(sorted(int(g) for g in rng.choice(n, n_part, replace=False))):
        i = n + k
        workers.append(
            _Worker(f"W{i + 1:03d}", f"兼职网格员{_STEMS[k % 10]}", gi, False, PART_TIME, f"DEV-{i + 1:03d}", sample_s)
        )
    return workers


def _local_midnight_epoch(day: dt.date) -> int:
    return calendar.timegm(day.timetuple()) - UTC_OFFSET_S


# --- GPS files -------------------------------------------------------------------------------

_GPS_COLUMNS = ["worker_id", "ts", "lon", "lat", "accuracy_m", "speed_mps", "mock", "device_id"]
# format by day with data: mostly CSV (ISO +08:00), some Parquet (epoch ms), some JSON Lines (naive local);
# a cycle of 5 over data days so every weekday meets every format
_FORMAT_CYCLE = ("csv", "csv", "parquet", "csv", "jsonl")


def _day_frame(rows: list[tuple[str, str, _Track]], day: dt.date) -> pd.DataFrame:
    epoch0 = _local_midnight_epoch(day)
    frames = []
    for worker_id, device, tr in rows:
        lon, lat = from_local(tr.x, tr.y, CENTER_LON, CENTER_LAT)
        frames.append(
            pd.DataFrame(
                {
                    "worker_id": worker_id,
                    "epoch_s": epoch0 + tr.t,
                    "lon": np.round(lon, 7),
                    "lat": np.round(lat, 7),
                    "accuracy_m": np.round(tr.accuracy, 1),
                    "speed_mps": np.round(tr.speed, 2),
                    "mock": tr.mock,
                    "device_id": device,
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values(["worker_id", "epoch_s"], kind="stable").reset_index(drop=True)


def _write_gps(
    folder: Path, per_day: dict[dt.date, list[tuple[str, str, _Track]]], workdays: set[str], seed: int
) -> dict[str, int]:
    """One or two files per day in the day's format, plus the planted faults of ingest."""
    rng = _rng(seed, _S_FILES)
    files: list[tuple[str, str, pd.DataFrame]] = []  # name, fmt, frame
    data_days = [d for d in sorted(per_day) if per_day[d]]
    frames = {d: _day_frame(per_day[d], d) for d in data_days}
    # a few points delivered again in the next day's file (a late re-upload overlaps)
    n_dup = 0
    for k in (3, 10, 17):
        if k + 1 < len(data_days):
            d, nxt = data_days[k], data_days[k + 1]
            first = frames[d]["worker_id"].iloc[0]
            dup = frames[d][frames[d]["worker_id"] == first].tail(15)
            frames[nxt] = pd.concat([frames[nxt], dup], ignore_index=True)
            n_dup += len(dup)
    for k, d in enumerate(data_days):
        fmt = _FORMAT_CYCLE[k % len(_FORMAT_CYCLE)]
        df = frames[d]
        base = f"gps_{d.isoformat()}"
        second = (df["worker_id"].str[-1].astype(int) % 2 == 1).to_numpy()
        if d.day % 3 == 0 and 0 < second.sum() < len(df):  # a second upload batch: every other worker's data
            files.append((f"{base}.{fmt}", fmt, df[~second]))
            files.append((f"{base}_2.{fmt}", fmt, df[second]))
        else:
            files.append((f"{base}.{fmt}", fmt, df))
    # faults go into workday files (a holiday file may hold only a few duty patrols)
    csv_files = [i for i, f in enumerate(files) if f[1] == "csv" and f[0][4:14] in workdays]
    bad_index = csv_files[0] if csv_files else -1
    resend_index = csv_files[1] if len(csv_files) > 1 else -1
    counts = {"gps_points": 0, "gps_files": 0, "gps_bad_rows": 0, "gps_duplicate_points": n_dup}
    for i, (name, fmt, df) in enumerate(files):
        data = _encode(df, fmt)
        if i == bad_index:
            data, n_bad = _plant_bad_rows(data, df, rng)
            counts["gps_bad_rows"] = n_bad
        (folder / name).write_bytes(data)
        counts["gps_points"] += len(df)
        counts["gps_files"] += 1
        counts[f"gps_files_{fmt}"] = counts.get(f"gps_files_{fmt}", 0) + 1
        if i == resend_index:  # the same file delivered twice under another name
            (folder / name.replace(".csv", "_resend.csv")).write_bytes(data)
            counts["gps_files"] += 1
            counts["gps_resent_points"] = len(df)
    counts["gps_points_unique"] = counts["gps_points"] - n_dup
    return counts


def _encode(df: pd.DataFrame, fmt: str) -> bytes:
    out = df.drop(columns="epoch_s")
    local = (df["epoch_s"].to_numpy() + UTC_OFFSET_S).astype("datetime64[s]")
    if fmt == "csv":
        out.insert(1, "ts", np.char.add(np.datetime_as_string(local, unit="s"), "+08:00"))
        out["mock"] = np.where(df["mock"].to_numpy(), "true", "false")
        return out[_GPS_COLUMNS].to_csv(index=False, lineterminator="\n").encode("utf-8")
    if fmt == "parquet":
        out.insert(1, "ts", df["epoch_s"].to_numpy().astype(np.int64) * 1000)
        table = pa.Table.from_pandas(out[_GPS_COLUMNS], preserve_index=False)
        sink = pa.BufferOutputStream()
        pq.write_table(table.replace_schema_metadata(None), sink, compression="zstd")
        return sink.getvalue().to_pybytes()
    if fmt == "jsonl":
        out.insert(1, "ts", np.char.replace(np.datetime_as_string(local, unit="s"), "T", " "))
        out = out[_GPS_COLUMNS]
        out["provider"] = "gps"  # an extra column: kept or ignored, never an error
        return out.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8")
    raise ValueError(f"'fmt' was '{fmt}' but is expected to be csv, parquet or jsonl")


def _plant_bad_rows(data: bytes, df: pd.DataFrame, rng: np.random.Generator) -> tuple[bytes, int]:
    """Rows that cannot be a point, for the quarantine: missing lon, bad ts, lat 95, unknown worker."""
    lines = data.decode("utf-8").split("\n")
    r = df.iloc[len(df) // 2]
    ts = pd.Timestamp(int(r["epoch_s"]) + UTC_OFFSET_S, unit="s").strftime("%Y-%m-%dT%H:%M:%S") + "+08:00"
    day = ts[:10]
    bad = [
        f"{r['worker_id']},{day}T09:00:03+08:00,,{r['lat']},8.0,1.2,false,{r['device_id']}",
        f"{r['worker_id']},{day}T25:61:00+08:00,{r['lon']},{r['lat']},8.0,1.2,false,{r['device_id']}",
        f"{r['worker_id']},{day}T10:00:07+08:00,{r['lon']},95.0,8.0,1.2,false,{r['device_id']}",
        f"W999,{ts},{r['lon']},{r['lat']},6.0,1.1,false,DEV-999",
    ]
    positions = sorted(int(p) for p in rng.choice(np.arange(2, len(lines) - 2), len(bad), replace=False))
    for k, (pos, row) in enumerate(zip(positions, bad, strict=True)):
        lines.insert(pos + k, row)
    return "\n".join(lines).encode("utf-8"), len(bad)


# --- roster, sites, leave, calendar, settings --------------------------------------------------


def _write_roster(
    paths: WorkspacePaths,
    grids: list[_Grid],
    workers: list[_Worker],
    leave_rows: list[tuple[str, dt.date, dt.date, dt.date, str]],
    overrides: dict[dt.date, bool],
    seed: int,
) -> None:
    wdf = pd.DataFrame(
        [(w.worker_id, w.name, grids[w.grid].grid_id, "true" if w.full_time else "false") for w in workers],
        columns=list(WORKERS_COLUMNS),
    )
    _write_csv(wdf, paths.workers)
    site_rows = []
    for gi, g in enumerate(grids):
        lrng = _rng(seed, _S_SITES, gi, 99)
        for sid, stype, _, xy in g.sites:
            lon, lat = from_local(np.array([xy[0]]), np.array([xy[1]]), CENTER_LON, CENTER_LAT)
            labels = _SITE_LABELS[stype]
            label = labels[int(lrng.integers(len(labels)))]
            radius = "80" if stype == SITE_HAZARD and "仓库" in label else ""
            site_rows.append((sid, stype, g.grid_id, round(float(lon[0]), 7), round(float(lat[0]), 7), radius, label))
    sdf = pd.DataFrame(site_rows, columns=["site_id", "site_type", "grid_id", "lon", "lat", "radius_m", "label"])
    _write_csv(sdf, paths.sites)
    ldf = pd.DataFrame(
        [(w, s.isoformat(), e.isoformat(), f.isoformat(), r) for w, s, e, f, r in sorted(leave_rows)],
        columns=list(LEAVE_COLUMNS),
    )
    _write_csv(ldf, paths.leave)
    cdf = pd.DataFrame(
        [(d.isoformat(), "true" if v else "false") for d, v in sorted(overrides.items())],
        columns=list(CALENDAR_COLUMNS),
    )
    _write_csv(cdf, paths.calendar)
    paths.policy.write_text(
        "# gridpatrol demo workspace settings. Anything not set here comes from\n"
        "# scoring/default_policy.toml (copy only what you change).\n"
        'timezone = "Asia/Shanghai"   # days and weeks are local (SPEC §2)\n'
        'gps_crs = "wgs84"            # the demo phones report raw GPS (WGS-84); use "gcj02" for Amap/Tencent SDKs\n',
        encoding="utf-8",
    )


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    path.write_text(df.to_csv(index=False, lineterminator="\n"), encoding="utf-8")


# --- indicators ----------------------------------------------------------------------------------

_CATEGORY_GROUPS = (  # (categories, share of a grid's events); minimums in default_policy.toml
    (("社会治安", "公共安全"), 0.22),
    (("城市管理", "环境保护"), 0.50),
    (("民生服务", "政务代办"), 0.18),
    (("综合管理", "综合执法"), 0.10),
)
_TITLES = {
    "社会治安": ("邻里纠纷调解", "可疑人员出没", "群租房人员复杂", "夜间噪音扰民"),
    "公共安全": ("电动车楼道充电", "消防通道堵塞", "井盖缺失", "燃气管道老化"),
    "城市管理": ("占道经营", "乱堆乱放", "共享单车乱停放", "违章搭建", "广告乱张贴"),
    "环境保护": ("河道漂浮物", "垃圾满溢", "露天焚烧", "污水外溢", "工地扬尘"),
    "民生服务": ("路灯不亮", "独居老人需帮扶", "供水管漏水", "道路破损"),
    "政务代办": ("代办居住证", "代办医保参保", "代办残疾证年审", "代办老年卡"),
    "综合管理": ("绿化带破坏", "宣传栏破损", "小区道闸故障"),
    "综合执法": ("违规施工噪音", "渣土车撒漏", "无证经营"),
}
_DETAILS = ("现场已拍照，请相关部门处理。", "已现场劝导，持续关注。", "已联系物业处理。", "已告知责任单位限期整改。")
_ROAD_SUFFIX = ("东路", "西路", "南街", "北街", "中路", "巷")
_INFO_SIZES = {  # (community range, village range) of required records per sub-category
    "户籍人口": ((1500, 3500), (800, 2000)),
    "流动人口": ((400, 1500), (100, 600)),
    "境外人员": ((3, 25), (1, 6)),
    "残疾人": ((15, 60), (10, 40)),
    "出生婴儿": ((8, 30), (3, 15)),
    "从业人员": ((400, 1500), (150, 600)),
    "低保户": ((3, 30), (5, 25)),
    "房屋承租信息": ((150, 800), (30, 200)),
    "社区矫正人员": ((1, 6), (1, 4)),
    "重点青少年": ((2, 15), (1, 8)),
    "重点上访人员": ((1, 5), (1, 4)),
}


def _write_indicators(
    folder: Path,
    grids: list[_Grid],
    workers: list[_Worker],
    workdays: list[dt.date],
    candidates: list[tuple[int, str, int, float, float]],
    seed: int,
    month: str,
) -> dict[str, int]:
    rng = _rng(seed, _S_INDICATORS)
    n = len(grids)
    full_time = {w.grid: w for w in workers if w.full_time}
    weak = {w.grid for w in full_time.values() if w.profile in (LAZY, MORNING_ONLY, ABSENT_LEAVE_LATE)}
    bad_quality = min(weak) if weak else 0  # one grid with > 30 % unqualified or false events
    by_grid: dict[int, list[tuple[int, str, int, float, float]]] = {}
    for c in candidates:
        by_grid.setdefault(c[0], []).append(c)

    events = []
    for gi, g in enumerate(grids):
        cands = by_grid.get(gi, [])
        if not cands:
            continue
        short = gi in weak or rng.random() < 0.12
        n_ev = int(rng.integers(55, 79) if short else rng.integers(82, 106))
        p_bad = (0.26, 0.10) if gi == bad_quality else (0.05, 0.015)
        shirk_left = 2 if gi == int(rng.integers(n)) else 0
        picks = rng.choice(len(cands), size=n_ev, replace=len(cands) < n_ev)
        delay = rng.integers(0, 300, size=n_ev)  # reported a few minutes after the moment on the track
        order = sorted(range(n_ev), key=lambda k: (cands[picks[k]][2] + delay[k], k))
        picks, delay = picks[order], delay[order]
        group_of = rng.choice(len(_CATEGORY_GROUPS), size=n_ev, p=[s for _, s in _CATEGORY_GROUPS])
        prev = None
        for k, pi in enumerate(picks):
            _, worker_id, epoch, x, y = cands[pi]
            cats = _CATEGORY_GROUPS[group_of[k]][0]
            cat = cats[int(rng.integers(2))]
            title = _TITLES[cat][int(rng.integers(len(_TITLES[cat])))]
            road = (
                g.group.replace(GRID_TYPE_COMMUNITY, "").replace(GRID_TYPE_VILLAGE, "")
                + _ROAD_SUFFIX[int(rng.integers(6))]
            )
            address = f"{g.group}{road}{int(rng.integers(1, 120))}号附近"
            description = f"{address}发现{title}，{_DETAILS[int(rng.integers(len(_DETAILS)))]}"
            photos_before, photos_after = int(rng.integers(1, 4)), int(rng.integers(1, 3))
            ex, ey = x + rng.normal(0, 8), y + rng.normal(0, 8)
            if rng.random() < 0.03:  # reported far from where the worker was
                a = rng.uniform(0, 2 * np.pi)
                ex, ey = x + 2500 * math.cos(a), y + 2500 * math.sin(a)
            r = rng.random()
            review, valid = "ok", True
            if r < p_bad[1]:
                review, valid = "false", False
            elif r < p_bad[0] + p_bad[1]:
                review = "unqualified"
                flaw = int(rng.integers(4))
                if flaw == 0:
                    photos_after = 0  # 前后照片缺失
                elif flaw == 1:
                    description = "见图"  # 描述不清
                elif flaw == 2:
                    other = _TITLES["政务代办" if cat != "政务代办" else "城市管理"][0]
                    description = f"{address}发现{other}。"  # 内容与标题不符
                elif prev is not None:  # 重复上报: same title and place as the previous one
                    title, address, description, ex, ey = prev
                    valid = False
            shirked = shirk_left > 0 and rng.random() < 0.1
            shirk_left -= int(shirked)
            lon, lat = from_local(np.array([ex]), np.array([ey]), CENTER_LON, CENTER_LAT)
            local = pd.Timestamp(epoch + int(delay[k]) + UTC_OFFSET_S, unit="s")
            events.append(
                (
                    f"EV-{month.replace('-', '')}-{g.grid_id}-{k + 1:03d}",
                    g.grid_id,
                    worker_id,
                    local.strftime("%Y-%m-%dT%H:%M:%S") + "+08:00",
                    cat,
                    title,
                    description,
                    address,
                    round(float(lon[0]), 7),
                    round(float(lat[0]), 7),
                    photos_before,
                    photos_after,
                    "true" if valid else "false",
                    review,
                    "true" if shirked else "false",
                )
            )
            prev = (title, address, description, ex, ey)
    ev = pd.DataFrame(
        events,
        columns=[
            "event_id", "grid_id", "worker_id", "reported_at", "category", "title", "description", "address",
            "lon", "lat", "photos_before", "photos_after", "valid", "review", "shirked",
        ],
    )  # fmt: skip
    _write_csv(ev, folder / "events.csv")

    # service records: counts per grid per workday; most grids reach 80 a month
    rows: list[tuple[Any, ...]] = []
    for gi, g in enumerate(grids):
        total = int(rng.integers(60, 80) if (gi in weak or rng.random() < 0.1) else rng.integers(84, 115))
        per_day = rng.multinomial(total, np.full(len(workdays), 1 / len(workdays))) if workdays else np.zeros(0)
        rows += [(d.isoformat(), g.grid_id, int(c)) for d, c in zip(workdays, per_day, strict=True) if c > 0]
    _write_csv(pd.DataFrame(rows, columns=["date", "grid_id", "count"]), folder / "service_records.csv")

    # info collection per required sub-category (the list is policy data)
    subcats = load_policy().info_collection.required_subcategories
    not_collected = (int(rng.integers(n)), subcats[int(rng.integers(len(subcats)))])
    rows = []
    for gi, g in enumerate(grids):
        village = g.grid_type == GRID_TYPE_VILLAGE
        for sub in subcats:
            lo, hi = _INFO_SIZES.get(sub, ((5, 100), (5, 60)))[village]
            required = int(rng.integers(lo, hi + 1))
            if (gi, sub) == not_collected:
                collected = 0
            elif required >= 10 and rng.random() < 0.06:
                collected = int(required * rng.uniform(0.80, 0.94))
            else:
                collected = max(math.ceil(0.95 * required), int(required * rng.uniform(0.95, 1.0)))
            rows.append((g.grid_id, sub, required, min(collected, required)))
    _write_csv(
        pd.DataFrame(rows, columns=["grid_id", "subcategory", "required", "collected"]), folder / "info_collection.csv"
    )

    def dated(k: int) -> list[str]:
        return sorted(workdays[int(i)].isoformat() for i in rng.integers(0, len(workdays), size=k))

    gids = [g.grid_id for g in grids]
    weak_ids = [grids[i].grid_id for i in sorted(weak)] or gids[:1]
    rows = [
        (d, weak_ids[0], "public_complaint", "true") for d in dated(1)
    ] + [
        (d, weak_ids[-1], "leader_dissatisfied", "true") for d in dated(1)
    ] + [
        (d, gids[int(rng.integers(n))], kind, "true" if rng.random() < 0.5 else "false")
        for d, kind in zip(dated(4), ("public_complaint", "inspector_complaint", "public_complaint", "inspector_complaint"), strict=True)
    ]  # fmt: skip
    _write_csv(pd.DataFrame(sorted(rows), columns=["date", "grid_id", "kind", "verified"]), folder / "complaints.csv")

    kinds: tuple[str, ...] = ("meeting_absent",) * 5 + (
        "board_missing",
        "badge_missing",
        "badge_missing",
        "training_absent",
        "training_absent",
    )
    rows = [(d, gids[int(rng.integers(n))], kind, 1) for d, kind in zip(dated(len(kinds)), kinds, strict=True)]
    rows.append((dated(1)[0], weak_ids[0], "confidentiality_breach", 1))
    disc = pd.DataFrame(rows, columns=["date", "grid_id", "kind", "count"])
    disc = disc.groupby(["date", "grid_id", "kind"], as_index=False)["count"].sum()
    _write_csv(disc, folder / "discipline.csv")

    kinds = ("inaccurate_record",) * 4 + ("not_updated",) * 5
    rows = [
        (d, gids[int(rng.integers(n))], kind, int(rng.integers(1, 3)))
        for d, kind in zip(dated(len(kinds)), kinds, strict=True)
    ]
    _write_csv(pd.DataFrame(sorted(rows), columns=["date", "grid_id", "kind", "count"]), folder / "info_checks.csv")

    sources = ("daily_patrol", "random_check", "public_report", "center_assigned")
    rows = []
    for g in grids:
        for d in dated(int(rng.integers(1, 5))):
            src = sources[int(rng.choice(4, p=[0.45, 0.2, 0.15, 0.2]))]
            rows.append((d, g.grid_id, src, "true" if rng.random() < 0.88 else "false"))
    _write_csv(
        pd.DataFrame(sorted(rows), columns=["date", "grid_id", "source", "rectified_in_time"]),
        folder / "inspections.csv",
    )
    return {"events": len(ev)}


# =========================================================================================
# helpers and command line
# =========================================================================================


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *(int(k) for k in keys)])


def write_sample_grids(
    path: Path = SAMPLE_GRIDS_PATH, seed: int = DEFAULT_SEED, n_grids: int = DEFAULT_N_GRIDS
) -> Path:
    """Write the shipped sample ``grids_geojson/xitaihu_demo.geojson`` (the demo's grids)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(grids_geojson_text(make_grids(seed, n_grids), path.stem), encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trajectory.demo --out DIR [--month YYYY-MM] [--seed N] [--grids N]``."""
    parser = argparse.ArgumentParser(prog="python -m trajectory.demo", description="Build a synthetic demo workspace.")
    parser.add_argument("--out", required=True, type=Path, help="workspace folder to create (must be empty)")
    parser.add_argument("--month", default=DEFAULT_MONTH, help="YYYY-MM (default %(default)s)")
    parser.add_argument("--seed", default=DEFAULT_SEED, type=int, help="random seed (default %(default)s)")
    parser.add_argument("--grids", default=DEFAULT_N_GRIDS, type=int, help="number of grids (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace the demo files in a non-empty folder")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        m = build_demo_workspace(args.out, args.month, args.seed, args.grids, overwrite=args.overwrite)
    except (ValueError, WorkspaceError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    c = m.counts
    print(
        f"demo workspace {m.root} ({m.month}, seed {args.seed}): {c['grids']} grids, {c['workers']} workers, "
        f"{c['sites']} sites, {c['gps_points']} GPS points in {c['gps_files']} files, {c['events']} events "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
