"""The demo month: workers and their behaviour profiles, grids with streets and sites, the
absences and visits each worker plans, and the tracks of one worker's day."""

from __future__ import annotations

import calendar
import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import shapely

from trajectory.contract import SITE_CARE_SUBJECT, SITE_HAZARD, SITE_KEY_PERSON, SITE_SPECIAL_GROUP
from trajectory.demo.base import (
    ABSENT_LEAVE_IN_TIME,
    ABSENT_LEAVE_LATE,
    CAR,
    DESK_PHONE,
    DILIGENT,
    GRID_TYPE_VILLAGE,
    LAZY,
    MOCK_LOCATION,
    MORNING_ONLY,
    NUMERALS,
    PART_TIME,
    REPLAY,
    S_DAY,
    S_PROFILES,
    S_SITES,
    S_STREETS,
    SITE_CODES,
    SPECIAL_ORDER,
    STEMS,
    UTC_OFFSET_S,
    VISIT_PAUSE_S,
    stream_rng,
)
from trajectory.demo.city import to_local_geom
from trajectory.demo.phones import Track, degrade, stay, walk
from trajectory.demo.streets import Network, street_network

__all__ = [
    "Grid", "Worker", "build_grid", "local_midnight_epoch", "make_workers", "month_days", "plan_absences",
    "plan_visits", "worker_day",
]  # fmt: skip


def month_days(month: str) -> list[dt.date]:
    try:
        year, mon = (int(p) for p in month.split("-"))
        first = dt.date(year, mon, 1)
    except ValueError:
        raise ValueError(f"'month' was '{month}' but is expected to be YYYY-MM") from None
    return [first + dt.timedelta(days=i) for i in range(calendar.monthrange(year, mon)[1])]


@dataclass
class Grid:
    grid_id: str
    grid_type: str
    group: str
    poly: shapely.Polygon  # local metres
    net: Network
    office: int  # node where sessions start
    desk_xy: np.ndarray
    sites: list[tuple[str, str, int, np.ndarray]] = field(default_factory=list)  # id, type, node, xy


@dataclass
class Worker:
    worker_id: str
    name: str
    grid: int
    full_time: bool
    profile: str
    device: str
    sample_s: tuple[int, int]


def build_grid(i: int, gid: str, name: str, gtype: str, poly_ll: shapely.Geometry, seed: int) -> Grid:
    rng = stream_rng(seed, S_STREETS, i)
    poly = to_local_geom(poly_ll)
    if poly.geom_type == "MultiPolygon":
        poly = max(shapely.get_parts(poly), key=lambda g: g.area)
    village = gtype == GRID_TYPE_VILLAGE
    net = street_network(poly, rng, spacing=rng.uniform(210, 280) if village else rng.uniform(120, 170))
    centre = shapely.get_coordinates(shapely.point_on_surface(poly))[0]
    office = int(np.argmin(np.hypot(*(net.node_xy - centre).T)))
    a = rng.uniform(0, 2 * np.pi)
    desk = net.node_xy[office] + 12.0 * np.array([math.cos(a), math.sin(a)])
    group = name.split("第")[0]
    g = Grid(gid, gtype, group, poly, net, office, desk)
    # sites: near a street node well inside the grid
    srng = stream_rng(seed, S_SITES, i)
    for margin in (40.0, 20.0, 5.0):  # well inside the grid when the grid allows
        inner = shapely.buffer(poly, -margin)
        cand = np.flatnonzero(shapely.contains_xy(inner, net.node_xy[:, 0], net.node_xy[:, 1]))
        if len(cand) >= 10:
            break
    counts = {
        SITE_KEY_PERSON: int(srng.integers(1, 4)),
        SITE_SPECIAL_GROUP: int(srng.integers(1, 4)),
        SITE_CARE_SUBJECT: int(srng.integers(1, 3)),
        SITE_HAZARD: int(srng.integers(0, 3)),
    }
    nodes = srng.choice(cand, size=min(len(cand), sum(counts.values())), replace=False)
    k = 0
    for stype, c in counts.items():
        for j in range(c):
            if k >= len(nodes):
                break
            node = int(nodes[k])
            k += 1
            angles = srng.uniform(0, 2 * np.pi) + np.arange(8) * np.pi / 4  # a house by the street, inside
            ring = net.node_xy[node] + srng.uniform(4, 12) * np.column_stack([np.cos(angles), np.sin(angles)])
            ok = shapely.contains_xy(shapely.buffer(poly, -1.0), ring[:, 0], ring[:, 1])
            xy = ring[int(np.argmax(ok))] if ok.any() else net.node_xy[node].copy()
            g.sites.append((f"{SITE_CODES[stype]}-{gid}-{j + 1}", stype, node, xy))
    return g


