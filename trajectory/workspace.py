"""The workspace: its paths (the one module that names them) and the validated loading of its inputs.

A workspace is a folder holding everything the pipeline reads and writes (SPEC §2), so it can
be moved, backed up and tested as a unit.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from scoring.policy import Policy, load_policy
from trajectory.contract import (
    CALENDAR_COLUMNS,
    GRID_PROPERTIES,
    GRID_TYPE_ALIASES,
    LEAVE_COLUMNS,
    POINT_USE,
    SITE_TYPES,
    SITES_COLUMNS,
    WORKERS_COLUMNS,
)
from trajectory.errors import InputError, WorkspaceError

log = logging.getLogger(__name__)

TRUE_WORDS = frozenset({"true", "1", "yes", "y", "t", "是", "对", "真"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "f", "否", "假", ""})

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def quote(value: object, limit: int = 60) -> str:
    """A value from a file as a message shows it: quoted, on one line, at most ``limit`` characters.

    >>> print(quote("a\\nb"), quote("网格"), quote("x" * 100)[-6:])
    'a\\nb' '网格' xxxx…'
    """
    text = str(value)
    short = text[:limit]
    return "'" + _CONTROL.sub(lambda m: repr(m.group())[1:-1], short) + ("…" if len(text) > limit else "") + "'"


# Two grids overlapping by more than both of these are reported (docs/inputs.md): below them an
# overlap is a digitising sliver along a shared border, not two grids claiming the same streets.
OVERLAP_MIN_M2 = 100.0
OVERLAP_MIN_SHARE = 0.01
# warnings of one kind listed one by one; the rest are counted in one more line
MAX_LISTED = 20
_M_PER_DEG = 6_371_008.8 * math.pi / 180  # metres per degree of latitude (mean Earth radius)


@dataclass(frozen=True)
class WorkspacePaths:
    """Every file and folder name of a workspace, in one place (STYLE lesson 2)."""

    root: Path

    @property
    def policy(self) -> Path:
        return self.root / "patrol.toml"

    @property
    def grids_dir(self) -> Path:
        return self.root / "grids_geojson"

    @property
    def workers(self) -> Path:
        return self.root / "workers.csv"

    @property
    def sites(self) -> Path:
        return self.root / "sites.csv"

    @property
    def leave(self) -> Path:
        return self.root / "leave.csv"

    @property
    def calendar(self) -> Path:
        return self.root / "calendar.csv"

    @property
    def inbox_gps(self) -> Path:
        return self.root / "inbox" / "gps"

    @property
    def indicators_dir(self) -> Path:
        return self.root / "indicators"

    def indicators(self, month: str) -> Path:
        return self.indicators_dir / month

    @property
    def duckdb(self) -> Path:
        return self.root / "patrol.duckdb"

    @property
    def lock(self) -> Path:
        return self.root / ".patrol.lock"

    @property
    def snapshots(self) -> Path:
        """Analysts' copies of patrol.duckdb (trajectory.api reads these); a cache, safe to delete."""
        return self.root / ".snapshots"

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def gps_store(self) -> Path:
        return self.store / "gps"

    @property
    def point_use_store(self) -> Path:
        return self.store / POINT_USE

    @property
    def out(self) -> Path:
        return self.root / "out"

    def out_month(self, month: str) -> Path:
        return self.out / month


@dataclass
class Workspace:
    """A loaded, validated workspace. Build it with :func:`load_workspace`."""

    root: Path
    paths: WorkspacePaths
    policy: Policy
    tz: ZoneInfo
    grids: gpd.GeoDataFrame
    workers: pd.DataFrame
    sites: pd.DataFrame
    leave: pd.DataFrame
    calendar_overrides: dict[date, bool]
    warnings: list[str] = field(default_factory=list)
    # indicator tables the user allowed to be missing (--allow-missing): scored as 暂缺
    allow_missing: frozenset[str] = frozenset()

    @property
    def full_time_workers(self) -> pd.DataFrame:
        return self.workers[self.workers["full_time"]].reset_index(drop=True)


