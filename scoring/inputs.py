"""Read a month's indicator records (SPEC §2 ``indicators/YYYY-MM/``) into typed DataFrames.

The centre keeps these records in spreadsheets, so a folder may hold either one CSV file per
table (UTF-8 with or without BOM, or GBK) or one ``.xlsx`` workbook with a sheet per table.
Table, column and value names may be English (the contract) or Chinese (the centre's words);
both map onto the contract's names here, and nowhere else.

A missing table means "no records" and adds a warning; a wrong value raises
:class:`~trajectory.errors.InputError` naming the file (or sheet), the row and the column, what
was expected and what was found. Extra columns are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scoring.policy import Policy
from trajectory.errors import InputError
from trajectory.workspace import FALSE_WORDS, TRUE_WORDS, read_csv_checked

# --- vocabulary: contract value -> accepted aliases (lower-cased on lookup) ------------------
COMPLAINT_KINDS = {
    "public_complaint": ("群众投诉",),
    "inspector_complaint": ("巡查员投诉",),
    "leader_dissatisfied": ("领导评价不满意", "领导不满意"),
}
DISCIPLINE_KINDS = {
    "meeting_absent": ("未参加例会", "例会缺席", "缺席例会"),
    "board_missing": ("未设公示牌", "公示牌缺失", "未设立公示牌"),
    "badge_missing": ("未带工作证", "未佩戴工作证"),
    "confidentiality_breach": ("泄露信息", "泄密", "违反保密"),
    "training_absent": ("培训缺席", "缺席培训"),
}
INFO_CHECK_KINDS = {
    "inaccurate_record": ("信息不实", "信息不准确"),
    "not_updated": ("未更新",),
}
REVIEWS = {
    "ok": ("合格",),
    "unqualified": ("不合格",),
    "false": ("虚假",),
}
SOURCES = {
    "random_check": ("不定期抽查", "抽查"),
    "public_report": ("群众投诉举报", "群众举报"),
    "daily_patrol": ("日常巡查",),
    "center_assigned": ("中心交办", "中心下派", "协指类"),
}
CATEGORIES = {
    "public_security": ("社会治安",),
    "public_safety": ("公共安全",),
    "city_management": ("城市管理",),
    "environmental_protection": ("环境保护",),
    "livelihood_service": ("民生服务",),
    "government_agency": ("政务代办",),
    "comprehensive_management": ("综合管理",),
    "comprehensive_enforcement": ("综合执法",),
}

# --- tables: name -> Chinese names of the file or sheet --------------------------------------
TABLE_ALIASES: dict[str, tuple[str, ...]] = {
    "complaints": ("投诉",),
    "discipline": ("纪律",),
    "info_collection": ("信息采集",),
    "info_checks": ("信息核查",),
    "events": ("事项",),
    "service_records": ("服务纪录", "服务记录"),
    "inspections": ("巡查",),
}

# --- columns: name -> Chinese headers ---------------------------------------------------------
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "date": ("日期",),
    "grid_id": ("网格编号",),
    "kind": ("类型",),
    "verified": ("是否核实",),
    "count": ("次数", "条数", "数量"),
    "subcategory": ("子类",),
    "required": ("应采集",),
    "collected": ("已采集",),
    "event_id": ("事项编号",),
    "worker_id": ("网格员编号",),
    "reported_at": ("上报时间",),
    "category": ("类别",),
    "title": ("标题",),
    "description": ("描述",),
    "address": ("地址",),
    "lon": ("经度",),
    "lat": ("纬度",),
    "photos_before": ("整改前照片",),
    "photos_after": ("整改后照片",),
    "valid": ("是否有效",),
    "review": ("审核结果",),
    "shirked": ("是否推诿",),
    "source": ("来源",),
    "rectified_in_time": ("是否按时整改",),
}


@dataclass(frozen=True)
class _Col:
    """One column of an indicator table: its parser and whether it may be empty or absent."""

    name: str
    kind: str  # date | datetime | text | id | bool | count | number | enum
    values: Mapping[str, tuple[str, ...]] | None = None
    blank_ok: bool = False
    absent_default: object = None  # the value when the whole column is absent; None = required


_DATE, _GRID = _Col("date", "date"), _Col("grid_id", "id")
SCHEMA: dict[str, tuple[_Col, ...]] = {
    "complaints": (_DATE, _GRID, _Col("kind", "enum", COMPLAINT_KINDS), _Col("verified", "bool")),
    # a row without a count is one finding (the count column is optional)
    "discipline": (_DATE, _GRID, _Col("kind", "enum", DISCIPLINE_KINDS), _Col("count", "count", absent_default=1)),
    "info_collection": (_GRID, _Col("subcategory", "id"), _Col("required", "count"), _Col("collected", "count")),
    "info_checks": (_DATE, _GRID, _Col("kind", "enum", INFO_CHECK_KINDS), _Col("count", "count", absent_default=1)),
    "events": (
        _Col("event_id", "id"),
        _GRID,
        _Col("worker_id", "id", blank_ok=True),
        _Col("reported_at", "datetime"),
        _Col("category", "enum", CATEGORIES),
        _Col("title", "text", blank_ok=True),
        _Col("description", "text", blank_ok=True),
        _Col("address", "text", blank_ok=True),
        _Col("lon", "number", blank_ok=True),
        _Col("lat", "number", blank_ok=True),
        _Col("photos_before", "count", blank_ok=True),
        _Col("photos_after", "count", blank_ok=True),
        _Col("valid", "bool"),
        _Col("review", "enum", REVIEWS),
        _Col("shirked", "bool"),
    ),
    "service_records": (_DATE, _GRID, _Col("count", "count")),
    "inspections": (_DATE, _GRID, _Col("source", "enum", SOURCES), _Col("rectified_in_time", "bool")),
}
TABLES = tuple(SCHEMA)


@dataclass
class Indicators:
    """The centre's records of one month, one DataFrame per table of SPEC §2 (contract names)."""

    complaints: pd.DataFrame
    discipline: pd.DataFrame
    info_collection: pd.DataFrame
    info_checks: pd.DataFrame
    events: pd.DataFrame
    service_records: pd.DataFrame
    inspections: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls) -> Indicators:
        """No records at all (every table empty, typed)."""
        return cls(**{t: _empty_table(t) for t in TABLES})


