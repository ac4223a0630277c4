"""The assessment policy: every rule of the seed table, loaded from TOML into frozen dataclasses.

The defaults live in ``default_policy.toml`` beside this module (each entry cites its seed
clause). A workspace's ``patrol.toml`` overrides any key of it; nothing else in the code
hard-codes a number of the seed (STYLE lesson 5).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import numpy as np

from trajectory.contract import GPS_CRS_CHOICES, GPS_OPTIONAL_COLUMNS, GPS_POINT_COLUMNS, ITEM_CODES, SITE_TYPES
from trajectory.errors import PolicyError

DEFAULT_POLICY_PATH = Path(__file__).with_name("default_policy.toml")
VISIT_PERIODS = ("workday", "week", "month")
WEEK_MONTH_RULES = ("split",)
# tables a patrol.toml may add although the defaults lack them (the policy hash is unchanged
# without them): [gps.columns], a GPS file's header -> contract column (docs/ingest.md)
OPTIONAL_TABLES = (("gps",), ("gps", "columns"))

__all__ = [
    "DEFAULT_POLICY_PATH",
    "OPTIONAL_TABLES",
    "VISIT_PERIODS",
    "WEEK_MONTH_RULES",
    "AnomalyRules",
    "DistanceRules",
    "EventsPolicy",
    "ExportPolicy",
    "InfoCollectionPolicy",
    "ItemPolicy",
    "PatrolDeductions",
    "PatrolPolicy",
    "PointRules",
    "Policy",
    "PrivacyPolicy",
    "QualityChecks",
    "VisitRules",
    "load_policy",
]


@dataclass(frozen=True)
class PointRules:
    """Which GPS points count (SPEC §1.1)."""

    max_accuracy_m: float
    max_jump_kmh: float
    vehicle_kmh: float
    max_gap_s: float
    grid_buffer_m: float
    spike_max_points: int = 3
    vehicle_window_s: float = 30.0
    jump_noise_sigmas: float = 5.5
    unknown_sigma_m: float = 30.0


@dataclass(frozen=True)
class DistanceRules:
    """Noise-adaptive distance and stays (docs/methods.md §Distance): every number a policy key."""

    min_step_m: float
    stay_radius_m: float
    stay_radius_max_m: float
    stay_radius_sigmas: float
    stay_window_s: float
    stay_blip_s: float
    stay_smooth_s: float
    smooth_sigmas: float
    smooth_min_s: float
    smooth_neighbours_from_m: float
    smooth_max_s: float
    smooth_drift_tau_s: float
    step_sigmas: float
    corner_sigmas: float
    walk_speed_m_s: float
    outlier_sigmas: float
    outlier_min_m: float
    min_sigma_m: float
    stationary_max_min: float


@dataclass(frozen=True)
class VisitRules:
    """Visit frequency per site type and what counts as a visit."""

    period: Mapping[str, str]  # site_type -> workday | week | month
    radius_m: float
    min_stay_s: float


@dataclass(frozen=True)
class AnomalyRules:
    """Thresholds of the anomaly flags (evidence, never deductions)."""

    desk_phone_min_s: float
    vehicle_min_s: float
    teleport_spike_m: float
    replay_max_offset_m: float
    replay_noise_ratio: float
    replay_min_offset_m: float
    replay_min_points: int


@dataclass(frozen=True)
class PatrolDeductions:
    """Item 2.5 deduction per finding."""

    absent_day: float
    short_day: float
    short_week: float
    missed_site_period: float


def _by_grid_type(grid_type: Any, village: float, community: float) -> Any:
    """``village`` for a village grid (网格类型 村), else ``community``; element-wise for arrays."""
    if isinstance(grid_type, str):
        return village if grid_type == "village" else community
    return np.where(np.asarray(grid_type) == "village", village, community)


@dataclass(frozen=True)
class PatrolPolicy:
    """Item 2.5 巡查走访: the patrol rules of seed 2⑤ and SPEC §1.1."""

    community_day_h: float
    community_week_h: float
    village_day_h: float
    village_week_h: float
    day_km: float
    week_km: float
    morning_start: time
    noon: time
    afternoon_end: time
    half_day_min_min: float
    week_nominal_workdays: int
    week_month_rule: str
    leave_filing_days: int
    points: PointRules
    distance: DistanceRules
    visits: VisitRules
    anomalies: AnomalyRules
    deductions: PatrolDeductions

    def day_required_s(self, grid_type: Any) -> Any:
        """Required patrol seconds on a workday: for one grid type (``community`` or
        ``village``) a float, for an array of them an array. The one place of the rule.

        Examples
        --------
        >>> p = load_policy().patrol
        >>> p.day_required_s("village"), p.day_required_s(np.array(["community", "village"])).tolist()
        (7200.0, [10800.0, 7200.0])
        """
        return _by_grid_type(grid_type, self.village_day_h, self.community_day_h) * 3600.0

    def week_required_s(self, grid_type: Any) -> Any:
        """Required patrol seconds in a full (5-workday) week (one type, or an array of them)."""
        return _by_grid_type(grid_type, self.village_week_h, self.community_week_h) * 3600.0


@dataclass(frozen=True)
class ItemPolicy:
    """One row of the assessment table."""

    code: str
    category: str
    name: str
    max_score: float
    clause: str
    deduct: Mapping[str, float]
    # item 7 only: 不及时整改双倍扣分 read literally (item 7's own deduction doubled for a
    # random-check finding not rectified in time); off: the doubling is item 8's −1
    double_if_not_rectified: bool = False


@dataclass(frozen=True)
class InfoCollectionPolicy:
    """Item 3: required sub-categories and the collection-rate threshold."""

    min_rate: float
    required_subcategories: tuple[str, ...]


@dataclass(frozen=True)
class QualityChecks:
    """Report-quality auto-checks on events (flags, not deductions)."""

    duplicate_radius_m: float
    duplicate_window_h: float
    far_from_track_m: float
    track_window_min: float


@dataclass(frozen=True)
class EventsPolicy:
    """Items 6.1a / 6.1b / 6.2."""

    min_valid_events: int
    min_service_records: int
    quality_zero_share: float
    category_minimums_deduct: bool
    category_short_deduct: float
    category_minimums: Mapping[str, int]
    ranking_bonus: Mapping[int, float]
    quality_checks: QualityChecks
    # points the ranking bonus may add above 6.1a's maximum (按照网格上报排名情况酌情加分)
    ranking_bonus_cap: float = 1.0
    # quality flags counted as unqualified events in 6.2 (seed 6②: 信息不全、前后照片缺失、
    # 描述不清、重复上报 are 不合格); empty = flags are for reviewers only
    flags_as_unqualified: tuple[str, ...] = ()


@dataclass(frozen=True)
class PrivacyPolicy:
    """Where personal sites may appear (PIPL): a coarse cell, never the exact position."""

    site_cell_m: float  # key persons, special groups, care subjects: cell size in metres
    personal_site_types: tuple[str, ...]


@dataclass(frozen=True)
class ExportPolicy:
    """What the monthly workbook prints beyond the scores."""

    unit: str  # the assessing unit, in the title row
    prepared_by_label: str
    reviewed_by_label: str


@dataclass(frozen=True)
class Policy:
    """The whole policy of one run. ``hash`` identifies it in the run log and exports."""

    timezone: str
    gps_crs: str
    patrol: PatrolPolicy
    items: Mapping[str, ItemPolicy]
    info_collection: InfoCollectionPolicy
    events: EventsPolicy
    privacy: PrivacyPolicy = PrivacyPolicy(150.0, ("key_person", "special_group", "care_subject"))
    export: ExportPolicy = ExportPolicy("常州西太湖科技产业园网格化集成管理中心", "制表", "审核")
    # [gps.columns]: a GPS file's header (as written) -> contract column, "" = not read
    gps_columns: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    source: str = "default"
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def hash(self) -> str:
        """Short SHA-256 of the merged policy (stable across key order)."""
        canonical = json.dumps(_plain(self.raw), sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def load_policy(path: str | Path | None = None) -> Policy:
    """Load the default policy, overridden by the TOML file at ``path`` when given.

    Parameters
    ----------
    path : str or Path, optional
        A workspace's ``patrol.toml``. Keys it does not set keep the defaults.

    Returns
    -------
    Policy

    Examples
    --------
    >>> p = load_policy()
    >>> p.items["2.5"].max_score, p.patrol.points.max_gap_s
    (6.0, 300.0)
    """
    raw = _read_toml(DEFAULT_POLICY_PATH)
    source = "default"
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise PolicyError(str(path), "policy file not found")
        _merge(raw, _read_toml(path), str(path), ())
        source = str(path)
    return _build(raw, source)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        # tomllib reports "(at line L, column C)" in the message
        raise PolicyError(str(path), f"not valid TOML: {exc}") from exc
    except OSError as exc:
        raise PolicyError(str(path), f"cannot be read: {exc.strerror}") from exc


def _merge(base: dict[str, Any], over: Mapping[str, Any], file: str, at: tuple[str, ...]) -> None:
    """Deep-merge ``over`` into ``base``; unknown keys are an error (a typo must not pass)."""
    for key, value in over.items():
        where = ".".join((*at, key))
        if key not in base and (*at, key) in OPTIONAL_TABLES:
            base[key] = {}
        if key not in base:
            # open tables: items' deductions, ranking bonus, category minimums
            # ([maps] is validated by maps.tiles.TileConfig, which names its own unknown keys)
            if at and at[-1] in ("deduct", "ranking_bonus", "category_minimums", "maps", "columns"):
                base[key] = value
                continue
            raise PolicyError(file, f"unknown setting '{where}'", column=where)
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise PolicyError(file, f"'{where}' must be a table", column=where)
            _merge(base[key], value, file, (*at, key))
        else:
            base[key] = value


def _build(raw: dict[str, Any], source: str) -> Policy:
    f = _Fields(raw, source)
    gps_crs = _check_place(f, source)
    patrol = _patrol(f.sub("patrol"), source)
    items = _items(f.sub("items"), source)
    ic = f.sub("info_collection")
    events = _events(f.sub("events"), source)
    return Policy(
        timezone=f.text("timezone"),
        gps_crs=gps_crs,
        patrol=patrol,
        items=MappingProxyType(items),
        info_collection=_info_collection(ic),
        events=events,
        privacy=_privacy(f.sub("privacy"), source),
        export=_numbers(ExportPolicy, f.sub("export"), _Fields.text),
        gps_columns=MappingProxyType(_gps_columns(raw.get("gps", {}).get("columns", {}), source)),
        source=source,
        raw=raw,
    )


def _check_place(f: _Fields, source: str) -> str:
    """Check ``timezone`` (a known IANA zone); the GPS coordinate system ``gps_crs``, lower case."""
    if f.text("timezone") == "":
        raise PolicyError(source, "timezone is empty", column="timezone")
    _check_timezone(f.text("timezone"), source)
    gps_crs = f.text("gps_crs").lower()
    if gps_crs not in GPS_CRS_CHOICES:
        raise PolicyError(
            source,
            f"gps_crs was '{gps_crs}' but is expected to be one of {', '.join(GPS_CRS_CHOICES)}",
            column="gps_crs",
        )
    return gps_crs


def _patrol(p: _Fields, source: str) -> PatrolPolicy:
    """[patrol]: item 2.5's hours, distances, points, visits, anomalies and deductions."""
    pts, dist, vis, ano, ded = (p.sub(k) for k in ("points", "distance", "visits", "anomalies", "deductions"))
    periods = {t: vis.text(t) for t in SITE_TYPES}
    for site_type, period in periods.items():
        if period not in VISIT_PERIODS:
            raise PolicyError(
                source,
                f"visit period '{period}' is expected to be one of {', '.join(VISIT_PERIODS)}",
                column=f"patrol.visits.{site_type}",
            )
    rule = p.text("week_month_rule")
    if rule not in WEEK_MONTH_RULES:
        raise PolicyError(
            source, f"week_month_rule '{rule}' is not one of {WEEK_MONTH_RULES}", column="patrol.week_month_rule"
        )
    return PatrolPolicy(
        community_day_h=p.num("community_day_h"),
        community_week_h=p.num("community_week_h"),
        village_day_h=p.num("village_day_h"),
        village_week_h=p.num("village_week_h"),
        day_km=p.num("day_km"),
        week_km=p.num("week_km"),
        morning_start=p.clock("morning_start"),
        noon=p.clock("noon"),
        afternoon_end=p.clock("afternoon_end"),
        half_day_min_min=p.num("half_day_min_min"),
        week_nominal_workdays=int(p.num("week_nominal_workdays")),
        week_month_rule=rule,
        leave_filing_days=int(p.num("leave_filing_days")),
        points=_numbers(PointRules, pts),
        distance=_numbers(DistanceRules, dist),
        visits=VisitRules(MappingProxyType(periods), vis.num("radius_m"), vis.num("min_stay_s")),
        anomalies=_numbers(AnomalyRules, ano),
        deductions=_numbers(PatrolDeductions, ded),
    )


