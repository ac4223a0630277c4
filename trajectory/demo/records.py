"""The demo's tables: roster, sites, leave, calendar, settings and the centre's indicator records.

One writer per indicator table (events, service records, info collection, complaints,
discipline, info checks, inspections); they draw in that order from one stream
(``S_INDICATORS``), so the records are the same for the same seed.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring.policy import load_policy
from trajectory.contract import CALENDAR_COLUMNS, LEAVE_COLUMNS, SITE_HAZARD, WORKERS_COLUMNS
from trajectory.demo.base import (
    ABSENT_LEAVE_LATE,
    CENTER_LAT,
    CENTER_LON,
    GRID_TYPE_COMMUNITY,
    GRID_TYPE_VILLAGE,
    LAZY,
    MORNING_ONLY,
    S_INDICATORS,
    S_SITES,
    SITE_LABELS,
    UTC_OFFSET_S,
    stream_rng,
)
from trajectory.demo.patrols import Grid, Worker
from trajectory.geo import from_local
from trajectory.workspace import WorkspacePaths

__all__ = ["write_csv", "write_indicators", "write_roster"]


def write_roster(
    paths: WorkspacePaths,
    grids: list[Grid],
    workers: list[Worker],
    leave_rows: list[tuple[str, dt.date, dt.date, dt.date, str]],
    overrides: dict[dt.date, bool],
    seed: int,
) -> None:
    wdf = pd.DataFrame(
        [(w.worker_id, w.name, grids[w.grid].grid_id, "true" if w.full_time else "false") for w in workers],
        columns=list(WORKERS_COLUMNS),
    )
    write_csv(wdf, paths.workers)
    site_rows = []
    for gi, g in enumerate(grids):
        lrng = stream_rng(seed, S_SITES, gi, 99)
        for sid, stype, _, xy in g.sites:
            lon, lat = from_local(np.array([xy[0]]), np.array([xy[1]]), CENTER_LON, CENTER_LAT)
            labels = SITE_LABELS[stype]
            label = labels[int(lrng.integers(len(labels)))]
            radius = "80" if stype == SITE_HAZARD and "仓库" in label else ""
            site_rows.append((sid, stype, g.grid_id, round(float(lon[0]), 7), round(float(lat[0]), 7), radius, label))
    sdf = pd.DataFrame(site_rows, columns=["site_id", "site_type", "grid_id", "lon", "lat", "radius_m", "label"])
    write_csv(sdf, paths.sites)
    ldf = pd.DataFrame(
        [(w, s.isoformat(), e.isoformat(), f.isoformat(), r) for w, s, e, f, r in sorted(leave_rows)],
        columns=list(LEAVE_COLUMNS),
    )
    write_csv(ldf, paths.leave)
    cdf = pd.DataFrame(
        [(d.isoformat(), "true" if v else "false") for d, v in sorted(overrides.items())],
        columns=list(CALENDAR_COLUMNS),
    )
    write_csv(cdf, paths.calendar)
    paths.policy.write_text(
        "# gridpatrol demo workspace settings. Anything not set here comes from\n"
        "# scoring/default_policy.toml (copy only what you change).\n"
        'timezone = "Asia/Shanghai"   # days and weeks are local (SPEC §2)\n'
        'gps_crs = "wgs84"            # the demo phones report raw GPS (WGS-84); use "gcj02" for Amap/Tencent SDKs\n',
        encoding="utf-8",
    )


def write_csv(df: pd.DataFrame, path: Path) -> None:
    path.write_text(df.to_csv(index=False, lineterminator="\n"), encoding="utf-8")


# --- indicators ----------------------------------------------------------------------------------

_CATEGORY_GROUPS = (  # (categories, share of a grid's events); minimums in default_policy.toml
    (("社会治安", "公共安全"), 0.22),
    (("城市管理", "环境保护"), 0.50),
    (("民生服务", "政务代办"), 0.18),
    (("综合管理", "综合执法"), 0.10),
)
_TITLES = {
    "社会治安": ("邻里纠纷调解", "可疑人员出没", "群租房人员复杂", "夜间噪音扰民"),
    "公共安全": ("电动车楼道充电", "消防通道堵塞", "井盖缺失", "燃气管道老化"),
    "城市管理": ("占道经营", "乱堆乱放", "共享单车乱停放", "违章搭建", "广告乱张贴"),
    "环境保护": ("河道漂浮物", "垃圾满溢", "露天焚烧", "污水外溢", "工地扬尘"),
    "民生服务": ("路灯不亮", "独居老人需帮扶", "供水管漏水", "道路破损"),
    "政务代办": ("代办居住证", "代办医保参保", "代办残疾证年审", "代办老年卡"),
    "综合管理": ("绿化带破坏", "宣传栏破损", "小区道闸故障"),
    "综合执法": ("违规施工噪音", "渣土车撒漏", "无证经营"),
}
_DETAILS = ("现场已拍照，请相关部门处理。", "已现场劝导，持续关注。", "已联系物业处理。", "已告知责任单位限期整改。")
_ROAD_SUFFIX = ("东路", "西路", "南街", "北街", "中路", "巷")
_INFO_SIZES = {  # (community range, village range) of required records per sub-category
    "户籍人口": ((1500, 3500), (800, 2000)),
    "流动人口": ((400, 1500), (100, 600)),
    "境外人员": ((3, 25), (1, 6)),
    "残疾人": ((15, 60), (10, 40)),
    "出生婴儿": ((8, 30), (3, 15)),
    "从业人员": ((400, 1500), (150, 600)),
    "低保户": ((3, 30), (5, 25)),
    "房屋承租信息": ((150, 800), (30, 200)),
    "社区矫正人员": ((1, 6), (1, 4)),
    "重点青少年": ((2, 15), (1, 8)),
    "重点上访人员": ((1, 5), (1, 4)),
}


Event = tuple[Any, ...]
Candidate = tuple[int, str, int, float, float]  # grid, worker, t_epoch, x, y (a moment on a track)


def write_indicators(
    folder: Path,
    grids: list[Grid],
    workers: list[Worker],
    workdays: list[dt.date],
    candidates: list[Candidate],
    seed: int,
    month: str,
) -> dict[str, int]:
    """The centre's indicator tables of ``month`` into ``folder``, one writer per table.

    The weak grids (lazy, mornings-only and late-leave workers) also fall short on events and
    service records and draw the complaints; the writers draw in a fixed order from one stream.
    """
    rng = stream_rng(seed, S_INDICATORS)
    full_time = {w.grid: w for w in workers if w.full_time}
    weak = {w.grid for w in full_time.values() if w.profile in (LAZY, MORNING_ONLY, ABSENT_LEAVE_LATE)}
    n_events = _write_events(folder / "events.csv", rng, grids, weak, candidates, month)
    _write_service_records(folder / "service_records.csv", rng, grids, weak, workdays)
    _write_info_collection(folder / "info_collection.csv", rng, grids)

    def dated(k: int) -> list[str]:
        return sorted(workdays[int(i)].isoformat() for i in rng.integers(0, len(workdays), size=k))

    gids = [g.grid_id for g in grids]
    weak_ids = [grids[i].grid_id for i in sorted(weak)] or gids[:1]
    _write_complaints(folder / "complaints.csv", rng, gids, weak_ids, dated)
    _write_discipline(folder / "discipline.csv", rng, gids, weak_ids, dated)
    _write_info_checks(folder / "info_checks.csv", rng, gids, dated)
    _write_inspections(folder / "inspections.csv", rng, gids, dated)
    return {"events": n_events}


def _write_events(
    path: Path, rng: np.random.Generator, grids: list[Grid], weak: set[int], candidates: list[Candidate], month: str
) -> int:
    """events.csv: about 55–105 events a grid at moments of its worker's tracks; the number written."""
    n = len(grids)
    bad_quality = min(weak) if weak else 0  # one grid with > 30 % unqualified or false events
    by_grid: dict[int, list[Candidate]] = {}
    for c in candidates:
        by_grid.setdefault(c[0], []).append(c)
    events: list[Event] = []
    for gi, g in enumerate(grids):
        cands = by_grid.get(gi, [])
        if cands:
            events += _grid_events(rng, g, cands, n, gi in weak, gi == bad_quality, gi, month)
    ev = pd.DataFrame(
        events,
        columns=[
            "event_id", "grid_id", "worker_id", "reported_at", "category", "title", "description", "address",
            "lon", "lat", "photos_before", "photos_after", "valid", "review", "shirked",
        ],
    )  # fmt: skip
    write_csv(ev, path)
    return len(ev)