def load_workspace(root: str | Path, allow_missing: Iterable[str] = ()) -> Workspace:
    """Load and validate every input of a workspace except the GPS inbox and indicators.

    Parameters
    ----------
    root : str or Path
        The workspace folder.
    allow_missing : iterable of str, optional
        Required indicator tables the month may be scored without (``--allow-missing``; English
        or Chinese table names, see ``scoring.inputs.REQUIRED_TABLES``); their items are 暂缺.

    Returns
    -------
    Workspace

    Raises
    ------
    WorkspaceError
        The folder does not exist.
    InputError
        A file is wrong; the message names the file, row and column.
    """
    from scoring.inputs import table_names  # scoring.inputs reads CSV files with this module

    allowed = table_names(allow_missing, "--allow-missing")
    root = Path(root).resolve()
    if not root.is_dir():
        raise WorkspaceError(f"workspace folder not found: {root}")
    paths = WorkspacePaths(root)
    policy = load_policy(paths.policy if paths.policy.exists() else None)
    warnings: list[str] = []
    grids = read_grids(paths.grids_dir, warnings)
    workers = read_workers(paths.workers, set(grids["grid_id"]))
    sites = read_sites(paths.sites, set(grids["grid_id"]), policy.patrol.visits.radius_m)
    leave = read_leave(paths.leave, set(workers["worker_id"]))
    overrides = read_calendar(paths.calendar)
    for msg in warnings:
        log.warning(msg)
    return Workspace(
        root, paths, policy, ZoneInfo(policy.timezone), grids, workers, sites, leave, overrides, warnings, allowed
    )


# --- readers ------------------------------------------------------------------------------


def read_grids(folder: Path, warnings: list[str]) -> gpd.GeoDataFrame:
    """Read every ``*.geojson`` of ``folder``: Polygon/MultiPolygon, unique ``grid_id``, known type.

    Steps (docs/inputs.md): each file's coordinates must be degrees once its ``crs`` is applied
    (metres without a ``crs`` are an error naming the likely projection); a GeometryCollection
    keeps its polygonal part; an invalid polygon is repaired with ``shapely.make_valid``; grids
    overlapping by more than ``OVERLAP_MIN_M2`` and ``OVERLAP_MIN_SHARE`` are reported. What was
    repaired or dropped goes into ``warnings``, naming file and feature; a feature without any
    area left is an error.
    """
    files = sorted(folder.glob("*.geojson")) if folder.is_dir() else []
    if not files:
        raise InputError(str(folder), "no grid polygons: expected one or more *.geojson files")
    grids = gpd.GeoDataFrame(pd.concat([_read_grid_file(path) for path in files], ignore_index=True), crs=4326)
    _check_grid_properties(grids)
    grids["geometry"] = _polygonal_grids(grids, warnings)
    warnings.extend(overlap_warnings(grids))
    return grids[["grid_id", "grid_name", "grid_type", "source_file", "geometry"]].reset_index(drop=True)


def _read_grid_file(path: Path) -> gpd.GeoDataFrame:
    """One GeoJSON file in WGS-84 degrees, with ``source_file`` and ``feature`` (1-based) columns."""
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises many types; report the file
        raise InputError(str(path), f"cannot be read as GeoJSON: {' '.join(str(exc).split())}") from exc
    for col in GRID_PROPERTIES:
        if col not in gdf.columns:
            raise InputError(str(path), f"property '{col}' is missing from the features", column=col)
    if gdf.crs is None:  # GeoJSON is WGS-84 unless it says otherwise (RFC 7946)
        gdf = gdf.set_crs(4326)
    elif gdf.crs.to_epsg() != 4326:
        try:
            gdf = gdf.to_crs(4326)
        except Exception as exc:  # pyproj: unknown or unusable crs member
            raise InputError(
                path.name,
                f"坐标系 crs {quote(gdf.crs)} 无法转换为 WGS-84 (EPSG:4326): {' '.join(str(exc).split())}",
                column="crs",
            ) from exc
    gdf["source_file"] = path.name
    gdf["feature"] = np.arange(1, len(gdf) + 1)
    _check_degrees(gdf, path.name)
    return gdf


