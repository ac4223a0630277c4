"""Read a month's indicator records (SPEC §2 ``indicators/YYYY-MM/``) into typed DataFrames.

The centre keeps these records in spreadsheets, so a folder may hold either one CSV file per
table (UTF-8 with or without BOM, or GBK) or one ``.xlsx`` workbook with a sheet per table.
Table, column and value names may be English (the contract) or Chinese (the centre's words);
both map onto the contract's names here, and nowhere else.

A table is *missing* when it has no file and no sheet (or one without even a header line); a
file or sheet holding only its header is a month *without records*. A missing required table
(:data:`REQUIRED_TABLES`: the items scored from its counts would silently lose their points)
stops the month's scoring (:func:`check_required`) unless the user allows it (``--allow-missing``),
and then its items are 暂缺; a missing optional table is scored as no records with a warning.
A record dated outside the month of its folder is not counted and is reported with its file,
row and column. A wrong value raises :class:`~trajectory.errors.InputError` naming the file (or
sheet), the row and the column, what was expected and what was found. Extra columns are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scoring.policy import Policy
from trajectory.errors import InputError
from trajectory.workspace import FALSE_WORDS, TRUE_WORDS, quote, read_csv_checked

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

# --- which items each table scores (contract item codes) -------------------------------------
TABLE_ITEMS: dict[str, tuple[str, ...]] = {
    "complaints": ("1",),
    "discipline": ("2.1", "2.2", "2.3", "2.4"),
    "info_collection": ("3",),
    "info_checks": ("3", "4"),
    "events": ("5", "6.1a", "6.2"),
    "service_records": ("6.1b",),
    "inspections": ("7", "8"),
}
# Tables whose items are computed from what they count (3: collection rates; 6.1a: events
# against 80; 6.1b: service records against 80): without the table the grid would lose the
# item's points for records nobody delivered. The other tables only list findings that deduct:
# their absence reads as "nothing found", at worst a score too kind, and is a warning.
REQUIRED_TABLES = ("info_collection", "events", "service_records")

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
    lo: float = -float("inf")  # range of a number
    hi: float = float("inf")


# a count beyond this is a typing or export error (and would overflow the sums)
MAX_COUNT = 1_000_000_000


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
        _Col("lon", "number", blank_ok=True, lo=-180, hi=180),
        _Col("lat", "number", blank_ok=True, lo=-90, hi=90),
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
# the column holding each record's date: it must lie in the month of the folder
DATE_COLUMN = {t: "reported_at" if t == "events" else "date" for t in TABLES if t != "info_collection"}
REJECTED_COLUMNS = ("source_file", "row_number", "column", "value", "reason")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


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
    # tables with no file or sheet: distinct from a table holding no records
    missing: tuple[str, ...] = ()
    # records not counted (dated outside the month): source_file, row_number, column, value, reason
    rejected: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(REJECTED_COLUMNS)))
    source: str = ""  # the folder, as messages name it (indicators/YYYY-MM)

    @classmethod
    def empty(cls) -> Indicators:
        """No records at all (every table present and empty, typed)."""
        return cls(**{t: _empty_table(t) for t in TABLES})

    def unscored_items(self) -> dict[str, tuple[str, ...]]:
        """Item code -> the missing required tables it is scored from (暂缺 items)."""
        out: dict[str, tuple[str, ...]] = {}
        for table in REQUIRED_TABLES:
            if table in self.missing:
                for item in TABLE_ITEMS[table]:
                    out[item] = (*out.get(item, ()), table)
        return out


def table_names(names: Iterable[str], option: str = "--allow-missing") -> frozenset[str]:
    """Contract names of tables given by their English or Chinese names (``事项`` -> ``events``).

    >>> sorted(table_names(["事项", "service_records"]))
    ['events', 'service_records']
    """
    lookup = _table_lookup()
    out = set()
    for name in names:
        table = lookup.get(str(name).strip().lower())
        if table is None:
            known = ", ".join(f"{t}（{'/'.join(TABLE_ALIASES[t])}）" for t in TABLES)
            raise InputError(option, f"{quote(name)} 不是指标表 is not an indicator table; expected one of {known}")
        out.add(table)
    return frozenset(out)


def check_required(indicators: Indicators, allow_missing: Collection[str] = ()) -> None:
    """Refuse to score a month without a required table, unless the user allowed it.

    Raises
    ------
    InputError
        Naming the folder, each missing table with the items it scores, and the two ways on.
    """
    missing = [t for t in REQUIRED_TABLES if t in indicators.missing and t not in allow_missing]
    if not missing:
        return
    tables = "; ".join(f"{t}（{TABLE_ALIASES[t][0]}，计分项目 items {', '.join(TABLE_ITEMS[t])}）" for t in missing)
    files = "、".join(f"{t}.csv" for t in missing)
    none = (
        "（本月没有任何指标表 no table at all: is the folder missing?）"
        if len(indicators.missing) == len(TABLES)
        else ""
    )
    raise InputError(
        indicators.source or "indicators",
        f"缺少必需的指标表 required indicator table missing: {tables}{none}; 本月未计分 the month is not scored. "
        f"请补充 {files}（或工作簿中同名工作表；本月确无记录时放一个只有表头的文件 a file with only its header "
        f"means no records），或用 {' '.join(f'--allow-missing {t}' for t in missing)} 暂缺计分 "
        "(the items are marked 暂缺 and the total provisional)",
    )


def load_indicators(
    folder: Path, policy: Policy, grid_ids: Iterable[str] | None = None, month: str | None = None
) -> Indicators:
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
    month : str, optional
        ``YYYY-MM``; default the folder's name when it is one. Records dated outside it are
        left out of the tables, listed in ``rejected`` and in a warning per table.

    Returns
    -------
    Indicators
        Tables with contract column names; ``missing`` the tables without file or sheet;
        ``warnings`` lists missing tables, records outside the month, unknown grids.

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
    >>> int(ind.service_records["count"].sum()), len(ind.warnings), ind.missing[:2]
    (5, 6, ('complaints', 'discipline'))
    """
    folder = Path(folder)
    label = _folder_label(folder)
    if month is None and _MONTH.match(folder.name):
        month = folder.name
    raw, warnings = _read_raw_tables(folder, label)
    tables: dict[str, pd.DataFrame] = {}
    missing: list[str] = []
    rejected: list[pd.DataFrame] = []
    for table in TABLES:
        where, frame, row_offset = raw.get(table, ("", pd.DataFrame(), 0))
        if not len(frame.columns):  # no file, no sheet, or one without a header line
            missing.append(table)
            warnings.append(_missing_warning(label, table, where))
            tables[table] = _empty_table(table)
            continue
        df, rows = _parse_table(table, frame, where, row_offset, policy.timezone)
        if month is not None and table in DATE_COLUMN:
            out = _outside_month(df[DATE_COLUMN[table]], month, policy.timezone)
            if out.any():
                rejected.append(_rejected(where, rows[out], DATE_COLUMN[table], df, out, month))
                warnings.append(_rejected_warning(rejected[-1], month))
                df = df[~out].reset_index(drop=True)
        tables[table] = df
    if grid_ids is not None:
        known = set(map(str, grid_ids))
        for table, df in tables.items():
            unknown = sorted(set(df["grid_id"]) - known)
            if unknown:
                n = int(df["grid_id"].isin(unknown).sum())
                warnings.append(f"{label}: {table}: {n} rows name unknown grids {', '.join(unknown)}; not scored")
    return Indicators(
        **tables,
        warnings=warnings,
        missing=tuple(missing),
        rejected=pd.concat(rejected, ignore_index=True) if rejected else pd.DataFrame(columns=list(REJECTED_COLUMNS)),
        source=label,
    )


