"""The day job: raw GPS points of some local days → worker_day, point_use, site_visit, day_flag.

``process_days`` chains the stages (clean → segment → metrics → visits → flags) on sorted
columns; nothing loops over points or trajectories (STYLE lesson 4). It does no I/O:
``trajectory.run`` reads the store and writes the results.
"""

from __future__ import annotations

import copyreg
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from scoring.policy import Policy
from trajectory import clean as cl
from trajectory.calendar import local_epoch_us
from trajectory.contract import (
    GRID_COMMUNITY,
    GRID_TYPE_ALIASES,
    POINT_USE_COLUMNS,
    STATUS_ABSENT,
    STATUS_EXEMPT,
    STATUS_OFF,
    STATUS_OK,
    STATUS_SHORT,
    WORKER_DAY_COLUMNS,
    WORKER_DAY_EXTRA,
)
from trajectory.flags import DAY_FLAG_COLUMNS, day_flags, day_signatures, encode_signatures
from trajectory.geo import geoms_to_local, grid_frames, planar_distance, to_grid_local
from trajectory.metrics import clock_s, path_distance, window_overlap
from trajectory.segment import Intervals, build_intervals, inside_points
from trajectory.visits import SITE_VISIT_COLUMNS, stay_runs

__all__ = [
    "DayResult",
    "EngineContext",
    "process_days",
]

_DAY_US = 86_400_000_000


# the policy's read-only tables are MappingProxyType, which pickle cannot copy: an
# EngineContext must travel to pool processes and Spark executors (trajectory.batching,
# trajectory.spark_engine), so a proxy pickles as the proxy of a copy of its dict
def _mapping_proxy(d: dict) -> MappingProxyType:
    return MappingProxyType(d)


copyreg.pickle(MappingProxyType, lambda m: (_mapping_proxy, (dict(m),)))


@dataclass(frozen=True)
class EngineContext:
    """Everything but the points that a day job needs (see docs/ARCHITECTURE.md)."""

    grids: gpd.GeoDataFrame
    workers: pd.DataFrame
    sites: pd.DataFrame
    leave: pd.DataFrame
    workday: Mapping[date, bool]
    policy: Policy
    tz: ZoneInfo


@dataclass
class DayResult:
    """Outputs of :func:`process_days`."""

    worker_day: pd.DataFrame
    point_use: pd.DataFrame
    site_visit: pd.DataFrame
    day_flag: pd.DataFrame


def process_days(
    points: pd.DataFrame, ctx: EngineContext, dates: Sequence[date], *, origin: date | None = None
) -> DayResult:
    """Measure the patrol of every full-time worker on each local date of ``dates``.

    Parameters
    ----------
    points : DataFrame
        ``worker_id, ts`` (tz-aware), ``lon, lat`` (WGS-84), optional ``accuracy_m, speed_mps,
        mock``. Points of other local dates are ignored.
    ctx : EngineContext
    dates : sequence of datetime.date
        Local dates to process; ``ctx.workday`` must hold each.
    origin : datetime.date, optional
        The date the engine's clock counts seconds from (default: the first of ``dates``).
        A day job that computes a batch of days one day at a time passes the batch's first
        date, so each day's figures are those of the batch computed at once, to the last bit.

    Returns
    -------
    DayResult
        ``worker_day`` (one row per full-time worker and date), ``point_use`` (every point of
        these dates, counted or why not), ``site_visit``, ``day_flag``.
    """
    _check_points(points)
    days = _Days.of(sorted(set(dates)), ctx)
    roster = _Roster(ctx, ctx.policy.patrol.points.grid_buffer_m)
    pts = _sort_points(points, ctx, roster, days, origin)  # ingest-ordered rows → worker-day, time
    reason = cl.clean_points(pts.columns, ctx.policy.patrol.points)  # clean
    in_grid = inside_points(roster.geoms, pts.gcode, pts.x, pts.y)
    kept = np.flatnonzero(reason == cl.R_OK)
    patrol = _measure(pts, kept, in_grid, roster, ctx.policy, days.n_traj(roster))  # segment, metrics, visits
    reason[kept] = patrol.kept_reason
    counts = _day_counts(pts, reason, patrol, roster, days, ctx.policy)
    worker_day, flags = _worker_days(counts, patrol, roster, days, ctx)  # status, flags
    site_visit = _site_visits(patrol, roster, days)
    point_use = _point_use(points, pts, roster, reason, in_grid, days.date_objs)
    return DayResult(worker_day=worker_day, point_use=point_use, site_visit=site_visit, day_flag=flags)


