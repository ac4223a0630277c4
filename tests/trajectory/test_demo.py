"""The demo workspace generator: deterministic, tiling grids, realistic and faulty GPS, full contract."""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely

from scoring.policy import load_policy
from trajectory.calendar import workday_flags
from trajectory.contract import GRID_TYPE_ALIASES, SITE_TYPES, WORKERS_COLUMNS
from trajectory.demo import (
    DILIGENT,
    PROFILES,
    SAMPLE_GRIDS_PATH,
    DemoManifest,
    build_demo_workspace,
    grids_geojson_text,
    main,
    make_grids,
)
from trajectory.errors import WorkspaceError
from trajectory.workspace import WorkspacePaths, load_workspace

MONTH = "2026-10"
SEED = 20261001
UTM50N = 32650  # metric CRS of 常州


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> DemoManifest:
    """6 grids: for determinism (built twice more below)."""
    return build_demo_workspace(tmp_path_factory.mktemp("demo_a") / "ws", MONTH, SEED, n_grids=6)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> DemoManifest:
    """20 grids: enough workers for every behaviour profile."""
    return build_demo_workspace(tmp_path_factory.mktemp("demo_full") / "ws", MONTH, SEED, n_grids=20)


@pytest.fixture(scope="module")
def gps(full: DemoManifest) -> pd.DataFrame:
    """Every GPS row of the inbox except the planted bad rows and the resent copy."""
    return _read_inbox(WorkspacePaths(full.root).inbox_gps)


def _read_inbox(folder: Path) -> pd.DataFrame:
    frames = []
    for f in sorted(folder.iterdir()):
        if f.name.endswith("_resend.csv"):
            continue
        if f.suffix == ".csv":
            d = pd.read_csv(f, dtype=str)
            d = d[d["worker_id"] != "W999"]
            ts = pd.to_datetime(d["ts"], format="%Y-%m-%dT%H:%M:%S%z", errors="coerce", utc=True)
        elif f.suffix == ".parquet":
            d = pd.read_parquet(f)
            ts = pd.to_datetime(d["ts"], unit="ms", utc=True)
        else:
            d = pd.read_json(f, lines=True, dtype={"ts": str})
            ts = (
                pd.to_datetime(d["ts"], format="%Y-%m-%d %H:%M:%S").dt.tz_localize("Asia/Shanghai").dt.tz_convert("UTC")
            )
        frames.append(
            pd.DataFrame(
                {
                    "worker_id": d["worker_id"].astype(str).to_numpy(),
                    "ts": ts.to_numpy(),
                    "lon": pd.to_numeric(d["lon"], errors="coerce").to_numpy(),
                    "lat": pd.to_numeric(d["lat"], errors="coerce").to_numpy(),
                    "speed_mps": pd.to_numeric(d["speed_mps"]).to_numpy(),
                    "mock": d["mock"].astype(str).str.lower().eq("true").to_numpy(),
                    "file": f.name,
                }
            )
        )
    g = pd.concat(frames, ignore_index=True)
    g = g[g["ts"].notna() & g["lon"].notna() & g["lat"].between(-90, 90)]
    g["date"] = g["ts"].dt.tz_convert("Asia/Shanghai").dt.date
    return g.reset_index(drop=True)


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --- grids ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "n_grids"), [(SEED, 40), (SEED, 30), (SEED, 50), (7, 6), (3, 4)])
def test_grids_tile_an_area_with_valid_polygons(seed: int, n_grids: int) -> None:
    grids = make_grids(seed, n_grids)
    assert len(grids) == n_grids and grids["grid_id"].is_unique
    assert set(grids.geometry.geom_type) == {"Polygon"} and grids.is_valid.all()
    assert set(grids["grid_type"]) == {"社区", "村"}  # one consistent style, Chinese
    assert set(grids["grid_type"]) <= set(GRID_TYPE_ALIASES)
    metric = grids.to_crs(UTM50N).geometry.to_numpy()
    areas = shapely.area(metric)
    union = shapely.union_all(metric)
    assert union.area == pytest.approx(areas.sum(), abs=1.0)  # no overlaps
    assert shapely.get_num_interior_rings(union) == 0 and union.geom_type == "Polygon"  # no holes, one piece
    tree = shapely.STRtree(metric)
    left, right = tree.query(metric, predicate="intersects")
    pairs = left < right
    overlap = shapely.area(shapely.intersection(metric[left[pairs]], metric[right[pairs]]))
    assert overlap.max(initial=0.0) < 1.0  # m²


