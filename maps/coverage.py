"""Coverage of a grid: the share of its area actually walked, on a metric raster.

Each grid gets a raster of square cells (default 25 m) in its own local metric frame
(:mod:`trajectory.geo`, the frame the engine measures distances in; metric to 0.05 % over a
grid, and valid in any UTM zone, unlike a fixed EPSG:32650). A cell belongs to the grid when its
centre lies in the polygon. A cell is *walked* when a counted, in-grid patrol point falls in it
or when the straight segment between two consecutive such points of the same worker-day
(at most ``max_gap_s`` apart, the engine's rule for counting patrol time) passes through it.
Segments are rasterised by sampling them every half cell, which can miss only a corner clipped
by less than half a cell. Everything is vectorised: one ``np.unique`` of linear cell indices
per grid. See docs/maps.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from trajectory.geo import from_local, grid_frames, to_local

LonLatTransform = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

DEFAULT_CELL_M = 25.0
DEFAULT_MAX_GAP_S = 300.0
# a counted segment is walked at ≤ 25 km/h for ≤ max_gap_s; this caps a corrupt one's samples
_MAX_SAMPLES_PER_SEGMENT = 2000


@dataclass(frozen=True)
class GridRaster:
    """A grid's cells: origin ``(lon0, lat0)`` of its local frame, lower-left corner ``(x0, y0)``
    in metres, ``nx`` × ``ny`` cells of ``cell_m``, and ``inside`` (ny, nx) — cell centre in the grid."""

    lon0: float
    lat0: float
    x0: float
    y0: float
    nx: int
    ny: int
    cell_m: float
    inside: np.ndarray

    @property
    def grid_cells(self) -> int:
        return int(self.inside.sum())


def grid_raster(geom: shapely.Geometry, cell_m: float = DEFAULT_CELL_M) -> GridRaster:
    """Rasterise one grid polygon (EPSG:4326) into ``cell_m`` cells of its local frame.

    Examples
    --------
    >>> sq = shapely.box(119.88, 31.68, 119.89, 31.69)  # ≈ 949 m × 1109 m
    >>> r = grid_raster(sq, 25.0)
    >>> 1600 < r.grid_cells < 1750
    True
    """
    if cell_m <= 0:
        raise ValueError(f"cell_m was {cell_m} but is expected to be > 0")
    lon0, lat0 = (float(v[0]) for v in grid_frames(np.array([geom])))
    local = shapely.transform(geom, lambda c: np.column_stack(to_local(c[:, 0], c[:, 1], lon0, lat0)))
    xmin, ymin, xmax, ymax = shapely.bounds(local)
    x0 = np.floor(xmin / cell_m) * cell_m
    y0 = np.floor(ymin / cell_m) * cell_m
    nx = max(int(np.ceil((xmax - x0) / cell_m)), 1)
    ny = max(int(np.ceil((ymax - y0) / cell_m)), 1)
    cx = x0 + (np.arange(nx) + 0.5) * cell_m
    cy = y0 + (np.arange(ny) + 0.5) * cell_m
    xx, yy = np.meshgrid(cx, cy)
    shapely.prepare(local)
    inside = shapely.contains_xy(local, xx, yy)
    return GridRaster(lon0, lat0, float(x0), float(y0), nx, ny, float(cell_m), inside)


def track_samples(
    x: np.ndarray, y: np.ndarray, t_s: np.ndarray, run: np.ndarray, step_m: float, max_gap_s: float = DEFAULT_MAX_GAP_S
) -> tuple[np.ndarray, np.ndarray]:
    """The points plus samples every ``step_m`` along segments between consecutive points of the
    same ``run`` (a worker-day code) at most ``max_gap_s`` apart. Inputs sorted by run, time.

    Examples
    --------
    >>> sx, sy = track_samples(np.array([0.0, 100.0]), np.array([0.0, 0.0]), np.array([0.0, 60.0]), np.array([0, 0]), 10.0)
    >>> len(sx), float(sx.max())
    (12, 100.0)
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) < 2:
        return x, y
    dx, dy = np.diff(x), np.diff(y)
    ok = (np.diff(run) == 0) & (np.diff(np.asarray(t_s, dtype=np.float64)) <= max_gap_s)
    start = np.flatnonzero(ok)
    length = np.hypot(dx[start], dy[start])
    n = np.clip(np.ceil(length / step_m).astype(np.int64), 1, _MAX_SAMPLES_PER_SEGMENT)
    seg = np.repeat(np.arange(len(start)), n)
    k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    f = k / np.repeat(n, n)
    sx = x[start][seg] + f * dx[start][seg]
    sy = y[start][seg] + f * dy[start][seg]
    return np.concatenate([x, sx]), np.concatenate([y, sy])