def load_indicators(folder: Path, policy: Policy, grid_ids: Iterable[str] | None = None) -> Indicators:
    """Read ``indicators/YYYY-MM/`` (CSV files or one workbook) into :class:`Indicators`.

    Parameters
    ----------
    folder : Path
        The month's folder. Tables are ``<table>.csv`` (or the Chinese name, e.g. ``事项.csv``),
        or sheets of the single ``.xlsx`` workbook in the folder.
    policy : Policy
        Supplies the time zone of naive ``reported_at`` values.
    grid_ids : iterable of str, optional
        The workspace's grids; rows naming another grid are kept but listed in a warning.

    Returns
    -------
    Indicators
        Tables with contract column names; ``warnings`` lists missing tables, unknown grids.

    Raises
    ------
    InputError
        A value cannot be read; the message names file or sheet, row and column.

    Examples
    --------
    >>> import tempfile
    >>> from scoring.policy import load_policy
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "service_records.csv").write_text("日期,网格编号,条数\\n2026-10-01,G01,5\\n", encoding="gbk")
    >>> ind = load_indicators(d, load_policy())
    >>> int(ind.service_records["count"].sum()), len(ind.warnings)
    (5, 6)
    """
    folder = Path(folder)
    label = _folder_label(folder)
    raw, warnings = _read_raw_tables(folder, label)
    tables: dict[str, pd.DataFrame] = {}
    for table in TABLES:
        if table not in raw:
            warnings.append(
                f"{label}: table {table} ({'/'.join(TABLE_ALIASES[table])}) not found; scored as no records"
            )
            tables[table] = _empty_table(table)
            continue
        where, frame, row_offset = raw[table]
        tables[table] = _parse_table(table, frame, where, row_offset, policy.timezone)
    if grid_ids is not None:
        known = set(map(str, grid_ids))
        for table, df in tables.items():
            unknown = sorted(set(df["grid_id"]) - known)
            if unknown:
                n = int(df["grid_id"].isin(unknown).sum())
                warnings.append(f"{label}: {table}: {n} rows name unknown grids {', '.join(unknown)}; not scored")
    return Indicators(**tables, warnings=warnings)


# --- reading ------------------------------------------------------------------------------


def _folder_label(folder: Path) -> str:
    return f"indicators/{folder.name}" if folder.parent.name == "indicators" else str(folder)


