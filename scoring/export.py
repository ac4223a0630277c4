"""Store a month's scores in ``patrol.duckdb`` and write the monthly workbook, CSV and Parquet.

``score_and_store`` is the month-end step of ``trajectory.run --month``: it loads the month's
indicator records, reads the engine's item-2.5 findings, scores, and replaces the month's rows
of ``grid_month_score``, ``deduction`` and our own tables in one transaction.

``python -m scoring.export --workspace DIR --month YYYY-MM`` reads those tables (read-only) and
writes ``out/YYYY-MM/考核得分_YYYY-MM.xlsx`` plus ``grid_month_score``, ``deduction`` and
``event_flag`` as CSV (UTF-8 with BOM, so Excel shows the Chinese) and Parquet. Re-running on
the same store writes byte-identical files. Personal sites (key persons, special groups, care
subjects) appear only by their code; labels, names and addresses never reach an export.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import unicodedata
import uuid
import zipfile
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.pagebreak import Break
from openpyxl.worksheet.properties import PageSetupProperties
from openpyxl.worksheet.worksheet import Worksheet

from scoring.inputs import TABLE_ALIASES, TABLE_ITEMS, check_required, load_indicators, table_names
from scoring.policy import Policy
from scoring.quality import FLAG_COLUMNS, FLAG_LABELS, event_quality_flags
from scoring.rules import CATEGORY_REPORT_COLUMNS, DEDUCTION_ALL_COLUMNS, SCORE_COLUMNS, ScoreResult, score_month
from trajectory import contract as c
from trajectory import store
from trajectory.errors import GridpatrolError, InputError
from trajectory.store import connect, workspace_lock, write_parquet_atomic
from trajectory.workspace import load_workspace

log = logging.getLogger(__name__)

# our own tables (not in the contract), replaced per month with the scores
EVENT_FLAG = "event_flag"
EVENT_CATEGORY = "event_category_report"
SCORE_NOTE = "score_note"
MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
SCORE_FORMAT = "0.0"

_TEXT, _NUM = "VARCHAR", "DOUBLE"
_DDL = {
    c.GRID_MONTH_SCORE: {
        "item_name": _TEXT,
        "category": _TEXT,
        "rank": "BIGINT",
        "policy_hash": _TEXT,
        "missing_tables": _TEXT,
    },
    c.DEDUCTION: {"worker_id": _TEXT, "kind": _TEXT},
    EVENT_FLAG: {"month": _TEXT, **{col: _TEXT for col in FLAG_COLUMNS}},
    EVENT_CATEGORY: {
        **{col: _TEXT for col in CATEGORY_REPORT_COLUMNS},
        "minimum": _NUM,
        "reported": _NUM,
        "short": _NUM,
    },
    SCORE_NOTE: {"month": _TEXT, "message": _TEXT},
}


def workbook_name(month: str) -> str:
    """``考核得分_YYYY-MM.xlsx``."""
    return f"考核得分_{month}.xlsx"


# --- scoring into the store ------------------------------------------------------------------


def score_and_store(
    ws: Any,
    con: duckdb.DuckDBPyConnection,
    month: str,
    *,
    allow_missing: Collection[str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> ScoreResult:
    """Score ``month`` for every grid of the workspace and replace its rows in the store.

    Parameters
    ----------
    ws : trajectory.workspace.Workspace
        Supplies ``paths.indicators(month)``, ``policy``, ``grids``, ``workers``, ``allow_missing``.
    con : duckdb connection
        Open read-write on the workspace's ``patrol.duckdb``.
    month : str
        ``YYYY-MM``.
    allow_missing : collection of str, optional
        Required tables the month may lack (default ``ws.allow_missing``, from ``--allow-missing``).
        Tables allowed when the month was last scored stay allowed while they are still missing,
        so a later night's re-scoring (late GPS uploads) does not stop on them.
    warn : callable, optional
        Receives each warning (default: the log, which the nightly run shows on the console).

    Returns
    -------
    ScoreResult
        With the indicators' warnings first.

    Raises
    ------
    InputError
        A required table is missing and not allowed (``scoring.inputs.check_required``).
    """
    _check_month(month)
    grids = pd.DataFrame(ws.grids[list(c.GRID_PROPERTIES)])
    ind = load_indicators(ws.paths.indicators(month), ws.policy, grids["grid_id"], month)
    allowed = set(getattr(ws, "allow_missing", ()) if allow_missing is None else table_names(allow_missing))
    inherited = sorted(_allowed_before(con, month) & set(ind.missing) - allowed)
    check_required(ind, allowed | set(inherited))
    for table in inherited:
        ind.warnings.append(
            f"{ind.source}: table {table}（{TABLE_ALIASES[table][0]}）仍缺失 still missing; 沿用本月上次计分时的 "
            f"--allow-missing {table} (allowed when {month} was last scored): items {', '.join(TABLE_ITEMS[table])} 暂缺"
        )
    findings = _read_month(con, c.PATROL_FINDING, month)
    points = _track_points(con, ind.events, ws.policy)
    flags = event_quality_flags(
        ind.events[ind.events["grid_id"].isin(grids["grid_id"])], ws.grids, points, ws.workers, ws.policy
    )
    result = score_month(month, grids, ind, findings, ws.policy, flags)
    result.warnings[:0] = ind.warnings
    for w in result.warnings:
        (warn or log.warning)(w)
    notes = pd.DataFrame({"month": month, "message": pd.Series(result.warnings, dtype="str")})
    tables = {
        c.GRID_MONTH_SCORE: result.grid_month_score,
        c.DEDUCTION: result.deduction,
        EVENT_FLAG: flags.assign(month=month),
        EVENT_CATEGORY: result.category_report,
        SCORE_NOTE: notes,
    }
    _replace_month(con, month, tables)
    return result


def _allowed_before(con: duckdb.DuckDBPyConnection, month: str) -> set[str]:
    """The tables the month's stored scores were allowed to miss (its total rows' ``missing_tables``)."""
    if "missing_tables" not in _table_columns(con, c.GRID_MONTH_SCORE):
        return set()
    rows = con.execute(
        f"SELECT DISTINCT missing_tables FROM {c.GRID_MONTH_SCORE} WHERE month = ? AND item_code = ?",
        [month, c.ITEM_TOTAL],
    ).fetchall()
    return {t for (text,) in rows if text for t in str(text).split(",") if t}


def _table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position", [table]
    ).fetchall()
    return [r[0] for r in rows]


def _read_month(con: duckdb.DuckDBPyConnection, table: str, month: str) -> pd.DataFrame:
    """The month's rows of ``table``; an empty frame when the table (or its month column) is missing."""
    cols = _table_columns(con, table)
    if not cols:
        return pd.DataFrame()
    if "month" not in cols:
        return pd.DataFrame(columns=cols)
    return con.execute(f"SELECT * FROM {table} WHERE month = ?", [month]).df()