def _check_degrees(gdf: gpd.GeoDataFrame, name: str) -> None:
    """Coordinates must be finite degrees: metres read as degrees put every point outside every grid."""
    geom = gdf.geometry.values
    present = ~(shapely.is_missing(geom) | shapely.is_empty(geom))
    bounds = shapely.bounds(geom)
    finite = np.isfinite(bounds).all(axis=1)
    for j in np.flatnonzero(present & ~finite)[:1]:
        raise InputError(
            name, "坐标不是有限数值 coordinates are not finite numbers (NaN/inf)", row=int(j) + 1, column="geometry"
        )
    x0, y0, x1, y1 = bounds.T
    outside = present & finite & ((x0 < -180) | (x1 > 180) | (y0 < -90) | (y1 > 90))
    if not outside.any():
        return
    i = int(np.flatnonzero(outside)[0])
    b = bounds[outside]
    lo, hi = b[:, :2].min(axis=0), b[:, 2:].max(axis=0)
    guess = guess_crs(float(np.median((b[:, 0] + b[:, 2]) / 2)), float(np.median((b[:, 1] + b[:, 3]) / 2)))
    raise InputError(
        name,
        "坐标超出经纬度范围 coordinates outside degree ranges (lon −180…180, lat −90…90; found "
        f"x {lo[0]:.6g}…{hi[0]:.6g}, y {lo[1]:.6g}…{hi[1]:.6g}), and the file declares no crs that converts them: "
        f"{guess}。请转换为 WGS-84 (EPSG:4326) 经纬度，或在文件中声明 crs, e.g. "
        '"crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}',
        row=int(gdf["feature"].iloc[i]),
        column="geometry",
    )


# Web Mercator's extent, metres
_MERCATOR_X, _MERCATOR_Y = 20_037_508.35, 20_048_966.11


