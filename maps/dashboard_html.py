"""The small HTML pieces of the dashboard (:mod:`maps.dashboard`): table cells, cards, links, the bar chart, its style and its one script.

Every value is escaped here (:func:`maps.escape.html_text`); links are our own file names through
:func:`maps.escape.url_path`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from maps.escape import html_text, url_path
from trajectory import contract as c

if TYPE_CHECKING:
    from maps.dashboard import DashboardLinks

# worker-day status -> (calendar cell colour, symbol)
STATUS_STYLE: Mapping[str, tuple[str, str]] = {
    c.STATUS_OK: ("#1a9641", "✓"),
    c.STATUS_SHORT: ("#fdae61", "△"),
    c.STATUS_ABSENT: ("#d7191c", "✗"),
    c.STATUS_EXEMPT: ("#80b1d3", "免"),
    c.STATUS_OFF: ("#e0e0e0", "·"),
}


# --- small pieces -------------------------------------------------------------------------------


def bar_chart(
    bars: Sequence[tuple[str, float, str, str, str | None]],
    css_id: str,
    caption: str,
    label_w: int = 200,
    max_value: float | None = None,
    width: int = 560,
    bar_h: int = 16,
) -> str:
    """A horizontal bar chart as inline SVG: (label, value, value text, colour, link or None) per bar.

    Labels and value texts are plain text (escaped here) and printed beside each bar, so the
    numbers read without hovering and on paper.
    """
    gap = 5
    value_w = 130
    plot_w = width - label_w - value_w
    top = max([max_value or 0.0, *(b[1] for b in bars)]) or 1.0
    height = len(bars) * (bar_h + gap) + gap
    parts = [
        f"<svg class='gp-chart' id='{css_id}' role='img' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' xmlns='http://www.w3.org/2000/svg'><title>{html_text(caption)}</title>"
    ]
    for i, (label, value, text, colour, href) in enumerate(bars):
        y = gap + i * (bar_h + gap)
        w = max(0.0, value) / top * plot_w
        label_svg = f"<text x='{label_w - 6}' y='{y + bar_h - 4}' text-anchor='end'>{html_text(label)}</text>"
        if href:
            label_svg = f"<a href='{html_text(url_path(href))}'>{label_svg}</a>"
        parts.append(
            f"<g class='row'>{label_svg}"
            f"<rect class='bar' x='{label_w}' y='{y}' width='{w:.1f}' height='{bar_h}' fill='{colour}'></rect>"
            f"<text class='v' x='{label_w + w + 4:.1f}' y='{y + bar_h - 4}'>{html_text(text)}</text></g>"
        )
    parts.append("</svg>")
    return f"<figure><figcaption>{html_text(caption)}</figcaption>{''.join(parts)}</figure>"


def calendar_td(worker: str, day: str, status: Any, flagged: bool, links: DashboardLinks) -> str:
    if not isinstance(status, str):
        return "<td class='s none' data-status=''></td>"
    colour, symbol = STATUS_STYLE.get(status, ("#ffffff", "?"))
    mark = "<b>!</b>" if flagged else ""
    tip = html_text(f"{worker} {day} {c.STATUS_ZH.get(status, status)}{'，有异常标记' if flagged else ''}")
    inner = f"{symbol}{mark}"
    href = links.playbacks.get((worker, day))
    if href:
        inner = f"<a href='{html_text(url_path(href))}' title='{tip}'>{inner}</a>"
    cls = f"s s-{html_text(status)}{' flagged' if flagged else ''}"
    return f"<td class='{cls}' data-status='{html_text(status)}' style='background:{colour}' title='{tip}'>{inner}</td>"


def card(label: str, value: str, extra: str = "") -> str:
    return f"<div class='card'><div class='k'>{label}</div><div class='v'>{value}</div>{extra}</div>"


def grid_link(gid: object, links: DashboardLinks) -> str:
    href = links.grid_pages.get(str(gid))
    text = html_text(gid)
    return f"<a href='{html_text(url_path(href))}'>{text}</a>" if href else text


def workbook_href(links: DashboardLinks, gid: str) -> str:
    """The workbook with the grid's sheet as the fragment (``#'G01'!A1``, what Excel follows)."""
    assert links.workbook is not None
    sheet = links.sheets.get(gid)
    href = url_path(links.workbook)
    return href + "#" + url_path(f"'{sheet}'!A1") if sheet else href


