"""Small synthetic month for the map tests: 3 grids, a few worker-days, sites of every type."""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from maps_fixtures import DAY_FLAGS, LAT0, LON0, MONTH, SECRET_LABELS, SITE_POSITIONS, block_network, chromium_options

from maps.build import render_month
from maps.tiles import TileConfig
from trajectory.contract import WORKER_DAY_COLUMNS

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def _box(i: int) -> shapely.Polygon:
    # ≈ 950 m × 1100 m squares side by side
    return shapely.box(LON0 + 0.012 * i, LAT0, LON0 + 0.012 * i + 0.01, LAT0 + 0.01)


@pytest.fixture(scope="session")
def grids() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "grid_id": ["G01", "G02", "G03"],
            "grid_name": ["西太湖一网格", "西太湖二网格", "塘洋村网格"],
            "grid_type": ["community", "community", "village"],
        },
        geometry=[_box(0), _box(1), _box(2)],
        crs=4326,
    )


def _walk(worker: str, day: str, lon0: float, lat0: float, n: int, start_h: float = 1.0) -> pd.DataFrame:
    """A lawn-mower walk starting at (lon0, lat0): n points every 10 s, 1.2 m/s."""
    t = pd.Timestamp(f"{day}T00:00:00Z") + pd.Timedelta(hours=start_h) + pd.to_timedelta(np.arange(n) * 10, unit="s")
    step = 12.0 / 95_000  # 12 m in degrees of longitude at 31.7°
    row = np.arange(n) // 60
    col = np.arange(n) % 60
    col = np.where(row % 2 == 0, col, 59 - col)
    lon = lon0 + col * step
    lat = lat0 + row * 60 / 111_000
    return pd.DataFrame({"worker_id": worker, "ts": t, "lon": lon, "lat": lat, "date": day})


@pytest.fixture(scope="session")
def point_use() -> pd.DataFrame:
    frames = [
        _walk("W1", "2026-10-08", LON0 + 0.001, LAT0 + 0.001, 720),
        _walk("W1", "2026-10-09", LON0 + 0.002, LAT0 + 0.003, 720),
        _walk("W2", "2026-10-08", LON0 + 0.013, LAT0 + 0.002, 200),
        _walk("W3", "2026-10-09", LON0 + 0.0255, LAT0 + 0.011, 30),  # north of G03: outside
    ]
    df = pd.concat(frames, ignore_index=True)
    df["counted"] = True
    df["reason"] = None
    df["in_grid"] = True
    # W1 day 1: a few discarded points of every reason
    reasons = ["duplicate", "accuracy", "mock_location", "jump", "speed", "outside_grid", "mystery<b>"]
    idx = np.arange(100, 100 + 7 * 5).reshape(7, 5)
    for r, ii in zip(reasons, idx, strict=True):
        df.loc[ii, "counted"] = False
        df.loc[ii, "reason"] = r
    w3 = df["worker_id"] == "W3"
    df.loc[w3, ["counted", "in_grid", "reason"]] = [False, False, "outside_grid"]
    return df


@pytest.fixture(scope="session")
def worker_day() -> pd.DataFrame:
    rows = [
        ("W1", "G01", "2026-10-08", True, False, 7190.0, 8600.0, 3600.0, 3590.0, "ok", None),
        ("W1", "G01", "2026-10-09", True, False, 7190.0, 8600.0, 3600.0, 3590.0, "ok", "mock_location"),
        ("W1", "G01", "2026-10-10", True, True, 0.0, 0.0, 0.0, 0.0, "exempt", None),
        ("W2", "G02", "2026-10-08", True, False, 1990.0, 2400.0, 1990.0, 0.0, "short", None),
        ("W2", "G02", "2026-10-09", True, False, 0.0, 0.0, 0.0, 0.0, "absent", None),
        ("W3", "G03", "2026-10-09", True, False, 0.0, 0.0, 0.0, 0.0, "absent", None),
        ("W3", "G03", "2026-10-11", False, False, 0.0, 0.0, 0.0, 0.0, "off", None),
        ("W3", "G03", "2026-09-30", True, False, 0.0, 0.0, 0.0, 0.0, "absent", None),  # other month
    ]
    cols = [*WORKER_DAY_COLUMNS, "flags"]
    df = pd.DataFrame(rows, columns=cols)
    df["date"] = pd.to_datetime(df["date"]).dt.date
    return df


