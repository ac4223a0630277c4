"""The workspace: its paths (the one module that names them) and the validated loading of its inputs.

A workspace is a folder holding everything the pipeline reads and writes (SPEC §2), so it can
be moved, backed up and tested as a unit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from scoring.policy import Policy, load_policy
from trajectory.contract import (
    CALENDAR_COLUMNS,
    GRID_PROPERTIES,
    GRID_TYPE_ALIASES,
    LEAVE_COLUMNS,
    SITE_TYPES,
    SITES_COLUMNS,
    WORKERS_COLUMNS,
)
from trajectory.errors import InputError, WorkspaceError

log = logging.getLogger(__name__)

TRUE_WORDS = frozenset({"true", "1", "yes", "y", "t", "是", "对", "真"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "f", "否", "假", ""})


@dataclass(frozen=True)
class WorkspacePaths:
    """Every file and folder name of a workspace, in one place (STYLE lesson 2)."""

    root: Path

    @property
    def policy(self) -> Path:
        return self.root / "patrol.toml"

    @property
    def grids_dir(self) -> Path:
        return self.root / "grids_geojson"

    @property
    def workers(self) -> Path:
        return self.root / "workers.csv"

    @property
    def sites(self) -> Path:
        return self.root / "sites.csv"

    @property
    def leave(self) -> Path:
        return self.root / "leave.csv"

    @property
    def calendar(self) -> Path:
        return self.root / "calendar.csv"

    @property
    def inbox_gps(self) -> Path:
        return self.root / "inbox" / "gps"

    @property
    def indicators_dir(self) -> Path:
        return self.root / "indicators"

    def indicators(self, month: str) -> Path:
        return self.indicators_dir / month

    @property
    def duckdb(self) -> Path:
        return self.root / "patrol.duckdb"

    @property
    def lock(self) -> Path:
        return self.root / ".patrol.lock"

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def gps_store(self) -> Path:
        return self.store / "gps"

    @property
    def point_use_store(self) -> Path:
        return self.store / "point_use"

    @property
    def out(self) -> Path:
        return self.root / "out"

    def out_month(self, month: str) -> Path:
        return self.out / month


@dataclass
class Workspace:
    """A loaded, validated workspace. Build it with :func:`load_workspace`."""

    root: Path
    paths: WorkspacePaths
    policy: Policy
    tz: ZoneInfo
    grids: gpd.GeoDataFrame
    workers: pd.DataFrame
    sites: pd.DataFrame
    leave: pd.DataFrame
    calendar_overrides: dict[date, bool]
    warnings: list[str] = field(default_factory=list)

    @property
    def full_time_workers(self) -> pd.DataFrame:
        return self.workers[self.workers["full_time"]].reset_index(drop=True)


def load_workspace(root: str | Path) -> Workspace:
    """Load and validate every input of a workspace except the GPS inbox and indicators.

    Parameters
    ----------
    root : str or Path
        The workspace folder.

    Returns
    -------
    Workspace

    Raises
    ------
    WorkspaceError
        The folder does not exist.
    InputError
        A file is wrong; the message names the file, row and column.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise WorkspaceError(f"workspace folder not found: {root}")
    paths = WorkspacePaths(root)
    policy = load_policy(paths.policy if paths.policy.exists() else None)
    warnings: list[str] = []
    grids = read_grids(paths.grids_dir, warnings)
    workers = read_workers(paths.workers, set(grids["grid_id"]))
    sites = read_sites(paths.sites, set(grids["grid_id"]), policy.patrol.visits.radius_m)
    leave = read_leave(paths.leave, set(workers["worker_id"]))
    overrides = read_calendar(paths.calendar)
    for msg in warnings:
        log.warning(msg)
    return Workspace(root, paths, policy, ZoneInfo(policy.timezone), grids, workers, sites, leave, overrides, warnings)


# --- readers ------------------------------------------------------------------------------