def _track_points(con: duckdb.DuckDBPyConnection, events: pd.DataFrame, policy: Policy) -> pd.DataFrame | None:
    """GPS points of each event's worker within ±track window of the report (None without a store)."""
    if not _table_columns(con, c.GPS_POINT):
        return None
    window = pd.Timedelta(minutes=policy.events.quality_checks.track_window_min)
    e = events[events["worker_id"].notna() & events["reported_at"].notna()]
    probe = pd.DataFrame(
        {"worker_id": e["worker_id"].astype(str), "lo": e["reported_at"] - window, "hi": e["reported_at"] + window}
    )
    con.register("_event_windows", probe)
    try:
        return con.execute(
            f"""SELECT DISTINCT p.worker_id, p.ts, p.lon, p.lat FROM {c.GPS_POINT} p
                JOIN _event_windows w ON p.worker_id = w.worker_id AND p.ts BETWEEN w.lo AND w.hi"""
        ).df()
    finally:
        con.unregister("_event_windows")


def _replace_month(con: duckdb.DuckDBPyConnection, month: str, tables: dict[str, pd.DataFrame]) -> None:
    """Replace the month's rows of every table, all in ONE transaction."""
    with store.transaction(con):
        for table, df in tables.items():
            store.replace_rows(con, table, df, "month = ?", [month], own_transaction=False, types=_DDL.get(table))


# --- reading the store back ------------------------------------------------------------------


def read_scores(con: duckdb.DuckDBPyConnection, month: str, policy: Policy) -> dict[str, pd.DataFrame]:
    """The month's stored tables; columns missing from an older store are filled in."""
    scores = _read_month(con, c.GRID_MONTH_SCORE, month)
    if not len(scores):
        raise GridpatrolError(
            f"no scores for {month} in patrol.duckdb; run `python -m scoring.export --score` "
            f"or `python -m trajectory.run --month {month}` first"
        )
    names = {code: policy.items[code].name for code in c.ITEM_CODES} | {c.ITEM_TOTAL: "总分"}
    if "item_name" not in scores:
        scores["item_name"] = scores["item_code"].map(names)
    if "category" not in scores:
        scores["category"] = scores["item_code"].map({k: policy.items[k].category for k in c.ITEM_CODES}).fillna("")
    if "rank" not in scores:
        total = scores["item_code"] == c.ITEM_TOTAL
        scores["rank"] = scores["score"].where(total).rank(method="min", ascending=False).astype("Int64")
    if "policy_hash" not in scores:
        scores["policy_hash"] = ""
    if "missing_tables" not in scores:
        scores["missing_tables"] = ""
    scores["missing_tables"] = scores["missing_tables"].fillna("").astype(str)
    deductions = _read_month(con, c.DEDUCTION, month).reindex(columns=DEDUCTION_ALL_COLUMNS)
    flags = _read_month(con, EVENT_FLAG, month).reindex(columns=list(FLAG_COLUMNS))
    categories = _read_month(con, EVENT_CATEGORY, month).reindex(columns=list(CATEGORY_REPORT_COLUMNS))
    notes = _read_month(con, SCORE_NOTE, month).reindex(columns=["message"])
    worker_day = _worker_days(con, month)
    return {
        "scores": scores.reindex(columns=SCORE_COLUMNS),
        "deductions": deductions,
        "flags": flags,
        "categories": categories,
        "notes": notes,
        "worker_day_summary": summarize_worker_days(worker_day),
    }


def _worker_days(con: duckdb.DuckDBPyConnection, month: str) -> pd.DataFrame:
    cols = _table_columns(con, c.WORKER_DAY)
    if not cols:
        return pd.DataFrame(columns=list(c.WORKER_DAY_COLUMNS))
    return con.execute(f"SELECT * FROM {c.WORKER_DAY} WHERE strftime(date, '%Y-%m') = ?", [month]).df()


