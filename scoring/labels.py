"""Names the workbook, the score exports and the map dashboard share: file, sheet and item labels.

``workbook_name`` and ``grid_sheet_names`` are what the dashboard links to; ``item_label`` is how
every page and sheet names an assessment item (``6①(6.1a) 事项上报数量``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from scoring.policy import Policy
from trajectory import contract as c
from trajectory.errors import InputError

# our own tables (not in the contract), replaced per month with the scores
EVENT_FLAG = "event_flag"
EVENT_CATEGORY = "event_category_report"
SCORE_NOTE = "score_note"
MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
SCORE_FORMAT = "0.0"


def workbook_name(month: str) -> str:
    """``考核得分_YYYY-MM.xlsx``."""
    return f"考核得分_{month}.xlsx"


def month_end(month: str) -> date:
    """The month's last day: the default 制表日期 (deterministic, so re-runs stay byte-identical).

    >>> month_end("2026-02")
    datetime.date(2026, 2, 28)
    """
    first = datetime.strptime(month + "-01", "%Y-%m-%d").date()
    return (pd.Timestamp(first) + pd.offsets.MonthEnd(0)).date()


def month_zh(month: str) -> str:
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


# --- command line ----------------------------------------------------------------------------


def check_month(month: str) -> None:
    """Refuse anything but ``YYYY-MM``: an :class:`~trajectory.errors.InputError` of ``--month`` (exit 2).

    >>> check_month("2026-13")
    Traceback (most recent call last):
    ...
    trajectory.errors.InputError: --month: month was '2026-13' but is expected as YYYY-MM (e.g. 2026-10)
    """
    if not MONTH_RE.match(month):
        raise InputError("--month", f"month was '{month}' but is expected as YYYY-MM (e.g. 2026-10)")


__all__ = [
    "EVENT_FLAG",
    "EVENT_CATEGORY",
    "SCORE_NOTE",
    "MONTH_RE",
    "SCORE_FORMAT",
    "FIXED_SHEETS",
    "workbook_name",
    "month_end",
    "month_zh",
    "seed_number",
    "item_code_label",
    "item_label",
    "public_path_text",
    "grid_sheet_names",
    "check_month",
]