def test_default_grids_are_near_xitaihu_and_sized_like_grids() -> None:
    grids = make_grids()
    assert 30 <= len(grids) <= 50
    minx, miny, maxx, maxy = grids.total_bounds
    assert 119.85 <= minx and maxx <= 119.95 and 31.63 <= miny and maxy <= 31.72
    metric = grids.to_crs(UTM50N)
    km2 = metric.area.to_numpy() / 1e6
    assert km2.min() >= 0.3 and km2.max() <= 1.5
    village = (grids["grid_type"] == "村").to_numpy()
    centre = shapely.centroid(shapely.union_all(metric.geometry.to_numpy()))
    dist = shapely.distance(shapely.centroid(metric.geometry.to_numpy()), centre)
    assert km2[village].mean() > km2[~village].mean()  # villages are larger ...
    assert dist[village].min() > np.median(dist[~village])  # ... and on the outskirts
    assert grids["grid_name"].str.fullmatch(r".+(社区|村)第\d+网格").all()
    # not a lattice of squares: vertex counts and orientations vary
    assert len(set(shapely.get_num_coordinates(grids.geometry.to_numpy()))) > 3


def test_make_grids_rejects_too_few() -> None:
    with pytest.raises(ValueError, match="n_grids"):
        make_grids(SEED, 2)


def test_shipped_sample_grids_match_the_generator() -> None:
    assert SAMPLE_GRIDS_PATH.read_text(encoding="utf-8") == grids_geojson_text(make_grids(), "xitaihu_demo")
    # the repository's top-level sample folder holds the same polygons
    top = Path(__file__).resolve().parents[2] / "grids_geojson" / SAMPLE_GRIDS_PATH.name
    assert top.read_text(encoding="utf-8") == SAMPLE_GRIDS_PATH.read_text(encoding="utf-8")


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_gives_identical_files(small: DemoManifest, tmp_path: Path) -> None:
    again = build_demo_workspace(tmp_path / "ws", MONTH, SEED, n_grids=6)
    first, second = _hashes(small.root), _hashes(again.root)
    assert len(first) > 20 and first == second
    assert again.counts == small.counts and again.profiles == small.profiles


def test_other_seed_gives_other_files(small: DemoManifest, tmp_path: Path) -> None:
    other = build_demo_workspace(tmp_path / "ws", MONTH, SEED + 1, n_grids=6)
    first, second = _hashes(small.root), _hashes(other.root)
    common = set(first) & set(second)
    assert any(first[k] != second[k] for k in common)
    assert first[str(Path("grids_geojson") / "grids.geojson")] != second[str(Path("grids_geojson") / "grids.geojson")]


def test_refuses_a_non_empty_folder(small: DemoManifest) -> None:
    with pytest.raises(WorkspaceError, match="not empty"):
        build_demo_workspace(small.root, MONTH, SEED, n_grids=6)


# --- workspace contract -----------------------------------------------------------------------


def test_workspace_loads_and_follows_the_contract(full: DemoManifest) -> None:
    ws = load_workspace(full.root)
    assert list(ws.grids["grid_id"]) == list(full.grid_ids)
    assert set(ws.grids["grid_type"]) == {"community", "village"}
    assert list(pd.read_csv(ws.paths.workers).columns) == list(WORKERS_COLUMNS)
    ft = ws.workers[ws.workers["full_time"]]
    assert len(ft) == len(full.grid_ids) and set(ft["grid_id"]) == set(full.grid_ids)  # one per grid
    assert 2 <= (~ws.workers["full_time"]).sum() <= 3
    assert set(full.profiles.values()) >= set(PROFILES)
    assert ws.policy.timezone == "Asia/Shanghai" and ws.policy.gps_crs == "wgs84"
    # sites: the four types, coded ids, synthetic labels, inside their grid
    assert set(ws.sites["site_type"]) == set(SITE_TYPES)
    assert ws.sites["site_id"].str.fullmatch(r"(KP|SG|CS|HZ)-XTH-\d{3}-\d").all()
    assert ws.sites["label"].str.endswith("（示例）").all()
    polys = ws.grids.set_index("grid_id").geometry.loc[ws.sites["grid_id"]].to_numpy()
    assert shapely.contains_xy(polys, ws.sites["lon"].to_numpy(), ws.sites["lat"].to_numpy()).all()
    # calendar: one override, the official calendar otherwise (国庆 2026-10-01..07 off, 10-10 调休 worked)
    assert len(ws.calendar_overrides) == 1
    days = [date(2026, 10, 1) + timedelta(days=i) for i in range(31)]
    flags = workday_flags(days, ws.calendar_overrides)
    assert not flags[:7].any() and flags[9]