def _items(items_raw: _Fields, source: str) -> dict[str, ItemPolicy]:
    """[items]: one :class:`ItemPolicy` per item code of the assessment table (all required)."""
    missing = [c for c in ITEM_CODES if c not in items_raw.raw]
    if missing:
        raise PolicyError(source, f"items {', '.join(missing)} are missing", column="items")
    items = {}
    for code in ITEM_CODES:
        it = items_raw.sub(code)
        deduct = {k: float(v) for k, v in it.raw.get("deduct", {}).items()}
        double = it.raw.get("double_if_not_rectified", False)
        if not isinstance(double, bool):
            raise PolicyError(
                source,
                f"'items.{code}.double_if_not_rectified' was {double!r} but is expected to be true or false",
                column=f"items.{code}.double_if_not_rectified",
            )
        items[code] = ItemPolicy(
            code,
            it.text("category"),
            it.text("name"),
            it.num("max"),
            it.text("clause"),
            MappingProxyType(deduct),
            double,
        )
    return items


def _info_collection(ic: _Fields) -> InfoCollectionPolicy:
    """[info_collection]: item 3's threshold and required sub-categories."""
    return InfoCollectionPolicy(ic.num("min_rate"), tuple(str(s) for s in ic.raw["required_subcategories"]))


def _events(ev: _Fields, source: str) -> EventsPolicy:
    """[events]: items 6.1a / 6.1b / 6.2 and the report-quality checks."""
    qc = ev.sub("quality_checks")
    try:
        bonus = {int(k): float(v) for k, v in ev.raw.get("ranking_bonus", {}).items()}
    except ValueError as exc:
        raise PolicyError(source, "ranking_bonus keys must be ranks (1, 2, …)", column="events.ranking_bonus") from exc
    return EventsPolicy(
        min_valid_events=int(ev.num("min_valid_events")),
        min_service_records=int(ev.num("min_service_records")),
        quality_zero_share=ev.num("quality_zero_share"),
        category_minimums_deduct=bool(ev.raw["category_minimums_deduct"]),
        category_short_deduct=ev.num("category_short_deduct"),
        category_minimums=MappingProxyType({k: int(v) for k, v in ev.raw["category_minimums"].items()}),
        ranking_bonus=MappingProxyType(bonus),
        quality_checks=_numbers(QualityChecks, qc),
        flags_as_unqualified=tuple(str(s) for s in ev.raw.get("flags_as_unqualified", [])),
        ranking_bonus_cap=ev.num("ranking_bonus_cap"),
    )


