"""Loading and validating a workspace: grids, roster, sites, leave, calendar."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
import shapely.affinity
from pyproj import Transformer

from trajectory.errors import InputError, WorkspaceError
from trajectory.workspace import WorkspacePaths, grid_overlaps, load_workspace

SQUARE = [[119.94, 31.77], [119.96, 31.77], [119.96, 31.79], [119.94, 31.79], [119.94, 31.77]]
BOWTIE = [[119.94, 31.77], [119.96, 31.79], [119.96, 31.77], [119.94, 31.79], [119.94, 31.77]]


def feature(grid_id, grid_type="community", ring=SQUARE, geom_type="Polygon", name="网格"):
    coords = [ring] if geom_type == "Polygon" else ring[0] if geom_type == "Point" else [[ring]]
    props = {"grid_id": grid_id, "grid_name": name, "grid_type": grid_type}
    return {"type": "Feature", "properties": props, "geometry": {"type": geom_type, "coordinates": coords}}


def make(root: Path, features=None, workers="w1,张三,G1,true\n", extra: dict[str, str] | None = None) -> Path:
    (root / "grids_geojson").mkdir(parents=True)
    fc = {"type": "FeatureCollection", "features": features if features is not None else [feature("G1")]}
    (root / "grids_geojson" / "grids.geojson").write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    (root / "workers.csv").write_text("worker_id,worker_name,grid_id,full_time\n" + workers, encoding="utf-8")
    for name, text in (extra or {}).items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_minimal_workspace_loads(tmp_path: Path) -> None:
    ws = load_workspace(make(tmp_path))
    assert ws.grids["grid_id"].tolist() == ["G1"] and ws.grids.crs.to_epsg() == 4326
    assert ws.workers["full_time"].tolist() == [True]
    assert ws.sites.empty and ws.leave.empty and ws.calendar_overrides == {}
    assert ws.paths == WorkspacePaths(tmp_path.resolve())
    assert str(ws.tz) == "Asia/Shanghai"


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not found"):
        load_workspace(tmp_path / "nope")


@pytest.mark.parametrize(
    "given, expected", [("社区", "community"), ("村", "village"), ("Village", "village"), (" community ", "community")]
)
def test_grid_types_in_chinese_and_english(tmp_path: Path, given: str, expected: str) -> None:
    ws = load_workspace(make(tmp_path, [feature("G1", given)]))
    assert ws.grids["grid_type"].tolist() == [expected]


@pytest.mark.parametrize(
    "features, message, column",
    [
        ([feature("G1"), feature("G1")], "appears twice", "grid_id"),
        ([feature("G1", "town")], "expected to be community/village", "grid_type"),
        ([feature("")], "grid_id is empty", "grid_id"),
        ([feature("G1", geom_type="Point")], "expected Polygon or MultiPolygon", "geometry"),
    ],
)
def test_bad_grids(tmp_path: Path, features, message: str, column: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        load_workspace(make(tmp_path, features))
    assert err.value.column == column and err.value.file == "grids.geojson"


def test_grid_property_missing(tmp_path: Path) -> None:
    f = feature("G1")
    del f["properties"]["grid_type"]
    with pytest.raises(InputError, match="'grid_type' is missing"):
        load_workspace(make(tmp_path, [f]))


def test_no_grids(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / "grids_geojson" / "grids.geojson").unlink()
    with pytest.raises(InputError, match="no grid polygons"):
        load_workspace(root)


def test_invalid_polygon_is_repaired_with_a_warning(tmp_path: Path) -> None:
    ws = load_workspace(make(tmp_path, [feature("G1", ring=BOWTIE)]))
    geom = ws.grids.geometry.iloc[0]
    assert geom.is_valid and geom.geom_type in ("Polygon", "MultiPolygon") and geom.area > 0
    assert any("G1" in w and "repaired" in w for w in ws.warnings)


def test_multipolygon_grid(tmp_path: Path) -> None:
    ws = load_workspace(make(tmp_path, [feature("G1", geom_type="MultiPolygon")]))
    assert ws.grids.geometry.iloc[0].geom_type == "MultiPolygon"


@pytest.mark.parametrize(
    "workers, message, row, column",
    [
        ("w1,张三,G9,true\n", "not a grid of grids_geojson", 1, "grid_id"),
        ("w1,张三,G1,true\nw1,李四,G1,false\n", "appears twice", 2, "worker_id"),
        ("w1,张三,G1,maybe\n", "not a yes/no value", 1, "full_time"),
        (",张三,G1,true\n", "worker_id is empty", 1, "worker_id"),
    ],
)
def test_bad_workers(tmp_path: Path, workers: str, message: str, row: int, column: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        load_workspace(make(tmp_path, workers=workers))
    assert (err.value.row, err.value.column) == (row, column)


def test_workers_in_gbk_with_chinese_yes_no(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / "workers.csv").write_bytes(
        "worker_id,worker_name,grid_id,full_time\nw1,张三,G1,是\nw2,李四,G1,否\n".encode("gbk")
    )
    ws = load_workspace(root)
    assert ws.workers["worker_name"].tolist() == ["张三", "李四"]
    assert ws.workers["full_time"].tolist() == [True, False]
    assert ws.full_time_workers["worker_id"].tolist() == ["w1"]


def test_workers_missing_column(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / "workers.csv").write_text("worker_id,grid_id\nw1,G1\n")
    with pytest.raises(InputError, match="column 'worker_name' is missing"):
        load_workspace(root)


def test_sites_leave_calendar(tmp_path: Path) -> None:
    extra = {
        "sites.csv": "site_id,site_type,grid_id,lon,lat,radius_m,label\nS1,hazard_site,G1,119.95,31.78,,加油站\nS2,key_person,G1,119.951,31.781,80,\n",
        "leave.csv": "worker_id,start_date,end_date,filed_date,reason\nw1,2026-10-12,2026/10/13,2026-10-14,病假\n",
        "calendar.csv": "date,workday\n2026-10-10,false\n2026-10-11,1\n",
    }
    ws = load_workspace(make(tmp_path, extra=extra))
    assert ws.sites["radius_m"].tolist() == [ws.policy.patrol.visits.radius_m, 80.0]
    assert ws.leave["end_date"].tolist() == [date(2026, 10, 13)]
    assert ws.calendar_overrides == {date(2026, 10, 10): False, date(2026, 10, 11): True}


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("sites.csv", "site_id,site_type,grid_id,lon,lat\nS1,temple,G1,119.95,31.78\n", "expected to be one of"),
        ("sites.csv", "site_id,site_type,grid_id,lon,lat\nS1,hazard_site,G1,419.95,31.78\n", "between -180"),
        (
            "leave.csv",
            "worker_id,start_date,end_date,filed_date,reason\nw9,2026-10-12,2026-10-13,2026-10-14,x\n",
            "not in workers.csv",
        ),
        (
            "leave.csv",
            "worker_id,start_date,end_date,filed_date,reason\nw1,2026-10-13,2026-10-12,2026-10-14,x\n",
            "before start_date",
        ),
        ("calendar.csv", "date,workday\n10/10/2026,false\n", "not a date"),
    ],
)
def test_bad_optional_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_workspace(make(tmp_path, extra={name: text}))


def test_policy_crs_and_timezone(tmp_path: Path) -> None:
    ws = load_workspace(make(tmp_path, extra={"patrol.toml": 'gps_crs = "gcj02"\ntimezone = "Asia/Urumqi"\n'}))
    assert ws.policy.gps_crs == "gcj02" and str(ws.tz) == "Asia/Urumqi"


# --- grids as districts deliver them (issue 14, rows 11, 12, 15) ------------------------------

LON0, LAT0, STEP = 116.25, 39.95, 0.01  # a district's sub-districts as 0.01° tiles


def tile(i: int, j: int) -> shapely.Polygon:
    return shapely.box(LON0 + i * STEP, LAT0 + j * STEP, LON0 + (i + 1) * STEP, LAT0 + (j + 1) * STEP)


def with_spike(poly: shapely.Polygon) -> shapely.Polygon:
    """The tile with a zero-width spike out of its top edge: a self-touching ring, as digitised
    boundaries have; ``shapely.make_valid`` returns it as GeometryCollection(Polygon, LineString)."""
    x0, y0, x1, y1 = poly.bounds
    xm = (x0 + x1) / 2
    return shapely.Polygon([(x0, y0), (x1, y0), (x1, y1), (xm, y1), (xm, y1 + STEP / 4), (xm, y1), (x0, y1)])


def bow_tie(poly: shapely.Polygon) -> shapely.Polygon:
    x0, y0, x1, y1 = poly.bounds
    return shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])


def geo_feature(grid_id: str, geom: shapely.Geometry, grid_type: str = "community") -> dict:
    return {
        "type": "Feature",
        "properties": {"grid_id": grid_id, "grid_name": f"{grid_id}街道", "grid_type": grid_type},
        "geometry": json.loads(shapely.to_geojson(geom)),
    }


def district(spiked=(6, 18), bowties=(11,)) -> list[dict]:
    """29 sub-districts (a 6 × 5 block less one) as ``make_valid`` leaves a real district's file:
    tiles with a spike become GeometryCollections, bow-ties MultiPolygons."""
    tiles = [tile(i, j) for j in range(5) for i in range(6)][:29]
    feats = []
    for k, t in enumerate(tiles):
        geom: shapely.Geometry = t
        if k in spiked:
            geom = shapely.make_valid(with_spike(t))
        elif k in bowties:
            geom = shapely.make_valid(bow_tie(t))
        feats.append(geo_feature(f"HD{k + 1:02d}", geom))
    return feats


def test_district_made_valid_loads_every_grid_with_its_polygonal_part(tmp_path: Path) -> None:
    feats = district()
    assert [f["geometry"]["type"] for f in feats].count("GeometryCollection") == 2  # what the district delivers
    ws = load_workspace(make(tmp_path, feats, workers="w1,张三,HD07,true\n"))
    grids = ws.grids.set_index("grid_id")
    assert len(grids) == 29 and shapely.is_valid(grids.geometry.values).all()
    assert set(grids.geometry.geom_type) <= {"Polygon", "MultiPolygon"}
    # the spiked tiles keep exactly the tile: the spike (a line) is what was dropped
    for k in (6, 18):
        assert grids.geometry[f"HD{k + 1:02d}"].symmetric_difference(tile(k % 6, k // 6)).area < 1e-12
    assert grids.geometry["HD12"].area == pytest.approx(tile(0, 0).area / 2)  # bow-tie: its two triangles
    dropped = [w for w in ws.warnings if "GeometryCollection" in w]
    assert dropped == [
        "grids.geojson, feature 7 (grid HD07): 几何集合 GeometryCollection 只取其多边形部分 polygonal part used; "
        "丢弃 dropped LineString ×1",
        "grids.geojson, feature 19 (grid HD19): 几何集合 GeometryCollection 只取其多边形部分 polygonal part used; "
        "丢弃 dropped LineString ×1",
    ]


def test_invalid_spiked_polygon_is_repaired_naming_what_was_dropped(tmp_path: Path) -> None:
    ws = load_workspace(make(tmp_path, [geo_feature("G1", with_spike(tile(0, 0)))]))
    assert ws.grids.geometry.iloc[0].symmetric_difference(tile(0, 0)).area < 1e-12
    (warning,) = ws.warnings
    assert warning.startswith("grids.geojson, feature 1 (grid G1): 无效多边形已修复 invalid polygon repaired")
    assert warning.endswith("丢弃 dropped LineString ×1")


def test_nested_collection_keeps_all_its_polygons(tmp_path: Path) -> None:
    inner = shapely.GeometryCollection([shapely.MultiPolygon([tile(0, 0), tile(2, 0)]), shapely.Point(LON0, LAT0)])
    geom = shapely.GeometryCollection([inner, tile(4, 0), shapely.LineString([(LON0, LAT0), (LON0 + 0.1, LAT0)])])
    ws = load_workspace(make(tmp_path, [geo_feature("G1", geom)]))
    assert ws.grids.geometry.iloc[0].area == pytest.approx(3 * tile(0, 0).area)
    assert ws.warnings[0].endswith("丢弃 dropped Point ×1, LineString ×1")


def test_collection_without_a_polygon_is_an_error(tmp_path: Path) -> None:
    geom = shapely.GeometryCollection([shapely.LineString([(LON0, LAT0), (LON0 + 0.01, LAT0)])])
    with pytest.raises(InputError, match="GeometryCollection without area") as err:
        load_workspace(make(tmp_path, [geo_feature("G1", tile(0, 0)), geo_feature("G2", geom)]))
    assert (err.value.file, err.value.row, err.value.column) == ("grids.geojson", 2, "geometry")


def _projected_square(epsg: int, lon: float = 119.95, lat: float = 31.78) -> list[list[float]]:
    """A 1 km square centred on (lon, lat), in the metres of ``epsg``."""
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    return [[x - 500, y - 500], [x + 500, y - 500], [x + 500, y + 500], [x - 500, y + 500], [x - 500, y - 500]]


@pytest.mark.parametrize(
    "ring, likely",
    [
        (_projected_square(3857), "EPSG:3857 Web Mercator 米制坐标 (≈ 119.950°E, 31.780°N)"),
        (_projected_square(4528), "EPSG:4528 CGCS2000 / 3-degree Gauss-Kruger zone 40"),
        (_projected_square(4527, lon=116.3, lat=39.9), "EPSG:4527 CGCS2000 / 3-degree Gauss-Kruger zone 39"),
        ([[lat, lon] for lon, lat in SQUARE], "lat/lon swapped"),
    ],
    ids=["web-mercator", "cgcs2000-3deg-zone40", "cgcs2000-3deg-zone39", "swapped"],
)
def test_metres_without_crs_are_an_error_naming_the_likely_crs(tmp_path: Path, ring, likely: str) -> None:
    with pytest.raises(InputError) as err:
        load_workspace(make(tmp_path, [feature("G1"), feature("G2", ring=ring)]))
    assert (err.value.file, err.value.row, err.value.column) == ("grids.geojson", 2, "geometry")
    assert "coordinates outside degree ranges" in str(err.value) and likely in str(err.value)


def test_metres_without_crs_exit_2_before_any_work(tmp_path: Path) -> None:
    root = make(tmp_path, [feature("G1", ring=_projected_square(3857))])
    # a process of its own: the run configures logging, which must not leak into other tests
    proc = subprocess.run(
        [sys.executable, "-m", "trajectory.run", "--workspace", str(root), "--no-progress", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: grids.geojson, row 1, column geometry: 坐标超出经纬度范围")
    assert "EPSG:3857" in err[0] and not (root / "patrol.duckdb").exists()


def test_metres_with_a_crs_member_are_converted(tmp_path: Path) -> None:
    root = make(tmp_path, [feature("G1", ring=_projected_square(3857))])
    path = root / "grids_geojson" / "grids.geojson"
    fc = json.loads(path.read_text(encoding="utf-8"))
    fc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}
    path.write_text(json.dumps(fc), encoding="utf-8")
    ws = load_workspace(root)
    centre = ws.grids.geometry.iloc[0].centroid
    assert centre.x == pytest.approx(119.95, abs=1e-6) and centre.y == pytest.approx(31.78, abs=1e-6)


def _shifted(poly: shapely.Polygon, dx_m: float, dy_m: float = 0.0) -> shapely.Geometry:
    lat = poly.centroid.y
    return shapely.affinity.translate(poly, dx_m / (111_195 * math.cos(math.radians(lat))), dy_m / 111_195)


@pytest.mark.parametrize(
    "second, warned",
    [
        (_shifted(tile(0, 0), 700), True),  # 30 % of the tile (≈ 900 m × 1100 m) shared
        (shapely.box(*tile(0, 0).bounds).buffer(-0.003), True),  # wholly inside the other
        (_shifted(tile(0, 0), 899.0), False),  # a 1 m-wide sliver along the border: 0.1 %
        (tile(1, 0), False),  # neighbours share their border only
        (_shifted(tile(1, 0), 3000), False),  # apart
    ],
    ids=["overlap-30pct", "inside", "sliver", "touching", "apart"],
)
def test_overlapping_grids_are_a_warning_naming_both(tmp_path: Path, second: shapely.Geometry, warned: bool) -> None:
    ws = load_workspace(make(tmp_path, [geo_feature("G1", tile(0, 0)), geo_feature("G2", second)]))
    overlaps = [w for w in ws.warnings if "重叠" in w]
    assert len(overlaps) == int(warned)
    if warned:
        assert overlaps[0].startswith("grids.geojson, feature 1 (grid G1) 与 grids.geojson, feature 2 (grid G2) 重叠")


def test_overlap_area_in_square_metres() -> None:
    a = tile(0, 0)
    pairs = grid_overlaps(gpd.GeoDataFrame(geometry=[a, _shifted(a, 700)], crs=4326))
    width_m = 0.01 * 111_195 * math.cos(math.radians(a.centroid.y))
    expected = (width_m - 700) * 0.01 * 111_195
    assert pairs["overlap_m2"].iloc[0] == pytest.approx(expected, rel=0.01)
    assert pairs["share"].iloc[0] == pytest.approx((width_m - 700) / width_m, rel=0.01)


def test_overlaps_of_a_large_district_are_found_fast(tmp_path: Path) -> None:
    # 3 600 grids (60 × 60 tiles); every 100th shifted half a tile onto its neighbour
    geoms = [tile(i, j) for j in range(60) for i in range(60)]
    for k in range(0, len(geoms), 100):
        geoms[k] = shapely.affinity.translate(geoms[k], STEP / 2, 0)
    grids = gpd.GeoDataFrame(geometry=geoms, crs=4326)
    t0 = time.perf_counter()
    pairs = grid_overlaps(grids)
    assert time.perf_counter() - t0 < 2.0
    assert len(pairs) == 36 and set(pairs["a"]) == set(range(0, 3600, 100))


@pytest.mark.parametrize(
    "lon, lat, likely",
    [("13352772.9", "3734466.7", "EPSG:3857"), ("31.78", "119.95", "lat/lon swapped")],
    ids=["web-mercator", "swapped"],
)
def test_sites_in_metres_name_the_likely_crs(tmp_path: Path, lon: str, lat: str, likely: str) -> None:
    sites = f"site_id,site_type,grid_id,lon,lat\nS1,hazard_site,G1,119.95,31.78\nS2,hazard_site,G1,{lon},{lat}\n"
    with pytest.raises(InputError, match=likely) as err:
        load_workspace(make(tmp_path, extra={"sites.csv": sites}))
    assert (err.value.row, err.value.column) == (2, "lon")