def summarize_worker_days(worker_day: pd.DataFrame) -> pd.DataFrame:
    """One row per worker: days by status, patrol hours and kilometres of the month.

    Examples
    --------
    >>> wd = pd.DataFrame({"worker_id": ["W1", "W1"], "grid_id": ["G1", "G1"], "status": ["ok", "absent"],
    ...                    "patrol_s": [10800.0, 0.0], "patrol_m": [1500.0, 0.0], "workday": [True, True]})
    >>> summarize_worker_days(wd)[["worker_id", "ok", "absent", "patrol_h", "patrol_km"]].to_dict("records")
    [{'worker_id': 'W1', 'ok': 1, 'absent': 1, 'patrol_h': 3.0, 'patrol_km': 1.5}]
    """
    statuses = list(c.STATUSES)
    base = ["worker_id", "grid_id", "workdays", *statuses, "patrol_h", "patrol_km"]
    if not len(worker_day):
        return pd.DataFrame(columns=base)
    wd = worker_day.assign(workday=worker_day["workday"].astype(bool))
    counts = pd.crosstab([wd["worker_id"], wd["grid_id"]], wd["status"]).reindex(columns=statuses, fill_value=0)
    sums = wd.groupby(["worker_id", "grid_id"]).agg(
        workdays=("workday", "sum"), patrol_s=("patrol_s", "sum"), patrol_m=("patrol_m", "sum")
    )
    out = sums.join(counts).reset_index()
    out["patrol_h"] = (out["patrol_s"] / 3600.0).round(2)
    out["patrol_km"] = (out["patrol_m"] / 1000.0).round(2)
    out["workdays"] = out["workdays"].astype(int)
    return out[base].sort_values(["grid_id", "worker_id"]).reset_index(drop=True)


# --- files -----------------------------------------------------------------------------------


def export_month(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    month: str,
    grids: pd.DataFrame,
    policy: Policy,
    source: str = "patrol.duckdb",
    *,
    root: Path | None = None,
    prepared_on: date | None = None,
) -> list[Path]:
    """Write the workbook and the CSV/Parquet tables of ``month`` from the store into ``out_dir``.

    ``root`` (the workspace) and ``prepared_on`` (制表日期, default the month's last day) are
    passed to ``write_workbook``. Returns the paths written.
    """
    _check_month(month)
    data = read_scores(con, month, policy)
    out_dir.mkdir(parents=True, exist_ok=True)
    notes = list(data["notes"]["message"].dropna())
    stored_hash = set(data["scores"]["policy_hash"].dropna()) - {""}
    if stored_hash and stored_hash != {policy.hash}:
        notes.insert(
            0,
            f"得分按策略 {', '.join(sorted(stored_hash))} 计算，与当前策略 {policy.hash} 不同；如需更新请重新计分（--score）",
        )
    book = out_dir / workbook_name(month)
    write_workbook(
        book,
        month,
        data["scores"],
        data["deductions"],
        grids,
        data["worker_day_summary"],
        data["flags"],
        policy,
        category_report=data["categories"],
        notes=notes,
        source=source,
        root=root,
        prepared_on=prepared_on,
    )
    written = [book]
    for name, df in (
        (c.GRID_MONTH_SCORE, data["scores"]),
        (c.DEDUCTION, data["deductions"]),
        (EVENT_FLAG, data["flags"]),
    ):
        written += write_table(df, out_dir, name)
    return written