def num_td(value: Any, fmt: str = "{:.1f}", cls: str = "") -> str:
    """A number cell: shown rounded to 0.1 (as the workbook), sorted by its full value."""
    classes = f"num {cls}".strip()
    if value is None or pd.isna(value):
        return f"<td class='{classes}' data-v=''>—</td>"
    v = float(value)
    return f"<td class='{classes}' data-v='{v:.4f}'>{fmt.format(round(v, 1) + 0.0)}</td>"


def score_td(value: Any, max_score: Any) -> str:
    if value is None or pd.isna(value):
        return "<td class='num' data-v=''>—</td>"
    v, top = float(value), float(max_score or 0)
    lost = (top - v) / top if top > 0 else 0.0
    style = f" style='background:rgba(215,25,28,{0.12 + 0.6 * min(lost, 1.0):.2f})'" if lost > 1e-9 else ""
    return f"<td class='num' data-v='{v:.4f}'{style}>{fmt_number(v)}</td>"


def change_td(change: Any) -> str:
    if change is None or pd.isna(change):
        return "<td class='num' data-v=''>—</td>"
    v = round(float(change), 1) + 0.0
    cls = "up" if v > 0 else "down" if v < 0 else ""
    arrow = "▲" if v > 0 else "▼" if v < 0 else ""
    return f"<td class='num nw {cls}' data-v='{v:.4f}'>{arrow}{signed(v)}</td>"


def fmt_number(value: Any) -> str:
    """A score as the workbook prints it: rounded to 0.1."""
    if value is None or pd.isna(value):
        return "—"
    return f"{round(float(value), 1) + 0.0:.1f}"


def signed(value: Any) -> str:
    if value is None or pd.isna(value):
        return "—"
    v = round(float(value), 1) + 0.0
    return f"{v:+.1f}".replace("-", "−")


def fmt_count(value: Any) -> str:
    v = float(value)
    return f"{int(v)}" if v.is_integer() else f"{v:.1f}"


def short_text(text: object, n: int = 10) -> str:
    s = str(text)
    return s if len(s) <= n else s[: n - 1] + "…"


def relative_href(path: Path, out_dir: Path) -> str:
    """``path`` relative to ``out_dir``, POSIX separators (a link of the dashboard)."""
    return Path(os.path.relpath(Path(path).resolve(), Path(out_dir).resolve())).as_posix()


# sorts the table whose header was clicked by the cells' data-v (numbers or text); reads no data
SORT_JS = """
(function () {
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      var kind = th.getAttribute('data-sort');
      if (!kind) { return; }
      function sort() {
        var asc = th.getAttribute('aria-sort') !== 'ascending';
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].getAttribute('data-v') || '', y = b.cells[col].getAttribute('data-v') || '';
          if (kind === 'num') {
            var u = x === '' ? Infinity : parseFloat(x), v = y === '' ? Infinity : parseFloat(y);
            if (u === v) { return 0; }
            return (asc ? 1 : -1) * (u < v ? -1 : 1);
          }
          return (asc ? 1 : -1) * x.localeCompare(y, 'zh-CN');
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener('click', sort);
      th.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sort(); } });
    });
  });
})();
"""

