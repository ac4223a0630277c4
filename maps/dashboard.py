"""The centre's front page (issue 15): ``out/YYYY-MM/index.html``, the month a director reads in a minute.

One self-contained, offline page (no script or style file; the charts are inline SVG written
here): 要点 (key figures), 考核排名 (the ranking of ``grid_month_score``, sortable, each row linked
to its grid page and workbook sheet), 失分在哪里 (lost points by item, the five most frequent
deduction reasons), 巡查一览 (a worker × day calendar of statuses linked to the playbacks, the
month's compliance per grid), 异常标记 (desk phone, vehicle, teleport, mock location, replay,
each worker-day linked to its evidence) and 地图与导出 (every page and file of the month).

Scores are read the way the workbook reads them (:func:`scoring.export.read_scores`), item labels
and sheet names come from :mod:`scoring.export`, so the page and the workbook never disagree.
Every workspace string (grid ids and names, worker ids, flag details, deduction reasons) is
escaped with :func:`maps.escape.html_text`; links are our file names through
:func:`maps.escape.url_path`; the page's only script sorts the table and reads no data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from maps.dashboard_html import (
    DASHBOARD_CSS,
    SORT_JS,
    STATUS_STYLE,
    bar_chart,
    calendar_td,
    card,
    change_td,
    fmt_count,
    fmt_number,
    grid_link,
    num_td,
    relative_href,
    score_td,
    short_text,
    signed,
    workbook_href,
)
from maps.escape import html_text, url_path
from maps.offline import check_offline
from scoring.export import item_code_label, item_label, month_end, read_scores
from scoring.policy import Policy
from trajectory import contract as c
from trajectory.errors import GridpatrolError
from trajectory.flags import FLAGS

INDEX_PAGE = "index.html"
EXPORT_SUFFIXES = (".csv", ".parquet")
TOP_REASONS = 5

# the engine's anomaly flags (trajectory.flags.FLAGS) in the centre's words
FLAG_ZH: Mapping[str, str] = {
    "desk_phone": "挂机（巡查时段长时间静止）",
    "vehicle": "车巡（车速移动）",
    "teleport": "瞬移（无法解释的跳点）",
    "mock_location": "模拟定位",
    "replay": "轨迹复用（与另一天轨迹相同）",
}
# calendar cells: colour, and a symbol so the page reads in black and white too
_WEEKDAY_ZH = "一二三四五六日"


@dataclass(frozen=True)
class MonthScores:
    """The month's stored scores, as the workbook reads them, and the previous scored month's.

    ``scores`` and ``previous`` are ``grid_month_score`` rows (with ``rank``), ``deductions`` the
    month's ``deduction`` rows, ``notes`` the scoring's messages (shown only as a count: they may
    name files).
    """

    month: str
    scores: pd.DataFrame
    deductions: pd.DataFrame
    policy: Policy
    previous_month: str | None = None
    previous: pd.DataFrame | None = None
    notes: int = 0


@dataclass(frozen=True)
class DashboardLinks:
    """Where the dashboard links, relative to ``out/YYYY-MM/`` (our file names, never workspace text)."""

    overview: str | None = None
    grid_pages: Mapping[str, str] = field(default_factory=dict)
    playbacks: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (worker_id, YYYY-MM-DD)
    workbook: str | None = None
    sheets: Mapping[str, str] = field(default_factory=dict)  # grid_id -> workbook sheet
    exports: Sequence[str] = ()


# --- reading ------------------------------------------------------------------------------------


def read_month_scores(con: Any, month: str, policy: Policy) -> MonthScores | None:
    """The month's scores and the latest scored month before it, or None when ``month`` is not scored.

    Parameters
    ----------
    con : duckdb connection (read-only is enough)
    month : str
        ``YYYY-MM``.
    policy : Policy
        For item names and maxima of an older store (:func:`scoring.export.read_scores`).
    """
    try:
        data = read_scores(con, month, policy)
    except GridpatrolError:  # not scored (yet): the dashboard shows the patrol part only
        return None
    previous_month = con.execute(
        f"SELECT max(month) FROM {c.GRID_MONTH_SCORE} WHERE month < ? AND item_code = ?", [month, c.ITEM_TOTAL]
    ).fetchone()[0]
    previous = read_scores(con, previous_month, policy)["scores"] if previous_month else None
    return MonthScores(
        month,
        data["scores"],
        data["deductions"],
        policy,
        previous_month=previous_month,
        previous=previous,
        notes=int(data["notes"]["message"].notna().sum()),
    )


def export_files(out_dir: Path) -> list[str]:
    """The CSV and Parquet exports in ``out_dir`` (names, sorted)."""
    return sorted(p.name for p in Path(out_dir).iterdir() if p.is_file() and p.suffix in EXPORT_SUFFIXES)


# --- the figures --------------------------------------------------------------------------------


def ranking(scores: MonthScores, grids: pd.DataFrame) -> pd.DataFrame:
    """One row per scored grid, in rank order: ``rank, grid_id, grid_name, grid_type, total``, one
    column per item code, ``change`` (total against the previous scored month; NaN without one).

    ``grids`` gives ``grid_id, grid_name, grid_type`` (a grid no longer in it keeps its scores).
    """
    s = scores.scores
    wide = s.pivot_table(index="grid_id", columns="item_code", values="score", aggfunc="first")
    wide = wide.reindex(columns=[*c.ITEM_CODES, c.ITEM_TOTAL])
    rank = s[s["item_code"] == c.ITEM_TOTAL].set_index("grid_id")["rank"]
    out = wide.rename(columns={c.ITEM_TOTAL: "total"})
    out.insert(0, "rank", pd.to_numeric(rank.reindex(out.index), errors="coerce"))
    info = grids.drop_duplicates("grid_id").set_index("grid_id")[["grid_name", "grid_type"]]
    out = out.join(info, how="left")
    out[["grid_name", "grid_type"]] = out[["grid_name", "grid_type"]].fillna("")
    out["change"] = np.nan
    if scores.previous is not None:
        prev = scores.previous
        before = prev[prev["item_code"] == c.ITEM_TOTAL].set_index("grid_id")["score"]
        out["change"] = out["total"] - before.reindex(out.index)
    out = out.reset_index().sort_values(["rank", "grid_id"], kind="stable", na_position="last")
    return out.reset_index(drop=True)


def lost_by_item(scores: MonthScores) -> pd.Series:
    """Points lost (max − score, as applied) by item code over all grids, in table order."""
    s = scores.scores[scores.scores["item_code"].isin(c.ITEM_CODES)]
    lost = (s["max_score"] - s["score"]).groupby(s["item_code"]).sum()
    return lost.reindex(list(c.ITEM_CODES)).fillna(0.0)


def top_reasons(deductions: pd.DataFrame, n: int = TOP_REASONS) -> pd.DataFrame:
    """The ``n`` most frequent deduction reasons: ``item_code, reason, times, grids, points``.

    Frequency is the sum of the rows' ``count`` (a row is one finding kind of one grid); ties go
    to the larger loss, then the item order.
    """
    cols = ["item_code", "reason", "times", "grids", "points"]
    if deductions is None or not len(deductions):
        return pd.DataFrame(columns=cols)
    d = deductions.assign(
        count=pd.to_numeric(deductions["count"], errors="coerce").fillna(0.0),
        points=pd.to_numeric(deductions["points"], errors="coerce").fillna(0.0),
        reason=deductions["reason"].fillna("").astype(str),
    )
    out = (
        d.groupby(["item_code", "reason"], sort=False)
        .agg(times=("count", "sum"), grids=("grid_id", "nunique"), points=("points", "sum"))
        .reset_index()
    )
    out["_order"] = out["item_code"].map({k: i for i, k in enumerate(c.ITEM_CODES)})
    out = out.sort_values(["times", "points", "_order"], ascending=[False, False, True], kind="stable")
    return out.head(n)[cols].reset_index(drop=True)


def _days_of(month: str) -> list[date]:
    """Every day of ``YYYY-MM`` (its last from :func:`scoring.export.month_end`)."""
    last = month_end(month)
    return [last.replace(day=d) for d in range(1, last.day + 1)]


def calendar(worker_day: pd.DataFrame, month: str) -> pd.DataFrame:
    """Worker × day statuses: index (grid_id, worker_id), one column per ``YYYY-MM-DD`` of the
    month (status or NaN when the worker has no row that day), then ``ok_days``, ``workdays``."""
    days = [d.isoformat() for d in _days_of(month)]
    wd = worker_day.assign(day=worker_day["day"].astype(str))
    wide = (
        wd.drop_duplicates(["grid_id", "worker_id", "day"])
        .pivot(index=["grid_id", "worker_id"], columns="day", values="status")
        .reindex(columns=days)
    )
    scored = (
        wd["workday"].fillna(False).astype(bool)
        & ~wd["exempt"].fillna(False).astype(bool)
        & (wd["status"] != c.STATUS_EXEMPT)
    )
    counts = (
        wd.assign(workdays=scored.astype(int), ok_days=(scored & (wd["status"] == c.STATUS_OK)).astype(int))
        .groupby(["grid_id", "worker_id"])[["ok_days", "workdays"]]
        .sum()
    )
    return wide.join(counts).sort_index()


def flag_rows(worker_day: pd.DataFrame, day_flags: pd.DataFrame | None) -> pd.DataFrame:
    """The month's flags, one row per worker-day and flag: ``worker_id, grid_id, day, flag, detail``.

    From ``day_flags`` (the store's ``day_flag``, with details) when given, else from the
    comma-separated ``flags`` of ``worker_day``.
    """
    cols = ["worker_id", "grid_id", "day", "flag", "detail"]
    if day_flags is not None:
        f = day_flags.assign(
            worker_id=day_flags["worker_id"].astype(str),
            day=pd.to_datetime(day_flags["date"].astype(str).str.slice(0, 10)).dt.strftime("%Y-%m-%d"),
            flag=day_flags["flag"].astype(str),
            detail=day_flags["detail"].fillna("").astype(str) if "detail" in day_flags else "",
        )
        days = set(worker_day["day"].astype(str))
        f = f[f["day"].isin(days)] if days else f.iloc[0:0]
        if "grid_id" not in f or f["grid_id"].isna().any():
            grid = worker_day.drop_duplicates(["worker_id", "day"]).set_index(["worker_id", "day"])["grid_id"]
            known = f.set_index(["worker_id", "day"]).index.map(grid.to_dict())
            f["grid_id"] = f["grid_id"].where(f["grid_id"].notna(), known) if "grid_id" in f else known
        f["grid_id"] = f["grid_id"].astype(str)
    elif "flags" in worker_day.columns:
        w = worker_day[worker_day["flagged"].astype(bool)] if "flagged" in worker_day else worker_day
        f = w.assign(flag=w["flags"].astype(str).str.split(",")).explode("flag")
        f = f.assign(flag=f["flag"].str.strip(), detail="")
        f = f[f["flag"] != ""]
    else:
        return pd.DataFrame(columns=cols)
    order = {k: i for i, k in enumerate(FLAGS)}
    f = f.assign(_o=f["flag"].map(order).fillna(len(FLAGS)))
    f = f.sort_values(["_o", "flag", "day", "worker_id"], kind="stable")
    return f[cols].drop_duplicates().reset_index(drop=True)


# --- the page -----------------------------------------------------------------------------------


def write_dashboard(
    out_dir: Path,
    month: str,
    stats: pd.DataFrame,
    worker_day: pd.DataFrame,
    links: DashboardLinks,
    scores: MonthScores | None = None,
    day_flags: pd.DataFrame | None = None,
) -> Path:
    """Write ``out_dir/index.html``, the month's dashboard.

    Parameters
    ----------
    out_dir : Path
        ``out/YYYY-MM``.
    month : str
    stats : DataFrame
        :func:`maps.build.grid_month_stats` (+ coverage): ``grid_id, grid_name, grid_type,
        workdays, ok_days, compliance, patrol_km, patrol_h``.
    worker_day : DataFrame
        The month's ``worker_day`` with ``day`` (``YYYY-MM-DD``) and ``flagged``.
    links : DashboardLinks
    scores : MonthScores, optional
        Without it (the month not scored yet) the page shows the patrol sections and says so.
    day_flags : DataFrame, optional
        The store's ``day_flag`` rows (``worker_id, date, flag, detail``).
    """
    out_dir = Path(out_dir)
    flags = flag_rows(worker_day, day_flags)
    unit = scores.policy.export.unit if scores is not None else ""
    month_zh = f"{month[:4]}年{month[5:7]}月"
    title = f"{month_zh} 基础网格巡查与考核看板"
    body = [
        f"<header><h1>{html_text(unit)} {title}</h1>",
        f"<p class='sub'>{html_text(month)} · {len(stats)} 个网格 · 离线页面，打印为 A4 横向</p></header>",
        _key_figures(stats, worker_day, flags, scores, links),
        _ranking_section(scores, stats, links),
        _lost_section(scores),
        _patrol_section(month, stats, worker_day, flags, links),
        _flags_section(flags, links),
        _links_section(stats, links),
        "<footer>重点人员、特殊人群、关爱对象只显示编号，不显示姓名和地址。"
        "地图页面的脚本与样式在 lib/ 目录（开源许可见 lib/licenses/）。</footer>",
    ]
    doc = (
        "<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html_text(month)} 网格巡查与考核看板</title><style>{DASHBOARD_CSS}</style></head>"
        f"<body>{''.join(body)}<script>{SORT_JS}</script></body></html>"
    )
    page = out_dir / INDEX_PAGE
    out_dir.mkdir(parents=True, exist_ok=True)
    page.write_text(check_offline(doc, str(page)), encoding="utf-8")
    return page


def _key_figures(
    stats: pd.DataFrame,
    worker_day: pd.DataFrame,
    flags: pd.DataFrame,
    scores: MonthScores | None,
    links: DashboardLinks,
) -> str:
    cards = []
    if scores is not None:
        r = ranking(scores, stats)
        mean = r["total"].mean()
        change = ""
        if scores.previous_month is not None and r["change"].notna().any():
            change = f"<small>较 {html_text(scores.previous_month)} {signed(r['change'].mean())}</small>"
        cards.append(card("平均总分", f"{fmt_number(mean)}", change))
        best, worst = r.iloc[0], r.iloc[-1]
        for label, g in (("最高", best), ("最低", worst)):
            who = f"{grid_link(g['grid_id'], links)} {html_text(short_text(g['grid_name'], 12))}"
            cards.append(card(label, fmt_number(g["total"]), f"<small>{who}</small>"))
    wd, ok = int(stats["workdays"].sum()), int(stats["ok_days"].sum())
    cards.append(card("工作日巡查达标率", f"{ok / wd:.0%}" if wd else "—", f"<small>{ok}/{wd} 人·工作日</small>"))
    status = worker_day["status"].value_counts()
    cards.append(
        card(
            "未巡查 / 巡查不足",
            f"{int(status.get(c.STATUS_ABSENT, 0))} / {int(status.get(c.STATUS_SHORT, 0))}",
            "<small>人·工作日</small>",
        )
    )
    flagged = flags.drop_duplicates(["worker_id", "day"])
    cards.append(card("异常标记", f"{len(flagged)}", "<small>人·天（见第四部分）</small>"))
    notes = []
    if scores is None:
        notes.append("本月尚未计分：排名与失分部分在计分后出现（python -m trajectory.run --month）。")
    else:
        missing = sorted(set(scores.scores["missing_tables"].fillna("").astype(str)) - {""})
        if missing:
            notes.append(f"本月缺少指标表仍已计分：{html_text('、'.join(missing))}。")
        if scores.notes:
            notes.append(f"计分提示 {scores.notes} 条，见考核工作簿“说明”页。")
    note = "".join(f"<p class='warn'>{n}</p>" for n in notes)
    return f"<section id='kpi'><div class='cards'>{''.join(cards)}</div>{note}</section>"


def _ranking_section(scores: MonthScores | None, stats: pd.DataFrame, links: DashboardLinks) -> str:
    if scores is None:
        return ""
    r = ranking(scores, stats)
    policy = scores.policy
    maxima = scores.scores.groupby("item_code")["max_score"].first()
    with_change = scores.previous is not None
    heads = [
        ("排名", "num"),
        ("网格编号", "text"),
        ("名称", "text"),
        ("类型", "text"),
        (f"总分<br><small>({fmt_number(maxima.get(c.ITEM_TOTAL, 100))})</small>", "num"),
        *(
            (
                f"{html_text(item_code_label(k))}<br><small>{html_text(policy.items[k].name)}"
                f"<br>({fmt_number(maxima.get(k, policy.items[k].max_score))})</small>",
                "num",
            )
            for k in c.ITEM_CODES
        ),
    ]
    if with_change:
        heads.append((f"较上月<br><small>{html_text(scores.previous_month)}</small>", "num"))
    if links.workbook:
        heads.append(("<span class='wb'>工作簿</span>", ""))
    head = "".join(
        f"<th{' data-sort=' + repr(kind) + ' tabindex=0' if kind else ''}>{text}</th>" for text, kind in heads
    )
    rows = []
    for row in r.to_dict("records"):  # one per grid
        gid = str(row["grid_id"])
        cells = [
            num_td(row["rank"], "{:.0f}"),
            f"<td class='gid' data-v='{html_text(gid)}'>{grid_link(gid, links)}</td>",
            f"<td class='name' data-v='{html_text(row['grid_name'])}'>{html_text(row['grid_name'])}</td>",
            f"<td class='nw'>{html_text(c.GRID_TYPE_ZH.get(str(row['grid_type']), row['grid_type']))}</td>",
            num_td(row["total"], cls="total"),
            *(score_td(row[k], maxima.get(k, policy.items[k].max_score)) for k in c.ITEM_CODES),
        ]
        if with_change:
            cells.append(change_td(row["change"]))
        if links.workbook:
            href = workbook_href(links, gid)
            sheet = links.sheets.get(gid)
            cells.append(f"<td class='wb nw'><a href='{html_text(href)}'>工作表 {html_text(sheet or '')}</a></td>")
        rows.append(f"<tr data-grid='{html_text(gid)}'>{''.join(cells)}</tr>")
    means = [
        "<td colspan='4'>平均</td>",
        num_td(r["total"].mean(), cls="total"),
        *(num_td(r[k].mean()) for k in c.ITEM_CODES),
    ]
    if with_change:
        means.append(num_td(r["change"].mean(), "{:+.1f}"))
    if links.workbook:
        means.append("<td class='wb'></td>")
    workbook = (
        f"；每行可打开网格页面与<a href='{html_text(url_path(links.workbook))}'>考核工作簿</a>中该网格的工作表"
        if links.workbook
        else "；考核工作簿尚未写出"
    )
    return (
        "<section id='ranking'><h2>一、考核排名 <small>（点击表头排序；单位：分，保留一位小数；"
        f"浅红 = 该项有扣分，越红扣得越多{workbook}）</small></h2>"
        f"<table id='ranking-table' class='rank sortable'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody><tfoot><tr>{''.join(means)}</tr></tfoot></table></section>"
    )


def _lost_section(scores: MonthScores | None) -> str:
    if scores is None:
        return ""
    lost = lost_by_item(scores)
    policy = scores.policy
    n_grids = scores.scores["grid_id"].nunique()
    bars = [
        (item_label(k, policy), float(v), f"{fmt_number(v)} 分", "#c62828" if v > 0 else "#bdbdbd", None)
        for k, v in lost.items()
    ]
    chart = bar_chart(bars, "lost-chart", f"各项失分合计（{n_grids} 个网格，单位：分）", label_w=210)
    top = top_reasons(scores.deductions)
    rows = "".join(
        f"<tr><td>{i}</td><td>{html_text(t.reason)}</td><td>{html_text(item_label(str(t.item_code), policy))}</td>"
        f"<td class='num'>{fmt_count(t.times)}</td><td class='num'>{int(t.grids)}</td>"
        f"<td class='num'>{fmt_number(t.points)}</td></tr>"
        for i, t in enumerate(top.itertuples(index=False), start=1)
    )
    table = (
        "<table id='top-reasons' class='plain'><thead><tr><th>#</th><th>扣分原因</th><th>考核项目</th>"
        "<th>次数</th><th>涉及网格</th><th>扣分合计</th></tr></thead>"
        f"<tbody>{rows or '<tr><td colspan=6>本月无扣分</td></tr>'}</tbody></table>"
    )
    total = float(lost.sum())
    return (
        f"<section id='lost'><h2>二、失分在哪里 <small>（全部网格共失 {fmt_number(total)} 分）</small></h2>"
        f"<div class='two'><div>{chart}</div><div><h3>最常见的 {TOP_REASONS} 个扣分原因</h3>{table}"
        "<p class='note'>次数 = 扣分明细的次数之和；扣分为明细合计（未按满分封底）。</p></div></div></section>"
    )


def _patrol_section(
    month: str, stats: pd.DataFrame, worker_day: pd.DataFrame, flags: pd.DataFrame, links: DashboardLinks
) -> str:
    cal = calendar(worker_day, month)
    days = _days_of(month)
    flagged = {(str(w), str(d)) for w, d in flags[["worker_id", "day"]].itertuples(index=False)}
    head = "".join(
        f"<th class='d{' we' if d.weekday() >= 5 else ''}'>{d.day}<br><small>{_WEEKDAY_ZH[d.weekday()]}</small></th>"
        for d in days
    )
    rows = []
    for (gid, wid), row in cal.iterrows():
        cells = []
        for d in days:
            day = d.isoformat()
            status = row[day]
            cells.append(calendar_td(str(wid), day, status, (str(wid), day) in flagged, links))
        k, n = int(row["ok_days"]), int(row["workdays"])
        rate = f"{k / n:.0%}" if n else "—"
        rows.append(
            f"<tr data-worker='{html_text(wid)}'><th class='w'>{html_text(wid)}</th>"
            f"<td class='g'>{grid_link(str(gid), links)}</td>{''.join(cells)}"
            f"<td class='num rate'>{rate} <small>{k}/{n}</small></td></tr>"
        )
    legend = "".join(
        f"<span><i style='background:{col}'>{sym}</i>{c.STATUS_ZH[s]} <small>{s}</small></span>"
        for s, (col, sym) in STATUS_STYLE.items()
    )
    legend += "<span><i class='flag'>!</i>有异常标记</span><span><i class='none'></i>无记录</span>"
    table = (
        f"<table id='calendar' class='cal'><thead><tr><th>网格员</th><th>网格</th>{head}"
        f"<th>达标率<br><small>达标/应巡</small></th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    from maps.layers import compliance_colors  # the overview's colours (maps.layers → month_data imports this module)

    st = stats.sort_values(["compliance", "grid_id"], na_position="first", kind="stable")
    colours = compliance_colors(st["compliance"].to_numpy(dtype=float))
    bars = [
        (
            f"{g.grid_id} {short_text(g.grid_name)}",
            float(g.compliance) * 100 if pd.notna(g.compliance) else 0.0,
            f"{g.compliance:.0%}（{g.ok_days}/{g.workdays}）" if pd.notna(g.compliance) else "无考核工作日",
            str(colour),
            links.grid_pages.get(str(g.grid_id)),
        )
        for g, colour in zip(st.itertuples(index=False), colours, strict=True)
    ]
    chart = bar_chart(
        bars,
        "compliance-chart",
        "各网格巡查达标率（达标工作日 / 应巡工作日，%）",
        label_w=200,
        max_value=100.0,
        bar_h=13,
    )
    return (
        "<section id='patrol' class='page'><h2>三、巡查一览 <small>（专职网格员每日巡查状态；"
        "点击有链接的格子打开当天轨迹回放）</small></h2>"
        f"<div class='legend'>{legend}</div>{table}<div class='compliance'><h3>各网格本月巡查达标率 <small>（由低到高）</small></h3>"
        f"{chart}</div></section>"
    )


def _flags_section(flags: pd.DataFrame, links: DashboardLinks) -> str:
    kinds = list(dict.fromkeys([*(k for k in FLAGS if k in set(flags["flag"])), *flags["flag"]]))
    rows = []
    for kind in kinds:
        f = flags[flags["flag"] == kind]
        evidence = []
        # one item per worker-day: a replayed day matches several others
        for (worker, day, gid), details in f.groupby(["worker_id", "day", "grid_id"], sort=False)["detail"]:
            href = links.playbacks.get((str(worker), str(day)))
            text = f"{html_text(worker)} {str(day)[5:]}"
            if href:
                item = f"<a href='{html_text(url_path(href))}'>{text} 回放</a>"
            else:
                grid = links.grid_pages.get(str(gid))
                item = f"<a href='{html_text(url_path(grid))}'>{text} 网格页面</a>" if grid else text
            said = "；".join(flag_detail_zh(d) for d in details if d)
            if said:
                item += f" <small>{html_text(said)}</small>"
            evidence.append(f"<li>{item}</li>")
        label = FLAG_ZH.get(kind, "")
        rows.append(
            f"<tr data-flag='{html_text(kind)}'><td>{html_text(label or kind)} <small>{html_text(kind)}</small></td>"
            f"<td class='num'>{f[['worker_id', 'day']].drop_duplicates().shape[0]}</td>"
            f"<td class='num'>{f['worker_id'].nunique()}</td><td><ul class='ev'>{''.join(evidence)}</ul></td></tr>"
        )
    body = "".join(rows) or "<tr><td colspan='4'>本月无异常标记</td></tr>"
    return (
        "<section id='flags'><h2>四、本月异常标记 <small>（供核查的线索，不直接扣分）</small></h2>"
        "<table id='flags-table' class='plain'><thead><tr><th>标记</th><th>人·天</th><th>网格员</th>"
        f"<th>证据（网格员 日期 → 轨迹回放或网格页面）</th></tr></thead><tbody>{body}</tbody></table></section>"
    )


def _links_section(stats: pd.DataFrame, links: DashboardLinks) -> str:
    items = []
    if links.overview:
        items.append(f"<li><a href='{html_text(url_path(links.overview))}'>总览地图（各网格巡查达标率）</a></li>")
    if links.workbook:
        items.append(
            f"<li><a href='{html_text(url_path(links.workbook))}'>考核工作簿 {html_text(links.workbook)}</a></li>"
        )
    exports = "".join(f"<li><a href='{html_text(url_path(n))}'>{html_text(n)}</a></li>" for n in links.exports)
    names = stats.set_index("grid_id")["grid_name"].to_dict()
    grids = "".join(f"<li>{grid_link(g, links)} {html_text(names.get(g, ''))}</li>" for g in sorted(links.grid_pages))
    playbacks = "".join(
        f"<li><a href='{html_text(url_path(href))}'>{html_text(w)} {d}</a></li>"
        for (w, d), href in sorted(links.playbacks.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    )
    return (
        "<section id='links'><h2>五、地图与导出</h2><div class='two'>"
        f"<div><ul>{''.join(items)}</ul><h3>数据导出（CSV / Parquet）</h3><ul class='cols'>{exports or '<li>无</li>'}</ul></div>"
        f"<div class='screen'><h3>网格页面（{len(links.grid_pages)} 个）</h3><ul class='cols'>{grids}</ul>"
        f"<details><summary>轨迹回放页面（{len(links.playbacks)} 个）</summary><ul class='cols'>{playbacks}</ul>"
        "</details></div></div></section>"
    )


# the engine's flag details (trajectory.flags: figures only, English) in the centre's words;
# a detail in no known form is shown as written
_DETAIL_ZH = (
    (re.compile(r"stationary ([\d.]+) h in patrol hours \(([^)]*)\)"), r"巡查时段静止 \1 小时（\2）"),
    (re.compile(r"vehicle speed (\d+) min, max (\d+) km/h"), r"车速移动 \1 分钟，最高 \2 km/h"),
    (
        re.compile(r"(\d+) spike point\(s\), (\d+) unexplained jump\(s\), largest ([\d.]+) km"),
        r"孤立跳点 \1 个，无法解释的跳变 \2 次，最大 \3 km",
    ),
    (re.compile(r"(\d+) mock-location point\(s\)"), r"模拟定位点 \1 个"),
    (
        re.compile(r"same track as (\d{4}-\d{2}-\d{2}) \(median offset ([\d.]+) m over (\d+) positions\)"),
        r"同 \1 的轨迹（偏差 \2 m）",
    ),
)


def flag_detail_zh(detail: str) -> str:
    """A flag's detail (``trajectory.flags``) in Chinese; any other text unchanged.

    Examples
    --------
    >>> flag_detail_zh("stationary 2.3 h in patrol hours (14:29–16:47)")
    '巡查时段静止 2.3 小时（14:29–16:47）'
    >>> flag_detail_zh("same track as 2026-10-08 (median offset 0.0 m over 60 positions)")
    '同 2026-10-08 的轨迹（偏差 0.0 m）'
    >>> flag_detail_zh("其他说明")
    '其他说明'
    """
    text = str(detail)
    for pattern, zh in _DETAIL_ZH:
        m = pattern.fullmatch(text)
        if m:
            return m.expand(zh)
    return text


__all__ = [
    "DashboardLinks",
    "FLAG_ZH",
    "MonthScores",
    "STATUS_STYLE",
    "calendar",
    "export_files",
    "flag_detail_zh",
    "flag_rows",
    "lost_by_item",
    "ranking",
    "read_month_scores",
    "relative_href",
    "top_reasons",
    "write_dashboard",
]