# a spreadsheet reads a cell starting with one of these as a formula (OWASP CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula, prefixed with ``'`` (numbers untouched).

    Examples
    --------
    >>> df = pd.DataFrame({"a": ["=HYPERLINK(1)", "ok", "+86 call", "@x"], "b": [-1.0, 2.0, 3.0, 4.0]})
    >>> neutralise_formulas(df).to_dict("list")
    {'a': ["'=HYPERLINK(1)", 'ok', "'+86 call", "'@x"], 'b': [-1.0, 2.0, 3.0, 4.0]}
    """
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype != object and not pd.api.types.is_string_dtype(s):
            continue
        text = s.astype("string")
        risky = text.str.startswith(_FORMULA_START).fillna(False).astype(bool)
        if risky.any():
            out[col] = s.where(~risky, "'" + text)
    return out


def write_table(df: pd.DataFrame, out_dir: Path, name: str) -> list[Path]:
    """``name.csv`` (UTF-8 with BOM, formulas neutralised) and ``name.parquet`` (values as they
    are: a typed store, not a spreadsheet), each replaced atomically."""
    csv_path, pq_path = out_dir / f"{name}.csv", out_dir / f"{name}.parquet"
    csv_text = neutralise_formulas(df).to_csv(index=False, lineterminator="\n")
    _atomic_write(csv_path, csv_text.encode("utf-8-sig"))
    plain = df.astype({col: "object" for col in df.columns if df[col].dtype == object})
    write_parquet_atomic(pa.Table.from_pandas(plain, preserve_index=False), pq_path)
    return [csv_path, pq_path]


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_workbook(
    path: Path,
    month: str,
    scores: pd.DataFrame,
    deductions: pd.DataFrame,
    grids: pd.DataFrame,
    worker_day_summary: pd.DataFrame,
    event_flags: pd.DataFrame,
    policy: Policy,
    *,
    category_report: pd.DataFrame | None = None,
    notes: Sequence[str] = (),
    source: str = "patrol.duckdb",
    root: Path | None = None,
    prepared_on: date | None = None,
) -> Path:
    """Write the month's score workbook (openpyxl), ready to print and sign. Same inputs give a
    byte-identical file.

    Sheets: 汇总 (ranking), 考核表 (the centre's table, one column per grid, in blocks of
    ``GRIDS_PER_PAGE`` grids), one sheet per grid (its items and every deduction with evidence),
    巡查统计 (worker days), 事项质量提示 (event flags), 说明 (month, policy hash, source, how to
    read). Every sheet has a title row (``policy.export.unit`` and the month), 制表日期, the
    制表/审核 signature line at the bottom and an A4-landscape, one-page-wide page setup.

    Parameters
    ----------
    root : Path, optional
        The workspace folder: paths in 说明 are shown relative to it (others by file name only).
    prepared_on : date, optional
        The 制表日期 printed under the title; default the month's last day (the scoring date of
        the month), so that re-runs stay byte-identical.
    """
    grids = pd.DataFrame(grids)[list(c.GRID_PROPERTIES)].astype(str)
    wide = _wide_scores(scores)
    order = scores[scores["item_code"] == c.ITEM_TOTAL].sort_values(["rank", "grid_id"])["grid_id"].tolist()
    info = grids.set_index("grid_id")
    page = _Page(policy, month, prepared_on or month_end(month))
    wb = Workbook()
    ws = wb.active
    ws.title = "汇总"
    headers = [
        "排名",
        "网格编号",
        "网格名称",
        "类型",
        *(f"{item_label(code, policy, sep=chr(10))}\n({policy.items[code].max_score:g}分)" for code in c.ITEM_CODES),
        "总分",
    ]
    missing = _missing_items(scores)
    codes = (*c.ITEM_CODES, c.ITEM_TOTAL)
    rows = []
    for gid in order:
        rank = scores.loc[(scores["grid_id"] == gid) & (scores["item_code"] == c.ITEM_TOTAL), "rank"].iloc[0]
        name, kind = _grid_info(info, gid)
        rows.append([_int(rank), gid, name, kind, *(_shown(wide, missing, gid, code) for code in codes)])
    _block(ws, _HEAD, headers, rows, decimal_cols=range(5, 5 + len(c.ITEM_CODES) + 1))
    for i, gid in enumerate(order):
        for k, code in enumerate(codes):
            _mark_missing(ws.cell(_HEAD + 1 + i, 5 + k), code, missing.get((gid, code)))
    subject = "得分汇总（暂定）" if missing else "得分汇总"
    page.finish(ws, subject, [5, 10, 16, 5, *([8.5] * len(c.ITEM_CODES)), 7], freeze=f"E{_HEAD + 1}")

    _assessment_sheet(wb.create_sheet("考核表"), order, info, wide, policy, page, missing)

    sheets = grid_sheet_names(order)
    for gid in sorted(order):
        _grid_sheet(
            wb.create_sheet(sheets[gid]),
            gid,
            info,
            scores,
            deductions,
            category_report,
            worker_day_summary,
            policy,
            page,
        )

    ws = wb.create_sheet("巡查统计")
    headers = [
        "网格员编号",
        "网格编号",
        "工作日",
        *(c.STATUS_ZH[s] for s in c.STATUSES),
        "巡查时长(小时)",
        "巡查里程(公里)",
    ]
    rows = worker_day_summary.reindex(
        columns=["worker_id", "grid_id", "workdays", *c.STATUSES, "patrol_h", "patrol_km"]
    )
    n = len(c.STATUSES)
    _block(ws, _HEAD, headers, rows.values.tolist(), decimal_cols=(4 + n, 5 + n))
    page.finish(ws, "专职网格员巡查统计", [12, 12, 8, *([9] * n), 10, 10], freeze=f"A{_HEAD + 1}")

    ws = wb.create_sheet("事项质量提示")
    flags = event_flags.reindex(columns=list(FLAG_COLUMNS)).sort_values(["grid_id", "event_id", "flag"])
    rows = [[e, g, FLAG_LABELS.get(f, f), d] for e, g, f, d in flags.itertuples(index=False)]
    _block(ws, _HEAD, ["事项编号", "网格编号", "提示", "说明"], rows, wrap={3, 4})
    page.finish(ws, "事项质量提示", [14, 10, 22, 80], freeze=f"A{_HEAD + 1}")

    ws = wb.create_sheet("说明")
    hashes = ", ".join(sorted(set(scores["policy_hash"].dropna().astype(str)) - {""})) or policy.hash
    about: list[list[Any]] = [
        ["月份", _month_zh(month)],
        ["制表日期", page.date_text],
        ["策略哈希", hashes],
        ["策略来源", public_path_text(policy.source, root)],
        [
            "数据来源",
            f"{public_path_text(source, root)}: {c.GRID_MONTH_SCORE}, {c.DEDUCTION}, {c.WORKER_DAY}, {EVENT_FLAG}",
        ],
        ["网格数", len(order)],
        ["评分依据", "常州西太湖科技产业园网格化集成管理工作考核指标（基础网格）（试行）"],
        [
            "项目编号",
            "编号按考核指标原表，如 6①(6.1a) 事项上报数量、6①(6.1b) 服务纪录、6②(6.2) 事项上报质量；"
            "括号内为系统编号（6① 的数量与服务纪录分为 6.1a、6.1b 两项计分）。",
        ],
        [
            "扣分规则",
            "各项从满分起逐项扣分，扣完为止（最低0分）。“扣分合计（未封底）”为扣分明细各行之和，可能超过满分；"
            "“扣分（计入）”= 满分 − 得分，各项之和 = 100 − 总分。",
        ],
        ["数值", "得分、扣分均保留一位小数。"],
        [
            f"{item_code_label('6.2')} 说明",
            f"不合格及虚假事项超过全部上报事项的 {policy.events.quality_zero_share:.0%} 时本项不得分，明细中单列一行补足至满分。",
        ],
        [
            f"{item_code_label('6.1a')} 说明",
            "分类上报数量见各网格工作表；"
            + ("分类不足按条扣分。" if policy.events.category_minimums_deduct else "默认只报告不扣分。"),
        ],
        ["人员隐私", "重点人员、特殊人群、关爱对象只以编号出现。"],
        *_missing_about(scores, policy),
        *(["提示", public_path_text(n, root)] for n in notes),
    ]
    _block(ws, _HEAD, ["项目", "内容"], about, wrap={1, 2})
    page.finish(ws, "说明", [16, 100], freeze=f"A{_HEAD + 1}")

    fixed = datetime.strptime(month + "-01", "%Y-%m-%d")
    wb.properties.creator = "gridpatrol"
    wb.properties.created = fixed
    wb.properties.modified = fixed
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    wb.save(tmp)
    _normalize_zip(tmp, fixed)
    os.replace(tmp, path)
    return path


def _assessment_sheet(
    ws: Worksheet,
    order: list[str],
    info: pd.DataFrame,
    wide: pd.DataFrame,
    policy: Policy,
    page: _Page,
    missing: dict[tuple[str, str], str],
) -> None:
    """考核表: the seed's columns and one column per grid (rank order), in blocks of
    ``GRIDS_PER_PAGE`` grids stacked down the sheet, each block on its own printed page."""
    items = [policy.items[code] for code in c.ITEM_CODES]
    chunks = [order[i : i + GRIDS_PER_PAGE] for i in range(0, len(order), GRIDS_PER_PAGE)] or [[]]
    top = _HEAD
    for k, chunk in enumerate(chunks):
        if k:
            ws.row_breaks.append(Break(id=top - 1))
        headers = [
            "类别",
            "编号",
            "考核内容",
            "评分标准",
            "满分",
            *(f"{gid}\n{_grid_info(info, gid)[0]}".strip() for gid in chunk),
        ]
        rows = [
            [
                it.category,
                item_code_label(it.code),
                it.name,
                it.clause,
                it.max_score,
                *(_shown(wide, missing, g, it.code) for g in chunk),
            ]
            for it in items
        ]
        rows.append(
            ["", "", "总分", sum(it.max_score for it in items), "", *(wide.loc[g, c.ITEM_TOTAL] for g in chunk)]
        )
        last = _block(ws, top, headers, rows, decimal_cols=range(5, 6 + len(chunk)), wrap={1, 3, 4})
        for k, code in enumerate((*c.ITEM_CODES, c.ITEM_TOTAL)):
            for j, g in enumerate(chunk):
                _mark_missing(ws.cell(top + 1 + k, 6 + j), code, missing.get((g, code)))
        for j in range(1, len(headers) + 1):
            ws.cell(last, j).font = Font(bold=True)
        _merge_runs(ws, 1, top + 1, last - 1)  # 类别 once per category, as on the paper form
        top = last + 2
    # several blocks: each has its own header, so only the title rows repeat on every page
    widths = [6, 9, 10, 60, 5, *([8] * len(chunks[0]))]
    page.finish(ws, "考核表", widths, freeze=f"F{_HEAD + 1}", repeat_header=len(chunks) == 1)


def _grid_sheet(
    ws: Worksheet,
    gid: str,
    info: pd.DataFrame,
    scores: pd.DataFrame,
    deductions: pd.DataFrame,
    category_report: pd.DataFrame | None,
    summary: pd.DataFrame,
    policy: Policy,
    page: _Page,
) -> None:
    """One grid's form: items (得分, 扣分 as applied, raw sum, 评分标准), deductions with evidence,
    the 6① category report and its full-time workers' month."""
    s = scores[scores["grid_id"] == gid].set_index("item_code")
    d = deductions[deductions["grid_id"] == gid]
    lost = d.groupby("item_code")["points"].sum()
    missing = _missing_items(scores[scores["grid_id"] == gid])
    rows: list[list[Any]] = []
    for code in c.ITEM_CODES:
        it, top, got = policy.items[code], _round(s.loc[code, "max_score"]), _round(s.loc[code, "score"])
        if (gid, code) in missing:
            rows.append([item_code_label(code), it.category, it.name, top, MISSING_TEXT, None, None, it.clause])
            continue
        rows.append(
            [
                item_code_label(code),
                it.category,
                it.name,
                top,
                got,
                _round(top - got),
                _round(lost.get(code, 0.0)),
                it.clause,
            ]
        )
    top, got = _round(s.loc[c.ITEM_TOTAL, "max_score"]), _round(s.loc[c.ITEM_TOTAL, "score"])
    rows.append(["", "", "总分", top, got, _round(top - got), _round(lost.sum()), ""])
    headers = ["编号", "类别", "项目", "满分", "得分", "扣分（计入）", "扣分合计（未封底）", "评分标准"]
    r = _block(ws, _HEAD, headers, rows, decimal_cols=(4, 5, 6, 7), wrap={2, 3, 8}, spans={8: 3})
    for k, code in enumerate((*c.ITEM_CODES, c.ITEM_TOTAL)):
        _mark_missing(ws.cell(_HEAD + 1 + k, 5), code, missing.get((gid, code)))
    for j in range(1, 11):
        ws.cell(r, j).font = Font(bold=True)
    name, kind = _grid_info(info, gid)
    r += 2
    ws.cell(r, 1, "扣分明细").font = Font(bold=True)
    order = {code: i for i, code in enumerate(c.ITEM_CODES)}
    d = d.assign(_o=d["item_code"].map(order)).sort_values(["_o", "kind", "worker_id"], na_position="first")
    detail = [
        [
            item_code_label(x.item_code),
            x.reason,
            x.worker_id if isinstance(x.worker_id, str) else "",
            x.count,
            x.points,
            x.evidence,
        ]
        for x in d.itertuples(index=False)
    ]
    headers = ["编号", "原因", "网格员", "次数", "扣分", "依据"]
    r = _block(ws, r + 1, headers, detail, decimal_cols=(5,), wrap={2, 6}, spans={6: 5})
    if category_report is not None and len(category_report):
        cat = category_report[category_report["grid_id"] == gid]
        rows = [
            [g, m, n, sh]
            for g, m, n, sh in cat[["category_group", "minimum", "reported", "short"]].itertuples(index=False)
        ]
        ws.cell(r + 2, 1, f"{item_label('6.1a', policy)} 分类上报（有效事项）").font = Font(bold=True)
        r = _block(ws, r + 3, ["分类", "要求(条)", "上报(条)", "缺少(条)"], rows, spans={1: 2}, wrap={1})
    mine = summary[summary["grid_id"] == gid]
    if len(mine):
        ws.cell(r + 2, 1, "专职网格员巡查统计").font = Font(bold=True)
        rows = mine.reindex(columns=["worker_id", "workdays", *c.STATUSES, "patrol_h", "patrol_km"]).values.tolist()
        n = len(c.STATUSES)
        _block(
            ws,
            r + 3,
            ["网格员编号", "工作日", *(c.STATUS_ZH[s] for s in c.STATUSES), "时长(小时)", "里程(公里)"],
            rows,
            decimal_cols=(3 + n, 4 + n),
        )
    page.finish(
        ws,
        f"{gid} {name}（{kind}）".replace("（）", "").strip(),
        [10, 18, 14, 7, 7, 8, 9, 9, 9, 45],
        freeze=f"A{_HEAD + 1}",
        repeat_header=False,
    )


