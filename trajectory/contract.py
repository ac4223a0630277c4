"""The data contract of SPEC §2: table, column and value names, in one place.

Other tools read these names; they are fixed. Import them instead of typing the
strings again (STYLE lesson 2).
"""

from __future__ import annotations

# --- output tables in patrol.duckdb -------------------------------------------------
GPS_POINT = "gps_point"
QUARANTINE = "quarantine"
WORKER_DAY = "worker_day"
WORKER_WEEK = "worker_week"
SITE_CHECK = "site_check"
GRID_MONTH_SCORE = "grid_month_score"
DEDUCTION = "deduction"
# tables of ours (not in the contract, free to evolve)
INGEST_MANIFEST = "ingest_manifest"
PATROL_FINDING = "patrol_finding"  # item 2.5 findings consumed by scoring
DAY_FLAG = "day_flag"
SITE_VISIT = "site_visit"  # each detected visit (stay within a site's radius)  # anomaly flags per worker-day (evidence, not deductions)
RUN_LOG = "run_log"

# --- columns ------------------------------------------------------------------------
GPS_POINT_COLUMNS = ("worker_id", "ts", "lon", "lat")
GPS_OPTIONAL_COLUMNS = ("accuracy_m", "speed_mps", "mock", "device_id")
QUARANTINE_COLUMNS = ("source_file", "row_number", "reason")
# quarantine.reason: one of these, possibly followed by detail ("missing column lat",
# "malformed CSV line (too many columns)", "ts before 2000-01-01 (read as epoch seconds)");
# row 0 stands for a whole file (docs/ingest.md)
REASON_UNREADABLE_FILE = "unreadable file"
REASON_FILE_REJECTED = "file rejected"  # row 0: the header has no column for a required one
REASON_LINE_TOO_LONG = "line too long"
REASON_CONFLICTING_DUPLICATE = "conflicting_duplicate"  # (worker_id, ts) stored with other coordinates
QUARANTINE_REASONS = (
    REASON_UNREADABLE_FILE,
    REASON_FILE_REJECTED,
    REASON_LINE_TOO_LONG,
    "malformed CSV line",
    "malformed JSON line",
    "missing column",
    "missing worker_id",
    "unknown worker (not in workers.csv)",
    "missing ts",
    "unparseable ts",
    "missing lon",
    "non-numeric lon",
    "missing lat",
    "non-numeric lat",
    "lon outside [-180, 180]",
    "lat outside [-90, 90]",
    "null island (0, 0)",
    "ts before 2000-01-01",
    "ts more than 1 day after the run",
    REASON_CONFLICTING_DUPLICATE,
)
WORKER_DAY_COLUMNS = (
    "worker_id",
    "grid_id",
    "date",
    "workday",
    "exempt",
    "patrol_s",
    "patrol_m",
    "am_s",
    "pm_s",
    "status",
)
WORKER_WEEK_COLUMNS = (
    "worker_id",
    "grid_id",
    "week_start",
    "patrol_s",
    "patrol_m",
    "required_s",
    "required_m",
    "meets_time",
    "meets_distance",
)
SITE_CHECK_COLUMNS = ("site_id", "site_type", "grid_id", "period_start", "period_end", "visited")
GRID_MONTH_SCORE_COLUMNS = ("grid_id", "month", "item_code", "max_score", "score")
DEDUCTION_COLUMNS = ("grid_id", "month", "item_code", "reason", "count", "points", "evidence")
# item 2.5 findings, from the trajectory engine to scoring (our table, not the contract's)
PATROL_FINDING_COLUMNS = (
    "grid_id",
    "worker_id",
    "month",
    "kind",
    "period_start",
    "period_end",
    "site_id",
    "site_type",
    "points",
    "evidence",
)

# --- input files' columns -------------------------------------------------------------
GRID_PROPERTIES = ("grid_id", "grid_name", "grid_type")
WORKERS_COLUMNS = ("worker_id", "worker_name", "grid_id", "full_time")
SITES_COLUMNS = ("site_id", "site_type", "grid_id", "lon", "lat")
SITES_OPTIONAL_COLUMNS = ("radius_m", "label")
LEAVE_COLUMNS = ("worker_id", "start_date", "end_date", "filed_date", "reason")
CALENDAR_COLUMNS = ("date", "workday")

# --- values ---------------------------------------------------------------------------
STATUS_OK = "ok"
STATUS_SHORT = "short"
STATUS_ABSENT = "absent"
STATUS_EXEMPT = "exempt"
STATUS_OFF = "off"
STATUSES = (STATUS_OK, STATUS_SHORT, STATUS_ABSENT, STATUS_EXEMPT, STATUS_OFF)

GRID_COMMUNITY = "community"
GRID_VILLAGE = "village"
# the seed's words for grid types (社区 / 村) map onto the contract's
GRID_TYPE_ALIASES = {
    "community": GRID_COMMUNITY,
    "社区": GRID_COMMUNITY,
    "village": GRID_VILLAGE,
    "村": GRID_VILLAGE,
}

SITE_KEY_PERSON = "key_person"
SITE_SPECIAL_GROUP = "special_group"
SITE_CARE_SUBJECT = "care_subject"
SITE_HAZARD = "hazard_site"
SITE_TYPES = (SITE_KEY_PERSON, SITE_SPECIAL_GROUP, SITE_CARE_SUBJECT, SITE_HAZARD)
# Personal sites (PIPL): shown only by code in maps and exports, never by label.
PERSONAL_SITE_TYPES = (SITE_KEY_PERSON, SITE_SPECIAL_GROUP, SITE_CARE_SUBJECT)

# what users read (maps, workbook, CLI): the same Chinese words everywhere
STATUS_ZH = {
    STATUS_OK: "达标",
    STATUS_SHORT: "巡查不足",
    STATUS_ABSENT: "未巡查",
    STATUS_EXEMPT: "免考核",
    STATUS_OFF: "非工作日",
}
GRID_TYPE_ZH = {GRID_COMMUNITY: "社区", GRID_VILLAGE: "村"}
SITE_TYPE_ZH = {
    SITE_KEY_PERSON: "重点人员",
    SITE_SPECIAL_GROUP: "特殊人群",
    SITE_CARE_SUBJECT: "关爱对象",
    SITE_HAZARD: "重大安全隐患场所",
}

GPS_CRS_CHOICES = ("wgs84", "gcj02", "bd09", "cgcs2000")

# item codes of SPEC §1, in table order
ITEM_CODES = (
    "1",
    "2.1",
    "2.2",
    "2.3",
    "2.4",
    "2.5",
    "3",
    "4",
    "5",
    "6.1a",
    "6.1b",
    "6.2",
    "7",
    "8",
)
ITEM_TOTAL = "total"
ITEM_PATROL = "2.5"
