"""Personal sites never appear finer than their privacy cell in anything the maps write (PIPL)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from maps_fixtures import MONTH, PERSONAL_SITES, SITE_POSITIONS, write_workspace

from maps.build import render_month
from maps.privacy import coarsen_sites, default_privacy, snap_to_cells
from maps.tiles import TileConfig
from scoring.policy import PrivacyPolicy, load_policy
from trajectory.errors import PolicyError
from trajectory.geo import frame_scales, to_local

SITE_IDS = ("KP001", "SG001", "CS001", "HZ001")
POSITIONS = dict(zip(SITE_IDS, SITE_POSITIONS, strict=True))
PERSONAL_TYPES = ("key_person", "special_group", "care_subject")
# the rectangles of maps.elements.CellsLayer, as rendered
CELLS_JS = re.compile(r"var s = (\[[^\]]*\]), w = (\[[^\]]*\]), n = (\[[^\]]*\]), e = (\[[^\]]*\])")


def _forms(value: float) -> set[str]:
    """How a coordinate could be written: repr, fixed 4–6 decimals, and rounded then printed as JSON does."""
    forms = {repr(float(value))}
    for d in (4, 5, 6):
        forms |= {f"{value:.{d}f}", repr(float(np.round(value, d)))}
    return forms


def _pattern(form: str) -> re.Pattern[str]:
    # a whole number only: "119.8834" must not match inside the unrelated "119.883452"; trailing
    # zeros are the same number ("31.68259300")
    return re.compile(r"(?<![\d.])" + re.escape(form) + r"0*(?!\d)")


def _texts(out: Path) -> dict[str, str]:
    """Every text file written under ``out`` (html, js, json, geojson, css, …), by relative path."""
    texts = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        try:
            texts[path.relative_to(out).as_posix()] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # the workbook stand-in, images, fonts
            continue
    return texts


NUMBER = re.compile(r"-?\d+\.\d+")


def _background(texts: dict[str, str]) -> frozenset[str]:
    """Every decimal number in the same pages drawn without any site."""
    return frozenset(m for text in texts.values() for m in NUMBER.findall(text))


def _leaks(
    texts: dict[str, str], positions: dict[str, tuple[float, float]], background: frozenset[str] | None = None
) -> list[str]:
    """Where any form (:func:`_forms`) of a site's lon or lat is written, as ``"site axis form in file"``.

    ``background``: the numbers of the pages drawn without sites. Tracks pass a site's door and the
    walked 25 m cells have corners near it, so a point may print as the site's longitude to 4
    decimals; that would be a false alarm, so the fixture's sites are placed where none does, and
    this is checked here first.
    """
    found = []
    for site, (lon, lat) in positions.items():
        for axis, value in (("lon", lon), ("lat", lat)):
            forms = _forms(value)
            clash = sorted(forms & (background or frozenset()))
            assert not clash, f"fixture: {site} {axis} {clash} drawn even without sites; move the site"
            for form in forms:
                pat = _pattern(form)
                found += [f"{site} {axis} {form} in {name}" for name, text in texts.items() if pat.search(text)]
    return found


def _drawn_cells(text: str) -> np.ndarray:
    """(south, west, north, east) of every privacy cell drawn on a page, one row per cell."""
    rows = [np.column_stack([json.loads(a) for a in m]) for m in CELLS_JS.findall(text)]
    return np.vstack(rows) if rows else np.empty((0, 4))


# --- the snapping function ----------------------------------------------------------------------


@pytest.mark.parametrize("lat0", [31.68, 18.25, 53.5, -33.9])  # 常州, 海南, 漠河, and a southern site
def test_snap_is_the_centre_of_a_cell_of_at_least_cell_m(lat0):
    rng = np.random.default_rng(7)
    lon = 119.9 + rng.uniform(-0.005, 0.005, 2000)
    lat = lat0 + rng.uniform(-0.005, 0.005, 2000)
    cell_m = 150.0
    lon_c, lat_c, hx, hy = snap_to_cells(lon, lat, cell_m)
    kx, ky = frame_scales(lat)
    # inside its cell, so at most half a diagonal away; the cell is never smaller than cell_m on the
    # ground (and only a little larger: rows grow with the meridian radius, ≤ 1 % up to 90°)
    assert np.all(np.abs(lon - lon_c) <= hx) and np.all(np.abs(lat - lat_c) <= hy)
    dx, dy = (lon - lon_c) * kx, (lat - lat_c) * ky
    assert np.hypot(dx, dy).max() <= cell_m / np.sqrt(2) * 1.01
    assert np.all(2 * hx * kx >= cell_m) and np.all(2 * hy * ky >= cell_m)
    assert np.all(2 * hx * kx <= cell_m * 1.001) and np.all(2 * hy * ky <= cell_m * 1.01)
    # a centre snaps to itself, and distinct centres are a cell apart: no finer position survives
    again = snap_to_cells(lon_c, lat_c, cell_m)
    np.testing.assert_array_equal(again[0], lon_c)
    np.testing.assert_array_equal(again[1], lat_c)
    centres = np.unique(np.column_stack([lon_c, lat_c]), axis=0)
    assert len(centres) < len(lon) / 5  # 2000 points in ≈ 50 cells
    x, y = to_local(centres[:, 0], centres[:, 1], 119.9, lat0)
    d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    np.fill_diagonal(d, np.inf)
    assert d.min() >= cell_m * 0.999


def test_snap_two_sites_in_one_cell_share_the_centre_and_cells_are_fixed():
    lon_c, lat_c, hx, hy = snap_to_cells(np.array([119.883417, 119.883500]), np.array([31.682593, 31.682600]), 150.0)
    assert lon_c[0] == lon_c[1] and lat_c[0] == lat_c[1]
    # the lattice is global: the same home gets the same cell whatever else is in the frame
    alone = snap_to_cells(np.array([119.883417]), np.array([31.682593]), 150.0)
    assert alone[0][0] == lon_c[0] and alone[1][0] == lat_c[0]
    nan = snap_to_cells(np.array([np.nan]), np.array([np.nan]), 150.0)
    assert np.isnan(nan[0][0]) and np.isnan(nan[1][0])
    with pytest.raises(ValueError, match="positive"):
        snap_to_cells(np.array([119.9]), np.array([31.7]), 0.0)


def test_coarsen_sites_moves_personal_sites_only():
    sites = pd.DataFrame(
        {
            "site_id": list(SITE_IDS),
            "site_type": [*PERSONAL_TYPES, "hazard_site"],
            "lon": [lon for lon, _ in SITE_POSITIONS],
            "lat": [lat for _, lat in SITE_POSITIONS],
            "grid_id": ["G01", "G01", "G02", "G03"],
        }
    )
    out = coarsen_sites(sites, PrivacyPolicy(150.0, PERSONAL_TYPES))
    assert out["coarse"].tolist() == [True, True, True, False]
    lon_c, lat_c, _, _ = snap_to_cells(sites["lon"].to_numpy(), sites["lat"].to_numpy(), 150.0)
    np.testing.assert_array_equal(out["lon"].to_numpy()[:3], lon_c[:3])
    np.testing.assert_array_equal(out["lat"].to_numpy()[:3], lat_c[:3])
    assert (out["lon"].to_numpy()[:3] != sites["lon"].to_numpy()[:3]).all()
    # the hazard site is a place: bit-for-bit where it was, no cell
    assert out.loc[3, ["lon", "lat"]].tolist() == list(SITE_POSITIONS[3])
    assert out.loc[3, ["cell_half_dlon", "cell_half_dlat"]].tolist() == [0.0, 0.0]
    assert out[["site_id", "grid_id"]].equals(sites[["site_id", "grid_id"]])
    assert sites.loc[0, "lon"] == SITE_POSITIONS[0][0]  # the input is not modified
    # the policy decides the cell and the types
    only_kp = coarsen_sites(sites, PrivacyPolicy(250.0, ("key_person",)))
    assert only_kp["coarse"].tolist() == [True, False, False, False]
    kx, _ = frame_scales(only_kp.loc[0, "lat"])
    assert 2 * only_kp.loc[0, "cell_half_dlon"] * kx == pytest.approx(250.0, rel=0.005)
    assert coarsen_sites(sites)["lon"].tolist() == out["lon"].tolist()  # default policy: 150 m


def test_default_privacy_is_the_default_policy_and_a_fine_cell_is_refused(tmp_path):
    assert default_privacy() == load_policy().privacy
    assert default_privacy().site_cell_m == 150.0 and set(default_privacy().personal_site_types) == set(PERSONAL_TYPES)
    toml = tmp_path / "patrol.toml"
    toml.write_text("[privacy]\nsite_cell_m = 30.0\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="at least 50"):
        load_policy(toml)


# --- everything the maps write ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["lat:31.682593", "[119.883617,", "119.88362 ", "(119.8836)", '"31.6826"', "31.68259,", "31.68259300"],
)
def test_the_search_finds_a_coordinate_at_any_precision(text):
    assert _leaks({"page.html": text}, {"KP001": (119.883617, 31.682593)}) != []


@pytest.mark.parametrize("text", ["119.883617", "31.682593"])
def test_the_search_ignores_other_numbers(text):
    # digits on either side make it another number
    assert _leaks({"a": f"1{text} {text}1 2{text}7"}, {"KP001": (119.883617, 31.682593)}) == []


def test_no_exact_personal_position_in_any_file_written(rendered, month_frames, tmp_path):
    out, pages = rendered
    texts = _texts(out)
    assert {p.relative_to(out).as_posix() for p in pages} <= set(texts)
    assert any(name.startswith("playback/") for name in texts)
    no_sites = {**month_frames, "sites": month_frames["sites"].iloc[0:0]}
    render_month(tmp_path, MONTH, tiles=TileConfig(), workbook_name=None, **no_sites)
    personal = {s: POSITIONS[s] for s in PERSONAL_SITES}
    assert _leaks(texts, personal, _background(_texts(tmp_path))) == []
    # the search does find a coordinate the pages do draw: the hazard site, exact, on its pages
    hazard = _leaks(texts, {"HZ001": POSITIONS["HZ001"]})
    for page in ("overview.html", "grids/G03.html"):
        assert any(h.endswith(f" in {page}") and " lon " in h for h in hazard), page
        assert any(h.endswith(f" in {page}") and " lat " in h for h in hazard), page


def test_personal_sites_drawn_as_their_cell(rendered):
    out, _ = rendered
    text = (out / "overview.html").read_text(encoding="utf-8")
    cells = _drawn_cells(text)
    assert len(cells) == len(PERSONAL_SITES)
    south, west, north, east = cells.T
    lon = np.array([POSITIONS[s][0] for s in PERSONAL_SITES])
    lat = np.array([POSITIONS[s][1] for s in PERSONAL_SITES])
    # each drawn cell holds its site and is 150 m square on the ground (to the 1e-6° of the page)
    assert np.all((west <= lon) & (lon <= east) & (south <= lat) & (lat <= north))
    kx, ky = frame_scales(lat)
    np.testing.assert_allclose((east - west) * kx, 150.0, rtol=0.005)
    np.testing.assert_allclose((north - south) * ky, 150.0, rtol=0.005)
    lon_c, lat_c, _, _ = snap_to_cells(lon, lat, 150.0)
    np.testing.assert_allclose((west + east) / 2, lon_c, atol=2e-6)
    np.testing.assert_allclose((south + north) / 2, lat_c, atol=2e-6)
    assert "KP001 · 重点人员 · 走访周期 1/2 · 位置仅显示所在约 150 m 方格" in text
    assert 'HZ001 · 重大安全隐患场所 · 走访周期 0/1"' in text  # exact: no cell note
    grid_page = (out / "grids" / "G01.html").read_text(encoding="utf-8")
    assert len(_drawn_cells(grid_page)) == 2  # KP001 and SG001


def test_workspace_policy_cell_and_gcj02_tiles(tmp_path, grids, worker_day, site_check, sites, point_use):
    """Through the workspace: its patrol.toml's cell (250 m) and amap tiles (GCJ-02 shift) both apply."""
    pytest.importorskip("trajectory.coords", reason="trajectory.coords (wgs84_to_gcj02) not in the tree yet")
    from maps.build import render_workspace_month
    from trajectory.coords import wgs84_to_gcj02
    from trajectory.store import connect
    from trajectory.workspace import load_workspace

    toml = '[privacy]\nsite_cell_m = 250.0\n\n[maps]\nprovider = "amap"\n'

    def render(name: str, site_rows: pd.DataFrame) -> tuple[Path, list[Path]]:
        write_workspace(tmp_path / name, grids, worker_day, site_check, site_rows, point_use, policy_toml=toml)
        ws = load_workspace(tmp_path / name)
        assert ws.policy.privacy.site_cell_m == 250.0
        con = connect(ws.paths, read_only=True)
        try:
            return ws.paths.out_month(MONTH), render_workspace_month(ws, con, MONTH)
        finally:
            con.close()

    out, pages = render("ws", sites)
    texts = _texts(out)
    background = _background(_texts(render("no_sites", sites.iloc[0:0])[0]))
    assert {p.relative_to(out).as_posix() for p in pages} <= set(texts)
    lon = np.array([p[0] for p in SITE_POSITIONS])
    lat = np.array([p[1] for p in SITE_POSITIONS])
    glon, glat = wgs84_to_gcj02(lon, lat)
    wgs = dict(zip(SITE_IDS, SITE_POSITIONS, strict=True))
    gcj = {s: (float(x), float(y)) for s, x, y in zip(SITE_IDS, glon, glat, strict=True)}
    # neither the exact WGS-84 position nor its exact GCJ-02 shift of a personal site is anywhere
    assert _leaks(texts, {s: wgs[s] for s in PERSONAL_SITES}, background) == []
    assert _leaks(texts, {s: gcj[s] for s in PERSONAL_SITES}, background) == []
    assert _leaks(texts, {"HZ001": gcj["HZ001"]})  # the hazard site is drawn exact (shifted)
    cells = _drawn_cells(texts["overview.html"])
    assert len(cells) == len(PERSONAL_SITES)
    south, west, north, east = cells.T
    kx, ky = frame_scales(lat[:3])
    np.testing.assert_allclose((east - west) * kx, 250.0, rtol=0.01)
    np.testing.assert_allclose((north - south) * ky, 250.0, rtol=0.01)
    assert "约 250 m 方格" in texts["overview.html"]