# --- layout ----------------------------------------------------------------------------------

# every sheet: row 1 the title, row 2 the 制表日期, the table header on row _HEAD
_HEAD = 3
# 考核表: grid columns per block (one printed A4-landscape page each)
GRIDS_PER_PAGE = 10
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_THIN = Side(style="thin", color="808080")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_LINE_PT = 15.0  # row height per line of 11-pt text (CJK glyphs are taller than Latin ones)


def month_end(month: str) -> date:
    """The month's last day: the default 制表日期 (deterministic, so re-runs stay byte-identical).

    >>> month_end("2026-02")
    datetime.date(2026, 2, 28)
    """
    first = datetime.strptime(month + "-01", "%Y-%m-%d").date()
    return (pd.Timestamp(first) + pd.offsets.MonthEnd(0)).date()


def _month_zh(month: str) -> str:
    return f"{month[:4]}年{month[5:7]}月"


def seed_number(code: str) -> str:
    """The assessment table's own numbering of item ``code`` (the one mapping of the project).

    Items of the seed are numbered 1–8; sub-items ①②… within an item. Our codes split 6① into
    6.1a (事项上报数量) and 6.1b (服务纪录), both under the seed's 6①.

    >>> [seed_number(k) for k in ("1", "2.5", "6.1a", "6.1b", "6.2", "total")]
    ['1', '2⑤', '6①', '6①', '6②', '']
    """
    m = re.fullmatch(r"(\d+)(?:\.(\d+)[a-z]?)?", code)
    if not m:
        return ""
    item, sub = m.groups()
    return item + (chr(0x2460 + int(sub) - 1) if sub and 0 < int(sub) <= 20 else "")