# --- stages -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Days:
    """The local dates of one call: sorted, as day numbers and as date objects (+ None)."""

    dates: list[date]
    day_nums: np.ndarray  # days since 1970-01-01
    date_objs: np.ndarray  # the dates, then None (for a point of no date of the call)
    workday: np.ndarray  # bool per date

    @classmethod
    def of(cls, dates: list[date], ctx: EngineContext) -> _Days:
        absent = [d for d in dates if d not in ctx.workday]
        if absent:
            raise ValueError(
                f"process_days: ctx.workday has no entry for {absent[:3]} (the calendar must cover every date)"
            )
        return cls(
            dates=dates,
            day_nums=np.array([(d - date(1970, 1, 1)).days for d in dates], dtype=np.int64),
            date_objs=np.array(dates + [None], dtype=object),
            workday=np.array([bool(ctx.workday[d]) for d in dates], dtype=bool),
        )

    @property
    def n(self) -> int:
        return len(self.dates)

    def n_traj(self, roster: _Roster) -> int:
        """Worker-days of the call: one per full-time worker and date (traj = worker × n + day)."""
        return roster.n_workers * self.n


def _check_points(points: pd.DataFrame) -> None:
    missing = [c for c in ("worker_id", "ts", "lon", "lat") if c not in points.columns]
    if missing:
        raise ValueError(f"process_days: points lack columns {missing} (expected worker_id, ts, lon, lat)")


@dataclass
class _SortedPoints:
    """The call's points of full-time workers on its dates, sorted by worker-day then time.

    ``rows``: their row in the input; ``other_rows``: input rows on the call's dates of other
    workers (part-time or unknown); ``columns``: what cleaning reads (dict of arrays).
    """

    rows: np.ndarray
    other_rows: np.ndarray
    other_known: np.ndarray  # bool per other row: on the roster (part-time), else unknown
    worker: np.ndarray  # roster code of each point's worker
    day_pos: np.ndarray  # position of each input row's local date in the call (n_days = none)
    ts: pd.Series  # every input row's time, UTC
    columns: dict[str, np.ndarray]

    @property
    def traj(self) -> np.ndarray:
        """Worker-day of each point: roster code × days + date position."""
        return self.columns["traj"]

    @property
    def gcode(self) -> np.ndarray:
        """The point's worker's grid (index into the roster's geometries)."""
        return self.columns["gcode"]

    @property
    def x(self) -> np.ndarray:
        """Metres east in the grid's local frame."""
        return self.columns["x"]

    @property
    def y(self) -> np.ndarray:
        """Metres north in the grid's local frame."""
        return self.columns["y"]


def _sort_points(
    points: pd.DataFrame, ctx: EngineContext, roster: _Roster, days: _Days, origin: date | None = None
) -> _SortedPoints:
    """Local dates and worker codes of every input row; the full-time workers' points sorted."""
    ts = pd.Series(points["ts"]).reset_index(drop=True)
    if ts.dt.tz is None:  # SPEC §2.2: naive time = workspace time zone
        ts = ts.dt.tz_localize(ctx.tz)
    ts = ts.dt.tz_convert("UTC").dt.as_unit("us")
    ts_us = np.asarray(ts.array.asi8, dtype=np.int64)
    local_us = local_epoch_us(ts_us, ctx.tz)
    day_num = local_us // _DAY_US
    day_pos = np.searchsorted(days.day_nums, day_num)
    if days.n:
        in_dates = (day_pos < days.n) & (days.day_nums[np.minimum(day_pos, days.n - 1)] == day_num)
    else:
        in_dates = np.zeros(len(ts_us), bool)
    row_worker, worker_ids = pd.factorize(pd.Series(points["worker_id"]).reset_index(drop=True).astype(str))
    code_of_id = np.array([roster.code.get(w, -1) for w in worker_ids], dtype=np.int64)  # per distinct id
    known_id = np.array([w in roster.all_workers for w in worker_ids], dtype=bool)
    code = code_of_id[row_worker] if len(row_worker) else np.zeros(0, np.int64)
    rows = np.flatnonzero(in_dates & (code >= 0))
    other = np.flatnonzero(in_dates & (code < 0))
    worker, traj, tus = code[rows], code[rows] * days.n + day_pos[rows], ts_us[rows]
    order = _time_order(traj, tus, days.n_traj(roster))
    order = _order_copies(order, traj, tus, points, rows)
    rows, worker, traj, tus = rows[order], worker[order], traj[order], tus[order]
    gcode = roster.gcode_of_worker[worker]
    lon, lat = _col(points, "lon", rows), _col(points, "lat", rows)
    x, y = to_grid_local(lon, lat, gcode, roster.lon0, roster.lat0)
    # seconds from a clock fixed by the dates alone (not by the points): a worker's figures do
    # not depend on which other workers share the call (trajectory.batching, spark_engine)
    first = (origin - date(1970, 1, 1)).days if origin is not None else int(days.day_nums[0]) if days.n else 1
    t_anchor = (first - 1) * _DAY_US
    accuracy = _col(points, "accuracy_m", rows, np.nan)
    columns = {
        "traj": traj,
        "ts_us": tus,
        "t": (tus - t_anchor) / 1e6,
        "tod": (local_us[rows] - day_num[rows] * _DAY_US) / 1e6,
        "lon": lon,
        "lat": lat,
        "x": x,
        "y": y,
        "gcode": gcode,
        "accuracy_m": accuracy,
        "mock": _col(points, "mock", rows, False).astype(bool),
        "allow_m": cl.noise_allowance_m(accuracy, ctx.policy.patrol.points),
    }
    other_known = known_id[row_worker[other]] if len(other) else np.zeros(0, bool)
    return _SortedPoints(rows, other, other_known, worker, day_pos, ts, columns)


