"""Helpers of the scoring tests: small real files written per test.

A *clean month* is a month in which every grid keeps full marks (80 valid events spread over the
category groups, 80 service records, every required sub-category fully collected); each test
adds the few records it is about, so its expected score is computed by hand from the seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from scoring.inputs import Indicators, load_indicators
from scoring.policy import Policy, load_policy

MONTH = "2026-10"
GRID_IDS = ("G01", "G02", "G03")
LON0, LAT0, SIDE = 119.90, 31.70, 0.01  # grids are 0.01° squares side by side along longitude

# the clean month's 80 valid events per grid: 15 + 40 + 15 + 10 meets every category minimum
CLEAN_CATEGORIES = (
    ["public_security"] * 15
    + ["city_management"] * 40
    + ["livelihood_service"] * 15
    + ["comprehensive_management"] * 10
)


def grid_box(i: int) -> shapely.Polygon:
    return shapely.box(LON0 + i * SIDE, LAT0, LON0 + (i + 1) * SIDE, LAT0 + SIDE)


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy()


@pytest.fixture(scope="session")
def grids_gdf() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "grid_id": list(GRID_IDS),
            "grid_name": ["湖滨社区一网格", "湖滨社区二网格", "东村网格"],
            "grid_type": ["community", "community", "village"],
        },
        geometry=[grid_box(i) for i in range(len(GRID_IDS))],
        crs=4326,
    )


@pytest.fixture(scope="session")
def grids(grids_gdf: gpd.GeoDataFrame) -> pd.DataFrame:
    return pd.DataFrame(grids_gdf[["grid_id", "grid_name", "grid_type"]])


def clean_tables(policy: Policy, grid_ids=GRID_IDS) -> dict[str, pd.DataFrame]:
    """Contract-named tables of a month with full marks for every grid."""
    events, info, service = [], [], []
    for g, gid in enumerate(grid_ids):
        for k, cat in enumerate(CLEAN_CATEGORIES):
            # one event a day-ish, spread over the grid so no two look like duplicates
            events.append(
                {
                    "event_id": f"{gid}-E{k:03d}",
                    "grid_id": gid,
                    "worker_id": f"W{g + 1}",
                    "reported_at": f"2026-10-{1 + k % 28:02d} {8 + k // 28}:{(k * 7) % 60:02d}:00",
                    "category": cat,
                    "title": "占道经营",
                    "description": "路口占道经营已劝离",
                    "address": "湖滨路1号",
                    "lon": LON0 + g * SIDE + 0.001 + 0.0001 * k,
                    "lat": LAT0 + 0.001 + 0.0001 * k,
                    "photos_before": 1,
                    "photos_after": 1,
                    "valid": "true",
                    "review": "ok",
                    "shirked": "false",
                }
            )
        for sub in policy.info_collection.required_subcategories:
            info.append({"grid_id": gid, "subcategory": sub, "required": 100, "collected": 100})
        service.append({"date": "2026-10-31", "grid_id": gid, "count": policy.events.min_service_records})
    empty = {
        "complaints": ["date", "grid_id", "kind", "verified"],
        "discipline": ["date", "grid_id", "kind", "count"],
        "info_checks": ["date", "grid_id", "kind", "count"],
        "inspections": ["date", "grid_id", "source", "rectified_in_time"],
    }
    tables = {name: pd.DataFrame(columns=cols) for name, cols in empty.items()}
    tables.update(
        events=pd.DataFrame(events), info_collection=pd.DataFrame(info), service_records=pd.DataFrame(service)
    )
    return tables


def write_tables(folder: Path, tables: dict[str, pd.DataFrame], encoding: str = "utf-8") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.to_csv(folder / f"{name}.csv", index=False, encoding=encoding)
    return folder


def with_rows(tables: dict[str, pd.DataFrame], **extra: list[dict]) -> dict[str, pd.DataFrame]:
    out = dict(tables)
    for name, rows in extra.items():
        out[name] = pd.concat([out[name], pd.DataFrame(rows)], ignore_index=True)
    return out


@pytest.fixture
def load_month(tmp_path: Path, policy: Policy):
    """Write tables as CSV files into indicators/2026-10/ and read them back."""

    def _load(tables: dict[str, pd.DataFrame]) -> Indicators:
        folder = write_tables(tmp_path / "indicators" / MONTH, tables)
        return load_indicators(folder, policy, GRID_IDS)

    return _load


def write_geojson(path: Path, gdf: gpd.GeoDataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json.loads(gdf.to_json())), encoding="utf-8")


# item 2.5 findings as the trajectory engine writes them (table patrol_finding)
FINDINGS = pd.DataFrame(
    [
        # worker W1 of G01: 2 absent days, 1 short day, a key person missed in one week
        ("G01", "W1", "absent_day", "2026-10-08", "2026-10-08", None, None, 0.5),
        ("G01", "W1", "absent_day", "2026-10-09", "2026-10-09", None, None, 0.5),
        ("G01", "W1", "short_day", "2026-10-12", "2026-10-12", None, None, 0.2),
        ("G01", "W1", "missed_site_period", "2026-10-05", "2026-10-11", "KP-07", "key_person", 0.2),
        # worker W4, also full-time in G01: 1 absent day, a hazard site missed twice
        ("G01", "W4", "absent_day", "2026-10-08", "2026-10-08", None, None, 0.5),
        ("G01", "W4", "missed_site_period", "2026-10-08", "2026-10-08", "HS-01", "hazard_site", 0.2),
        ("G01", "W4", "missed_site_period", "2026-10-09", "2026-10-09", "HS-01", "hazard_site", 0.2),
        ("G01", "W4", "short_week", "2026-10-05", "2026-10-11", None, None, 0.2),
        # another month: ignored
        ("G01", "W1", "absent_day", "2026-09-30", "2026-09-30", None, None, 0.5),
    ],
    columns=["grid_id", "worker_id", "kind", "period_start", "period_end", "site_id", "site_type", "points"],
).assign(month=lambda d: np.where(d["period_start"].str.startswith("2026-10"), "2026-10", "2026-09"), evidence="")