def item_code_label(code: str) -> str:
    """``6①(6.1a)``, ``2⑤(2.5)``; ``1`` when the seed number is the code; ``总分`` for the total."""
    if code == c.ITEM_TOTAL:
        return "总分"
    number = seed_number(code)
    return number if number == code else f"{number}({code})"


def item_label(code: str, policy: Policy, sep: str = " ") -> str:
    """``6①(6.1a) 事项上报数量``, ``1 网格工作纪律``, ``总分``: how the workbook names an item."""
    if code == c.ITEM_TOTAL:
        return "总分"
    return f"{item_code_label(code)}{sep}{policy.items[code].name}"


_ABS_PATH = re.compile(
    r"(?<![\w.~-])(?:[A-Za-z]:)?[\\/](?:[^\s\\/,;:，；：()（）'\"]+[\\/])*([^\s\\/,;:，；：()（）'\"]+)"
)


def public_path_text(text: str, root: Path | None = None) -> str:
    """``text`` with paths under ``root`` made relative to it and any other absolute path cut to
    its file name: the 说明 sheet shows no folder of the machine.

    >>> public_path_text("/srv/ws/patrol.toml", Path("/srv/ws"))
    'patrol.toml'
    >>> public_path_text("read /home/x/in/c.csv: row 2; 6.1a/6.1b; C:\\\\ws\\\\patrol.toml")
    'read c.csv: row 2; 6.1a/6.1b; patrol.toml'
    """
    text = str(text)
    if root is not None:
        for base in dict.fromkeys((str(root), str(root.resolve()))):
            text = text.replace(base + os.sep, "").replace(base + "/", "")
    return _ABS_PATH.sub(lambda m: m.group(1), text)


class _Page:
    """Title, signature line and page setup shared by every sheet."""

    def __init__(self, policy: Policy, month: str, prepared_on: date) -> None:
        self.policy = policy
        self.title = f"{policy.export.unit} 基础网格考核 {_month_zh(month)}"
        self.date_text = f"{prepared_on.year}年{prepared_on.month:02d}月{prepared_on.day:02d}日"

    def finish(
        self, ws: Worksheet, subject: str, widths: Sequence[float], freeze: str, repeat_header: bool = True
    ) -> None:
        """Title rows 1–2, the 制表/审核 line below the last row, widths, row heights, page setup.

        ``repeat_header``: print rows 1 to the table header (row ``_HEAD``) on every page; else
        only the title rows (sheets holding several tables).
        """
        last = get_column_letter(len(widths))
        sig = ws.max_row + 2
        title = ws.cell(1, 1, f"{self.title} {subject}")
        title.font = Font(bold=True, size=14)
        title.alignment = Alignment(horizontal="center", vertical="center")
        ws.merge_cells(f"A1:{last}1")
        ws.row_dimensions[1].height = 24
        when = ws.cell(2, 1, f"制表日期：{self.date_text}")
        when.alignment = Alignment(horizontal="right", vertical="center")
        ws.merge_cells(f"A2:{last}2")
        export = self.policy.export
        line = "_" * 16
        ws.cell(sig, 1, f"{export.prepared_by_label}：{line}　　　　　　{export.reviewed_by_label}：{line}")
        ws.cell(sig, 1).alignment = Alignment(horizontal="left", vertical="bottom")
        ws.merge_cells(f"A{sig}:{last}{sig}")
        ws.row_dimensions[sig].height = 30
        for j, w in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(j)].width = w
        _fit_row_heights(ws, widths)
        ws.freeze_panes = freeze
        ws.print_title_rows = f"1:{_HEAD if repeat_header else 2}"
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.orientation = ws.ORIENTATION_LANDSCAPE
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
        ws.page_margins = PageMargins(left=0.4, right=0.4, top=0.5, bottom=0.6, header=0.25, footer=0.3)
        ws.print_options.horizontalCentered = True
        ws.oddFooter.center.text = "第 &P 页，共 &N 页"