def _time_order(traj: np.ndarray, tus: np.ndarray, n_traj: int) -> np.ndarray:
    """Order of the points by worker-day, then time (stable)."""
    if len(tus) == 0:
        return np.zeros(0, np.int64)
    t0 = int(tus.min())
    span = int(tus.max() - t0) + 1
    if n_traj * span < 2**62:
        key = traj * span + (tus - t0)
        return np.arange(len(key)) if bool(np.all(key[1:] >= key[:-1])) else np.argsort(key, kind="stable")
    return np.lexsort((tus, traj))


@dataclass
class _Patrol:
    """Segments, visits and distance of the trustworthy points (``track``), per point and per
    worker-day (``n_traj`` rows)."""

    track: dict[str, np.ndarray]
    intervals: Intervals
    visits: pd.DataFrame  # stay runs at registered sites (visits.stay_runs)
    still: pd.DataFrame  # stationary periods (metrics.path_distance)
    sigma: np.ndarray  # noise σ per point
    kept_reason: np.ndarray  # per trustworthy point: counted, vehicle or outside the grid
    patrol_s: np.ndarray
    am_s: np.ndarray
    pm_s: np.ndarray
    patrol_m: np.ndarray


def _measure(
    pts: _SortedPoints, kept: np.ndarray, in_grid: np.ndarray, roster: _Roster, policy: Policy, n_traj: int
) -> _Patrol:
    """Segments and intervals, visits, the noise-robust distance and the patrol time."""
    cols = ("traj", "ts_us", "t", "tod", "x", "y", "gcode", "accuracy_m", "allow_m")
    if len(kept) == len(in_grid):  # every point trustworthy: the columns as they are (read only below)
        track = {k: pts.columns[k] for k in cols} | {"in_pt": in_grid}
    else:
        track = {k: pts.columns[k].take(kept) for k in cols} | {"in_pt": in_grid.take(kept)}
    rules = policy.patrol.points
    iv = build_intervals(track, roster.geoms, rules)
    valid, vehicle, dt, traj = iv.valid, iv.vehicle, iv.dt, track["traj"]
    p = policy.patrol
    # visits first: a stay at a registered site counts in full (the stationary cap spares it)
    runs = stay_runs(track, iv.seg, roster.sites, p.visits.min_stay_s)
    at_site = np.zeros(len(traj) + 1, np.int64)
    np.add.at(at_site, runs["first"].to_numpy(), 1)
    np.add.at(at_site, runs["last"].to_numpy() + 1, -1)
    weight_in = np.where(valid & ~vehicle, iv.inside, 0.0)
    path = path_distance(track, iv, weight_in, policy, np.cumsum(at_site)[:-1] > 0)
    weight, tod = path.time_weight, track["tod"]
    morning, noon, evening = clock_s(p.morning_start), clock_s(p.noon), clock_s(p.afternoon_end)
    # a point is in a vehicle when an interval on either side of it is (and none is walked)
    prev_valid, prev_vehicle = np.r_[False, valid[:-1]], np.r_[False, vehicle[:-1]]
    in_vehicle = (prev_valid | valid) & (~prev_valid | prev_vehicle) & (~valid | vehicle)
    return _Patrol(
        track=track,
        intervals=iv,
        visits=runs,
        still=path.still,
        sigma=path.sigma,
        kept_reason=np.where(in_vehicle, cl.R_VEHICLE, np.where(track["in_pt"], cl.R_OK, cl.R_OUTSIDE)),
        patrol_s=np.bincount(traj, dt * weight, minlength=n_traj),
        am_s=np.bincount(traj, window_overlap(tod, dt, morning, noon) * weight, minlength=n_traj),
        pm_s=np.bincount(traj, window_overlap(tod, dt, noon, evening) * weight, minlength=n_traj),
        patrol_m=np.bincount(traj, path.step_m, minlength=n_traj),
    )