def _table_lookup() -> dict[str, str]:
    names = {t: t for t in TABLES}
    names.update({alias: t for t, aliases in TABLE_ALIASES.items() for alias in aliases})
    return {k.lower(): v for k, v in names.items()}


def _read_raw_tables(folder: Path, label: str) -> tuple[dict[str, tuple[str, pd.DataFrame, int]], list[str]]:
    """Map table name -> (where, frame of strings, offset of data row 1). CSV and sheets alike."""
    warnings: list[str] = []
    if not folder.is_dir():
        return {}, [f"{label}: folder not found; every table scored as no records"]
    lookup = _table_lookup()
    found: dict[str, tuple[str, pd.DataFrame, int]] = {}
    for path in sorted(folder.glob("*.csv")):
        table = lookup.get(path.stem.strip().lower())
        where = f"{label}/{path.name}"
        if table is None:
            warnings.append(f"{where}: not a known table ({', '.join(TABLES)}); ignored")
            continue
        if table in found:
            raise InputError(where, f"table {table} is given twice (also {found[table][0]}); keep one")
        # CSV rows: the header is row 0, data rows count from 1
        found[table] = (where, _read_csv(path), 0)
    books = sorted(p for p in folder.glob("*.xlsx") if not p.name.startswith("~$"))
    if len(books) > 1:
        raise InputError(
            label, f"expected one .xlsx workbook but found {len(books)}: {', '.join(p.name for p in books)}"
        )
    for book in books:
        sheets = _read_workbook(book, f"{label}/{book.name}")
        for sheet, frame in sheets.items():
            where = f"{label}/{book.name}, sheet {sheet}"
            table = lookup.get(str(sheet).strip().lower())
            if table is None:
                warnings.append(f"{where}: not a known table ({', '.join(TABLES)}); ignored")
                continue
            if table in found:
                raise InputError(where, f"table {table} is given twice (also {found[table][0]}); keep one")
            # sheet rows are reported as Excel shows them: header on row 1, data from row 2
            found[table] = (where, frame, 1)
    return found, warnings


def _read_csv(path: Path) -> pd.DataFrame:
    if path.stat().st_size == 0:  # an empty export is no records, like a missing file
        return pd.DataFrame()
    return read_csv_checked(path, required=())


def _read_workbook(path: Path, where: str) -> dict[str, pd.DataFrame]:
    try:
        sheets = pd.read_excel(path, sheet_name=None, dtype=object, engine="openpyxl")
    except Exception as exc:  # openpyxl raises several unrelated types for a broken file
        raise InputError(where, f"is not a readable .xlsx workbook: {exc}") from exc
    return {name: frame.map(_cell_text) for name, frame in sheets.items()}