def _missing_warning(label: str, table: str, where: str) -> str:
    what = (
        f"{where}: 无表头 no header line (0 bytes?)"
        if where
        else f"{label}: table {table}（{'/'.join(TABLE_ALIASES[table])}）not found"
    )
    items = ", ".join(TABLE_ITEMS[table])
    if table in REQUIRED_TABLES:
        return f"{what}; 必需的表缺失 required table missing: items {items} 暂缺 (not scored, total provisional)"
    return f"{what}; 按无记录计分 scored as no records (items {items}); a file with only its header says so without this warning"


def _outside_month(values: pd.Series, month: str, timezone: str) -> np.ndarray:
    """Records whose date (local date of a time) is not in ``month``."""
    if not len(values):
        return np.zeros(0, dtype=bool)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        text = values.dt.tz_convert(timezone).dt.strftime("%Y-%m")
    else:
        text = pd.Series([d.strftime("%Y-%m") for d in values], index=values.index, dtype=object)
    return (text != month).to_numpy(dtype=bool)


def _rejected(where: str, rows: np.ndarray, column: str, df: pd.DataFrame, out: np.ndarray, month: str) -> pd.DataFrame:
    values = df.loc[out, column]
    text = (
        values.dt.strftime("%Y-%m-%d %H:%M%z") if isinstance(values.dtype, pd.DatetimeTZDtype) else values.astype(str)
    )
    return pd.DataFrame(
        {
            "source_file": where,
            "row_number": rows.astype("int64"),
            "column": column,
            "value": text.to_numpy(dtype=object),
            "reason": f"记录日期不在 {month} 月内 dated outside the month of its folder; 不计分 not counted",
        }
    )


