"""The month's score workbook (考核得分_YYYY-MM.xlsx), written with openpyxl, ready to print and sign.

:func:`write_workbook` puts the sheets together, one function per sheet; the layout helpers
(title, signature line, A4-landscape page setup, tables) follow. Same inputs give a
byte-identical file (fixed zip timestamps, :func:`_normalize_zip`); the file is replaced
atomically (:func:`trajectory.files.write_atomic`).
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.pagebreak import Break
from openpyxl.worksheet.properties import PageSetupProperties
from openpyxl.worksheet.worksheet import Worksheet

from scoring.inputs import TABLE_ALIASES, TABLE_ITEMS
from scoring.labels import (
    EVENT_FLAG,
    SCORE_FORMAT,
    grid_sheet_names,
    item_code_label,
    item_label,
    month_end,
    month_zh,
    public_path_text,
)
from scoring.policy import Policy
from scoring.quality import FLAG_COLUMNS, FLAG_LABELS
from trajectory import contract as c
from trajectory.files import write_atomic


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
    missing = _missing_items(scores)
    wb = Workbook()
    ws = wb.active
    ws.title = "汇总"
    _summary_sheet(ws, order, info, scores, wide, policy, page, missing)
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
    _worker_day_sheet(wb.create_sheet("巡查统计"), worker_day_summary, page)
    _event_flag_sheet(wb.create_sheet("事项质量提示"), event_flags, page)
    about = _about_rows(month, scores, policy, page, len(order), notes=notes, source=source, root=root)
    _about_sheet(wb.create_sheet("说明"), about, page)
    return _save(wb, path, month)


def _summary_sheet(
    ws: Worksheet,
    order: list[str],
    info: pd.DataFrame,
    scores: pd.DataFrame,
    wide: pd.DataFrame,
    policy: Policy,
    page: _Page,
    missing: dict[tuple[str, str], str],
) -> None:
    """汇总: one row per grid in rank order, every item's score and the total (暂缺 marked)."""
    headers = [
        "排名",
        "网格编号",
        "网格名称",
        "类型",
        *(f"{item_label(code, policy, sep=chr(10))}\n({policy.items[code].max_score:g}分)" for code in c.ITEM_CODES),
        "总分",
    ]
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


def _worker_day_sheet(ws: Worksheet, worker_day_summary: pd.DataFrame, page: _Page) -> None:
    """巡查统计: per worker, workdays, days of each status, hours and kilometres patrolled."""
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


def _event_flag_sheet(ws: Worksheet, event_flags: pd.DataFrame, page: _Page) -> None:
    """事项质量提示: the events' quality flags, in Chinese, with their detail."""
    flags = event_flags.reindex(columns=list(FLAG_COLUMNS)).sort_values(["grid_id", "event_id", "flag"])
    rows = [[e, g, FLAG_LABELS.get(f, f), d] for e, g, f, d in flags.itertuples(index=False)]
    _block(ws, _HEAD, ["事项编号", "网格编号", "提示", "说明"], rows, wrap={3, 4})
    page.finish(ws, "事项质量提示", [14, 10, 22, 80], freeze=f"A{_HEAD + 1}")


def _about_rows(
    month: str,
    scores: pd.DataFrame,
    policy: Policy,
    page: _Page,
    n_grids: int,
    *,
    notes: Sequence[str],
    source: str,
    root: Path | None,
) -> list[list[Any]]:
    """The rows of 说明: month, policy hash and source, how to read the scores, missing tables, notes."""
    hashes = ", ".join(sorted(set(scores["policy_hash"].dropna().astype(str)) - {""})) or policy.hash
    return [
        ["月份", month_zh(month)],
        ["制表日期", page.date_text],
        ["策略哈希", hashes],
        ["策略来源", public_path_text(policy.source, root)],
        [
            "数据来源",
            f"{public_path_text(source, root)}: {c.GRID_MONTH_SCORE}, {c.DEDUCTION}, {c.WORKER_DAY}, {EVENT_FLAG}",
        ],
        ["网格数", n_grids],
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


def _about_sheet(ws: Worksheet, about: list[list[Any]], page: _Page) -> None:
    """说明: two columns, 项目 and 内容."""
    _block(ws, _HEAD, ["项目", "内容"], about, wrap={1, 2})
    page.finish(ws, "说明", [16, 100], freeze=f"A{_HEAD + 1}")


def _save(wb: Workbook, path: Path, month: str) -> Path:
    """Save ``wb`` to ``path`` atomically, stamped with the month's first day (byte-identical re-runs)."""
    fixed = datetime.strptime(month + "-01", "%Y-%m-%d")
    wb.properties.creator = "gridpatrol"
    wb.properties.created = fixed
    wb.properties.modified = fixed

    def save(tmp: Path) -> None:
        wb.save(tmp)
        _normalize_zip(tmp, fixed)

    return write_atomic(path, save)


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


class _Page:
    """Title, signature line and page setup shared by every sheet."""

    def __init__(self, policy: Policy, month: str, prepared_on: date) -> None:
        self.policy = policy
        self.title = f"{policy.export.unit} 基础网格考核 {month_zh(month)}"
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


__all__ = ["GRIDS_PER_PAGE", "MISSING_TEXT", "PROVISIONAL_FORMAT", "write_workbook"]