def _grid_events(
    rng: np.random.Generator,
    g: Grid,
    cands: list[Candidate],
    n: int,
    is_weak: bool,
    is_bad_quality: bool,
    gi: int,
    month: str,
) -> list[Event]:
    """One grid's events: some unqualified (photos, description, title, repeated) or false."""
    short = is_weak or rng.random() < 0.12
    n_ev = int(rng.integers(55, 79) if short else rng.integers(82, 106))
    p_bad = (0.26, 0.10) if is_bad_quality else (0.05, 0.015)
    shirk_left = 2 if gi == int(rng.integers(n)) else 0
    picks = rng.choice(len(cands), size=n_ev, replace=len(cands) < n_ev)
    delay = rng.integers(0, 300, size=n_ev)  # reported a few minutes after the moment on the track
    order = sorted(range(n_ev), key=lambda k: (cands[picks[k]][2] + delay[k], k))
    picks, delay = picks[order], delay[order]
    group_of = rng.choice(len(_CATEGORY_GROUPS), size=n_ev, p=[s for _, s in _CATEGORY_GROUPS])
    events: list[Event] = []
    prev = None
    for k, pi in enumerate(picks):
        _, worker_id, epoch, x, y = cands[pi]
        cats = _CATEGORY_GROUPS[group_of[k]][0]
        cat = cats[int(rng.integers(2))]
        title = _TITLES[cat][int(rng.integers(len(_TITLES[cat])))]
        road = (
            g.group.replace(GRID_TYPE_COMMUNITY, "").replace(GRID_TYPE_VILLAGE, "") + _ROAD_SUFFIX[int(rng.integers(6))]
        )
        address = f"{g.group}{road}{int(rng.integers(1, 120))}号附近"
        description = f"{address}发现{title}，{_DETAILS[int(rng.integers(len(_DETAILS)))]}"
        photos_before, photos_after = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        ex, ey = x + rng.normal(0, 8), y + rng.normal(0, 8)
        if rng.random() < 0.03:  # reported far from where the worker was
            a = rng.uniform(0, 2 * np.pi)
            ex, ey = x + 2500 * math.cos(a), y + 2500 * math.sin(a)
        r = rng.random()
        review, valid = "ok", True
        if r < p_bad[1]:
            review, valid = "false", False
        elif r < p_bad[0] + p_bad[1]:
            review = "unqualified"
            flaw = int(rng.integers(4))
            if flaw == 0:
                photos_after = 0  # 前后照片缺失
            elif flaw == 1:
                description = "见图"  # 描述不清
            elif flaw == 2:
                other = _TITLES["政务代办" if cat != "政务代办" else "城市管理"][0]
                description = f"{address}发现{other}。"  # 内容与标题不符
            elif prev is not None:  # 重复上报: same title and place as the previous one
                title, address, description, ex, ey = prev
                valid = False
        shirked = shirk_left > 0 and rng.random() < 0.1
        shirk_left -= int(shirked)
        lon, lat = from_local(np.array([ex]), np.array([ey]), CENTER_LON, CENTER_LAT)
        local = pd.Timestamp(epoch + int(delay[k]) + UTC_OFFSET_S, unit="s")
        events.append(
            (
                f"EV-{month.replace('-', '')}-{g.grid_id}-{k + 1:03d}",
                g.grid_id,
                worker_id,
                local.strftime("%Y-%m-%dT%H:%M:%S") + "+08:00",
                cat,
                title,
                description,
                address,
                round(float(lon[0]), 7),
                round(float(lat[0]), 7),
                photos_before,
                photos_after,
                "true" if valid else "false",
                review,
                "true" if shirked else "false",
            )
        )
        prev = (title, address, description, ex, ey)
    return events


