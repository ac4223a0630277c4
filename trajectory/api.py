"""The analysts' API: a workspace's tables as (Geo)DataFrames, a worker-day as a movingpandas Trajectory.

Examples
--------
>>> from trajectory.api import open_workspace                     # doctest: +SKIP
>>> ws = open_workspace("demo-workspace")                          # doctest: +SKIP
>>> days = ws.worker_days(grid="XTH-001", start="2026-10-08", end="2026-10-14")  # doctest: +SKIP
>>> traj = ws.trajectory("W001", "2026-10-09")                     # doctest: +SKIP
>>> traj.get_length(), len(traj.discarded)                         # doctest: +SKIP
>>> ws.grid_month("XTH-001", "2026-10")["tracks"].explore()        # doctest: +SKIP

Every call reads a snapshot of the store (a copy of ``patrol.duckdb`` taken when the store
changed, under a read-only open held for the copy only; docs/operations.md "Analysts and the
nightly run"), so neither a long query nor a notebook left open ever blocks the nightly run;
while that run writes, the last snapshot is read and a warning says since when. Key persons
and special groups are returned by code only (no labels).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeAlias

import geopandas as gpd
import pandas as pd
import shapely

from trajectory import contract as c
from trajectory import store
from trajectory.workspace import Workspace, load_workspace

__all__ = [
    "AnalystWorkspace",
    "DateLike",
    "open_workspace",
]

DateLike: TypeAlias = str | date | pd.Timestamp


def open_workspace(root: str | Path) -> AnalystWorkspace:
    """Open a workspace for analysis (validated like the nightly run does).

    Parameters
    ----------
    root : str or Path
        The workspace folder, e.g. ``demo-workspace`` after ``make demo``.
    """
    return AnalystWorkspace(load_workspace(root))


def _day(value: DateLike | None) -> date | None:
    if value is None:
        return None
    return pd.Timestamp(value).date()


@dataclass
class AnalystWorkspace:
    """Read-only views of one workspace. Build it with :func:`open_workspace`."""

    ws: Workspace
    _note: str | None = field(default=None, repr=False)

    # --- plumbing -------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Run any SQL on a snapshot of the store (read-only) and return a DataFrame.

        The snapshot is the store as of its last change; the query holds no lock on
        ``patrol.duckdb`` however long it runs.
        """
        con, note = store.connect_snapshot(self.ws.paths)
        if note and note != self._note:
            warnings.warn(note, stacklevel=2)
        self._note = note
        try:
            return con.execute(sql, list(params)).df()
        finally:
            con.close()

    def _select(
        self,
        table: str,
        *,
        date_col: str | None = "date",
        grid: str | Sequence[str] | None = None,
        worker: str | Sequence[str] | None = None,
        start: DateLike | None = None,
        end: DateLike | None = None,
        month: str | None = None,
        extra: str = "",
    ) -> pd.DataFrame:
        where: list[str] = ["true"]
        params: list[Any] = []
        for col, value in (("grid_id", grid), ("worker_id", worker)):
            if value is not None:
                values = [value] if isinstance(value, str) else list(value)
                where.append(f"{col} IN (SELECT unnest(?::VARCHAR[]))")
                params.append(values)
        if date_col and start is not None:
            where.append(f"{date_col} >= ?")
            params.append(_day(start))
        if date_col and end is not None:
            where.append(f"{date_col} <= ?")
            params.append(_day(end))
        if month is not None:
            where.append("month = ?")
            params.append(month)
        return self.query(f"SELECT * FROM {table} WHERE {' AND '.join(where)} {extra} ORDER BY ALL", params)

    # --- tables -----------------------------------------------------------------------
    @property
    def grids(self) -> gpd.GeoDataFrame:
        """The grid polygons (EPSG:4326)."""
        return self.ws.grids

    @property
    def workers(self) -> pd.DataFrame:
        """The roster (names stay here; maps and exports use ids)."""
        return self.ws.workers

    def points(
        self,
        *,
        worker: str | Sequence[str] | None = None,
        start: DateLike | None = None,
        end: DateLike | None = None,
        with_use: bool = True,
    ) -> gpd.GeoDataFrame:
        """GPS points as a GeoDataFrame; with ``with_use`` each point says if it counted and why not."""
        table = c.POINT_USE if with_use else c.GPS_POINT
        df = self._select(table, worker=worker, start=start, end=end)
        return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs=4326)

    def worker_days(self, **filters: Any) -> pd.DataFrame:
        """``worker_day`` rows; filters: grid, worker, start, end."""
        return self._select(c.WORKER_DAY, **filters)

    def weeks(self, **filters: Any) -> pd.DataFrame:
        """``worker_week`` rows; filters: grid, worker, start, end (on week_start), month."""
        return self._select(c.WORKER_WEEK, date_col="week_start", **filters)

    def site_checks(self, **filters: Any) -> pd.DataFrame:
        """``site_check`` rows (sites by code only); filters: grid, start, end (on period_start), month."""
        return self._select(c.SITE_CHECK, date_col="period_start", **filters)

    def flags(self, **filters: Any) -> pd.DataFrame:
        """Anomaly flags per worker-day (desk_phone, vehicle, teleport, mock_location, replay)."""
        return self._select(c.DAY_FLAG, **filters)

    def findings(self, **filters: Any) -> pd.DataFrame:
        """Item 2.5 findings with their evidence; filters: grid, worker, month."""
        return self._select(c.PATROL_FINDING, date_col="period_start", **filters)

    def scores(self, month: str | None = None, grid: str | Sequence[str] | None = None) -> pd.DataFrame:
        """``grid_month_score`` rows (one per item and 'total')."""
        return self._select(c.GRID_MONTH_SCORE, date_col=None, grid=grid, month=month)

    def ranking(self, month: str) -> pd.DataFrame:
        """Grids ranked by total score for the month."""
        s = self.scores(month)
        tot = s[s["item_code"] == c.ITEM_TOTAL].sort_values(["score", "grid_id"], ascending=[False, True])
        return tot.merge(self.ws.grids[["grid_id", "grid_name", "grid_type"]], on="grid_id").reset_index(drop=True)

    def deductions(self, month: str | None = None, grid: str | Sequence[str] | None = None) -> pd.DataFrame:
        """``deduction`` rows: every lost point with its reason and evidence."""
        return self._select(c.DEDUCTION, date_col=None, grid=grid, month=month)

    # --- trajectories -----------------------------------------------------------------
    def trajectory(self, worker_id: str, day: DateLike) -> Any:
        """One worker-day as a movingpandas ``Trajectory`` of its counted points.

        The points that did not count (and why) are attached as ``traj.discarded``
        (a GeoDataFrame with a ``reason`` column).
        """
        import movingpandas as mpd

        pts = self.points(worker=worker_id, start=day, end=day)
        if pts.empty:
            raise ValueError(f"no points for worker {worker_id} on {_day(day)}")
        pts["t"] = pd.to_datetime(pts["ts"], utc=True).dt.tz_convert(self.ws.tz).dt.tz_localize(None)
        counted = pts[pts["counted"].astype(bool)].set_index("t").sort_index()
        if len(counted) < 2:
            raise ValueError(f"worker {worker_id} has fewer than 2 counted points on {_day(day)}")
        traj = mpd.Trajectory(counted, traj_id=f"{worker_id}_{_day(day)}")
        traj.discarded = pts[~pts["counted"].astype(bool)].reset_index(drop=True)
        return traj

    def grid_month(self, grid_id: str, month: str) -> dict[str, gpd.GeoDataFrame]:
        """A grid's month as GeoDataFrames ready for ``.explore()``.

        Returns a dict with ``grid`` (the polygon), ``tracks`` (one LineString per worker-day of
        counted points, with the day's figures), ``discarded`` (points that did not count),
        ``sites`` (site codes with visited periods / required periods).
        """
        grid = self.ws.grids[self.ws.grids["grid_id"] == grid_id]
        if grid.empty:
            raise ValueError(f"grid '{grid_id}' is not in this workspace")
        first = pd.Timestamp(f"{month}-01").date()
        last = (pd.Timestamp(first) + pd.offsets.MonthEnd(0)).date()
        workers = self.ws.workers.loc[self.ws.workers["grid_id"] == grid_id, "worker_id"].tolist()
        pts = self.points(worker=workers, start=first, end=last) if workers else self.points(worker=[], start=first)
        counted = pts[pts["counted"].astype(bool)].sort_values(["worker_id", "ts"])
        tracks = gpd.GeoDataFrame(geometry=[], crs=4326)
        if len(counted):
            key = counted["worker_id"].astype(str) + "|" + counted["date"].astype(str)
            codes, first_idx = pd.factorize(key)
            sizes = pd.Series(codes).value_counts().sort_index().to_numpy()
            keep = sizes >= 2
            lines = shapely.linestrings(counted["lon"].to_numpy(), counted["lat"].to_numpy(), indices=codes)
            wd = self.worker_days(grid=grid_id, start=first, end=last)
            meta = pd.DataFrame({"key": first_idx})
            meta[["worker_id", "date"]] = meta["key"].str.split("|", expand=True)
            meta["date"] = pd.to_datetime(meta["date"]).dt.date
            wd["date"] = pd.to_datetime(wd["date"]).dt.date
            meta = meta.merge(
                wd[["worker_id", "date", "patrol_s", "patrol_m", "status"]], on=["worker_id", "date"], how="left"
            )
            tracks = gpd.GeoDataFrame(meta[keep].drop(columns="key"), geometry=lines[keep], crs=4326).reset_index(
                drop=True
            )
        sites = self.ws.sites[self.ws.sites["grid_id"] == grid_id][["site_id", "site_type", "lon", "lat", "radius_m"]]
        checks = self.site_checks(grid=grid_id, month=month)
        if len(checks):
            agg = checks.groupby("site_id")["visited"].agg(periods="size", visited_periods="sum").reset_index()
            sites = sites.merge(agg, on="site_id", how="left")
        sites_gdf = gpd.GeoDataFrame(sites, geometry=gpd.points_from_xy(sites["lon"], sites["lat"]), crs=4326)
        return {
            "grid": grid,
            "tracks": tracks,
            "discarded": pts[~pts["counted"].astype(bool)].reset_index(drop=True),
            "sites": sites_gdf,
        }
