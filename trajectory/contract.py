"""The data contract of SPEC §2: table, column and value names, in one place.

Other tools read these names; they are fixed. Import them instead of typing the
strings again (STYLE lesson 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pyarrow is imported where a schema is built (this module stays light)
    import pyarrow as pa

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
POINT_USE = "point_use"  # Parquet-backed view: every point of a processed day with its verdict
# the store's bookkeeping (our own tables)
INGEST_ALIAS = "ingest_alias"  # a file re-delivered under another name, recorded once
PENDING_WORK = "pending_work"  # work a run planned and has not finished yet
MONTH_REQUEST = "month_request"  # the journal of month scoring asked for, one row per month
MONTH_STEP = "month_step"  # the inputs (policy, sites) each month's step last ran with, one row per month

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

# the engine's outputs beyond the contract (ours): point_use, site_visit, day_flag and the
# columns worker_day carries besides WORKER_DAY_COLUMNS (added to the table on first write)
POINT_USE_COLUMNS = ("worker_id", "grid_id", "ts", "lon", "lat", "date", "counted", "reason", "in_grid")
SITE_VISIT_COLUMNS = ("worker_id", "grid_id", "site_id", "site_type", "date", "start_ts", "end_ts", "duration_s")
DAY_FLAG_COLUMNS = ("worker_id", "grid_id", "date", "flag", "detail")
MONTH_REQUEST_COLUMNS = (
    "month",
    "state",
    "requested_run",
    "requested_at",
    "last_run",
    "updated_at",
    "done_run",
    "done_at",
    "message",
    "allow_missing",
)
# worker_day's point counts (BIGINT): points seen, counted, and dropped by reason
WORKER_DAY_COUNTS = (
    "points_total",
    "points_used",
    "dropped_duplicate",
    "dropped_accuracy",
    "dropped_mock",
    "dropped_spike",
    "dropped_vehicle",
    "dropped_outside",
)
WORKER_DAY_EXTRA = (
    "grid_type",
    "required_s",
    "required_m",
    *WORKER_DAY_COUNTS,
    "gap_s",
    "max_speed_kmh",
    "leave_filed_late",
    "exempt_reason",
    "leave_note",
    "short_reasons",
    "noise_m",
    "stationary_s",
    "stationary_uncounted_s",
    "longest_stationary_s",
    "track_signature",
    "track_duration_s",
    "track_spread_m",
    "flags",
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


# --- the schema: one type per column name, one column list per table --------------------------
# The store's DDL (store.TABLE_DDL), the Parquet views' empty placeholder, the Arrow schemas
# (ingest's Parquet parts, Spark's union schema) are all derived from here (docs/ARCHITECTURE.md
# "One schema source"). A column name has one type in every table that has it.
_V, _B, _F, _T, _D, _TS = "VARCHAR", "BIGINT", "DOUBLE", "BOOLEAN", "DATE", "TIMESTAMPTZ"
_COLUMN_TYPES: Mapping[str, str] = MappingProxyType(
    {
        **dict.fromkeys(
            (
                "worker_id",
                "grid_id",
                "site_id",
                "site_type",
                "status",
                "reason",
                "month",
                "item_code",
                "evidence",
                "kind",
                "flag",
                "detail",
                "device_id",
                "file_hash",
                "source_file",
                "raw",
                "ingested_run",
                "file_name",
                "file_format",
                "dates",
                "error",
                "first_seen_run",
                "key",
                "run_id",
                "state",
                "requested_run",
                "last_run",
                "done_run",
                "message",
                "allow_missing",
                "command",
                "days_recomputed",
                "months_scored",
                "warnings",
                "policy_hash",
                "outcome",
                "grid_type",
                "exempt_reason",
                "leave_note",
                "short_reasons",
                "track_signature",
                "flags",
                "inputs_hash",
            ),  # fmt: skip
            _V,
        ),
        **dict.fromkeys(
            (
                "row_number",
                "file_size",
                "file_mtime_ns",
                "rows_read",
                "rows_accepted",
                "rows_duplicate",
                "rows_quarantined",
                "files",
                *WORKER_DAY_COUNTS,
            ),  # fmt: skip
            _B,
        ),
        **dict.fromkeys(
            (
                "lon",
                "lat",
                "accuracy_m",
                "speed_mps",
                "patrol_s",
                "patrol_m",
                "am_s",
                "pm_s",
                "required_s",
                "required_m",
                "max_score",
                "score",
                "count",
                "points",
                "duration_s",
                "gap_s",
                "max_speed_kmh",
                "noise_m",
                "stationary_s",
                "stationary_uncounted_s",
                "longest_stationary_s",
                "track_duration_s",
                "track_spread_m",
            ),  # fmt: skip
            _F,
        ),
        **dict.fromkeys(
            (
                "mock",
                "workday",
                "exempt",
                "meets_time",
                "meets_distance",
                "visited",
                "counted",
                "in_grid",
                "leave_filed_late",
            ),  # fmt: skip
            _T,
        ),
        **dict.fromkeys(("date", "week_start", "period_start", "period_end"), _D),
        **dict.fromkeys(
            (
                "ts",
                "start_ts",
                "end_ts",
                "ingested_at",
                "first_seen_at",
                "added_at",
                "requested_at",
                "updated_at",
                "done_at",
                "started_at",
                "ended_at",
            ),  # fmt: skip
            _TS,
        ),
    }
)


@dataclass(frozen=True)
class Column:
    """One column: its name and its DuckDB type (``VARCHAR``, ``BIGINT``, ``DOUBLE``, ...)."""

    name: str
    type: str
    primary_key: bool = False


@dataclass(frozen=True)
class TableSchema:
    """A table's columns in order.

    ``extra``: columns the producer adds on first write (typed, not in the DDL).
    ``partition``: for a Parquet-backed view, the hive partition column (in the view, not in
    the files; the view lists it last).
    """

    name: str
    columns: tuple[Column, ...]
    extra: tuple[Column, ...] = ()
    partition: str | None = None

    def names(self, *, extra: bool = False) -> tuple[str, ...]:
        return tuple(col.name for col in (*self.columns, *(self.extra if extra else ())))


def _table(
    name: str, columns: tuple[str, ...], *, extra: tuple[str, ...] = (), partition: str | None = None, key: str = ""
) -> TableSchema:
    def cols(names: tuple[str, ...]) -> tuple[Column, ...]:
        return tuple(Column(n, _COLUMN_TYPES[n], primary_key=n == key) for n in names)

    return TableSchema(name, cols(columns), cols(extra), partition)


SCHEMAS: Mapping[str, TableSchema] = MappingProxyType(
    {
        t.name: t
        for t in (
            _table(GPS_POINT, (*GPS_POINT_COLUMNS, *GPS_OPTIONAL_COLUMNS, "file_hash", "date"), partition="date"),
            _table(POINT_USE, POINT_USE_COLUMNS, partition="date"),
            _table(QUARANTINE, (*QUARANTINE_COLUMNS, "raw", "file_hash", "ingested_run")),
            _table(
                INGEST_MANIFEST,
                (
                    "file_hash",
                    "file_name",
                    "file_size",
                    "file_format",
                    "rows_read",
                    "rows_accepted",
                    "rows_duplicate",
                    "rows_quarantined",
                    "dates",
                    "ingested_run",
                    "ingested_at",
                    "error",
                    "file_mtime_ns",
                ),  # fmt: skip
                key="file_hash",
            ),
            _table(INGEST_ALIAS, ("file_hash", "file_name", "first_seen_run", "first_seen_at")),
            _table(WORKER_DAY, WORKER_DAY_COLUMNS, extra=WORKER_DAY_EXTRA),
            _table(WORKER_WEEK, (*WORKER_WEEK_COLUMNS, "month")),
            _table(SITE_CHECK, (*SITE_CHECK_COLUMNS, "month")),
            _table(GRID_MONTH_SCORE, GRID_MONTH_SCORE_COLUMNS),
            _table(DEDUCTION, DEDUCTION_COLUMNS),
            _table(SITE_VISIT, SITE_VISIT_COLUMNS),
            _table(DAY_FLAG, DAY_FLAG_COLUMNS),
            _table(PATROL_FINDING, PATROL_FINDING_COLUMNS),
            _table(PENDING_WORK, ("kind", "key", "run_id", "added_at")),
            _table(MONTH_REQUEST, MONTH_REQUEST_COLUMNS),
            _table(MONTH_STEP, ("month", "inputs_hash", "run_id")),
            _table(
                RUN_LOG,
                (
                    "run_id",
                    "started_at",
                    "ended_at",
                    "command",
                    "files",
                    "rows_accepted",
                    "rows_duplicate",
                    "rows_quarantined",
                    "days_recomputed",
                    "months_scored",
                    "warnings",
                    "policy_hash",
                    "outcome",
                    "message",
                ),  # fmt: skip
            ),
        )
    }
)
# the tables patrol.duckdb holds (the others are views over Parquet files)
DUCKDB_TABLES = tuple(name for name, t in SCHEMAS.items() if t.partition is None)


def ddl(table: str) -> str:
    """The column list of ``CREATE TABLE table (...)``: ``name TYPE [PRIMARY KEY], ...``.

    >>> ddl(DAY_FLAG)
    'worker_id VARCHAR, grid_id VARCHAR, date DATE, flag VARCHAR, detail VARCHAR'
    """
    return ", ".join(
        f"{col.name} {col.type}{' PRIMARY KEY' if col.primary_key else ''}" for col in SCHEMAS[table].columns
    )


def empty_select(table: str) -> str:
    """A query with the columns and types of a Parquet-backed view and no row (no files yet).

    The files' columns come first, the partition column last, as ``read_parquet`` with
    ``hive_partitioning`` lists them.
    """
    t = SCHEMAS[table]
    cols = [col for col in t.columns if col.name != t.partition]
    cols += [col for col in t.columns if col.name == t.partition]
    return "SELECT " + ", ".join(f"NULL::{col.type} AS {col.name}" for col in cols) + " WHERE false"


def arrow_type(duckdb_type: str) -> pa.DataType:
    """The Arrow type a column of this DuckDB type is written with (timestamps: µs, UTC)."""
    import pyarrow as pa

    types = {
        _V: pa.string(),
        _B: pa.int64(),
        _F: pa.float64(),
        _T: pa.bool_(),
        _D: pa.date32(),
        _TS: pa.timestamp("us", tz="UTC"),
    }
    return types[duckdb_type]


def arrow_types(*tables: str, extra: bool = True) -> dict[str, pa.DataType]:
    """Column name -> Arrow type over ``tables`` (first appearance orders; one type per name)."""
    out: dict[str, pa.DataType] = {}
    for table in tables:
        t = SCHEMAS[table]
        for col in (*t.columns, *(t.extra if extra else ())):
            out.setdefault(col.name, arrow_type(col.type))
    return out


def arrow_schema(table: str, *, extra: bool = False) -> pa.Schema:
    """The Arrow schema of a table's rows; for a Parquet-backed view, of its files (no partition column).

    ``contract.arrow_schema(GPS_POINT)`` is the schema of the parts under ``store/gps/date=D/``.
    """
    import pyarrow as pa

    t = SCHEMAS[table]
    cols = [col for col in (*t.columns, *(t.extra if extra else ())) if col.name != t.partition]
    return pa.schema([pa.field(col.name, arrow_type(col.type)) for col in cols])