def _write_service_records(
    path: Path, rng: np.random.Generator, grids: list[Grid], weak: set[int], workdays: list[dt.date]
) -> None:
    """service_records.csv: counts per grid per workday; most grids reach 80 a month."""
    rows: list[tuple[Any, ...]] = []
    for gi, g in enumerate(grids):
        total = int(rng.integers(60, 80) if (gi in weak or rng.random() < 0.1) else rng.integers(84, 115))
        per_day = rng.multinomial(total, np.full(len(workdays), 1 / len(workdays))) if workdays else np.zeros(0)
        rows += [(d.isoformat(), g.grid_id, int(c)) for d, c in zip(workdays, per_day, strict=True) if c > 0]
    write_csv(pd.DataFrame(rows, columns=["date", "grid_id", "count"]), path)


def _write_info_collection(path: Path, rng: np.random.Generator, grids: list[Grid]) -> None:
    """info_collection.csv per required sub-category (the list is policy data); one left uncollected."""
    n = len(grids)
    subcats = load_policy().info_collection.required_subcategories
    not_collected = (int(rng.integers(n)), subcats[int(rng.integers(len(subcats)))])
    rows = []
    for gi, g in enumerate(grids):
        village = g.grid_type == GRID_TYPE_VILLAGE
        for sub in subcats:
            lo, hi = _INFO_SIZES.get(sub, ((5, 100), (5, 60)))[village]
            required = int(rng.integers(lo, hi + 1))
            if (gi, sub) == not_collected:
                collected = 0
            elif required >= 10 and rng.random() < 0.06:
                collected = int(required * rng.uniform(0.80, 0.94))
            else:
                collected = max(math.ceil(0.95 * required), int(required * rng.uniform(0.95, 1.0)))
            rows.append((g.grid_id, sub, required, min(collected, required)))
    write_csv(pd.DataFrame(rows, columns=["grid_id", "subcategory", "required", "collected"]), path)