def _rejected_warning(rejected: pd.DataFrame, month: str) -> str:
    first = rejected.iloc[0]
    more = ""
    if len(rejected) > 1:
        rows = ", ".join(map(str, rejected["row_number"].iloc[1:11]))
        more = f"（另有 {len(rejected) - 1} 行 more rows: {rows}{', …' if len(rejected) > 11 else ''}）"
    return (
        f"{first['source_file']}, row {first['row_number']}, column {first['column']}: "
        f"'{first['value']}' 不在 {month} 月内 dated outside the month of its folder; 不计分 not counted{more}"
    )


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
    return read_csv_checked(path, required=(), optional=_header_lookup())


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


def _parse_table(
    table: str, frame: pd.DataFrame, where: str, row_offset: int, timezone: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """The table in contract names and types, and each record's row number in its file or sheet."""
    headers = _header_lookup()
    renamed = {c: headers.get(str(c).strip().lower(), str(c).strip()) for c in frame.columns}
    contract = [c.name for c in SCHEMA[table]]
    for name in contract:
        given = [str(c) for c, r in renamed.items() if r == name]
        if len(given) > 1:  # 日期 and date: which holds the data?
            raise InputError(
                where, f"column {name} is given twice ({', '.join(map(quote, given))}); keep one", column=name
            )
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
            f"column {', '.join(missing)} missing; expected columns {expected}; found {', '.join(map(quote, frame.columns))}",
            column=missing[0],
        )
    out = {}
    for col in columns:
        if col.name not in frame.columns:
            out[col.name] = pd.Series([col.absent_default] * len(frame), dtype=_DTYPES[col.kind])
            continue
        out[col.name] = _parse_column(frame[col.name].to_numpy(dtype=object), col, where, rows, timezone)
    return pd.DataFrame(out).reset_index(drop=True), rows


def _fail(where: str, rows: np.ndarray, bad: np.ndarray, col: _Col, values: np.ndarray, expected: str) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        found = quote(values[i]) if values[i] != "" else "empty"
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
            bad = (num.isna() | ~np.isfinite(num) | (num < col.lo) | (num > col.hi)).to_numpy() & ~blank
            bounded = f" from {col.lo:g} to {col.hi:g}" if np.isfinite([col.lo, col.hi]).all() else ""
            _fail(where, rows, bad, col, values, f"a number{bounded}")
            return num.astype("float64")
        bad = (num.isna() | (num < 0) | (num % 1 != 0) | (num > MAX_COUNT)).to_numpy() & ~blank
        _fail(where, rows, bad, col, values, f"a whole number ≥ 0 (at most {MAX_COUNT:,})")
        return num.round().astype("Int64")
    if col.kind == "date":
        parsed = pd.to_datetime(_iso_dates(pd.Series(values)), errors="coerce", format="mixed")
        _fail(where, rows, parsed.isna().to_numpy() & ~blank, col, values, "a date (YYYY-MM-DD)")
        return parsed.dt.date.astype(object)
    if col.kind == "datetime":
        return _parse_datetimes(values, col, where, rows, timezone, blank)
    raise AssertionError(col.kind)


_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)
# a date starts with its year (1900–2099), as Chinese and ISO dates do: 2026-10-05, 2026/10/5,
# 2026.10.05, 2026年10月5日, with an optional time after it. A bare "2026" or "10/5/2026" is no
# date here (pandas would read the first as 1 January and the second in US order).
_DATE_TEXT = r"^(?P<y>(?:19|20)\d{2})[-/.年](?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})日?(?P<rest>(?:[ T]\S.*)?)$"


def _iso_dates(values: pd.Series) -> pd.Series:
    """Dates (and times) as ISO text, ``NaN`` where the text is not one.

    >>> _iso_dates(pd.Series(["2026/10/5", "2026年10月5日 08:30", "2026", "/1"])).tolist()
    ['2026-10-05', '2026-10-05 08:30', nan, nan]
    """
    p = values.astype(str).str.strip().str.extract(_DATE_TEXT)
    return p["y"] + "-" + p["m"].str.zfill(2) + "-" + p["d"].str.zfill(2) + p["rest"].fillna("")


def _parse_datetimes(
    values: np.ndarray, col: _Col, where: str, rows: np.ndarray, timezone: str, blank: np.ndarray
) -> pd.Series:
    """Timestamps with an offset keep it; naive ones are local time of the workspace."""
    s = _iso_dates(pd.Series(values)).fillna("")
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


__all__ = [
    "COMPLAINT_KINDS",
    "DISCIPLINE_KINDS",
    "INFO_CHECK_KINDS",
    "REVIEWS",
    "SOURCES",
    "CATEGORIES",
    "TABLE_ALIASES",
    "TABLE_ITEMS",
    "REQUIRED_TABLES",
    "COLUMN_ALIASES",
    "MAX_COUNT",
    "SCHEMA",
    "TABLES",
    "DATE_COLUMN",
    "REJECTED_COLUMNS",
    "Indicators",
    "table_names",
    "check_required",
    "load_indicators",
]