DASHBOARD_CSS = """
body{font-family:'Noto Sans CJK SC','Source Han Sans SC','Microsoft YaHei','PingFang SC',sans-serif;margin:16px 24px;
 color:#212121;font-size:14px;max-width:1400px}
h1{font-size:22px;margin:0}h2{font-size:17px;margin:22px 0 8px;border-bottom:2px solid #1a237e;padding-bottom:3px}
h3{font-size:14px;margin:12px 0 6px}h2 small,h3 small{font-weight:normal;color:#555;font-size:12px}
.sub{color:#555;margin:2px 0 8px}a{color:#0d47a1}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #c5cae9;border-radius:6px;padding:6px 12px;min-width:120px}
.card .k{color:#555;font-size:12px}.card .v{font-size:24px;font-weight:bold}.card small{color:#555}
.warn{color:#b71c1c;margin:6px 0}.note{color:#555;font-size:12px}
table{border-collapse:collapse}th,td{border:1px solid #bdbdbd;padding:2px 4px}
thead th{background:#e8eaf6;font-weight:bold;font-size:12px;vertical-align:bottom}
th[data-sort]{cursor:pointer}th[aria-sort=ascending]::after{content:' ▲'}th[aria-sort=descending]::after{content:' ▼'}
.rank{font-size:12px}.rank td{overflow-wrap:anywhere}.rank td.gid{min-width:5.5em}
.rank td.name{min-width:7.5em;max-width:10em}.rank td.nw{white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.total{font-weight:bold;background:#fffde7}
tfoot td{font-weight:bold;background:#f5f5f5}
.up{color:#1b5e20}.down{color:#b71c1c}
.two{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}.two>div{flex:1 1 420px;min-width:0}
figure{margin:0}figcaption{font-size:12px;color:#555;margin-bottom:2px}
svg.gp-chart{font-size:12px;max-width:100%;height:auto}svg.gp-chart text{fill:#212121}
.plain{font-size:12px}.plain td{vertical-align:top}
.cal{font-size:11px}.cal th.d,.cal td.s{width:20px;min-width:20px;text-align:center;padding:1px}
.cal th.we{color:#b71c1c}.cal th.w{max-width:8em;overflow-wrap:anywhere;text-align:left;font-weight:normal}
.cal td.g{max-width:8em;overflow-wrap:anywhere}.cal td.rate{white-space:nowrap}
.cal td.s a{display:block;color:inherit;text-decoration:none}.cal td.flagged{outline:2px solid #4a148c;outline-offset:-2px}
.cal td.s b{color:#4a148c}.cal td.none{background:#fff}
.legend{display:flex;flex-wrap:wrap;gap:12px;font-size:12px;margin-bottom:6px}
.legend i{display:inline-block;width:16px;height:16px;line-height:16px;text-align:center;font-style:normal;
 border:1px solid #757575;margin-right:4px;vertical-align:middle}
.legend i.flag{color:#4a148c;font-weight:bold;outline:2px solid #4a148c;outline-offset:-2px}
ul.ev{margin:0;padding-left:1.2em;columns:2}ul.ev small{color:#555}
ul.cols{columns:3;margin:4px 0}footer{margin-top:24px;color:#555;font-size:12px}
@page{size:A4 landscape;margin:10mm}
@media print{body{margin:0;font-size:10px;max-width:none}h1{font-size:16px}h2{font-size:13px;margin:8px 0 4px;break-after:avoid}
 section.page,.compliance{break-before:page}tr{break-inside:avoid}thead{display:table-header-group}
 .card{padding:2px 8px}.card .v{font-size:16px}.cards{gap:6px}
 .rank{font-size:8.5px;line-height:1.15}.rank th,.rank td{padding:1px 2px}.rank td.name{min-width:9em}
 .rank .wb,.rank th:last-child:has(.wb){display:none}
 .cal{font-size:8px;line-height:1.1}.cal th.d,.cal td.s{width:16px;min-width:16px;padding:0}.cal td,.cal th{padding:0 2px}
 svg.gp-chart{max-height:165mm;width:auto}details,.screen{display:none}a{color:inherit;text-decoration:none}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


__all__ = [
    "STATUS_STYLE",
    "bar_chart",
    "calendar_td",
    "card",
    "grid_link",
    "workbook_href",
    "num_td",
    "score_td",
    "change_td",
    "fmt_number",
    "signed",
    "fmt_count",
    "short_text",
    "relative_href",
    "SORT_JS",
    "DASHBOARD_CSS",
]
