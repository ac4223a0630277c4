"""Coarse positions of personal sites (PIPL): a block, not a door.

Key persons, special-group persons and care subjects (``policy.privacy.personal_site_types``)
are drawn on the maps only at the centre of a square cell of ``policy.privacy.site_cell_m``
metres (default 150 m); hazard sites are places and stay exact. The maps snap the sites frame
once, on entry (:func:`maps.build.prepare_month`), so no page, tooltip or data file can see
an exact personal position.

The cells are a fixed global lattice, not one per workspace or month: the same home falls in the
same cell in every month's pages, so comparing two months' pages reveals nothing finer. Rows are
``cell_m`` metres of northing (metres per degree of latitude at the equator, the smallest on the
WGS-84 ellipsoid, so a row is never lower than ``cell_m`` on the ground); within a row, columns are
``cell_m`` metres of easting at the row's poleward edge (where a degree of longitude is shortest, so a
column is never narrower than ``cell_m``). Both scales come from :func:`trajectory.geo.frame_scales`,
the frame the engine measures distances in. At 32° N a cell is ≈ 150.0 m × 150.4 m.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.policy import PrivacyPolicy, load_policy
from trajectory.geo import frame_scales

# sites so close to a pole that a degree of longitude vanishes are clipped (none in any grid)
_MAX_ABS_LAT = 89.0


def default_privacy() -> PrivacyPolicy:
    """The ``[privacy]`` section of the default policy (``scoring/default_policy.toml``)."""
    return load_policy().privacy


def snap_to_cells(
    lon: np.ndarray, lat: np.ndarray, cell_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Centre of the square cell of ``cell_m`` metres holding each point, and the cell's half sizes.

    Cell ``j = floor(y / cell_m)`` of northing ``y = lat · ky(0°)`` and ``i = floor(x / cell_m)`` of
    easting ``x = (lon + 180°) · kx(row's poleward edge)``; the centre is ``(cell + 0.5) · cell_m``
    converted back to degrees (module docstring: why these scales).

    Parameters
    ----------
    lon, lat : arrays
        WGS-84 degrees (NaN stays NaN).
    cell_m : float
        Cell side in metres (> 0).

    Returns
    -------
    lon_c, lat_c, half_dlon, half_dlat : arrays
        Cell centres, and half the cell's width and height in degrees (for drawing the cell).

    Examples
    --------
    >>> lon_c, lat_c, hx, hy = snap_to_cells(np.array([119.883417, 119.883500]), np.array([31.682593, 31.682600]), 150.0)
    >>> bool(lon_c[0] == lon_c[1] and lat_c[0] == lat_c[1])  # two doors 8 m apart: one cell
    True
    >>> kx, ky = frame_scales(31.6826)
    >>> round(float(2 * hx[0] * kx)), round(float(2 * hy[0] * ky))  # the cell on the ground, metres
    (150, 150)
    >>> bool(abs(lon_c[0] - 119.883417) <= hx[0] and abs(lat_c[0] - 31.682593) <= hy[0])
    True
    """
    if not cell_m > 0:
        raise ValueError(f"cell_m was {cell_m} but is expected to be a positive number of metres")
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.clip(np.asarray(lat, dtype=np.float64), -_MAX_ABS_LAT, _MAX_ABS_LAT)
    _, ky = frame_scales(0.0)
    dlat = cell_m / float(ky)
    row = np.floor(lat / dlat)
    poleward = np.maximum(np.abs(row * dlat), np.abs((row + 1.0) * dlat))
    kx, _ = frame_scales(np.minimum(poleward, _MAX_ABS_LAT))
    dlon = cell_m / kx
    col = np.floor((lon + 180.0) / dlon)
    return (col + 0.5) * dlon - 180.0, (row + 0.5) * dlat, dlon / 2.0, np.full(lat.shape, dlat / 2.0)


def coarsen_sites(sites: pd.DataFrame, privacy: PrivacyPolicy | None = None) -> pd.DataFrame:
    """The sites with every personal site moved to the centre of its privacy cell.

    Parameters
    ----------
    sites : DataFrame
        ``site_type, lon, lat`` (WGS-84) and any other columns (copied unchanged).
    privacy : PrivacyPolicy, optional
        ``site_cell_m`` and ``personal_site_types``; default the default policy's (150 m; key
        persons, special groups, care subjects).

    Returns
    -------
    DataFrame
        A copy: ``lon``/``lat`` of personal sites replaced by their cell centre, plus ``coarse``
        (bool) and ``cell_half_dlon``/``cell_half_dlat`` (degrees, 0 for exact sites) to draw the cell.

    Examples
    --------
    >>> sites = pd.DataFrame({"site_type": ["key_person", "care_subject", "hazard_site"],
    ...                       "lon": [119.883417, 119.883500, 119.909123], "lat": [31.682593, 31.682600, 31.685456]})
    >>> out = coarsen_sites(sites, PrivacyPolicy(150.0, ("key_person", "special_group", "care_subject")))
    >>> out[["lon", "lat"]].round(6).values.tolist()
    [[119.88338, 31.683002], [119.88338, 31.683002], [119.909123, 31.685456]]
    >>> out["coarse"].tolist()
    [True, True, False]
    """
    privacy = privacy or default_privacy()
    out = sites.copy()
    personal = out["site_type"].astype(str).isin(privacy.personal_site_types).to_numpy()
    lon_c, lat_c, hx, hy = snap_to_cells(
        out["lon"].to_numpy(dtype=np.float64), out["lat"].to_numpy(dtype=np.float64), float(privacy.site_cell_m)
    )
    out["lon"] = np.where(personal, lon_c, out["lon"].to_numpy(dtype=np.float64))
    out["lat"] = np.where(personal, lat_c, out["lat"].to_numpy(dtype=np.float64))
    out["coarse"] = personal
    out["cell_half_dlon"] = np.where(personal, hx, 0.0)
    out["cell_half_dlat"] = np.where(personal, hy, 0.0)
    return out


__all__ = ["coarsen_sites", "default_privacy", "snap_to_cells"]