def plan_absences(
    profile: str, workdays: list[dt.date], rng: np.random.Generator
) -> tuple[set[dt.date], list[tuple[dt.date, dt.date, dt.date, str]]]:
    """Absent workdays and the leave rows filed for them (start, end, filed, reason)."""
    absent: set[dt.date] = set()
    leave: list[tuple[dt.date, dt.date, dt.date, str]] = []
    if len(workdays) < 8:
        return absent, leave
    if profile == ABSENT_LEAVE_IN_TIME:
        i = int(rng.integers(3, len(workdays) - 5))
        days = workdays[i : i + 3]
        absent.update(days)
        # 3日内报备: filed the day after the first absent day
        leave.append((days[0], days[-1], days[0] + dt.timedelta(days=1), "请假"))
        j = int(rng.integers(0, 2))
        absent.add(workdays[j])
        leave.append((workdays[j], workdays[j], workdays[j], "工作冲突"))
    elif profile == ABSENT_LEAVE_LATE:
        i = int(rng.integers(2, len(workdays) - 6))
        days = workdays[i : i + 2]
        absent.update(days)
        leave.append((days[0], days[-1], days[-1] + dt.timedelta(days=int(rng.integers(6, 9))), "工作冲突"))
    elif profile == LAZY:
        absent.update(workdays[int(k)] for k in rng.choice(len(workdays), size=2, replace=False))
    return absent, leave


def plan_visits(
    grid: Grid, profile: str, active: list[dt.date], rng: np.random.Generator
) -> dict[dt.date, list[tuple[str, int]]]:
    """Which sites a worker visits on which day (site type, node), by the seed's periods."""
    plan: dict[dt.date, list[tuple[str, int]]] = {d: [] for d in active}
    if not active:
        return plan
    lazy = profile == LAZY
    weeks: dict[tuple[int, int], list[dt.date]] = {}
    for d in active:
        weeks.setdefault(d.isocalendar()[:2], []).append(d)
    for _, stype, node, _ in grid.sites:
        if stype == SITE_HAZARD:  # 重大安全隐患场所每天走访巡查一次
            for d in active:
                if not lazy or rng.random() < 0.6:
                    plan[d].append((stype, node))
        elif stype == SITE_KEY_PERSON:  # 重点人员走访每周覆盖一次
            for wk in sorted(weeks):
                if not lazy or rng.random() < 0.5:
                    plan[weeks[wk][int(rng.integers(len(weeks[wk])))]].append((stype, node))
        elif not lazy or rng.random() < 0.6:  # 特殊人群、关爱对象走访每月覆盖一次
            plan[active[int(rng.integers(len(active)))]].append((stype, node))
    return plan