def _gps_columns(columns: Mapping[str, Any], source: str) -> dict[str, str]:
    """[gps.columns]: each key a header of the centre's GPS files, each value a contract column or ""."""
    names = (*GPS_POINT_COLUMNS, *GPS_OPTIONAL_COLUMNS)
    for header, target in columns.items():
        where = f"gps.columns.{header}"
        if not header.strip():
            raise PolicyError(source, "'gps.columns' has an empty header name", column="gps.columns")
        if not isinstance(target, str) or target not in (*names, ""):
            raise PolicyError(
                source,
                f"'{where}' was {target!r} but is expected to be one of {', '.join(names)} (or \"\": not read)",
                column=where,
            )
    return dict(columns)


def _privacy(pv: _Fields, source: str) -> PrivacyPolicy:
    cell = pv.num("site_cell_m")
    if cell < 50.0:
        raise PolicyError(
            source,
            f"'privacy.site_cell_m' was {cell:g} but is expected to be at least 50 (metres): a finer cell shows a home",
            column="privacy.site_cell_m",
        )
    types = pv.raw.get("personal_site_types")
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise PolicyError(source, "'privacy.personal_site_types' must be a list of site types", column="privacy")
    return PrivacyPolicy(site_cell_m=cell, personal_site_types=tuple(types))