def _cell_text(value: object) -> str:
    """A workbook cell as the text a CSV would hold (dates ISO, whole floats without '.0')."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return ""
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- parsing ------------------------------------------------------------------------------


def _empty_table(table: str) -> pd.DataFrame:
    return pd.DataFrame({c.name: pd.Series(dtype=_DTYPES[c.kind]) for c in SCHEMA[table]})


_DTYPES = {
    "date": "object",
    "datetime": "datetime64[us, UTC]",
    "text": "str",
    "id": "str",
    "bool": "boolean",
    "count": "Int64",
    "number": "float64",
    "enum": "str",
}


def _header_lookup() -> dict[str, str]:
    names = {c: c for c in COLUMN_ALIASES}
    names.update({alias: c for c, aliases in COLUMN_ALIASES.items() for alias in aliases})
    return {k.lower(): v for k, v in names.items()}


def _parse_table(table: str, frame: pd.DataFrame, where: str, row_offset: int, timezone: str) -> pd.DataFrame:
    headers = _header_lookup()
    renamed = {c: headers.get(str(c).strip().lower(), str(c).strip()) for c in frame.columns}
    frame = frame.rename(columns=renamed)
    frame = frame.loc[:, ~frame.columns.duplicated()]
    frame = frame.fillna("").astype(str).apply(lambda s: s.str.strip())
    # spreadsheet users leave blank lines; a fully blank row is no record
    frame = frame[(frame != "").any(axis=1)]
    rows = frame.index.to_numpy() + 1 + row_offset
    columns = SCHEMA[table]
    missing = [c.name for c in columns if c.name not in frame.columns and c.absent_default is None]
    if missing:
        expected = ", ".join(f"{c.name} ({'/'.join(COLUMN_ALIASES.get(c.name, ()))})" for c in columns)
        raise InputError(
            where,
            f"column {', '.join(missing)} missing; expected columns {expected}; found {', '.join(map(str, frame.columns))}",
            column=missing[0],
        )
    out = {}
    for col in columns:
        if col.name not in frame.columns:
            out[col.name] = pd.Series([col.absent_default] * len(frame), dtype=_DTYPES[col.kind])
            continue
        out[col.name] = _parse_column(frame[col.name].to_numpy(dtype=object), col, where, rows, timezone)
    return pd.DataFrame(out).reset_index(drop=True)


def _fail(where: str, rows: np.ndarray, bad: np.ndarray, col: _Col, values: np.ndarray, expected: str) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        found = f"'{values[i]}'" if values[i] != "" else "empty"
        more = f" ({int(bad.sum()) - 1} more rows like it)" if bad.sum() > 1 else ""
        raise InputError(where, f"{found} is not {expected}{more}", row=int(rows[i]), column=col.name)


def _parse_column(values: np.ndarray, col: _Col, where: str, rows: np.ndarray, timezone: str) -> pd.Series:
    blank = values == ""
    if not col.blank_ok:
        _fail(where, rows, blank, col, values, f"a value: {col.name} must not be empty")
    if col.kind in ("text", "id"):
        return pd.Series(values, dtype="str").where(~blank, None if col.kind == "id" else "")
    if col.kind == "enum":
        assert col.values is not None
        lookup = {k.lower(): k for k in col.values}
        lookup.update({a.lower(): k for k, aliases in col.values.items() for a in aliases})
        mapped = pd.Series(values).str.lower().map(lookup)
        allowed = f"{', '.join(col.values)} ({', '.join(a[0] for a in col.values.values())})"
        _fail(where, rows, mapped.isna().to_numpy() & ~blank, col, values, f"one of {allowed}")
        return mapped.astype("str")
    if col.kind == "bool":
        low = pd.Series(values).str.lower()
        result = pd.Series(pd.NA, index=low.index, dtype="boolean")
        result[low.isin(TRUE_WORDS)] = True
        result[low.isin(FALSE_WORDS)] = False
        _fail(where, rows, result.isna().to_numpy() & ~blank, col, values, "true or false (1/0, yes/no, 是/否)")
        return result
    if col.kind in ("count", "number"):
        num = pd.to_numeric(pd.Series(values), errors="coerce")
        if col.kind == "number":
            _fail(where, rows, num.isna().to_numpy() & ~blank, col, values, "a number")
            return num.astype("float64")
        bad = (num.isna() | (num < 0) | (num % 1 != 0)).to_numpy() & ~blank
        _fail(where, rows, bad, col, values, "a whole number ≥ 0")
        return num.round().astype("Int64")
    if col.kind == "date":
        parsed = pd.to_datetime(pd.Series(values), errors="coerce", format="mixed")
        _fail(where, rows, parsed.isna().to_numpy() & ~blank, col, values, "a date (YYYY-MM-DD)")
        return parsed.dt.date.astype(object)
    if col.kind == "datetime":
        return _parse_datetimes(values, col, where, rows, timezone, blank)
    raise AssertionError(col.kind)


_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)


def _parse_datetimes(
    values: np.ndarray, col: _Col, where: str, rows: np.ndarray, timezone: str, blank: np.ndarray
) -> pd.Series:
    """Timestamps with an offset keep it; naive ones are local time of the workspace."""
    s = pd.Series(values)
    has_offset = s.str.contains(_OFFSET)
    result = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us, UTC]")
    if has_offset.any():
        result[has_offset] = pd.to_datetime(s[has_offset], errors="coerce", format="mixed", utc=True).astype(
            result.dtype
        )
    naive = ~has_offset & ~pd.Series(blank)
    if naive.any():
        local = pd.to_datetime(s[naive], errors="coerce", format="mixed")
        result[naive] = (
            local.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC").astype(result.dtype)
        )
    _fail(
        where,
        rows,
        result.isna().to_numpy() & ~blank,
        col,
        values,
        "a date and time (YYYY-MM-DD HH:MM, optional offset)",
    )
    return result
