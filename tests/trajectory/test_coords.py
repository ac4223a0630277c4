"""Coordinate conversions to WGS-84: round trips land within 0.5 m (haversine)."""

from __future__ import annotations

import numpy as np
import pytest

from trajectory import coords


def haversine_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(np.asarray(lon2) - lon1) / 2) ** 2
    return 2 * 6371008.8 * np.arcsin(np.sqrt(a))


def grid(lon0: float, lon1: float, lat0: float, lat1: float, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = np.meshgrid(np.linspace(lon0, lon1, n), np.linspace(lat0, lat1, n))
    return lon.ravel(), lat.ravel()


AREAS = {
    "changzhou": grid(119.80, 120.10, 31.60, 31.90),  # the seed's 西太湖 area
    "china": grid(73.5, 135.0, 18.0, 53.5),
}


@pytest.mark.parametrize("area", AREAS)
@pytest.mark.parametrize(
    "forward, inverse",
    [(coords.wgs84_to_gcj02, coords.gcj02_to_wgs84), (coords.wgs84_to_bd09, coords.bd09_to_wgs84)],
    ids=["gcj02", "bd09"],
)
def test_round_trip_lands_within_half_a_metre(area: str, forward, inverse) -> None:
    lon, lat = AREAS[area]
    shifted = forward(lon, lat)
    assert haversine_m(lon, lat, *shifted).max() > 50  # the offset is real (hundreds of metres)
    back = inverse(*shifted)
    assert haversine_m(lon, lat, *back).max() < 0.5
    # and in fact to the iteration's tolerance (1e-9 deg ~ 0.1 mm)
    assert np.abs(back[0] - lon).max() < 1e-8 and np.abs(back[1] - lat).max() < 1e-8


def test_exact_inverse_beats_the_one_step_formula() -> None:
    lon, lat = AREAS["china"]
    glon, glat = coords.wgs84_to_gcj02(lon, lat)
    dlon, dlat = coords.wgs84_to_gcj02(glon, glat)
    one_step = (2 * glon - dlon, 2 * glat - dlat)  # the common closed-form approximation
    exact = coords.gcj02_to_wgs84(glon, glat)
    assert haversine_m(lon, lat, *exact).max() < haversine_m(lon, lat, *one_step).max()


def test_reference_values_of_the_public_formula() -> None:
    # coordtransform's documented results for (116.404, 39.915)
    lon, lat = coords.wgs84_to_gcj02(116.404, 39.915)
    assert (float(lon), float(lat)) == pytest.approx((116.41024449916938, 39.91640428150164), abs=1e-12)
    lon, lat = coords.gcj02_to_bd09(116.404, 39.915)
    assert (float(lon), float(lat)) == pytest.approx((116.41036949371029, 39.92133699351021), abs=1e-12)


def test_no_offset_outside_china() -> None:
    lon, lat = np.array([2.35, -74.0, 151.2]), np.array([48.86, 40.7, -33.87])
    for fn in (coords.wgs84_to_gcj02, coords.gcj02_to_wgs84):
        out = fn(lon, lat)
        np.testing.assert_array_equal(out[0], lon)
        np.testing.assert_array_equal(out[1], lat)


def test_cgcs2000_is_identity_and_matches_pyproj() -> None:
    pyproj = pytest.importorskip("pyproj")
    lon, lat = AREAS["changzhou"]
    ours = coords.cgcs2000_to_wgs84(lon, lat)
    t = pyproj.Transformer.from_crs("EPSG:4490", "EPSG:4326", always_xy=True)
    theirs = t.transform(lon, lat)
    assert haversine_m(ours[0], ours[1], *theirs).max() < 0.1


@pytest.mark.parametrize("crs", ["wgs84", "GCJ02", "bd09", "cgcs2000"])
def test_dispatcher(crs: str) -> None:
    lon, lat = np.array([119.95, np.nan]), np.array([31.78, np.nan])
    src = {
        "wgs84": (lon, lat),
        "gcj02": coords.wgs84_to_gcj02(lon, lat),
        "bd09": coords.wgs84_to_bd09(lon, lat),
        "cgcs2000": (lon, lat),
    }[crs.lower()]
    out = coords.to_wgs84(*src, crs)
    assert haversine_m(lon[:1], lat[:1], out[0][:1], out[1][:1])[0] < 0.5
    assert np.isnan(out[0][1]) and np.isnan(out[1][1])  # NaN stays NaN, no endless loop


def test_dispatcher_rejects_unknown_crs() -> None:
    with pytest.raises(ValueError, match="expected to be one of"):
        coords.to_wgs84([1.0], [2.0], "utm50")