def read_grids(folder: Path, warnings: list[str]) -> gpd.GeoDataFrame:
    """Read every ``*.geojson`` of ``folder``: Polygon/MultiPolygon, unique ``grid_id``, known type.

    Invalid geometries are repaired with ``shapely.make_valid`` (and reported in ``warnings``);
    anything that is still not a polygon is an error.
    """
    files = sorted(folder.glob("*.geojson")) if folder.is_dir() else []
    if not files:
        raise InputError(str(folder), "no grid polygons: expected one or more *.geojson files")
    frames = []
    for path in files:
        try:
            gdf = gpd.read_file(path)
        except Exception as exc:  # pyogrio raises many types; report the file
            raise InputError(str(path), f"cannot be read as GeoJSON: {exc}") from exc
        for col in GRID_PROPERTIES:
            if col not in gdf.columns:
                raise InputError(str(path), f"property '{col}' is missing from the features", column=col)
        if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
            gdf = gdf.to_crs(4326)
        gdf["source_file"] = path.name
        gdf["feature"] = np.arange(1, len(gdf) + 1)
        frames.append(gdf)
    grids = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326)
    grids["grid_id"] = grids["grid_id"].astype("string").str.strip()
    for j in np.flatnonzero((grids["grid_id"].isna() | (grids["grid_id"] == "")).to_numpy()):
        raise _grid_error(grids, int(j), "grid_id", "grid_id is empty")
    dup = grids["grid_id"].duplicated(keep="first")
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise _grid_error(grids, i, "grid_id", f"grid_id '{grids['grid_id'].iloc[i]}' appears twice; it must be unique")
    kind = grids["grid_type"].astype("string").str.strip().str.lower().map(GRID_TYPE_ALIASES)
    if kind.isna().any():
        i = int(np.flatnonzero(kind.isna())[0])
        raise _grid_error(
            grids,
            i,
            "grid_type",
            f"grid_type was '{grids['grid_type'].iloc[i]}' but is expected to be community/village or 社区/村",
        )
    grids["grid_type"] = kind.astype(str)
    grids["grid_name"] = grids["grid_name"].fillna("").astype(str)
    geom = grids.geometry.values
    for j in np.flatnonzero(shapely.is_missing(geom) | shapely.is_empty(geom)):
        raise _grid_error(grids, int(j), "geometry", "geometry is missing or empty")
    invalid = ~shapely.is_valid(geom)
    if invalid.any():
        repaired = shapely.make_valid(geom[invalid])
        # keep only the polygonal part of a repair (a bow-tie becomes two triangles + maybe lines)
        repaired = np.array([_polygonal(g) for g in repaired], dtype=object)
        grids.loc[invalid, "geometry"] = repaired
        for gid in grids.loc[invalid, "grid_id"]:
            warnings.append(f"grid {gid}: invalid polygon repaired (make_valid)")
    types = shapely.get_type_id(grids.geometry.values)
    bad = ~np.isin(types, (3, 6))
    for j in np.flatnonzero(bad):
        kind_found = grids.geometry.iloc[int(j)].geom_type
        raise _grid_error(grids, int(j), "geometry", f"geometry is a {kind_found}, expected Polygon or MultiPolygon")
    return grids[["grid_id", "grid_name", "grid_type", "source_file", "geometry"]].reset_index(drop=True)


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    if shapely.get_type_id(geom) in (3, 6):
        return geom
    parts = [g for g in shapely.get_parts(geom) if shapely.get_type_id(g) in (3, 6)]
    return shapely.union_all(parts) if parts else geom


def _grid_error(grids: pd.DataFrame, i: int, column: str, message: str) -> InputError:
    return InputError(str(grids["source_file"].iloc[i]), message, row=int(grids["feature"].iloc[i]), column=column)


def read_csv_checked(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    """Read a CSV as text (UTF-8 with or without BOM, else GBK) and check its required columns."""
    for encoding in ("utf-8-sig", "gbk"):
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding, skipinitialspace=True)
            break
        except UnicodeDecodeError:
            continue
        except pd.errors.EmptyDataError:
            raise InputError(str(path), f"file is empty; expected a header with {', '.join(required)}") from None
        except (pd.errors.ParserError, OSError) as exc:
            raise InputError(str(path), f"cannot be read as CSV: {exc}") from exc
    else:
        raise InputError(str(path), "text encoding is neither UTF-8 nor GBK")
    df.columns = [str(c).strip() for c in df.columns]
    for col in required:
        if col not in df.columns:
            raise InputError(str(path), f"column '{col}' is missing; found {', '.join(df.columns)}", column=col)
    for col in df.columns:
        df[col] = df[col].str.strip()
    return df


def _require_nonempty(df: pd.DataFrame, path: Path, columns: tuple[str, ...]) -> None:
    for col in columns:
        empty = np.flatnonzero((df[col] == "").to_numpy())
        if len(empty):
            raise InputError(str(path), f"{col} is empty", row=int(empty[0]) + 1, column=col)


def parse_bool_column(values: pd.Series, path: Path, column: str) -> np.ndarray:
    """true/false, 1/0, yes/no, 是/否 (case-insensitive) to bool; anything else is an error."""
    low = values.astype(str).str.strip().str.lower()
    is_true = low.isin(TRUE_WORDS).to_numpy()
    is_false = low.isin(FALSE_WORDS).to_numpy()
    bad = np.flatnonzero(~(is_true | is_false))
    if len(bad):
        i = int(bad[0])
        raise InputError(
            str(path), f"'{values.iloc[i]}' is not a yes/no value (true/false, 1/0, 是/否)", row=i + 1, column=column
        )
    return is_true


