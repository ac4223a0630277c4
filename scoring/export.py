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
import os
import re
import sys
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from scoring.inputs import load_indicators
from scoring.policy import Policy
from scoring.quality import FLAG_COLUMNS, FLAG_LABELS, event_quality_flags
from scoring.rules import CATEGORY_REPORT_COLUMNS, DEDUCTION_ALL_COLUMNS, SCORE_COLUMNS, ScoreResult, score_month
from trajectory import contract as c
from trajectory import store
from trajectory.errors import GridpatrolError
from trajectory.store import connect, workspace_lock, write_parquet_atomic
from trajectory.workspace import load_workspace

# our own tables (not in the contract), replaced per month with the scores
EVENT_FLAG = "event_flag"
EVENT_CATEGORY = "event_category_report"
SCORE_NOTE = "score_note"
MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
SCORE_FORMAT = "0.0"

_TEXT, _NUM = "VARCHAR", "DOUBLE"
_DDL = {
    c.GRID_MONTH_SCORE: {"item_name": _TEXT, "category": _TEXT, "rank": "BIGINT", "policy_hash": _TEXT},
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


def score_and_store(ws: Any, con: duckdb.DuckDBPyConnection, month: str) -> ScoreResult:
    """Score ``month`` for every grid of the workspace and replace its rows in the store.

    Parameters
    ----------
    ws : trajectory.workspace.Workspace
        Supplies ``paths.indicators(month)``, ``policy``, ``grids``, ``workers``.
    con : duckdb connection
        Open read-write on the workspace's ``patrol.duckdb``.
    month : str
        ``YYYY-MM``.

    Returns
    -------
    ScoreResult
        With the indicators' warnings first.
    """
    _check_month(month)
    grids = pd.DataFrame(ws.grids[list(c.GRID_PROPERTIES)])
    ind = load_indicators(ws.paths.indicators(month), ws.policy, grids["grid_id"])
    findings = _read_month(con, c.PATROL_FINDING, month)
    points = _track_points(con, ind.events, ws.policy)
    flags = event_quality_flags(
        ind.events[ind.events["grid_id"].isin(grids["grid_id"])], ws.grids, points, ws.workers, ws.policy
    )
    result = score_month(month, grids, ind, findings, ws.policy, flags)
    result.warnings[:0] = ind.warnings
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
) -> list[Path]:
    """Write the workbook and the CSV/Parquet tables of ``month`` from the store into ``out_dir``.

    Returns the paths written.
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
    )
    written = [book]
    for name, df in (
        (c.GRID_MONTH_SCORE, data["scores"]),
        (c.DEDUCTION, data["deductions"]),
        (EVENT_FLAG, data["flags"]),
    ):
        written += write_table(df, out_dir, name)
    return written


def write_table(df: pd.DataFrame, out_dir: Path, name: str) -> list[Path]:
    """``name.csv`` (UTF-8 with BOM) and ``name.parquet``, each replaced atomically."""
    csv_path, pq_path = out_dir / f"{name}.csv", out_dir / f"{name}.parquet"
    _atomic_write(csv_path, df.to_csv(index=False, lineterminator="\n").encode("utf-8-sig"))
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
) -> Path:
    """Write the month's score workbook (openpyxl). Same inputs give a byte-identical file.

    Sheets: 汇总 (ranking), 考核表 (the centre's table, one column per grid), one sheet per grid
    (its items and every deduction with evidence), 巡查统计 (worker days), 事项质量提示 (event
    flags), 说明 (month, policy hash, source, how to read).
    """
    grids = pd.DataFrame(grids)[list(c.GRID_PROPERTIES)].astype(str)
    wide = _wide_scores(scores)
    order = scores[scores["item_code"] == c.ITEM_TOTAL].sort_values(["rank", "grid_id"])["grid_id"].tolist()
    info = grids.set_index("grid_id")
    wb = Workbook()
    ws = wb.active
    ws.title = "汇总"
    headers = ["排名", "网格编号", "网格名称", "类型", *(_item_header(code, policy) for code in c.ITEM_CODES), "总分"]
    rows = []
    for gid in order:
        total = wide.loc[gid, c.ITEM_TOTAL]
        rank = scores.loc[(scores["grid_id"] == gid) & (scores["item_code"] == c.ITEM_TOTAL), "rank"].iloc[0]
        name, kind = _grid_info(info, gid)
        rows.append([_int(rank), gid, name, kind, *(wide.loc[gid, code] for code in c.ITEM_CODES), total])
    _table(
        ws,
        headers,
        rows,
        score_cols=range(5, 5 + len(c.ITEM_CODES) + 1),
        freeze="E2",
        widths={1: 6, 2: 12, 3: 16, 4: 6},
    )

    ws = wb.create_sheet("考核表")
    headers = [
        "类别",
        "编号",
        "考核内容",
        "评分标准",
        "满分",
        *(f"{gid} {_grid_info(info, gid)[0]}".strip() for gid in order),
    ]
    rows = [
        [
            policy.items[code].category,
            code,
            policy.items[code].name,
            policy.items[code].clause,
            policy.items[code].max_score,
            *(wide.loc[gid, code] for gid in order),
        ]
        for code in c.ITEM_CODES
    ]
    rows.append(
        [
            "",
            c.ITEM_TOTAL,
            "总分",
            "",
            sum(policy.items[k].max_score for k in c.ITEM_CODES),
            *(wide.loc[gid, c.ITEM_TOTAL] for gid in order),
        ]
    )
    _table(
        ws,
        headers,
        rows,
        score_cols=range(5, 6 + len(order)),
        freeze="F2",
        widths={1: 14, 2: 6, 3: 14, 4: 60},
        wrap={4},
    )

    used = {"汇总", "考核表", "巡查统计", "事项质量提示", "说明"}
    for gid in sorted(order):
        _grid_sheet(
            wb.create_sheet(_sheet_name(gid, used)),
            gid,
            info,
            scores,
            deductions,
            category_report,
            worker_day_summary,
            policy,
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
    _table(ws, headers, rows.values.tolist(), score_cols=(), freeze="A2", widths={1: 12, 2: 12})

    ws = wb.create_sheet("事项质量提示")
    flags = event_flags.reindex(columns=list(FLAG_COLUMNS)).sort_values(["grid_id", "event_id", "flag"])
    rows = [[e, g, FLAG_LABELS.get(f, f), d] for e, g, f, d in flags.itertuples(index=False)]
    _table(
        ws,
        ["事项编号", "网格编号", "提示", "说明"],
        rows,
        score_cols=(),
        freeze="A2",
        widths={1: 14, 2: 12, 3: 18, 4: 60},
    )

    ws = wb.create_sheet("说明")
    hashes = ", ".join(sorted(set(scores["policy_hash"].dropna().astype(str)) - {""})) or policy.hash
    about: list[list[Any]] = [
        ["月份", month],
        ["策略哈希", hashes],
        ["策略来源", policy.source],
        ["数据来源", f"{source}: {c.GRID_MONTH_SCORE}, {c.DEDUCTION}, {c.WORKER_DAY}, {EVENT_FLAG}"],
        ["网格数", len(order)],
        ["评分依据", "常州西太湖科技产业园网格化集成管理工作考核指标（基础网格）（试行）"],
        ["扣分规则", "各项从满分起逐项扣分，扣完为止（最低0分）；扣分明细列出全部原始扣分，某项扣分合计可能超过满分。"],
        [
            "6.2 说明",
            f"不合格及虚假事项超过全部上报事项的 {policy.events.quality_zero_share:.0%} 时本项不得分，明细中单列一行补足至满分。",
        ],
        [
            "6.1a 说明",
            "分类上报数量见各网格工作表；"
            + ("分类不足按条扣分。" if policy.events.category_minimums_deduct else "默认只报告不扣分。"),
        ],
        ["人员隐私", "重点人员、特殊人群、关爱对象只以编号出现。"],
        *(["提示", n] for n in notes),
    ]
    _table(ws, ["项目", "内容"], about, score_cols=(), freeze="A2", widths={1: 14, 2: 100}, wrap={2})

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


def _grid_sheet(
    ws: Worksheet,
    gid: str,
    info: pd.DataFrame,
    scores: pd.DataFrame,
    deductions: pd.DataFrame,
    category_report: pd.DataFrame | None,
    summary: pd.DataFrame,
    policy: Policy,
) -> None:
    s = scores[scores["grid_id"] == gid].set_index("item_code")
    d = deductions[deductions["grid_id"] == gid]
    lost = d.groupby("item_code")["points"].sum()
    rows = [
        [
            code,
            policy.items[code].category,
            policy.items[code].name,
            s.loc[code, "max_score"],
            s.loc[code, "score"],
            float(lost.get(code, 0.0)),
        ]
        for code in c.ITEM_CODES
    ]
    rows.append(
        [c.ITEM_TOTAL, "", "总分", s.loc[c.ITEM_TOTAL, "max_score"], s.loc[c.ITEM_TOTAL, "score"], float(lost.sum())]
    )
    name, kind = _grid_info(info, gid)
    headers = ["编号", "类别", "项目", "满分", "得分", "扣分合计（未封底）"]
    _table(ws, headers, rows, score_cols=(4, 5, 6), freeze="A2", widths={1: 8, 2: 16, 3: 14, 4: 8, 5: 8, 6: 10, 7: 60})
    r = len(rows) + 3
    ws.cell(r, 1, f"{gid} {name}（{kind}） 扣分明细").font = Font(bold=True)
    order = {code: i for i, code in enumerate(c.ITEM_CODES)}
    d = d.assign(_o=d["item_code"].map(order)).sort_values(["_o", "kind", "worker_id"], na_position="first")
    detail = [
        [x.item_code, x.reason, x.worker_id if isinstance(x.worker_id, str) else "", x.count, x.points, x.evidence]
        for x in d.itertuples(index=False)
    ]
    r = _block(ws, r + 1, ["编号", "原因", "网格员", "次数", "扣分", "依据"], detail, score_cols=(5,), wrap={6})
    if category_report is not None and len(category_report):
        cat = category_report[category_report["grid_id"] == gid]
        rows = [
            [g, m, n, sh]
            for g, m, n, sh in cat[["category_group", "minimum", "reported", "short"]].itertuples(index=False)
        ]
        ws.cell(r + 1, 1, "6.1a 分类上报（有效事项）").font = Font(bold=True)
        r = _block(ws, r + 2, ["分类", "要求(条)", "上报(条)", "缺少(条)"], rows, score_cols=())
    mine = summary[summary["grid_id"] == gid]
    if len(mine):
        ws.cell(r + 1, 1, "专职网格员巡查统计").font = Font(bold=True)
        rows = mine.reindex(columns=["worker_id", "workdays", *c.STATUSES, "patrol_h", "patrol_km"]).values.tolist()
        _block(
            ws,
            r + 2,
            ["网格员编号", "工作日", *(c.STATUS_ZH[s] for s in c.STATUSES), "时长(小时)", "里程(公里)"],
            rows,
            score_cols=(),
        )


_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")


def _block(
    ws: Worksheet,
    top: int,
    headers: list[str],
    rows: Iterable[Sequence[Any]],
    score_cols: Iterable[int],
    wrap: Iterable[int] = (),
) -> int:
    """Write a header row at ``top`` and the rows below; returns the last row used."""
    for j, h in enumerate(headers, start=1):
        cell = ws.cell(top, j, h)
        cell.font = Font(bold=True)
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    score_cols, wrap = set(score_cols), set(wrap)
    r = top
    for r, row in enumerate(rows, start=top + 1):
        for j, value in enumerate(row, start=1):
            cell = ws.cell(r, j, _cell(value))
            if j in score_cols:
                cell.number_format = SCORE_FORMAT
            if j in wrap:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    return r


def _table(
    ws: Worksheet,
    headers: list[str],
    rows: Iterable[Sequence[Any]],
    score_cols: Iterable[int],
    freeze: str,
    widths: dict[int, float],
    wrap: Iterable[int] = (),
) -> None:
    _block(ws, 1, headers, rows, score_cols, wrap)
    ws.freeze_panes = freeze
    for j in range(1, len(headers) + 1):
        ws.column_dimensions[get_column_letter(j)].width = widths.get(
            j, max(10.0, min(24.0, 2.0 * len(str(headers[j - 1]))))
        )


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()  # numpy scalar -> Python
    return value


def _int(value: Any) -> int | None:
    return None if pd.isna(value) else int(value)


def _wide_scores(scores: pd.DataFrame) -> pd.DataFrame:
    return scores.pivot(index="grid_id", columns="item_code", values="score")


def _grid_info(info: pd.DataFrame, gid: str) -> tuple[str, str]:
    if gid not in info.index:
        return "", ""
    row = info.loc[gid]
    return str(row["grid_name"]), c.GRID_TYPE_ZH.get(str(row["grid_type"]), str(row["grid_type"]))


def _item_header(code: str, policy: Policy) -> str:
    return f"{code} {policy.items[code].name}({policy.items[code].max_score:g})"


_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m scoring.export``; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        _check_month(args.month)
        ws = load_workspace(args.workspace)
        if args.score:
            with workspace_lock(ws.paths):
                con = connect(ws.paths)
                try:
                    result = score_and_store(ws, con, args.month)
                finally:
                    con.close()
            for w in result.warnings:
                print(f"warning: {w}", file=sys.stderr)
        con = connect(ws.paths, read_only=True)
        try:
            written = export_month(
                con, ws.paths.out_month(args.month), args.month, ws.grids, ws.policy, source=str(ws.paths.duckdb.name)
            )
        finally:
            con.close()
    except (GridpatrolError, duckdb.Error, OSError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