def worker_day(
    w: Worker,
    grid: Grid,
    day: dt.date,
    workday: bool,
    visits: list[tuple[str, int]],
    seed: int,
    wi: int,
) -> list[Track]:
    """The tracks of one worker on one day according to the profile."""
    rng = stream_rng(seed, S_DAY, wi, day.toordinal())
    village = grid.grid_type == GRID_TYPE_VILLAGE
    net = grid.net

    def visit_list(items: list[tuple[str, int]]) -> list[tuple[int, float]]:
        out = [(node, float(rng.uniform(*VISIT_PAUSE_S[stype]))) for stype, node in items]
        order = rng.permutation(len(out))
        return [out[i] for i in order]

    def clock(h0: float, h1: float) -> int:
        return int(rng.uniform(h0, h1) * 3600)

    if not w.full_time:
        if not workday or rng.random() > 0.2:
            return []
        tr, _ = walk(net, rng, grid.office, clock(9.0, 15.0), rng.uniform(0.6, 1.4) * 3600, [], w.sample_s)
        return [degrade(rng, tr)]
    if not workday:  # a few patrols on days off (weekend duty, 国庆 值班)
        if w.profile in (DILIGENT, REPLAY, MOCK_LOCATION) and rng.random() < 0.08:
            tr, _ = walk(net, rng, grid.office, clock(8.8, 9.8), rng.uniform(1.0, 2.0) * 3600, [], w.sample_s)
            return [degrade(rng, tr)]
        return []

    # session lengths (h): community needs >= 3 h a day, village >= 2 h
    am_h = rng.uniform(1.2, 1.8) if village else rng.uniform(1.8, 2.4)
    pm_h = rng.uniform(1.1, 1.6) if village else rng.uniform(1.7, 2.3)
    am_start, pm_start = clock(8.2, 9.0), clock(13.8, 14.5)
    has_am, has_pm = True, True
    if w.profile == LAZY:
        am_h, pm_h = rng.uniform(0.5, 1.2), rng.uniform(0.4, 1.0)
        r = rng.random()
        has_am, has_pm = (r >= 0.15, r < 0.15 or r >= 0.3)
    elif w.profile == MORNING_ONLY:
        am_h = rng.uniform(2.0, 3.0)
        has_pm = rng.random() < 0.15
    elif w.profile == DILIGENT and rng.random() < 0.04:
        pm_h *= 0.4  # even the diligent have a short afternoon now and then

    split = rng.random(len(visits)) < (0.5 if has_am and has_pm else (0.0 if has_am else 1.0))
    am_visits = visit_list([v for v, s in zip(visits, split, strict=True) if not s])
    pm_visits = visit_list([v for v, s in zip(visits, split, strict=True) if s])
    tracks: list[Track] = []
    if has_am:
        tr, _ = walk(net, rng, grid.office, am_start, am_h * 3600, am_visits, w.sample_s)
        tracks.append(degrade(rng, tr))
    if not has_pm:
        return tracks

    if w.profile == DESK_PHONE and rng.random() < 0.6:
        # 挂机: the phone lies on the office desk for hours while "on patrol"
        desk_s = rng.uniform(2.0, 3.0) * 3600
        desk = degrade(rng, stay(rng, grid.desk_xy, pm_start, desk_s, w.sample_s), indoor=True)
        tr, _ = walk(
            net, rng, grid.office, pm_start + int(desk_s) + 60, rng.uniform(0.2, 0.4) * 3600, pm_visits, w.sample_s
        )
        return [*tracks, desk, degrade(rng, tr)]
    car = None
    if w.profile == CAR and rng.random() < 0.55:  # 车巡: part of the afternoon by car at 30–50 km/h
        c0 = rng.uniform(0.2, 0.5) * 3600
        car = (c0, c0 + rng.uniform(0.5, 1.0) * 3600)
    tr, _ = walk(net, rng, grid.office, pm_start, pm_h * 3600, pm_visits, w.sample_s, car_window=car)
    tr = degrade(rng, tr)
    if w.profile == MOCK_LOCATION and rng.random() < 0.3 and len(tr.t) > 400:
        # 虚拟定位: 30–60 min pinned to a fake spot (flagged mock), teleporting in and out
        fake = grid.sites[-1][3] if grid.sites else grid.desk_xy
        i0 = int(rng.integers(50, len(tr.t) - 350))
        block = (tr.t >= tr.t[i0]) & (tr.t < tr.t[i0] + rng.uniform(1800, 3600))
        nb = int(block.sum())
        tr.x[block] = fake[0] + rng.normal(0, 0.3, nb)
        tr.y[block] = fake[1] + rng.normal(0, 0.3, nb)
        tr.speed[block] = 0.0
        tr.accuracy[block] = 5.0
        tr.mock[block] = True
    tracks.append(tr)
    return tracks


def make_workers(grids: list[Grid], seed: int, sample_s: tuple[int, int]) -> list[Worker]:
    rng = stream_rng(seed, S_PROFILES)
    n = len(grids)
    n_special = min(len(SPECIAL_ORDER), n - math.ceil(n / 2))
    profiles = [DILIGENT] * n
    for k, wi in enumerate(rng.permutation(n)[:n_special]):
        profiles[int(wi)] = SPECIAL_ORDER[k]
    workers = []
    for i in range(n):
        lo = int(rng.integers(sample_s[0], sample_s[1] + 1))
        workers.append(
            Worker(
                worker_id=f"W{i + 1:03d}",
                name=f"网格员{STEMS[i % 10]}{NUMERALS[(i // 10) % 10]}",
                grid=i,
                full_time=True,
                profile=profiles[i],
                device=f"DEV-{i + 1:03d}",
                sample_s=(lo, max(lo, min(sample_s[1], lo + 3))),
            )
        )
    n_part = 2 + int(rng.integers(0, 2))
    for k, gi in enumerate(sorted(int(g) for g in rng.choice(n, n_part, replace=False))):
        i = n + k
        workers.append(
            Worker(f"W{i + 1:03d}", f"兼职网格员{STEMS[k % 10]}", gi, False, PART_TIME, f"DEV-{i + 1:03d}", sample_s)
        )
    return workers


def local_midnight_epoch(day: dt.date) -> int:
    return calendar.timegm(day.timetuple()) - UTC_OFFSET_S
