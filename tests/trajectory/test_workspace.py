"""Loading and validating a workspace: grids, roster, sites, leave, calendar."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from trajectory.errors import InputError, WorkspaceError
from trajectory.workspace import WorkspacePaths, load_workspace

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
