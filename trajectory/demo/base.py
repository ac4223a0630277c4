"""The demo's fixed settings: area, month, seed, behaviour profiles, site labels, rng streams.

Every random choice of the generator draws from ``stream_rng(seed, S_..., ...)``: one
independent stream per purpose and loop index, so the order of the loops never changes a value.

>>> int(stream_rng(7, S_GRIDS).integers(100)) == int(stream_rng(7, S_GRIDS).integers(100))
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trajectory.contract import SITE_CARE_SUBJECT, SITE_HAZARD, SITE_KEY_PERSON, SITE_SPECIAL_GROUP

__all__ = [
    "ABSENT_LEAVE_IN_TIME", "ABSENT_LEAVE_LATE", "CAR", "CENTER_LAT", "CENTER_LON", "COMMUNITY_CELL_M2",
    "COMMUNITY_SHARE", "DEFAULT_MONTH", "DEFAULT_N_GRIDS", "DEFAULT_SEED", "DESK_PHONE", "DILIGENT",
    "GPS_NOISE_M", "GRIDS_FILE_NAME", "GRID_TYPE_COMMUNITY", "GRID_TYPE_VILLAGE", "LAZY", "MOCK_LOCATION",
    "MORNING_ONLY", "NUMERALS", "PART_TIME", "PROFILES", "REPLAY", "SAMPLE_S", "SITE_CODES", "SITE_LABELS",
    "SPECIAL_ORDER", "STEMS", "S_DAY", "S_FILES", "S_GRIDS", "S_INDICATORS", "S_PLAN", "S_PROFILES", "S_SITES",
    "S_STREETS", "TIMEZONE", "UTC_OFFSET_S", "VILLAGE_CELL_M2", "VISIT_PAUSE_S", "DemoManifest", "stream_rng",
]  # fmt: skip

DEFAULT_MONTH = "2026-10"
DEFAULT_SEED = 20261001
DEFAULT_N_GRIDS = 40

# the demo area: 常州西太湖, one local metric frame for everything (trajectory.geo)
CENTER_LON, CENTER_LAT = 119.90, 31.675
TIMEZONE = "Asia/Shanghai"
UTC_OFFSET_S = 8 * 3600  # Asia/Shanghai has had no daylight saving since 1991
GRID_TYPE_COMMUNITY, GRID_TYPE_VILLAGE = "社区", "村"
COMMUNITY_SHARE = 0.55
COMMUNITY_CELL_M2 = 0.48e6  # target cell areas: relaxed cells end within ~0.3–1.5 km²
VILLAGE_CELL_M2 = 0.85e6
GPS_NOISE_M = 4.0
SAMPLE_S = (5, 10)

GRIDS_FILE_NAME = "grids.geojson"

# behaviour profiles of full-time workers
DILIGENT = "diligent"
LAZY = "lazy"
DESK_PHONE = "desk_phone"
CAR = "car"
ABSENT_LEAVE_IN_TIME = "absent_leave_in_time"
ABSENT_LEAVE_LATE = "absent_leave_late"
MOCK_LOCATION = "mock_location"
MORNING_ONLY = "morning_only"
REPLAY = "replay"
PART_TIME = "part_time"
PROFILES = (
    DILIGENT,
    LAZY,
    DESK_PHONE,
    CAR,
    ABSENT_LEAVE_IN_TIME,
    ABSENT_LEAVE_LATE,
    MOCK_LOCATION,
    MORNING_ONLY,
    REPLAY,
)
# handed out in this order to randomly chosen workers; the rest are diligent
SPECIAL_ORDER = (*PROFILES[1:], LAZY)  # every profile but diligent once, then lazy again

# placeholder names of people (网格员甲一), never a real name
STEMS = "甲乙丙丁戊己庚辛壬癸"
NUMERALS = ("一", "二", "三", "四", "五", "六", "七", "八", "九", "十")
SITE_CODES = {SITE_KEY_PERSON: "KP", SITE_SPECIAL_GROUP: "SG", SITE_CARE_SUBJECT: "CS", SITE_HAZARD: "HZ"}
SITE_LABELS = {
    SITE_KEY_PERSON: ("重点人员（示例）",),
    SITE_SPECIAL_GROUP: ("特殊人群（示例）",),
    SITE_CARE_SUBJECT: ("关爱对象（示例）",),
    SITE_HAZARD: (
        "加油站（示例）",
        "液化气供应点（示例）",
        "在建工地（示例）",
        "危化品仓库（示例）",
        "老旧厂房（示例）",
    ),
}
# stay at a site on a visit (s): 2–5 min for hazard sites, a household call for people
VISIT_PAUSE_S = {
    SITE_HAZARD: (130, 300),
    SITE_KEY_PERSON: (300, 720),
    SITE_SPECIAL_GROUP: (240, 600),
    SITE_CARE_SUBJECT: (240, 600),
}

# rng stream keys (np.random.default_rng([seed, key, ...])): independent of loop order
S_GRIDS, S_STREETS, S_SITES, S_PROFILES, S_PLAN, S_DAY, S_FILES, S_INDICATORS = range(1, 9)


def stream_rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *(int(k) for k in keys)])


@dataclass(frozen=True)
class DemoManifest:
    """What :func:`build_demo_workspace` wrote.

    Attributes
    ----------
    root : Path
        The workspace folder.
    month : str
        ``YYYY-MM``.
    grid_ids : tuple of str
    profiles : dict
        ``worker_id -> profile`` for every worker (part-timers are ``'part_time'``).
    counts : dict
        Numbers of grids, workers, sites, GPS points and files, bad rows, events, ...
    """

    root: Path
    month: str
    grid_ids: tuple[str, ...]
    profiles: dict[str, str]
    counts: dict[str, int] = field(default_factory=dict)