def parse_date_column(values: pd.Series, path: Path, column: str) -> list[date]:
    """ISO dates (2026-10-09 or 2026/10/09) to ``datetime.date``; anything else is an error."""
    parsed = pd.to_datetime(values.str.replace("/", "-", regex=False), format="%Y-%m-%d", errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        i = int(bad[0])
        raise InputError(str(path), f"'{values.iloc[i]}' is not a date (expected YYYY-MM-DD)", row=i + 1, column=column)
    return [d.date() for d in parsed]


def parse_float_column(values: pd.Series, path: Path, column: str, lo: float, hi: float) -> np.ndarray:
    num = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(num) | (num < lo) | (num > hi))
    if len(bad):
        i = int(bad[0])
        raise InputError(
            str(path), f"'{values.iloc[i]}' is not a number between {lo} and {hi}", row=i + 1, column=column
        )
    return num


def read_workers(path: Path, grid_ids: set[str]) -> pd.DataFrame:
    """workers.csv: worker_id (unique), worker_name, grid_id (a known grid), full_time (yes/no)."""
    if not path.exists():
        raise InputError(str(path), "workers.csv is missing: the roster is required")
    df = read_csv_checked(path, WORKERS_COLUMNS)
    _require_nonempty(df, path, ("worker_id", "grid_id"))
    dup = np.flatnonzero(df["worker_id"].duplicated().to_numpy())
    if len(dup):
        i = int(dup[0])
        raise InputError(
            str(path), f"worker_id '{df['worker_id'].iloc[i]}' appears twice", row=i + 1, column="worker_id"
        )
    unknown = np.flatnonzero(~df["grid_id"].isin(grid_ids).to_numpy())
    if len(unknown):
        i = int(unknown[0])
        raise InputError(
            str(path), f"grid_id '{df['grid_id'].iloc[i]}' is not a grid of grids_geojson/", row=i + 1, column="grid_id"
        )
    df["full_time"] = parse_bool_column(df["full_time"], path, "full_time")
    return df


def read_sites(path: Path, grid_ids: set[str], default_radius_m: float) -> pd.DataFrame:
    """sites.csv: site_id, site_type, grid_id, lon, lat, optional radius_m (default from policy), label."""
    columns = [*SITES_COLUMNS, "radius_m", "label"]
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype=float if c in ("lon", "lat", "radius_m") else str) for c in columns})
    df = read_csv_checked(path, SITES_COLUMNS)
    _require_nonempty(df, path, ("site_id", "site_type", "grid_id"))
    dup = np.flatnonzero(df["site_id"].duplicated().to_numpy())
    if len(dup):
        i = int(dup[0])
        raise InputError(str(path), f"site_id '{df['site_id'].iloc[i]}' appears twice", row=i + 1, column="site_id")
    bad_type = np.flatnonzero(~df["site_type"].isin(SITE_TYPES).to_numpy())
    if len(bad_type):
        i = int(bad_type[0])
        raise InputError(
            str(path),
            f"site_type was '{df['site_type'].iloc[i]}' but is expected to be one of {', '.join(SITE_TYPES)}",
            row=i + 1,
            column="site_type",
        )
    unknown = np.flatnonzero(~df["grid_id"].isin(grid_ids).to_numpy())
    if len(unknown):
        i = int(unknown[0])
        raise InputError(
            str(path), f"grid_id '{df['grid_id'].iloc[i]}' is not a grid of grids_geojson/", row=i + 1, column="grid_id"
        )
    df["lon"] = parse_float_column(df["lon"], path, "lon", -180, 180)
    df["lat"] = parse_float_column(df["lat"], path, "lat", -90, 90)
    if "radius_m" not in df.columns:
        df["radius_m"] = ""
    radius = df["radius_m"].replace("", str(default_radius_m))
    df["radius_m"] = parse_float_column(radius, path, "radius_m", 1, 10_000)
    if "label" not in df.columns:
        df["label"] = ""
    return df


def read_leave(path: Path, worker_ids: set[str]) -> pd.DataFrame:
    """leave.csv (optional): worker_id, start_date, end_date, filed_date, reason."""
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in LEAVE_COLUMNS})
    df = read_csv_checked(path, LEAVE_COLUMNS)
    _require_nonempty(df, path, ("worker_id", "start_date", "end_date", "filed_date"))
    unknown = np.flatnonzero(~df["worker_id"].isin(worker_ids).to_numpy())
    if len(unknown):
        i = int(unknown[0])
        raise InputError(
            str(path), f"worker_id '{df['worker_id'].iloc[i]}' is not in workers.csv", row=i + 1, column="worker_id"
        )
    for col in ("start_date", "end_date", "filed_date"):
        df[col] = parse_date_column(df[col], path, col)
    backwards = np.flatnonzero((df["end_date"] < df["start_date"]).to_numpy())
    if len(backwards):
        i = int(backwards[0])
        raise InputError(str(path), "end_date is before start_date", row=i + 1, column="end_date")
    return df


def read_calendar(path: Path) -> dict[date, bool]:
    """calendar.csv (optional): date, workday — the centre's overrides of the official calendar."""
    if not path.exists():
        return {}
    df = read_csv_checked(path, CALENDAR_COLUMNS)
    days = parse_date_column(df["date"], path, "date")
    flags = parse_bool_column(df["workday"], path, "workday")
    return dict(zip(days, (bool(f) for f in flags), strict=True))