def walked_cells(
    raster: GridRaster,
    lon: np.ndarray,
    lat: np.ndarray,
    t_s: np.ndarray,
    run: np.ndarray,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> np.ndarray:
    """Sorted linear indices (``iy * nx + ix``) of the grid's cells walked by these points."""
    if len(lon) == 0:
        return np.empty(0, dtype=np.int64)
    x, y = to_local(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64), raster.lon0, raster.lat0)
    sx, sy = track_samples(x, y, t_s, run, raster.cell_m / 2.0, max_gap_s)
    ix = np.floor((sx - raster.x0) / raster.cell_m).astype(np.int64)
    iy = np.floor((sy - raster.y0) / raster.cell_m).astype(np.int64)
    keep = (ix >= 0) & (ix < raster.nx) & (iy >= 0) & (iy < raster.ny)
    cells = np.unique(iy[keep] * raster.nx + ix[keep])
    return cells[raster.inside.ravel()[cells]]


def cell_rects(
    raster: GridRaster, cells: np.ndarray, transform: LonLatTransform | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """South, west, north, east (degrees, display datum) of each of ``cells``.

    ``transform`` maps WGS-84 lon/lat arrays to the display datum (GCJ-02 for AMap tiles); the
    lower-left and upper-right corners are transformed, which keeps a 25 m cell exact to
    millimetres (the GCJ-02 shift varies by less than that across it).

    Examples
    --------
    >>> r = grid_raster(shapely.box(119.88, 31.68, 119.89, 31.69), 25.0)
    >>> s, w, n, e = cell_rects(r, np.array([0, 1]))
    >>> bool(np.all(n > s) and np.all(e > w) and np.isclose(w[1], e[0]))
    True
    """
    iy, ix = np.divmod(np.asarray(cells, dtype=np.int64), raster.nx)
    cx = raster.x0 + ix * raster.cell_m
    cy = raster.y0 + iy * raster.cell_m
    west, south = from_local(cx, cy, raster.lon0, raster.lat0)
    east, north = from_local(cx + raster.cell_m, cy + raster.cell_m, raster.lon0, raster.lat0)
    if transform is not None and len(cells):
        west, south = transform(west, south)
        east, north = transform(east, north)
    return south, west, north, east


def heat_bins(lat: np.ndarray, lon: np.ndarray, step_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points counted per square bin of ``step_deg``: bin centres (lat, lon) and counts.

    The heat layer draws the bins weighted by their counts: at the scale of a heat map (a
    radius of 12 px is ≥ 14 m at its most detailed zoom) the picture is that of every point,
    and a month of points becomes a few thousand bins.

    Examples
    --------
    >>> la, lo, n = heat_bins(np.array([31.70001, 31.70002, 31.8]), np.array([119.9, 119.9, 119.9]), 1e-4)
    >>> n.tolist(), bool(np.allclose(la, [31.70005, 31.80005]))
    ([2, 1], True)
    """
    acc = HeatBins(step_deg)
    acc.add(lat, lon)
    return acc.bins()


class HeatBins:
    """:func:`heat_bins` summed over batches of points: the same bins, in the same order, as one
    call over all of them, holding only the bins (the month's overview reads its points grid by grid).

    Examples
    --------
    >>> acc = HeatBins(1e-4)
    >>> acc.add(np.array([31.70001]), np.array([119.9])); acc.add(np.array([31.8, 31.70002]), np.array([119.9, 119.9]))
    >>> acc.bins()[2].tolist()
    [2, 1]
    """

    def __init__(self, step_deg: float) -> None:
        self.step_deg = float(step_deg)
        self._keys = np.empty((0, 2), dtype=np.int64)
        self._counts = np.empty(0, dtype=np.int64)

    def add(self, lat: np.ndarray, lon: np.ndarray) -> None:
        lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
        if len(lat) == 0:
            return
        iy = np.floor(lat / self.step_deg).astype(np.int64)
        ix = np.floor(lon / self.step_deg).astype(np.int64)
        key, count = np.unique(np.stack([iy, ix], axis=1), axis=0, return_counts=True)
        if len(self._keys):
            key, inv = np.unique(np.concatenate([self._keys, key]), axis=0, return_inverse=True)
            weights = np.concatenate([self._counts, count])
            count = np.bincount(inv.ravel(), weights=weights, minlength=len(key)).round().astype(np.int64)
        self._keys, self._counts = key, count.astype(np.int64)

    def bins(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bin centres (lat, lon) and counts, sorted by bin as :func:`heat_bins` returns them."""
        if len(self._keys) == 0:
            return np.empty(0), np.empty(0), np.empty(0, dtype=np.int64)
        return (
            (self._keys[:, 0] + 0.5) * self.step_deg,
            (self._keys[:, 1] + 0.5) * self.step_deg,
            self._counts.copy(),
        )


def grid_coverage(
    grids: pd.DataFrame,
    tracks: pd.DataFrame,
    cell_m: float = DEFAULT_CELL_M,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> tuple[pd.DataFrame, dict[str, tuple[GridRaster, np.ndarray]]]:
    """Coverage of every grid by its counted in-grid patrol points.

    Parameters
    ----------
    grids : GeoDataFrame
        ``grid_id`` and ``geometry`` (EPSG:4326).
    tracks : DataFrame
        Counted in-grid points: ``grid_id, worker_id, date, ts, lon, lat`` (WGS-84).
    cell_m : float
        Cell size in metres.
    max_gap_s : float
        Consecutive points further apart in time are not joined by a segment.

    Returns
    -------
    coverage : DataFrame
        ``grid_id, grid_cells, walked_cells, coverage`` (NaN when the grid has no cell).
    rasters : dict
        ``grid_id -> (GridRaster, walked cell indices)`` for drawing the walked cells.
    """
    for col in ("grid_id", "worker_id", "date", "ts", "lon", "lat"):
        if col not in tracks.columns:
            raise ValueError(f"tracks has no column '{col}'; found {', '.join(map(str, tracks.columns))}")
    t = tracks.sort_values(["grid_id", "worker_id", "date", "ts"], kind="stable")
    run = t.groupby(["worker_id", "date"], sort=False, observed=True).ngroup().to_numpy()
    t_s = (t["ts"] - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds().to_numpy() if len(t) else np.empty(0)
    gid = t["grid_id"].astype(str).to_numpy()
    lon, lat = t["lon"].to_numpy(dtype=np.float64), t["lat"].to_numpy(dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]]) if len(gid) else np.empty(0, dtype=np.int64)
    ends = np.r_[starts[1:], len(gid)] if len(gid) else starts  # a month without points: no spans
    spans = {str(gid[s]): (int(s), int(e)) for s, e in zip(starts, ends, strict=True)}
    rows, rasters = [], {}
    for grid_id, geom in zip(grids["grid_id"].astype(str), grids.geometry.values, strict=True):
        raster = grid_raster(geom, cell_m)
        s, e = spans.get(grid_id, (0, 0))
        cells = walked_cells(raster, lon[s:e], lat[s:e], t_s[s:e], run[s:e], max_gap_s)
        n = raster.grid_cells
        rows.append((grid_id, n, len(cells), len(cells) / n if n else np.nan))
        rasters[grid_id] = (raster, cells)
    cov = pd.DataFrame(rows, columns=["grid_id", "grid_cells", "walked_cells", "coverage"])
    return cov, rasters


__all__ = [
    "LonLatTransform",
    "DEFAULT_CELL_M",
    "DEFAULT_MAX_GAP_S",
    "GridRaster",
    "grid_raster",
    "track_samples",
    "walked_cells",
    "cell_rects",
    "heat_bins",
    "HeatBins",
    "grid_coverage",
]