def _merge_runs(ws: Worksheet, col: int, first: int, last: int) -> None:
    """Merge the runs of equal values down column ``col`` between rows ``first`` and ``last``."""
    start = first
    for r in range(first + 1, last + 2):
        if r <= last and ws.cell(r, col).value == ws.cell(start, col).value:
            continue
        if r - 1 > start:
            ws.merge_cells(start_row=start, start_column=col, end_row=r - 1, end_column=col)
            ws.cell(start, col).alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
        start = r


def _text_units(text: str) -> int:
    """Width of ``text`` in column-width units: 2 per CJK/full-width character, 1 otherwise."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _fit_row_heights(ws: Worksheet, widths: Sequence[float]) -> None:
    """Row heights for wrapped cells (openpyxl does not measure text; Excel keeps what it is given)."""
    span = {(r.min_row, r.min_col): r.max_col for r in ws.merged_cells.ranges if r.min_row == r.max_row}
    tall = {(r.min_row, r.min_col) for r in ws.merged_cells.ranges if r.min_row < r.max_row}
    need: dict[int, int] = {}
    for row in ws.iter_rows(min_row=_HEAD):
        for cell in row:
            if cell.value is None or not cell.alignment.wrap_text or (cell.row, cell.column) in tall:
                continue
            col = int(cell.column)
            last = span.get((int(cell.row), col), col)
            width = sum(widths[j - 1] if j <= len(widths) else 8.43 for j in range(col, last + 1)) - 1.5
            lines = sum(max(1, -(-_text_units(p) // max(1, int(width)))) for p in str(cell.value).split("\n"))
            need[int(cell.row)] = max(need.get(int(cell.row), 1), lines)
    for r, lines in need.items():
        if lines > 1:
            ws.row_dimensions[r].height = lines * _LINE_PT + 3


def _block(
    ws: Worksheet,
    top: int,
    headers: list[str],
    rows: Iterable[Sequence[Any]],
    decimal_cols: Iterable[int] = (),
    wrap: Iterable[int] = (),
    spans: dict[int, int] | None = None,
) -> int:
    """Write a header row at ``top`` and the rows below, with borders; returns the last row used.

    Fields are numbered from 1. ``decimal_cols`` are scores and other figures: rounded to 0.1 and
    shown as ``0.0``. ``spans`` gives fields that take several columns (merged in every row);
    the fields after them move right.
    """
    decimal_cols, wrap, spans = set(decimal_cols), set(wrap), dict(spans or {})
    first: dict[int, int] = {}
    col = 1
    for j in range(1, len(headers) + 1):
        first[j], col = col, col + spans.get(j, 1)

    def put(r: int, j: int, value: Any) -> Any:
        cell = ws.cell(r, first[j], value)
        if isinstance(value, str) and value.startswith("="):
            cell.data_type = "s"  # text, never a formula
        cell.border = _BORDER
        if spans.get(j, 1) > 1:
            end = first[j] + spans[j] - 1
            for k in range(first[j] + 1, end + 1):
                ws.cell(r, k).border = _BORDER
            ws.merge_cells(start_row=r, start_column=first[j], end_row=r, end_column=end)
        return cell

    for j, h in enumerate(headers, start=1):
        cell = put(top, j, h)
        cell.font = Font(bold=True)
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    r = top
    for r, row in enumerate(rows, start=top + 1):
        for j, value in enumerate(row, start=1):
            value = _cell(value)
            if j in decimal_cols and isinstance(value, (int, float)) and not isinstance(value, bool):
                value = _round(value)
            elif isinstance(value, float):
                value = int(value) if value.is_integer() else _round(value)
            cell = put(r, j, value)
            if j in decimal_cols:
                cell.number_format = SCORE_FORMAT
            cell.alignment = Alignment(wrap_text=j in wrap, vertical="center")
    return r


def _round(value: Any) -> float:
    """A figure as written in the workbook: rounded to 0.1 (0.2 × 46 is 9.200000000000001)."""
    return round(float(value), 1) + 0.0  # + 0.0: no -0.0


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()  # numpy scalar -> Python
    return value


def _int(value: Any) -> int | None:
    return None if pd.isna(value) else int(value)


# an item scored from a required table the month lacks (--allow-missing), and the total then
MISSING_TEXT = "暂缺"
PROVISIONAL_FORMAT = '0.0"（暂定）"'


def _missing_items(scores: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(grid_id, item_code) -> the missing tables of every 暂缺 item and provisional total."""
    if "missing_tables" not in scores:
        return {}
    m = scores[scores["missing_tables"].fillna("").astype(str) != ""]
    return {(g, i): str(t) for g, i, t in zip(m["grid_id"], m["item_code"], m["missing_tables"], strict=True)}


def _shown(wide: pd.DataFrame, missing: dict[tuple[str, str], str], gid: str, code: str) -> Any:
    if code != c.ITEM_TOTAL and (gid, code) in missing:
        return MISSING_TEXT
    return wide.loc[gid, code]


def _table_words(tables: str) -> str:
    return "、".join(f"{t}（{TABLE_ALIASES[t][0]}）" if t in TABLE_ALIASES else t for t in tables.split(","))