def test_leave_filed_in_time_and_late(full: DemoManifest) -> None:
    leave = load_workspace(full.root).leave
    by_profile = leave.assign(profile=leave["worker_id"].map(full.profiles))
    in_time = by_profile[by_profile["profile"] == "absent_leave_in_time"]
    late = by_profile[by_profile["profile"] == "absent_leave_late"]
    assert len(in_time) and all(
        (f - s).days <= 3 for s, f in zip(in_time["start_date"], in_time["filed_date"], strict=True)
    )
    assert len(late) and all((f - e).days >= 5 for e, f in zip(late["end_date"], late["filed_date"], strict=True))
    assert set(leave["reason"]) <= {"请假", "工作冲突"}


# --- GPS --------------------------------------------------------------------------------------


def test_gps_formats_present(full: DemoManifest) -> None:
    inbox = WorkspacePaths(full.root).inbox_gps
    suffixes = {p.suffix for p in inbox.iterdir()}
    assert suffixes == {".csv", ".parquet", ".jsonl"}
    assert all(re.fullmatch(r"gps_2026-10-\d\d(_2)?(_resend)?\.(csv|parquet|jsonl)", p.name) for p in inbox.iterdir())
    csv_file = next(p for p in sorted(inbox.glob("*.csv")) if "W999" not in p.read_text(encoding="utf-8"))
    assert pd.read_csv(csv_file, nrows=5)["ts"].str.endswith("+08:00").all()
    parquet_ts = pq.read_table(next(inbox.glob("*.parquet"))).schema.field("ts").type
    assert str(parquet_ts) == "int64"  # epoch milliseconds
    jsonl = pd.read_json(next(inbox.glob("*.jsonl")), lines=True, nrows=5, dtype={"ts": str})
    assert jsonl["ts"].str.fullmatch(r"2026-10-\d\d \d\d:\d\d:\d\d").all()  # naive local time


def test_bad_rows_and_repeated_deliveries(full: DemoManifest, gps: pd.DataFrame) -> None:
    inbox = WorkspacePaths(full.root).inbox_gps
    with_bad = [p for p in sorted(inbox.glob("*.csv")) if "W999" in p.read_text(encoding="utf-8")]
    assert len(with_bad) == 1
    raw = pd.read_csv(with_bad[0], dtype=str, keep_default_na=False)
    assert (raw["lon"] == "").sum() == 1
    assert pd.to_datetime(raw["ts"], format="%Y-%m-%dT%H:%M:%S%z", errors="coerce").isna().sum() == 1
    assert (pd.to_numeric(raw["lat"], errors="coerce") > 90).sum() == 1
    assert full.counts["gps_bad_rows"] == 4
    resent = list(inbox.glob("*_resend.csv"))
    assert len(resent) == 1
    assert resent[0].read_bytes() == (inbox / resent[0].name.replace("_resend", "")).read_bytes()
    dup = gps.duplicated(["worker_id", "ts"], keep=False)
    assert dup.sum() == 2 * full.counts["gps_duplicate_points"] > 0
    assert (gps[dup].groupby(["worker_id", "ts"])["file"].nunique() == 2).all()  # across files


def test_gps_volume_and_sampling(full: DemoManifest, gps: pd.DataFrame) -> None:
    assert len(gps) == full.counts["gps_points"]
    step = gps.sort_values(["worker_id", "ts"]).groupby(["worker_id", "date"])["ts"].diff().dt.total_seconds()
    assert step.dropna().quantile(0.5) >= 5 and step.dropna().quantile(0.05) >= 5
    local = gps["ts"].dt.tz_convert("Asia/Shanghai")
    hours = local.dt.hour + local.dt.minute / 60
    assert hours.between(7.5, 18.5).mean() > 0.99  # morning and afternoon sessions