def _write_complaints(
    path: Path, rng: np.random.Generator, gids: list[str], weak_ids: list[str], dated: Callable[[int], list[str]]
) -> None:
    """complaints.csv: a public complaint and a leader's dissatisfaction for weak grids, four more anywhere."""
    n = len(gids)
    rows = [
        (d, weak_ids[0], "public_complaint", "true") for d in dated(1)
    ] + [
        (d, weak_ids[-1], "leader_dissatisfied", "true") for d in dated(1)
    ] + [
        (d, gids[int(rng.integers(n))], kind, "true" if rng.random() < 0.5 else "false")
        for d, kind in zip(dated(4), ("public_complaint", "inspector_complaint", "public_complaint", "inspector_complaint"), strict=True)
    ]  # fmt: skip
    write_csv(pd.DataFrame(sorted(rows), columns=["date", "grid_id", "kind", "verified"]), path)


def _write_discipline(
    path: Path, rng: np.random.Generator, gids: list[str], weak_ids: list[str], dated: Callable[[int], list[str]]
) -> None:
    """discipline.csv: missed meetings and trainings, board and badge missing, one confidentiality breach."""
    n = len(gids)
    kinds: tuple[str, ...] = ("meeting_absent",) * 5 + (
        "board_missing",
        "badge_missing",
        "badge_missing",
        "training_absent",
        "training_absent",
    )
    rows = [(d, gids[int(rng.integers(n))], kind, 1) for d, kind in zip(dated(len(kinds)), kinds, strict=True)]
    rows.append((dated(1)[0], weak_ids[0], "confidentiality_breach", 1))
    disc = pd.DataFrame(rows, columns=["date", "grid_id", "kind", "count"])
    disc = disc.groupby(["date", "grid_id", "kind"], as_index=False)["count"].sum()
    write_csv(disc, path)


def _write_info_checks(
    path: Path, rng: np.random.Generator, gids: list[str], dated: Callable[[int], list[str]]
) -> None:
    """info_checks.csv: inaccurate and not-updated records found by the centre's checks."""
    n = len(gids)
    kinds = ("inaccurate_record",) * 4 + ("not_updated",) * 5
    rows = [
        (d, gids[int(rng.integers(n))], kind, int(rng.integers(1, 3)))
        for d, kind in zip(dated(len(kinds)), kinds, strict=True)
    ]
    write_csv(pd.DataFrame(sorted(rows), columns=["date", "grid_id", "kind", "count"]), path)


def _write_inspections(
    path: Path, rng: np.random.Generator, gids: list[str], dated: Callable[[int], list[str]]
) -> None:
    """inspections.csv: 1–4 findings a grid by source, most rectified in time."""
    sources = ("daily_patrol", "random_check", "public_report", "center_assigned")
    rows = []
    for gid in gids:
        for d in dated(int(rng.integers(1, 5))):
            src = sources[int(rng.choice(4, p=[0.45, 0.2, 0.15, 0.2]))]
            rows.append((d, gid, src, "true" if rng.random() < 0.88 else "false"))
    write_csv(pd.DataFrame(sorted(rows), columns=["date", "grid_id", "source", "rectified_in_time"]), path)
