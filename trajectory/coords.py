"""Coordinate systems of Chinese GPS exports, converted to WGS-84 (SPEC §2, ``gps_crs``).

Phones and map SDKs in China deliver one of:

- ``wgs84`` — raw GNSS, what the pipeline stores;
- ``gcj02`` — the national obfuscation ("Mars coordinates", 火星坐标) of AMap/Tencent SDKs,
  an offset of a few hundred metres inside China and none outside;
- ``bd09`` — Baidu's further shift of GCJ-02;
- ``cgcs2000`` — the national datum (EPSG:4490); it differs from WGS-84 by a few
  centimetres, far below GPS error, so it is taken as identical (pyproj's EPSG:4490→4326
  is a null transform too).

The forward GCJ-02 formula is public (Krasovsky ellipsoid, polynomial plus sine terms); its
inverse is not closed-form. The usual one-step inverse is ~1–3 m off, which matters when a
grid edge runs along a street, so :func:`gcj02_to_wgs84` iterates the fixed point
``x ← x − (forward(x) − target)`` to 1e-9° (≈0.1 mm). Everything is vectorised NumPy.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from trajectory.contract import GPS_CRS_CHOICES

__all__ = [
    "Float",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "cgcs2000_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "in_china",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

_KRASOVSKY_A = 6378245.0  # semi-major axis of the Krasovsky 1940 ellipsoid used by GCJ-02 (m)
_KRASOVSKY_EE = 0.00669342162296594323  # its first eccentricity squared
_BD_X_PI = np.pi * 3000.0 / 180.0
_BD_DLON = 0.0065
_BD_DLAT = 0.006
# GCJ-02 applies only inside this box (the offset is zero elsewhere)
_CHINA_LON = (72.004, 137.8347)
_CHINA_LAT = (0.8293, 55.8271)
_INVERSE_TOL_DEG = 1e-9
_INVERSE_MAX_ITER = 10

Float = NDArray[np.float64]


def _as_arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[Float, Float]:
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"lon and lat must have the same shape; found {x.shape} and {y.shape}")
    return x, y


def in_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """True where GCJ-02 applies an offset (the rough bounding box every implementation uses).

    Examples
    --------
    >>> in_china([119.95, 2.35], [31.78, 48.86]).tolist()
    [True, False]
    """
    x, y = _as_arrays(lon, lat)
    return (x >= _CHINA_LON[0]) & (x <= _CHINA_LON[1]) & (y >= _CHINA_LAT[0]) & (y <= _CHINA_LAT[1])


def _gcj02_offset(x: Float, y: Float) -> tuple[Float, Float]:
    """GCJ-02 minus WGS-84 in degrees at WGS-84 point (x, y), zero outside China."""
    dx, dy = x - 105.0, y - 35.0
    sqrt_abs_dx = np.sqrt(np.abs(dx))
    s6 = 20.0 * np.sin(6.0 * dx * np.pi) + 20.0 * np.sin(2.0 * dx * np.pi)
    dlat = -100.0 + 2.0 * dx + 3.0 * dy + 0.2 * dy * dy + 0.1 * dx * dy + 0.2 * sqrt_abs_dx
    dlat += s6 * 2.0 / 3.0
    dlat += (20.0 * np.sin(dy * np.pi) + 40.0 * np.sin(dy / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(dy / 12.0 * np.pi) + 320.0 * np.sin(dy * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + dx + 2.0 * dy + 0.1 * dx * dx + 0.1 * dx * dy + 0.1 * sqrt_abs_dx
    dlon += s6 * 2.0 / 3.0
    dlon += (20.0 * np.sin(dx * np.pi) + 40.0 * np.sin(dx / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(dx / 12.0 * np.pi) + 300.0 * np.sin(dx / 30.0 * np.pi)) * 2.0 / 3.0
    rad = np.radians(y)
    magic = 1.0 - _KRASOVSKY_EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = dlat * 180.0 / ((_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (magic * sqrt_magic) * np.pi)
    dlon = dlon * 180.0 / (_KRASOVSKY_A / sqrt_magic * np.cos(rad) * np.pi)
    inside = in_china(x, y)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Float, Float]:
    """WGS-84 to GCJ-02 (the standard forward formula; no offset outside China).

    Examples
    --------
    The reference value of the widely used coordtransform library (116.404, 39.915):

    >>> lon, lat = wgs84_to_gcj02([116.404], [39.915])
    >>> round(float(lon[0]), 9), round(float(lat[0]), 9)
    (116.410244499, 39.916404282)
    >>> wgs84_to_gcj02([2.35], [48.86])
    (array([2.35]), array([48.86]))
    """
    x, y = _as_arrays(lon, lat)
    dx, dy = _gcj02_offset(x, y)
    return x + dx, y + dy


def _iterate_inverse(forward, tx: Float, ty: Float, x: Float, y: Float) -> tuple[Float, Float]:
    """Solve forward(x, y) = (tx, ty) by the fixed point x ← x − (forward(x) − t), vectorised.

    The offsets vary by < 1e-5 per degree, so each step gains ~5 digits: two or three
    steps reach 1e-9°; the loop stops early when every point has converged.
    """
    for _ in range(_INVERSE_MAX_ITER):
        fx, fy = forward(x, y)
        ex, ey = fx - tx, fy - ty
        x, y = x - ex, y - ey
        err = np.maximum(np.abs(ex), np.abs(ey))
        if not np.any(err > _INVERSE_TOL_DEG):  # NaN inputs stay NaN and do not loop forever
            break
    return x, y


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Float, Float]:
    """GCJ-02 to WGS-84, exact to 1e-9° (iterated inverse of :func:`wgs84_to_gcj02`).

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(*wgs84_to_gcj02([119.95], [31.78]))
    >>> round(float(lon[0]), 9), round(float(lat[0]), 9)
    (119.95, 31.78)
    """
    tx, ty = _as_arrays(lon, lat)
    dx, dy = _gcj02_offset(tx, ty)  # one-step approximation (~1 m) as the starting point
    return _iterate_inverse(wgs84_to_gcj02, tx, ty, tx - dx, ty - dy)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Float, Float]:
    """GCJ-02 to BD-09 (Baidu's published forward shift).

    Examples
    --------
    >>> lon, lat = gcj02_to_bd09([116.404], [39.915])
    >>> round(float(lon[0]), 9), round(float(lat[0]), 9)
    (116.410369494, 39.921336994)
    """
    x, y = _as_arrays(lon, lat)
    z = np.hypot(x, y) + 0.00002 * np.sin(y * _BD_X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _BD_X_PI)
    return z * np.cos(theta) + _BD_DLON, z * np.sin(theta) + _BD_DLAT


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Float, Float]:
    """BD-09 to GCJ-02: the usual closed-form inverse, refined by iteration to 1e-9°.

    Examples
    --------
    >>> lon, lat = bd09_to_gcj02(*gcj02_to_bd09([119.95432], [31.77795]))
    >>> round(float(lon[0]), 9), round(float(lat[0]), 9)
    (119.95432, 31.77795)
    """
    tx, ty = _as_arrays(lon, lat)
    x, y = tx - _BD_DLON, ty - _BD_DLAT
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _BD_X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _BD_X_PI)
    return _iterate_inverse(gcj02_to_bd09, tx, ty, z * np.cos(theta), z * np.sin(theta))


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Float, Float]:
    """WGS-84 to BD-09 (through GCJ-02).

    Examples
    --------
    >>> lon, lat = bd09_to_wgs84(*wgs84_to_bd09([119.95], [31.78]))
    >>> round(float(lon[0]), 9), round(float(lat[0]), 9)
    (119.95, 31.78)
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Float, Float]:
    """BD-09 to WGS-84 (through GCJ-02, both inverses exact to 1e-9°)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def cgcs2000_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Float, Float]:
    """CGCS2000 to WGS-84: the identity.

    The two datums agree to a few centimetres (same ellipsoid up to a 0.1 mm difference in
    the semi-minor axis; frames aligned at the ITRF level), two orders of magnitude below
    phone GPS error; pyproj's EPSG:4490→EPSG:4326 is likewise a null transform.

    Examples
    --------
    >>> cgcs2000_to_wgs84([119.95], [31.78])
    (array([119.95]), array([31.78]))
    """
    return _identity(lon, lat)


def _identity(lon: ArrayLike, lat: ArrayLike) -> tuple[Float, Float]:
    x, y = _as_arrays(lon, lat)
    return x.copy(), y.copy()


_TO_WGS84 = {
    "wgs84": _identity,
    "gcj02": gcj02_to_wgs84,
    "bd09": bd09_to_wgs84,
    "cgcs2000": cgcs2000_to_wgs84,
}
assert set(_TO_WGS84) == set(GPS_CRS_CHOICES)


def to_wgs84(lon: ArrayLike, lat: ArrayLike, crs: str) -> tuple[Float, Float]:
    """Convert coordinates in ``crs`` (one of ``wgs84, gcj02, bd09, cgcs2000``) to WGS-84.

    Parameters
    ----------
    lon, lat : array_like
        Degrees, same shape. NaN stays NaN.
    crs : str
        The workspace's ``gps_crs`` (case-insensitive).

    Returns
    -------
    (lon, lat) : tuple of float64 arrays

    Examples
    --------
    >>> lon, lat = to_wgs84(*wgs84_to_bd09([119.95], [31.78]), "BD09")
    >>> round(float(lon[0]), 9), round(float(lat[0]), 9)
    (119.95, 31.78)
    """
    key = str(crs).strip().lower()
    if key not in _TO_WGS84:
        raise ValueError(f"crs was '{crs}' but is expected to be one of {', '.join(GPS_CRS_CHOICES)}")
    return _TO_WGS84[key](lon, lat)