def _mark_missing(cell: Any, code: str, tables: str | None) -> None:
    """A 暂缺 item's cell gets a note naming the missing table; a provisional total shows （暂定）."""
    if not tables:
        return
    words = _table_words(tables)
    if code == c.ITEM_TOTAL:
        cell.number_format = PROVISIONAL_FORMAT
        text = f"暂定总分 provisional total: 缺少指标表 {words}，其计分项目暂缺、不计入；满分按已计分项目计。"
    else:
        text = f"暂缺 not scored: 缺少指标表 {words}（--allow-missing），本项未计分。"
    cell.comment = Comment(text, "gridpatrol", width=260, height=90)


def _missing_about(scores: pd.DataFrame, policy: Policy) -> list[list[Any]]:
    """The 说明 row explaining 暂缺 items and the provisional total (none when complete)."""
    if "missing_tables" not in scores:
        return []
    total = scores[(scores["item_code"] == c.ITEM_TOTAL) & (scores["missing_tables"].fillna("") != "")]
    if not len(total):
        return []
    tables = str(total["missing_tables"].iloc[0])
    items = [k for t in tables.split(",") for k in TABLE_ITEMS.get(t, ())]
    items = [k for k in c.ITEM_CODES if k in items]
    full = sum(policy.items[k].max_score for k in c.ITEM_CODES if k not in items)
    return [
        [
            "暂缺",
            f"本月缺少必需的指标表 {_table_words(tables)}，经 --allow-missing 允许计分：项目 "
            f"{'、'.join(item_code_label(k) for k in items)} 标为“暂缺”，未计分；总分为暂定（只含已计分项目，"
            f"满分 {full:g} 分），表格补齐后请重新计分。",
        ]
    ]


def _wide_scores(scores: pd.DataFrame) -> pd.DataFrame:
    return scores.pivot(index="grid_id", columns="item_code", values="score")


def _grid_info(info: pd.DataFrame, gid: str) -> tuple[str, str]:
    if gid not in info.index:
        return "", ""
    row = info.loc[gid]
    return str(row["grid_name"]), c.GRID_TYPE_ZH.get(str(row["grid_type"]), str(row["grid_type"]))


_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")
# the workbook's own sheets; grid sheets never take these names
FIXED_SHEETS = ("汇总", "考核表", "巡查统计", "事项质量提示", "说明")


def grid_sheet_names(grid_ids: Iterable[str]) -> dict[str, str]:
    """The workbook sheet of each grid (what the dashboard links to), named as ``write_workbook`` names it.

    >>> grid_sheet_names(["G/1", "G?1", "汇总"])
    {'G/1': 'G_1', 'G?1': 'G_1~2', '汇总': '汇总~2'}
    """
    used = set(FIXED_SHEETS)
    return {gid: _sheet_name(gid, used) for gid in sorted(grid_ids)}


def _sheet_name(gid: str, used: set[str]) -> str:
    """Excel sheet names: ≤ 31 characters, none of []:*?/\\, unique."""
    base = _SHEET_BAD.sub("_", gid)[:31] or "grid"
    name, i = base, 2
    while name in used:
        suffix = f"~{i}"
        name, i = base[: 31 - len(suffix)] + suffix, i + 1
    used.add(name)
    return name


def _normalize_zip(path: Path, when: datetime) -> None:
    """Fix the zip entries' timestamps and the core properties' modified date (openpyxl stamps
    'now' on save), so the same scores give the same bytes."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    with zipfile.ZipFile(path) as zin:
        entries = [(info.filename, zin.read(info.filename)) for info in zin.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in entries:
            if name == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(<)", rb"\g<1>" + stamp.encode() + rb"\g<2>", data)
            info = zipfile.ZipInfo(name, date_time=when.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(info, data)


# --- command line ----------------------------------------------------------------------------


def _check_month(month: str) -> None:
    if not MONTH_RE.match(month):
        raise GridpatrolError(f"month was '{month}' but is expected as YYYY-MM (e.g. 2026-10)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m scoring.export",
        description="Write the monthly assessment workbook (考核得分_YYYY-MM.xlsx) and the score tables "
        "as CSV and Parquet into WORKSPACE/out/YYYY-MM/.",
    )
    p.add_argument("--workspace", required=True, type=Path, help="the workspace folder")
    p.add_argument("--month", required=True, help="the month to export, YYYY-MM")
    p.add_argument(
        "--score",
        action="store_true",
        help="score the month first from indicators/YYYY-MM/ and the stored patrol findings "
        "(opens patrol.duckdb read-write); without it the stored scores are exported",
    )
    p.add_argument(
        "--allow-missing",
        action="append",
        default=[],
        metavar="TABLE",
        help="with --score: score the month although the required indicator table TABLE (events, "
        "service_records, info_collection, or its Chinese name) is missing; its items are marked 暂缺 "
        "and the total provisional (repeatable)",
    )
    return p


def _print_warning(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m scoring.export``; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.allow_missing and not args.score:
        parser.error("--allow-missing goes with --score")
    try:
        _check_month(args.month)
        ws = load_workspace(args.workspace, allow_missing=args.allow_missing)
        if args.score:
            with workspace_lock(ws.paths):
                con = connect(ws.paths)
                try:
                    score_and_store(ws, con, args.month, warn=_print_warning)
                finally:
                    con.close()
        con = connect(ws.paths, read_only=True)
        try:
            written = export_month(
                con,
                ws.paths.out_month(args.month),
                args.month,
                ws.grids,
                ws.policy,
                source=str(ws.paths.duckdb.name),
                root=ws.root,
            )
        finally:
            con.close()
    except (GridpatrolError, duckdb.Error, OSError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        # wrong input (exit 2, as trajectory.run) apart from a store or system failure
        return 2 if isinstance(exc, InputError) else 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