def _median_by_run(values: np.ndarray, starts: np.ndarray, group: np.ndarray, n_group: int) -> np.ndarray:
    """Median per group of per-point ``values`` that are constant over runs beginning at
    ``starts`` (a segment's σ): the runs weighted by their length, no per-point sort; 0 for a
    group without points."""
    out = np.zeros(n_group)
    if len(starts) == 0:
        return out
    size = np.diff(np.r_[starts, len(values)])
    g, v = group[starts], values[starts]
    order = np.lexsort((v, g))
    g, v, size = g[order], v[order], size[order]
    end = np.cumsum(size)  # points up to and including each run, groups in order
    total = np.bincount(g, size, minlength=n_group).astype(np.int64)
    first = np.cumsum(total) - total  # each group's first point
    has = np.flatnonzero(total)
    lo = np.searchsorted(end, first[has] + (total[has] - 1) // 2, side="right")
    hi = np.searchsorted(end, first[has] + total[has] // 2, side="right")
    out[has] = 0.5 * (v[lo] + v[hi])
    return out


def _day_counts(
    pts: _SortedPoints, reason: np.ndarray, patrol: _Patrol, roster: _Roster, days: _Days, policy: Policy
) -> dict[str, np.ndarray]:
    """Per worker-day: points by reason, gaps, vehicle time, speed, jumps, stays, noise, the
    replay signature (the worker_day columns that are counts and evidence)."""
    n_traj = days.n_traj(roster)
    iv, traj, p = patrol.intervals, patrol.track["traj"], policy.patrol
    n_reasons = len(cl.REASONS) + 1
    by_reason = np.bincount(pts.traj * n_reasons + reason, minlength=n_traj * n_reasons).reshape(n_traj, n_reasons)
    same = np.r_[traj[1:] == traj[:-1], False]
    dt, valid, vehicle = iv.dt, iv.valid, iv.vehicle
    max_speed = np.zeros(n_traj)
    if len(traj):  # traj is sorted: one maximum per run of it
        starts = np.flatnonzero(np.r_[True, traj[1:] != traj[:-1]])
        max_speed[traj[starts]] = np.maximum.reduceat(np.where(valid, iv.speed_w * 3.6, 0.0), starts)
    still = patrol.still
    still_traj = still["traj"].to_numpy().astype(np.int64)
    still_s, still_from, still_to = _longest_still(still, patrol.track["tod"], n_traj)
    signature, sig_duration, sig_spread = _track_signatures(
        patrol.track, traj, n_traj, int(p.anomalies.replay_min_points)
    )
    return {
        "points_total": by_reason.sum(axis=1),
        "points_used": by_reason[:, cl.R_OK],
        "dropped_duplicate": by_reason[:, cl.R_DUPLICATE],
        "dropped_accuracy": by_reason[:, cl.R_ACCURACY] + by_reason[:, cl.R_INVALID],
        "dropped_mock": by_reason[:, cl.R_MOCK],
        "dropped_spike": by_reason[:, cl.R_SPIKE],
        "dropped_vehicle": by_reason[:, cl.R_VEHICLE],
        "dropped_outside": by_reason[:, cl.R_OUTSIDE],
        "gap_s": np.bincount(traj, np.where(same & (dt > p.points.max_gap_s), dt, 0.0), minlength=n_traj),
        "max_speed_kmh": max_speed,
        "noise_m": _median_by_run(patrol.sigma, iv.clock.starts, traj, n_traj),  # 0 on a day without fixes
        "stationary_s": np.bincount(still_traj, still["duration_s"].to_numpy(), minlength=n_traj),
        "stationary_uncounted_s": np.bincount(
            still_traj, (still["patrol_s"] - still["counted_s"]).to_numpy(), minlength=n_traj
        ),
        "longest_stationary_s": still_s,
        "track_signature": signature,
        "track_duration_s": sig_duration,
        "track_spread_m": sig_spread,
        # working columns for the flags
        "still_s": still_s,
        "still_from": still_from,
        "still_to": still_to,
        "vehicle_s": np.bincount(traj, np.where(vehicle, dt, 0.0), minlength=n_traj),
        # an impossible jump shorter than teleport_spike_m is GPS noise (multipath), not a teleport
        "jumps": np.bincount(traj, iv.jump & (iv.dist >= p.anomalies.teleport_spike_m), minlength=n_traj),
        "max_jump_m": _max_jump_m(pts.columns, reason, iv, traj, n_traj),
    }


def _worker_days(
    counts: dict[str, np.ndarray], patrol: _Patrol, roster: _Roster, days: _Days, ctx: EngineContext
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per full-time worker and date: due time and distance, status, short reasons,
    leave, the counts; and the day's flags (joined into ``flags``)."""
    p = ctx.policy.patrol
    n_traj = days.n_traj(roster)
    n = max(days.n, 1)
    widx, didx = np.arange(n_traj) // n, np.arange(n_traj) % n
    workday = days.workday[didx] if days.n else np.zeros(0, bool)
    exempt, late, why, late_note = _leave(ctx.leave, roster.worker_ids, days.dates, p.leave_filing_days)
    exempt, late, why = exempt.ravel() & workday, late.ravel() & workday, why.ravel()
    late_note = np.where(late, late_note.ravel(), np.full(len(late), None, dtype=object))
    grid_type = roster.grid_type_of_worker[widx]
    due = workday & ~exempt
    required_s = np.where(due, p.day_required_s(grid_type), 0.0)
    required_m = np.where(due, p.day_km * 1000.0, 0.0)
    half, tol = p.half_day_min_min * 60.0, 1e-6
    short = {
        "time": patrol.patrol_s < required_s - tol,
        "distance": patrol.patrol_m < required_m - tol,
        "morning": due & (patrol.am_s < half - tol),
        "afternoon": due & (patrol.pm_s < half - tol),
    }
    patrolled = patrol.patrol_s > 0
    any_short = np.logical_or.reduce(list(short.values())) if n_traj else np.zeros(0, bool)
    status = np.select(
        [~workday, exempt, ~patrolled, any_short],
        [STATUS_OFF, STATUS_EXEMPT, STATUS_ABSENT, STATUS_SHORT],
        STATUS_OK,
    ).astype(object)
    judge = due & patrolled
    day = pd.DataFrame(
        {
            "worker_id": roster.worker_ids[widx],
            "grid_id": roster.grid_id_of_worker[widx],
            "date": days.date_objs[didx],
            "workday": workday,
            "exempt": exempt,
            "patrol_s": patrol.patrol_s,
            "patrol_m": patrol.patrol_m,
            "am_s": patrol.am_s,
            "pm_s": patrol.pm_s,
            "status": status,
            "grid_type": grid_type,
            "required_s": required_s,
            "required_m": required_m,
            **counts,  # the final selection puts every column in its contract order
            "leave_filed_late": late,
            "exempt_reason": why,
            "leave_note": pd.Series(late_note, dtype=object),  # text or None, as the other notes
            "short_reasons": _join_flags({k: v & judge for k, v in short.items()}, n_traj),
        }
    )
    day["exempt_reason"] = day["exempt_reason"].where(day["exempt"], None)
    flags = day_flags(day, ctx.policy) if n_traj else pd.DataFrame(columns=list(DAY_FLAG_COLUMNS))
    if len(flags):
        per_day = flags.groupby(["worker_id", "date"])["flag"].agg(",".join)
        day = day.merge(per_day.rename("flags"), left_on=["worker_id", "date"], right_index=True, how="left")
        day["flags"] = day["flags"].astype(object).where(day["flags"].notna(), None)
    else:
        day["flags"] = None
    return day[[*WORKER_DAY_COLUMNS, *WORKER_DAY_EXTRA]].reset_index(drop=True), flags


def _site_visits(patrol: _Patrol, roster: _Roster, days: _Days) -> pd.DataFrame:
    """One row per visit to a registered site (a stay within its radius)."""
    runs, traj, ts_us = patrol.visits, patrol.track["traj"], patrol.track["ts_us"]
    first, last = runs["first"].to_numpy(), runs["last"].to_numpy()
    n = max(days.n, 1)
    site = runs["site"].to_numpy()
    return pd.DataFrame(
        {
            "worker_id": roster.worker_ids[traj[first] // n],
            "grid_id": roster.sites["grid_id"].to_numpy()[site],
            "site_id": roster.sites["site_id"].to_numpy()[site],
            "site_type": roster.sites["site_type"].to_numpy()[site],
            "date": days.date_objs[traj[first] % n],
            "start_ts": pd.to_datetime(ts_us[first], unit="us", utc=True),
            "end_ts": pd.to_datetime(ts_us[last], unit="us", utc=True),
            "duration_s": runs["duration_s"].to_numpy(),
        },
        columns=list(SITE_VISIT_COLUMNS),
    )


# --- helpers ------------------------------------------------------------------------------
class _Roster:
    """Full-time workers, their grids and local frames, sites in those frames."""

    def __init__(self, ctx: EngineContext, buffer_m: float) -> None:
        w = ctx.workers
        ft = w[w["full_time"].astype(bool)].copy()
        ft["worker_id"] = ft["worker_id"].astype(str)
        ft = ft.drop_duplicates("worker_id").sort_values("worker_id")
        grids = ctx.grids
        # only the grids of the call's full-time workers are framed and buffered (a worker
        # batch holds a tenth of a district's); the first grid stays, whose frame is the one
        # of a worker without a polygon
        gid = grids["grid_id"].astype(str)
        used = gid.isin(set(ft["grid_id"].astype(str))).to_numpy().copy()
        if len(used) and not used.all():
            used[0] = True
            grids = grids[used]
        if grids.crs is not None and not grids.crs.equals("EPSG:4326"):
            grids = grids.to_crs("EPSG:4326")
        self.grid_ids = grids["grid_id"].astype(str).to_numpy()
        gtypes = grids["grid_type"].astype(str).map(lambda s: GRID_TYPE_ALIASES.get(s, s)).to_numpy()
        raw = np.asarray(grids.geometry.values, dtype=object)
        lon0, lat0 = grid_frames(raw) if len(raw) else (np.zeros(0), np.zeros(0))
        local = geoms_to_local(raw, lon0, lat0) if len(raw) else np.zeros(0, object)
        # a worker whose grid has no polygon: a frame at the first grid, an empty polygon
        self.lon0 = np.r_[lon0, lon0[:1] if len(lon0) else [0.0]]
        self.lat0 = np.r_[lat0, lat0[:1] if len(lat0) else [0.0]]
        geoms = np.empty(len(raw) + 1, dtype=object)
        geoms[: len(raw)] = shapely.buffer(local, buffer_m) if len(raw) else []
        geoms[len(raw)] = shapely.Polygon()
        self.geoms = geoms
        gpos = {g: i for i, g in enumerate(self.grid_ids)}
        # (lists, not the Series: iterating a str Series costs 10× more)
        all_ids = w["worker_id"].astype(str).tolist()
        self.all_workers = set(all_ids)
        self.worker_ids = ft["worker_id"].to_numpy(dtype=object)
        self.n_workers = len(ft)
        self.code = {wid: i for i, wid in enumerate(self.worker_ids)}
        self.grid_id_of_worker = ft["grid_id"].astype(str).to_numpy(dtype=object)
        self.gcode_of_worker = np.array([gpos.get(g, len(raw)) for g in self.grid_id_of_worker], dtype=np.int64)
        gt = np.r_[gtypes, [GRID_COMMUNITY]].astype(object)
        self.grid_type_of_worker = gt[self.gcode_of_worker]
        self.grid_of_any_worker = dict(zip(all_ids, w["grid_id"].astype(str).tolist(), strict=True))
        s = ctx.sites.copy()
        s["grid_id"] = s["grid_id"].astype(str)
        site_gcode = np.array([gpos.get(g, -1) for g in s["grid_id"].tolist()], dtype=np.int64)
        s = s[site_gcode >= 0].reset_index(drop=True)
        s["gcode"] = site_gcode[site_gcode >= 0]
        radius = s["radius_m"] if "radius_m" in s.columns else pd.Series(np.nan, index=s.index)
        s["radius_m"] = pd.to_numeric(radius, errors="coerce").fillna(ctx.policy.patrol.visits.radius_m)
        gc = s["gcode"].to_numpy()
        s["x"], s["y"] = to_grid_local(s["lon"].to_numpy(float), s["lat"].to_numpy(float), gc, self.lon0, self.lat0)
        self.sites = s


def _order_copies(
    order: np.ndarray, traj: np.ndarray, tus: np.ndarray, points: pd.DataFrame, sel: np.ndarray
) -> np.ndarray:
    """Put copies of one (worker, time stamp) in an order of their values, not of the input.

    The first copy is the one that counts (clean.R_DUPLICATE for the rest): with this, which
    copy that is does not depend on the order rows arrived in, or on the batch.
    """
    t, j = traj[order], tus[order]
    same = np.flatnonzero((t[1:] == t[:-1]) & (j[1:] == j[:-1]))
    if len(same) == 0:
        return order
    pos = np.unique(np.r_[same, same + 1])  # sorted positions of the copies (groups contiguous)
    rows = sel[order[pos]]
    keys = [_col(points, c, rows, np.nan) for c in ("accuracy_m", "lat", "lon") if c in points.columns]
    sub = np.lexsort((*keys, j[pos], t[pos]))
    order = order.copy()
    order[pos] = order[pos][sub]
    return order


def _col(df: pd.DataFrame, name: str, rows: np.ndarray, default: object = None) -> np.ndarray:
    if name not in df.columns:
        return np.full(len(rows), default)
    s = df[name]
    if default is False or s.dtype == bool:
        return s.to_numpy(dtype=bool, na_value=False)[rows]
    return s.to_numpy(dtype=np.float64, na_value=np.nan)[rows]


def _leave(
    leave: pd.DataFrame, workers: np.ndarray, dates: list[date], filing_days: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exempt / filed-late / reason / late-filing note matrices (workers × dates).

    A leave day is exempt when the leave was filed no later than ``filing_days`` after that
    day (3日内报备; filing in advance counts); filed later, the day is scored as usual,
    ``leave_filed_late`` says so and the note names the leave and its filing date (in Chinese,
    for the deduction's evidence; the leave's reason is not repeated there).
    """
    w, d = len(workers), len(dates)
    exempt = np.zeros((w, d), bool)
    covered = np.zeros((w, d), bool)
    why = np.full((w, d), None, dtype=object)
    note = np.full((w, d), None, dtype=object)
    if leave is None or leave.empty or w == 0 or d == 0:
        return exempt, covered, why, note
    code = {wid: i for i, wid in enumerate(workers)}
    lv = leave.copy()
    lv["wi"] = lv["worker_id"].astype(str).map(code)
    lv = lv[lv["wi"].notna()]
    if lv.empty:
        return exempt, covered, why, note
    day = np.array(dates, dtype="datetime64[D]")
    start = pd.to_datetime(lv["start_date"]).to_numpy().astype("datetime64[D]")[:, None]
    end = pd.to_datetime(lv["end_date"]).to_numpy().astype("datetime64[D]")[:, None]
    filed = pd.to_datetime(lv["filed_date"]).to_numpy().astype("datetime64[D]")[:, None]
    cover = (day >= start) & (day <= end)
    in_time = ~np.isnat(filed) & (filed <= day + np.timedelta64(int(filing_days), "D"))
    wi = lv["wi"].to_numpy().astype(np.int64)
    reasons = lv["reason"].astype(object).to_numpy() if "reason" in lv.columns else np.full(len(lv), None)
    for i in range(len(lv)):  # one per leave record (a few per month), never per point
        ok = cover[i] & in_time[i]
        exempt[wi[i]] |= ok
        covered[wi[i]] |= cover[i]
        why[wi[i], ok] = reasons[i] if reasons[i] is not None and reasons[i] == reasons[i] else "leave"
        span = f"{start[i, 0]}" + ("" if start[i, 0] == end[i, 0] else f"至{end[i, 0]}")
        filed_txt = "未报备" if np.isnat(filed[i, 0]) else f"{filed[i, 0]}报备"
        note[wi[i], cover[i] & ~in_time[i]] = (
            f"请假{span}，{filed_txt}，超过{int(filing_days)}日内报备时限，当日按常规考核"
        )
    late = covered & ~exempt
    return exempt, late, why, np.where(late, note, np.full(note.shape, None, dtype=object))


def _join_flags(masks: dict[str, np.ndarray], n: int) -> np.ndarray:
    out = np.full(n, "", dtype=object)
    for name, m in masks.items():
        out[m] = out[m] + ("," + name)
    out = np.array([s[1:] if s else None for s in out], dtype=object)  # per worker-day, not per point
    return out


def _max_jump_m(pts: cl.Frame, reason: np.ndarray, iv: Intervals, ktraj: np.ndarray, n_traj: int) -> np.ndarray:
    """Largest jump per worker-day: spikes (from the previous point) and residual jumps."""
    out = np.zeros(n_traj)
    jmp = iv.jump
    np.maximum.at(out, ktraj[jmp], iv.dist[jmp])
    sp = np.flatnonzero(reason == cl.R_SPIKE)
    if len(sp):
        live = np.flatnonzero((reason == cl.R_SPIKE) | cl.is_trustworthy(reason))
        pos = np.searchsorted(live, sp)
        prev = live[np.maximum(pos - 1, 0)]
        traj = pts["traj"]
        x, y = pts["x"], pts["y"]
        d = np.where((pos > 0) & (traj[prev] == traj[sp]), planar_distance(x[sp] - x[prev], y[sp] - y[prev]), 0.0)
        np.maximum.at(out, traj[sp], d)
    return out


def _track_signatures(
    track: cl.Frame, ktraj: np.ndarray, n_traj: int, m: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each worker-day's replay signature (flags.replays_from_signatures): its trustworthy fixes
    resampled to ``m`` positions evenly along the sequence (metres in the grid's frame), its
    duration and spread. None / NaN for a day with fewer than ``m`` fixes. The month step
    compares these small rows instead of reading the month's points (issue 12)."""
    sig = np.full(n_traj, None, dtype=object)
    dur = np.full(n_traj, np.nan)
    spread = np.full(n_traj, np.nan)
    if len(ktraj) == 0 or m < 2:
        return sig, dur, spread
    starts, rx, ry, d, sp = day_signatures(
        ktraj, np.asarray(track["x"]), np.asarray(track["y"]), np.asarray(track["t"]), m
    )
    tr = ktraj[starts]
    sig[tr] = encode_signatures(rx, ry)
    dur[tr], spread[tr] = d, sp
    return sig, dur, spread


def _longest_still(still: pd.DataFrame, tod: np.ndarray, n_traj: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = np.zeros(n_traj)
    f = np.full(n_traj, None, dtype=object)
    t = np.full(n_traj, None, dtype=object)
    if len(still) == 0:
        return s, f, t
    st = still.sort_values(["traj", "still_s"], kind="stable")
    last = st.drop_duplicates("traj", keep="last")
    last = last[last["still_s"] > 0]
    tr = last["traj"].to_numpy().astype(np.int64)
    s[tr] = last["still_s"].to_numpy()
    f[tr] = [_hhmm(v) for v in tod[last["start"].to_numpy()]]  # one per worker-day
    t[tr] = [_hhmm(v) for v in tod[last["end"].to_numpy()]]
    return s, f, t


def _hhmm(sec: float) -> str:
    m = int(sec // 60)
    return f"{m // 60:02d}:{m % 60:02d}"


def _point_use(
    points: pd.DataFrame,
    pts: _SortedPoints,
    roster: _Roster,
    reason: np.ndarray,
    in_grid: np.ndarray,
    date_objs: np.ndarray,
) -> pd.DataFrame:
    """Every input row on the call's dates: counted or why not (full-time workers' points in
    their sorted order, then the others' in input order)."""
    sel, other, wcode, dpos = pts.rows, pts.other_rows, pts.worker, pts.day_pos
    ts = pts.ts
    rows = np.r_[sel, other]
    o_reason = np.where(pts.other_known, cl.R_NOT_FULL_TIME, cl.R_UNKNOWN).astype(np.int8)
    all_reason = np.r_[reason, o_reason].astype(np.int8)
    # worker and grid as categoricals built from codes: no per-point strings
    wfac, wuniq = pd.factorize(pd.Series(points["worker_id"]).iloc[other].astype(str))
    wcats = np.r_[roster.worker_ids, np.asarray(wuniq, dtype=object)]
    wcodes = np.r_[wcode, len(roster.worker_ids) + wfac]
    gcats_all = np.r_[
        roster.grid_id_of_worker, np.array([roster.grid_of_any_worker.get(w) for w in wuniq], dtype=object)
    ]
    gcats, ginv = np.unique(
        np.array([str(g) if g is not None else "" for g in gcats_all], dtype=object), return_inverse=True
    )
    gcodes = ginv[wcodes] if len(wcodes) else np.zeros(0, np.int64)
    return pd.DataFrame(
        {
            "worker_id": pd.Categorical.from_codes(wcodes, categories=pd.Index(wcats, dtype=object)),
            "grid_id": pd.Categorical.from_codes(gcodes, categories=pd.Index(gcats, dtype=object)),
            "ts": ts.iloc[rows].reset_index(drop=True),
            "lon": _col(points, "lon", rows),
            "lat": _col(points, "lat", rows),
            "date": date_objs[np.minimum(dpos[rows], len(date_objs) - 2)] if len(rows) else np.zeros(0, object),
            "counted": all_reason == cl.R_OK,
            "reason": cl.reason_labels(all_reason),
            "in_grid": np.r_[in_grid, np.zeros(len(other), bool)],
        },
        columns=list(POINT_USE_COLUMNS),
    )