def guess_crs(x: float, y: float) -> str:
    """In words, the coordinate system a point (x, y) outside the degree ranges most likely uses.

    Judged by magnitude: a CGCS2000 3-degree Gauss-Krüger easting carries its zone number in
    front (zone 40 → 40 500 000 m at the central meridian 120°E); Web Mercator reaches ±20 037 508 m;
    an easting near 500 000 m is a Gauss-Krüger or UTM zone without its number.

    Examples
    --------
    >>> guess_crs(13_353_000, 3_726_000)
    '坐标看似 EPSG:3857 Web Mercator 米制坐标 (≈ 119.952°E, 31.715°N)，或 EPSG:4491 ... (6度带第13带)'
    >>> guess_crs(40_495_000, 3_510_000)
    '坐标看似 EPSG:4528 CGCS2000 / 3-degree Gauss-Kruger zone 40 (3度带第40带，中央经线 120°E) 米制坐标 (≈ 119.947°E, 31.713°N)'
    >>> guess_crs(31.7, 119.9)
    '坐标看似经纬度顺序颠倒 lat/lon swapped (GeoJSON 为 [经度 lon, 纬度 lat])'
    """
    if abs(x) <= 90 and abs(y) <= 180:
        return "坐标看似经纬度顺序颠倒 lat/lon swapped (GeoJSON 为 [经度 lon, 纬度 lat])"
    if 25e6 <= x < 46e6 and 0 <= y <= 1e7:
        zone = int(x // 1e6)
        return _projected(
            4488 + zone, f"CGCS2000 / 3-degree Gauss-Kruger zone {zone} (3度带第{zone}带，中央经线 {3 * zone}°E)", x, y
        )
    if 1e6 <= abs(x) <= _MERCATOR_X and abs(y) <= _MERCATOR_Y:
        text = _projected(3857, "Web Mercator", x, y)
        if 13e6 <= x < 24e6:
            zone = int(x // 1e6)
            text += f"，或 EPSG:{4478 + zone} CGCS2000 / Gauss-Kruger zone {zone} (6度带第{zone}带)"
        return text
    if 13e6 <= x < 24e6 and 0 <= y <= 1e7:
        zone = int(x // 1e6)
        return _projected(4478 + zone, f"CGCS2000 / Gauss-Kruger zone {zone} (6度带第{zone}带)", x, y)
    if 1e5 <= x <= 9e5 and 0 <= y <= 1e7:
        return (
            "坐标看似不带带号的高斯-克吕格或 UTM 米制坐标 Gauss-Krüger / UTM metres without a zone number "
            "(e.g. EPSG:4534–4554 CGCS2000 3-degree Gauss-Kruger CM, or EPSG:326xx UTM)，需知中央经线"
        )
    return "坐标系未知 unknown coordinate system"


def _projected(epsg: int, name: str, x: float, y: float) -> str:
    from pyproj import Transformer

    text = f"坐标看似 EPSG:{epsg} {name} 米制坐标"
    try:
        lon, lat = Transformer.from_crs(epsg, 4326, always_xy=True).transform(x, y)
    except Exception:  # pyproj without its database: the guess alone still helps
        return text
    if math.isfinite(lon) and math.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90:
        text += f" (≈ {lon:.3f}°E, {lat:.3f}°N)"
    return text


def _check_grid_properties(grids: gpd.GeoDataFrame) -> None:
    """grid_id present and unique, grid_type known (normalised in place), grid_name text."""
    grids["grid_id"] = grids["grid_id"].astype("string").str.strip()
    for j in np.flatnonzero((grids["grid_id"].isna() | (grids["grid_id"] == "")).to_numpy())[:1]:
        raise _grid_error(grids, int(j), "grid_id", "grid_id is empty")
    for i in np.flatnonzero(grids["grid_id"].duplicated(keep="first").to_numpy())[:1]:
        duplicate = quote(grids["grid_id"].iloc[i])
        raise _grid_error(grids, int(i), "grid_id", f"grid_id {duplicate} appears twice; it must be unique")
    kind = grids["grid_type"].astype("string").str.strip().str.lower().map(GRID_TYPE_ALIASES)
    for i in np.flatnonzero(kind.isna().to_numpy())[:1]:
        expected = "is expected to be community/village or 社区/村"
        raise _grid_error(
            grids, int(i), "grid_type", f"grid_type was {quote(grids['grid_type'].iloc[i])} but {expected}"
        )
    grids["grid_type"] = kind.astype(str)
    grids["grid_name"] = grids["grid_name"].fillna("").astype(str)


def _polygonal_grids(grids: gpd.GeoDataFrame, warnings: list[str]) -> np.ndarray:
    """Each grid's geometry as a valid Polygon/MultiPolygon; what was dropped or repaired is warned."""
    geom = np.asarray(grids.geometry.values, dtype=object)
    for j in np.flatnonzero(shapely.is_missing(geom) | shapely.is_empty(geom))[:1]:
        raise _grid_error(grids, int(j), "geometry", "geometry is missing or empty")
    found = shapely.get_type_id(geom)
    geom, dropped = polygonal_part(geom)
    for j in np.flatnonzero(shapely.is_missing(geom))[:1]:
        kind_found = _TYPE_NAMES.get(int(found[j]), "geometry")
        raise _grid_error(
            grids, int(j), "geometry", f"geometry is a {kind_found} without area, expected Polygon or MultiPolygon"
        )
    for j in np.flatnonzero(dropped != ""):
        warnings.append(
            f"{_where(grids, int(j))}: 几何集合 {_TYPE_NAMES[int(found[j])]} 只取其多边形部分 polygonal part used; "
            f"丢弃 dropped {dropped[j]}"
        )
    invalid = np.flatnonzero(~shapely.is_valid(geom))
    if len(invalid):
        before = shapely.area(geom[invalid])
        repaired, lost = polygonal_part(shapely.make_valid(geom[invalid]))
        for k, j in enumerate(invalid):
            if repaired[k] is None or shapely.is_empty(repaired[k]):
                raise _grid_error(
                    grids, int(j), "geometry", "polygon is invalid and has no area once repaired (make_valid)"
                )
            note = f"; 丢弃 dropped {lost[k]}" if lost[k] else ""
            warnings.append(
                f"{_where(grids, int(j))}: 无效多边形已修复 invalid polygon repaired (make_valid), "
                f"area {before[k]:.3g} → {shapely.area(repaired[k]):.3g} deg²{note}"
            )
        geom[invalid] = repaired
    return geom


_TYPE_NAMES = {
    0: "Point",
    1: "LineString",
    2: "LinearRing",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}
_POLYGONAL, _MULTI = (3, 6), (4, 5, 6, 7)


def polygonal_part(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The polygonal part of each geometry, and in words what was dropped ('' when nothing).

    Polygons and MultiPolygons are kept as they are; a collection (GeometryCollection, nested
    or not, as ``shapely.make_valid`` returns for self-touching rings) keeps its polygons as one
    MultiPolygon; a geometry without any polygon becomes None. Missing geometries stay None.

    Examples
    --------
    >>> gc = shapely.GeometryCollection([shapely.box(0, 0, 1, 1), shapely.LineString([(1, 1), (2, 1)])])
    >>> out, dropped = polygonal_part(np.array([gc, shapely.box(0, 0, 1, 1), shapely.Point(0, 0)]))
    >>> [g.geom_type if g is not None else None for g in out], dropped.tolist()
    (['MultiPolygon', 'Polygon', None], ['LineString ×1', '', 'Point ×1'])
    """
    out = np.asarray(geoms, dtype=object).copy()
    dropped = np.full(len(out), "", dtype=object)
    types = shapely.get_type_id(out)
    todo = np.flatnonzero(~np.isin(types, _POLYGONAL) & (types >= 0))
    if not len(todo):
        return out, dropped
    parts, owner = shapely.get_parts(out[todo], return_index=True)
    while True:  # collections inside collections
        nested = np.isin(shapely.get_type_id(parts), _MULTI)
        if not nested.any():
            break
        sub, k = shapely.get_parts(parts[nested], return_index=True)
        parts = np.concatenate([parts[~nested], sub])
        owner = np.concatenate([owner[~nested], owner[nested][k]])
    kind = shapely.get_type_id(parts)
    empty = shapely.is_empty(parts)
    keep = (kind == 3) & ~empty
    lost = pd.DataFrame({"owner": owner[~keep & ~empty], "kind": kind[~keep & ~empty]})
    if len(lost):
        counts = lost.groupby(["owner", "kind"]).size()
        text = (
            counts.index.get_level_values("kind").map(_TYPE_NAMES) + " ×" + counts.astype(str).to_numpy()
        ).to_series(index=counts.index.get_level_values("owner"))
        joined = text.groupby(level=0).agg(", ".join)
        dropped[todo[joined.index.to_numpy()]] = joined.to_numpy()
    out[todo] = None
    if keep.any():
        owners, index = np.unique(owner[keep], return_inverse=True)
        out[todo[owners]] = shapely.multipolygons(parts[keep], indices=index)
    return out, dropped


def overlap_warnings(
    grids: gpd.GeoDataFrame, min_m2: float = OVERLAP_MIN_M2, min_share: float = OVERLAP_MIN_SHARE
) -> list[str]:
    """One warning per pair of grids overlapping by more than ``min_m2`` m² and ``min_share`` of the
    smaller grid (at most ``MAX_LISTED``, then a count). Patrol in an overlap counts for both grids."""
    pairs = grid_overlaps(grids, min_m2, min_share)
    out = [
        f"{_where(grids, int(a))} 与 {_where(grids, int(b))} 重叠 grids overlap: {m2:.0f} m², "
        f"较小网格的 {share:.1%} of the smaller grid (threshold {min_m2:g} m² and {min_share:.0%})"
        for a, b, m2, share in pairs[["a", "b", "overlap_m2", "share"]].itertuples(index=False)
    ]
    if len(out) > MAX_LISTED:
        out = [*out[:MAX_LISTED], f"grids_geojson: 另有 {len(out) - MAX_LISTED} 对网格重叠 more overlapping pairs"]
    return out


def grid_overlaps(
    grids: gpd.GeoDataFrame, min_m2: float = OVERLAP_MIN_M2, min_share: float = OVERLAP_MIN_SHARE
) -> pd.DataFrame:
    """Pairs of grids (row positions ``a < b``) whose overlap exceeds ``min_m2`` m² and ``min_share``
    of the smaller grid's area, with ``overlap_m2`` and ``share``.

    Candidate pairs come from one STRtree query; areas are in m² by the local scale of a degree
    at each geometry's latitude (equirectangular; well under 1 % off for grids of a few km).

    Examples
    --------
    >>> g = gpd.GeoDataFrame(geometry=[shapely.box(120, 31, 120.01, 31.01), shapely.box(120.005, 31, 120.015, 31.01),
    ...                                shapely.box(120.015, 31, 120.02, 31.01)], crs=4326)
    >>> grid_overlaps(g)[["a", "b"]].to_dict("list")  # the third only touches the second
    {'a': [0], 'b': [1]}
    """
    geom = np.asarray(grids.geometry.values, dtype=object)
    a, b = shapely.STRtree(geom).query(geom, predicate="intersects")
    a, b = a[a < b], b[a < b]
    inter = shapely.intersection(geom[a], geom[b])
    overlap = _area_m2(inter)
    area = _area_m2(geom)
    share = overlap / np.maximum(np.minimum(area[a], area[b]), 1e-9)
    hit = (overlap > min_m2) & (share > min_share)
    return pd.DataFrame({"a": a[hit], "b": b[hit], "overlap_m2": overlap[hit], "share": share[hit]})


def _area_m2(geoms: np.ndarray) -> np.ndarray:
    lat = shapely.get_y(shapely.centroid(geoms))
    scale = _M_PER_DEG**2 * np.cos(np.radians(np.nan_to_num(lat)))
    return np.nan_to_num(shapely.area(geoms) * scale)


def _where(grids: pd.DataFrame, i: int) -> str:
    return f"{grids['source_file'].iloc[i]}, feature {int(grids['feature'].iloc[i])} (grid {grids['grid_id'].iloc[i]})"


def _grid_error(grids: pd.DataFrame, i: int, column: str, message: str) -> InputError:
    return InputError(str(grids["source_file"].iloc[i]), message, row=int(grids["feature"].iloc[i]), column=column)


def read_csv_checked(path: Path, required: tuple[str, ...], optional: Iterable[str] = ()) -> pd.DataFrame:
    """Read a CSV as text (UTF-8 with or without BOM, else GBK) and check its required columns.

    Header names are stripped. A ``required`` or ``optional`` column named twice is an error
    (which one holds the data?); any other repeated name is an extra column, kept once.
    """
    for encoding in ("utf-8-sig", "gbk"):
        try:
            # header=None: the header is read as a row, so a name given twice is seen, not renamed 'x.1'
            raw = pd.read_csv(
                path, dtype=str, keep_default_na=False, encoding=encoding, skipinitialspace=True, header=None
            )
            break
        except UnicodeDecodeError:
            continue
        except pd.errors.EmptyDataError:
            raise InputError(str(path), f"file is empty; expected a header with {', '.join(required)}") from None
        except (pd.errors.ParserError, OSError, ValueError) as exc:
            raise InputError(str(path), f"cannot be read as CSV: {' '.join(str(exc).split())}") from exc
    else:
        raise InputError(str(path), "text encoding is neither UTF-8 nor GBK")
    names = pd.Index([str(c).strip() for c in raw.iloc[0]])
    known = {*required, *optional}
    twice = [n for n in names[names.duplicated()] if n in known]
    if twice:
        where = ", ".join(str(i + 1) for i in np.flatnonzero(names == twice[0]))
        raise InputError(
            str(path), f"column '{twice[0]}' appears twice in the header (columns {where}); keep one", column=twice[0]
        )
    df = raw.iloc[1:, ~names.duplicated()].reset_index(drop=True)
    df.columns = names[~names.duplicated()]
    for col in required:
        if col not in df.columns:
            raise InputError(
                str(path), f"column '{col}' is missing; found {', '.join(map(quote, df.columns))}", column=col
            )
    for col in df.columns:
        df[col] = df[col].str.strip()
    return df


def _first_bad(path: Path, bad: np.ndarray, column: str, message: str | Callable[[int], str]) -> None:
    """Raise an :class:`InputError` for the first row where ``bad`` holds (``message``, or of its position)."""
    hits = np.flatnonzero(bad)
    if len(hits):
        i = int(hits[0])
        raise InputError(str(path), message if isinstance(message, str) else message(i), row=i + 1, column=column)


def _require_nonempty(df: pd.DataFrame, path: Path, columns: tuple[str, ...]) -> None:
    for col in columns:
        _first_bad(path, (df[col] == "").to_numpy(), col, f"{col} is empty")


def _require_unique(df: pd.DataFrame, path: Path, column: str) -> None:
    _first_bad(
        path,
        df[column].duplicated().to_numpy(),
        column,
        lambda i: f"{column} {quote(df[column].iloc[i])} appears twice",
    )


def _require_known(df: pd.DataFrame, path: Path, column: str, known: set[str], where: str) -> None:
    _first_bad(
        path,
        ~df[column].isin(known).to_numpy(),
        column,
        lambda i: f"{column} {quote(df[column].iloc[i])} is not {where}",
    )


def parse_bool_column(values: pd.Series, path: Path, column: str) -> np.ndarray:
    """true/false, 1/0, yes/no, 是/否 (case-insensitive) to bool; anything else is an error."""
    low = values.astype(str).str.strip().str.lower()
    is_true = low.isin(TRUE_WORDS).to_numpy()
    is_false = low.isin(FALSE_WORDS).to_numpy()
    _first_bad(
        path,
        ~(is_true | is_false),
        column,
        lambda i: f"{quote(values.iloc[i])} is not a yes/no value (true/false, 1/0, 是/否)",
    )
    return is_true


def parse_date_column(values: pd.Series, path: Path, column: str) -> list[date]:
    """ISO dates (2026-10-09 or 2026/10/09) to ``datetime.date``; anything else is an error."""
    parsed = pd.to_datetime(values.str.replace("/", "-", regex=False), format="%Y-%m-%d", errors="coerce")
    _first_bad(
        path, parsed.isna().to_numpy(), column, lambda i: f"{quote(values.iloc[i])} is not a date (expected YYYY-MM-DD)"
    )
    return [d.date() for d in parsed]


def parse_float_column(values: pd.Series, path: Path, column: str, lo: float, hi: float) -> np.ndarray:
    num = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    _first_bad(
        path,
        ~np.isfinite(num) | (num < lo) | (num > hi),
        column,
        lambda i: f"{quote(values.iloc[i])} is not a number between {lo} and {hi}",
    )
    return num


def read_workers(path: Path, grid_ids: set[str]) -> pd.DataFrame:
    """workers.csv: worker_id (unique), worker_name, grid_id (a known grid), full_time (yes/no)."""
    if not path.exists():
        raise InputError(str(path), "workers.csv is missing: the roster is required")
    df = read_csv_checked(path, WORKERS_COLUMNS)
    _require_nonempty(df, path, ("worker_id", "grid_id"))
    _require_unique(df, path, "worker_id")
    _require_known(df, path, "grid_id", grid_ids, "a grid of grids_geojson/")
    df["full_time"] = parse_bool_column(df["full_time"], path, "full_time")
    return df


def read_sites(path: Path, grid_ids: set[str], default_radius_m: float) -> pd.DataFrame:
    """sites.csv: site_id, site_type, grid_id, lon, lat, optional radius_m (default from policy), label."""
    columns = [*SITES_COLUMNS, "radius_m", "label"]
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype=float if c in ("lon", "lat", "radius_m") else str) for c in columns})
    df = read_csv_checked(path, SITES_COLUMNS, ("radius_m", "label"))
    _require_nonempty(df, path, ("site_id", "site_type", "grid_id"))
    _require_unique(df, path, "site_id")
    _first_bad(
        path,
        ~df["site_type"].isin(SITE_TYPES).to_numpy(),
        "site_type",
        lambda i: (
            f"site_type was {quote(df['site_type'].iloc[i])} but is expected to be one of {', '.join(SITE_TYPES)}"
        ),
    )
    _require_known(df, path, "grid_id", grid_ids, "a grid of grids_geojson/")
    _check_site_degrees(df, path)
    df["lon"] = parse_float_column(df["lon"], path, "lon", -180, 180)
    df["lat"] = parse_float_column(df["lat"], path, "lat", -90, 90)
    if "radius_m" not in df.columns:
        df["radius_m"] = ""
    radius = df["radius_m"].replace("", str(default_radius_m))
    df["radius_m"] = parse_float_column(radius, path, "radius_m", 1, 10_000)
    if "label" not in df.columns:
        df["label"] = ""
    return df


def _check_site_degrees(df: pd.DataFrame, path: Path) -> None:
    """Sites in metres (a projected export) name the likely coordinate system, as grids do."""
    lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(dtype=float)
    # metres are ≥ 100 000 in any projection of China; a swap puts the latitude first (a typo
    # like 419.95 is left to the plain range check)
    metres = (np.abs(lon) >= 1e5) | (np.abs(lat) >= 1e5)
    swapped = (np.abs(lon) <= 90) & (np.abs(lat) > 90) & (np.abs(lat) <= 180)
    outside = np.isfinite(lon) & np.isfinite(lat) & (metres | swapped)
    for i in np.flatnonzero(outside)[:1]:
        raise InputError(
            str(path),
            f"坐标超出经纬度范围 coordinates outside degree ranges (lon {lon[i]:.6g}, lat {lat[i]:.6g}): "
            f"{guess_crs(float(lon[i]), float(lat[i]))}。请转换为 WGS-84 (EPSG:4326) 经纬度",
            row=int(i) + 1,
            column="lon",
        )


def read_leave(path: Path, worker_ids: set[str]) -> pd.DataFrame:
    """leave.csv (optional): worker_id, start_date, end_date, filed_date, reason."""
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in LEAVE_COLUMNS})
    df = read_csv_checked(path, LEAVE_COLUMNS)
    _require_nonempty(df, path, ("worker_id", "start_date", "end_date", "filed_date"))
    _require_known(df, path, "worker_id", worker_ids, "in workers.csv")
    for col in ("start_date", "end_date", "filed_date"):
        df[col] = parse_date_column(df[col], path, col)
    _first_bad(path, (df["end_date"] < df["start_date"]).to_numpy(), "end_date", "end_date is before start_date")
    return df


def read_calendar(path: Path) -> dict[date, bool]:
    """calendar.csv (optional): date, workday — the centre's overrides of the official calendar."""
    if not path.exists():
        return {}
    df = read_csv_checked(path, CALENDAR_COLUMNS)
    days = parse_date_column(df["date"], path, "date")
    flags = parse_bool_column(df["workday"], path, "workday")
    return dict(zip(days, (bool(f) for f in flags), strict=True))