def test_diligent_points_lie_in_their_grid(full: DemoManifest, gps: pd.DataFrame) -> None:
    ws = load_workspace(full.root)
    grid_of = dict(zip(ws.workers["worker_id"], ws.workers["grid_id"], strict=True))
    polys = ws.grids.to_crs(UTM50N).set_index("grid_id").geometry.buffer(30.0)  # boundary streets
    pts = gpd.GeoSeries(gpd.points_from_xy(gps["lon"], gps["lat"]), crs=4326).to_crs(UTM50N)
    diligent = [w for w, p in full.profiles.items() if p == DILIGENT]
    assert diligent
    for worker in diligent:
        mine = (gps["worker_id"] == worker).to_numpy()
        assert mine.sum() > 1000
        inside = shapely.contains_xy(polys.loc[grid_of[worker]], pts.x.to_numpy()[mine], pts.y.to_numpy()[mine])
        assert inside.mean() > 0.97, worker


def test_profiles_leave_their_traces(full: DemoManifest, gps: pd.DataFrame) -> None:
    profile = gps["worker_id"].map(full.profiles)
    assert gps.loc[profile == "mock_location", "mock"].sum() > 100
    assert not gps.loc[profile != "mock_location", "mock"].any()
    assert (gps.loc[profile == "car", "speed_mps"] > 8.3).sum() > 100  # 30–50 km/h
    per_day = gps.groupby(["worker_id", "date"]).size().rename("n").reset_index()
    per_day["profile"] = per_day["worker_id"].map(full.profiles)
    mean_n = per_day.groupby("profile")["n"].mean()
    assert mean_n["lazy"] < 0.6 * mean_n[DILIGENT]
    # the replayed track: identical coordinates on several days
    replay = gps[profile == "replay"]
    signature = replay.groupby("date").apply(lambda d: hash((tuple(d["lon"]), tuple(d["lat"]))), include_groups=False)
    assert signature.value_counts().max() >= 4


# --- indicators -------------------------------------------------------------------------------


def test_indicator_tables(full: DemoManifest) -> None:
    folder = WorkspacePaths(full.root).indicators(MONTH)
    names = {p.name for p in folder.iterdir()}
    assert names == {
        "complaints.csv", "discipline.csv", "info_collection.csv", "info_checks.csv",
        "events.csv", "service_records.csv", "inspections.csv",
    }  # fmt: skip
    ev = pd.read_csv(folder / "events.csv")
    assert ev["event_id"].is_unique
    assert set(ev["category"]) <= {
        "社会治安",
        "公共安全",
        "城市管理",
        "环境保护",
        "民生服务",
        "政务代办",
        "综合管理",
        "综合执法",
    }
    assert set(ev["review"]) == {"ok", "unqualified", "false"}
    valid_per_grid = ev[ev["valid"]].groupby("grid_id").size().reindex(list(full.grid_ids), fill_value=0)
    assert (valid_per_grid >= 80).mean() > 0.5 and (valid_per_grid < 80).any()
    bad_share = ev["review"].ne("ok").groupby(ev["grid_id"]).mean()
    assert (bad_share > 0.30).sum() == 1
    assert (ev["photos_after"] == 0).any()
    info = pd.read_csv(folder / "info_collection.csv")
    required = load_policy().info_collection.required_subcategories
    assert (
        info.groupby("grid_id")["subcategory"].apply(list)
        == pd.Series([list(required)] * len(full.grid_ids), index=sorted(full.grid_ids))
    ).all()
    assert (info["collected"] == 0).sum() == 1
    assert ((info["collected"] / info["required"]) < 0.95).sum() > 1
    inspections = pd.read_csv(folder / "inspections.csv")
    assert set(inspections["source"]) <= {"random_check", "public_report", "daily_patrol", "center_assigned"}
    records = pd.read_csv(folder / "service_records.csv").groupby("grid_id")["count"].sum()
    assert (records >= 80).any() and (records < 80).any()


# --- command line -----------------------------------------------------------------------------


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path / "ws"), "--grids", "4", "--seed", "5"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0 and "4 grids" in out and "GPS points" in out
    assert main(["--out", str(tmp_path / "ws"), "--grids", "4"]) == 2  # not empty
    assert "not empty" in capsys.readouterr().err