@pytest.fixture(scope="session")
def sites() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "site_id": ["KP001", "SG001", "CS001", "HZ001"],
            "site_type": ["key_person", "special_group", "care_subject", "hazard_site"],
            "grid_id": ["G01", "G01", "G02", "G03"],
            "lon": [lon for lon, _ in SITE_POSITIONS],
            "lat": [lat for _, lat in SITE_POSITIONS],
            "radius_m": [50.0] * 4,
            "label": list(SECRET_LABELS),
        }
    )


@pytest.fixture(scope="session")
def site_check() -> pd.DataFrame:
    rows = [
        ("KP001", "key_person", "G01", "2026-10-05", "2026-10-11", True),
        ("KP001", "key_person", "G01", "2026-10-12", "2026-10-18", False),
        ("SG001", "special_group", "G01", "2026-10-01", "2026-10-31", True),
        ("CS001", "care_subject", "G02", "2026-10-01", "2026-10-31", False),
        ("HZ001", "hazard_site", "G03", "2026-10-09", "2026-10-09", False),
    ]
    df = pd.DataFrame(rows, columns=["site_id", "site_type", "grid_id", "period_start", "period_end", "visited"])
    for col in ("period_start", "period_end"):
        df[col] = pd.to_datetime(df[col]).dt.date
    return df


@pytest.fixture(scope="session")
def month_frames(grids, worker_day, site_check, sites, point_use) -> dict:
    return {
        "grids": grids,
        "worker_day": worker_day,
        "site_check": site_check,
        "sites": sites,
        "point_use": point_use,
    }


@pytest.fixture(scope="session")
def rendered(tmp_path_factory, month_frames) -> tuple[Path, list[Path]]:
    """The month rendered once with default (no) tiles, shared by the tests."""
    out = tmp_path_factory.mktemp("out") / MONTH
    out.mkdir(parents=True)
    (out / "2026-10_考核.xlsx").write_bytes(b"PK")  # a workbook stand-in for the index
    (out / "deductions.csv").write_text("grid_id\n", encoding="utf-8")
    pages = render_month(out, MONTH, tiles=TileConfig(), workbook_name="2026-10_考核.xlsx", **month_frames)
    return out, pages


def _missing_browser() -> str | None:
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not exe.exists() and shutil.which(exe.name) is None:
            return f"{exe} not installed (run tests/setup_system.sh as root to install chromium and chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed in the venv"
    return None


@pytest.fixture(scope="session")
def driver(tmp_path_factory):
    """Headless Chromium (one for the session: starting it costs seconds) with the network blocked."""
    reason = _missing_browser()
    if reason:
        pytest.skip(f"browser tests skipped: {reason}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = chromium_options(
        str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")),
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1200,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(str(CHROMEDRIVER if CHROMEDRIVER.exists() else shutil.which("chromedriver")))
    drv = webdriver.Chrome(options=options, service=service)
    drv.set_page_load_timeout(30)
    block_network(drv)  # and would log a SEVERE net::ERR_BLOCKED_BY_CLIENT
    yield drv
    drv.quit()


@pytest.fixture(scope="session")
def scored(tmp_path_factory, grids, worker_day, site_check, sites, point_use):
    """A workspace whose store holds two scored months (2026-09, 2026-10) and day flags, its
    workbook and exports written (stand-ins), and the maps rendered from it: (paths, pages)."""
    from maps_fixtures import write_day_flags, write_scores, write_workspace

    from maps.build import render_workspace_month
    from scoring.export import workbook_name
    from trajectory.store import connect
    from trajectory.workspace import load_workspace

    root = tmp_path_factory.mktemp("scored") / "ws"
    paths = write_workspace(root, grids, worker_day, site_check, sites, point_use)
    ids = list(grids["grid_id"])
    write_scores(paths, "2026-09", ids, shift=0.4)
    write_scores(paths, MONTH, ids)
    write_day_flags(paths, DAY_FLAGS)
    out = paths.out_month(MONTH)
    out.mkdir(parents=True)
    (out / workbook_name(MONTH)).write_bytes(b"PK")
    for name in ("grid_month_score.csv", "grid_month_score.parquet", "deduction.csv"):
        (out / name).write_bytes(b"x")
    ws = load_workspace(root)
    con = connect(ws.paths, read_only=True)
    try:
        pages = render_workspace_month(ws, con, MONTH)
    finally:
        con.close()
    return paths, pages