class _Fields:
    """Typed access to a TOML table with errors naming the key."""

    def __init__(self, raw: Mapping[str, Any], source: str, at: str = "") -> None:
        self.raw, self.source, self.at = raw, source, at

    def _key(self, key: str) -> str:
        return f"{self.at}.{key}" if self.at else key

    def sub(self, key: str) -> _Fields:
        value = self.raw.get(key)
        if not isinstance(value, Mapping):
            raise PolicyError(self.source, f"table '{self._key(key)}' is missing", column=self._key(key))
        return _Fields(value, self.source, self._key(key))

    def num(self, key: str) -> float:
        value = self.raw.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise PolicyError(
                self.source,
                f"'{self._key(key)}' was {value!r} but is expected to be a number ≥ 0",
                column=self._key(key),
            )
        return float(value)

    def text(self, key: str) -> str:
        value = self.raw.get(key)
        if not isinstance(value, str):
            raise PolicyError(
                self.source, f"'{self._key(key)}' was {value!r} but is expected to be text", column=self._key(key)
            )
        return value

    def clock(self, key: str) -> time:
        value = self.text(key)
        try:
            return time.fromisoformat(value)
        except ValueError as exc:
            raise PolicyError(
                self.source, f"'{self._key(key)}' was '{value}' but is expected to be HH:MM", column=self._key(key)
            ) from exc


_T = TypeVar("_T")


def _numbers(cls: type[_T], section: _Fields, read: Callable[[_Fields, str], Any] = _Fields.num) -> _T:
    """A dataclass of ``section``'s values, one a field by the field's name, in field order.

    ``read`` reads each (numbers ≥ 0 by default; a field annotated ``int`` made int).
    """
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return cls(**{k: int(read(section, k)) if fd.type == "int" else read(section, k) for k, fd in fields.items()})


def _check_timezone(name: str, source: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PolicyError(source, f"timezone '{name}' is not a known IANA time zone", column="timezone") from exc


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
