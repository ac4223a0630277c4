"""The month dashboard (``out/YYYY-MM/index.html``, issue 15) against the store it is drawn from.

A real workspace: the map fixtures' worker-days and points, two scored months (``grid_month_score``,
``deduction``) and ``day_flag`` rows in ``patrol.duckdb``, rendered by ``render_workspace_month``.
Figures are checked against SQL on the store; the page in headless Chromium with the network blocked.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import duckdb
import pandas as pd
import pytest
from maps_fixtures import DAY_FLAGS, MONTH, open_page

from maps.build import with_day_flags
from maps.dashboard import FLAG_ZH, flag_detail_zh, flag_rows, top_reasons
from scoring.export import grid_sheet_names, item_label, workbook_name
from scoring.policy import load_policy
from trajectory.contract import ITEM_CODES, ITEM_TOTAL, STATUSES
from trajectory.flags import FLAGS, day_flags
from trajectory.run import month_days

# A4 landscape: 297 mm less 2 × 10 mm margins, at 96 CSS px per inch
A4_PRINT_WIDTH_PX = round((297 - 20) / 25.4 * 96)


def _store(paths, sql: str, params=()) -> pd.DataFrame:
    con = duckdb.connect(str(paths.duckdb), read_only=True)
    try:
        return con.execute(sql, list(params)).df()
    finally:
        con.close()


def _index(scored) -> tuple[Path, str]:
    paths, pages = scored
    page = paths.out_month(MONTH) / "index.html"
    assert pages[-1] == page
    return page, page.read_text(encoding="utf-8")


# --- the figures, without a browser -----------------------------------------------------------


def test_every_engine_flag_has_a_chinese_name_and_detail():
    assert set(FLAG_ZH) == set(FLAGS)
    # the details trajectory.flags writes today read in Chinese (a new wording shows as written)
    day = pd.DataFrame(
        {
            "worker_id": ["W1"],
            "grid_id": ["G01"],
            "date": ["2026-10-08"],
            "still_s": [9000.0],
            "still_from": ["14:29"],
            "still_to": ["16:59"],
            "vehicle_s": [1380.0],
            "max_speed_kmh": [44.0],
            "dropped_spike": [2],
            "jumps": [1],
            "max_jump_m": [2700.0],
            "dropped_mock": [35],
        }
    )
    details = day_flags(day, load_policy())
    assert set(details["flag"]) == set(FLAGS) - {"replay"}
    for text in details["detail"]:
        zh = flag_detail_zh(text)
        assert zh != text and not re.search(r"[a-z]{3,}", zh.replace("km/h", "")), zh


def test_day_flag_rows_reach_worker_day_flags():
    """A replay lives only in day_flag (found at month end): the maps must flag that day too."""
    wd = pd.DataFrame(
        {
            "worker_id": ["W1", "W1", "W2"],
            "date": ["2026-10-08", "2026-10-09", "2026-10-08"],
            "flags": [None, "x", None],
        }
    )
    df = pd.DataFrame([r[:4] for r in DAY_FLAGS], columns=["worker_id", "grid_id", "date", "flag"])
    out = with_day_flags(wd, df)
    assert out["flags"].tolist() == ["replay", "x,mock_location,replay", "vehicle"]


def test_top_reasons_and_flag_rows_from_the_store(scored):
    paths, _ = scored
    ded = _store(paths, "SELECT * FROM deduction WHERE month = ?", [MONTH])
    top = top_reasons(ded)
    # by the sum of counts: 2.5 short days 1+2+3, 6.2 false events 1+2, the complaint 1
    assert top[["item_code", "times", "grids"]].values.tolist() == [["2.5", 6.0, 3], ["6.2", 3.0, 2], ["1", 1.0, 1]]
    assert top["points"].round(4).tolist() == [1.2, 3.0, 1.0]
    wd = _store(paths, "SELECT * FROM worker_day").assign(day=lambda d: d["date"].astype(str).str[:10])
    flags = flag_rows(wd, _store(paths, "SELECT * FROM day_flag"))
    assert sorted(map(tuple, flags[["worker_id", "day", "flag"]].values.tolist())) == sorted(
        (w, d, f) for w, _, d, f, _ in DAY_FLAGS
    )


# --- the page ---------------------------------------------------------------------------------


def test_dashboard_is_one_offline_page_with_every_section(scored):
    page, text = _index(scored)
    # self-contained: no script, stylesheet or image file, the lib/ beside it for the maps
    assert not re.search(r"<(script|link|img)\b[^>]*\b(src|href)=", text)
    for section in ("kpi", "ranking", "lost", "patrol", "flags", "links"):
        assert f"id='{section}'" in text, section
    for words in ("考核排名", "失分在哪里", "巡查一览", "本月异常标记", "地图与导出"):
        assert words in text
    # item labels as the workbook prints them, read from scoring.export (not typed again here)
    policy = load_policy()
    for code in ITEM_CODES:
        assert item_label(code, policy).split(" ")[0] in text


@pytest.mark.browser
def test_ranking_rows_equal_the_store(driver, scored):
    paths, _ = scored
    page, _ = _index(scored)
    assert open_page(driver, page, is_map=False) == []
    shown = driver.execute_script(
        "return Array.from(document.querySelectorAll('#ranking-table tbody tr')).map(function(r){"
        " return Array.from(r.cells).map(function(c){ return c.textContent.trim(); }); });"
    )
    store = _store(paths, "SELECT grid_id, item_code, score, rank FROM grid_month_score WHERE month = ?", [MONTH])
    prev = _store(
        paths, "SELECT grid_id, score FROM grid_month_score WHERE month = '2026-09' AND item_code = ?", [ITEM_TOTAL]
    )
    totals = store[store["item_code"] == ITEM_TOTAL].sort_values("rank")
    assert [r[1] for r in shown] == totals["grid_id"].tolist()  # one row per scored grid, in rank order
    wide = store.pivot(index="grid_id", columns="item_code", values="score")
    before = prev.set_index("grid_id")["score"]
    sheets = grid_sheet_names(totals["grid_id"])
    for row in shown:
        gid = row[1]
        rank = int(totals.set_index("grid_id").loc[gid, "rank"])
        assert row[0] == str(rank)
        # 排名, 网格编号, 名称, 类型, 总分, the 14 items, 较上月, 工作簿
        assert float(row[4]) == pytest.approx(wide.loc[gid, ITEM_TOTAL], abs=0.05 + 1e-9)
        assert row[4] == f"{round(wide.loc[gid, ITEM_TOTAL], 1):.1f}"
        for j, code in enumerate(ITEM_CODES):
            assert float(row[5 + j]) == pytest.approx(wide.loc[gid, code], abs=0.05 + 1e-9), (gid, code)
        change = wide.loc[gid, ITEM_TOTAL] - before.loc[gid]
        assert float(row[19].lstrip("▲▼").replace("−", "-")) == pytest.approx(change, abs=0.05 + 1e-9)
        assert row[20] == f"工作表 {sheets[gid]}"
    links = driver.execute_script(
        "return Array.from(document.querySelectorAll('#ranking-table tbody tr')).map(function(r){"
        " return Array.from(r.querySelectorAll('a')).map(function(a){ return a.getAttribute('href'); }); });"
    )
    for row, hrefs in zip(shown, links, strict=True):
        assert hrefs[0] == f"grids/{row[1]}.html"  # the grid's page
        assert unquote(hrefs[1]) == f"{workbook_name(MONTH)}#'{sheets[row[1]]}'!A1"  # its workbook sheet


@pytest.mark.browser
def test_ranking_sorts_by_a_clicked_column(driver, scored):
    page, _ = _index(scored)
    assert open_page(driver, page, is_map=False) == []
    col = 5 + ITEM_CODES.index("6.2")

    def column(j: int) -> list[float]:
        return [
            float(v)
            for v in driver.execute_script(
                "var j = arguments[0]; return Array.from(document.querySelectorAll('#ranking-table tbody tr'))"
                ".map(function(r){ return r.cells[j].textContent; });",
                j,
            )
        ]

    head = "document.querySelectorAll('#ranking-table thead th')[arguments[0]].click();"
    driver.execute_script(head, col)
    assert column(col) == sorted(column(col))
    driver.execute_script(head, col)
    assert column(col) == sorted(column(col), reverse=True)
    driver.execute_script(head, 4)  # 总分, ascending: the worst grid first
    assert column(4) == sorted(column(4))
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []


@pytest.mark.browser
def test_charts_calendar_and_flags_match_the_store(driver, scored):
    paths, _ = scored
    page, _ = _index(scored)
    assert open_page(driver, page, is_map=False) == []
    n_grids = _store(paths, "SELECT count(DISTINCT grid_id) AS n FROM grid_month_score WHERE month = ?", [MONTH])
    assert driver.execute_script("return document.querySelectorAll('#lost-chart rect.bar').length") == len(ITEM_CODES)
    assert driver.execute_script("return document.querySelectorAll('#compliance-chart rect.bar').length") == int(
        n_grids["n"].iloc[0]
    )
    # every bar of lost points carries its figure as text: readable without hovering
    lost = _store(
        paths,
        "SELECT item_code, sum(max_score - score) AS lost FROM grid_month_score WHERE month = ? AND item_code <> ? "
        "GROUP BY 1",
        [MONTH, ITEM_TOTAL],
    ).set_index("item_code")["lost"]
    texts = driver.execute_script(
        "return Array.from(document.querySelectorAll('#lost-chart text.v')).map(function(t){ return t.textContent; });"
    )
    assert texts == [f"{round(lost.get(code, 0.0), 1):.1f} 分" for code in ITEM_CODES]
    assert driver.execute_script("return document.querySelectorAll('#top-reasons tbody tr').length") == 3

    # the calendar: one cell per worker and day of the month, the store's status in each
    wd = _store(
        paths,
        "SELECT worker_id, CAST(date AS VARCHAR) AS day, status FROM worker_day WHERE strftime(date, '%Y-%m') = ?",
        [MONTH],
    )
    cells = driver.execute_script(
        "return Array.from(document.querySelectorAll('#calendar tbody tr')).map(function(r){"
        " return [r.getAttribute('data-worker'), Array.from(r.querySelectorAll('td.s')).map(function(c){"
        " return c.getAttribute('data-status'); })]; });"
    )
    days = [d.isoformat() for d in month_days(MONTH)]
    assert sorted(w for w, _ in cells) == sorted(wd["worker_id"].unique())
    status = wd.set_index(["worker_id", "day"])["status"].to_dict()
    for worker, row in cells:
        assert len(row) == len(days)
        assert row == [status.get((worker, d), "") for d in days], worker
    legend = driver.execute_script("return document.querySelector('#patrol .legend').textContent")
    for s in STATUSES:
        assert s in legend
    # playbacks one click away: the short day with points is a link to its page
    href = driver.execute_script(
        "var r = document.querySelector('#calendar tr[data-worker=\"W2\"]');"
        "var a = r.querySelectorAll('td.s')[7].querySelector('a'); return a && a.getAttribute('href');"
    )
    assert href == "playback/W2_2026-10-08.html"

    flags = driver.execute_script(
        "return Array.from(document.querySelectorAll('#flags-table tbody tr')).map(function(r){"
        " return [r.getAttribute('data-flag'), r.cells[1].textContent, r.cells[3].textContent]; });"
    )
    assert [f for f, *_ in flags] == ["vehicle", "mock_location", "replay"]  # the engine's order of flags
    by_kind = {f: (n, ev) for f, n, ev in flags}
    assert by_kind["replay"][0] == "2" and "回放" in by_kind["replay"][1]
    assert "同 2026-10-08 的轨迹" in by_kind["replay"][1] and "模拟定位点 35 个" in by_kind["mock_location"][1]


@pytest.mark.browser
def test_every_link_resolves_to_a_file(driver, scored):
    page, _ = _index(scored)
    assert open_page(driver, page, is_map=False) == []
    hrefs = driver.execute_script(
        "return Array.from(document.querySelectorAll('a')).map(function(a){ return a.getAttribute('href'); });"
    )
    assert len(hrefs) > 20
    kinds = set()
    for href in hrefs:
        parts = urlsplit(href)
        assert not parts.scheme and not parts.netloc, href  # relative, our own files
        target = (page.parent / unquote(parts.path)).resolve()
        assert target.is_file(), href
        kinds.add(target.relative_to(page.parent.resolve()).parts[0])
    assert {"overview.html", "grids", "playback", workbook_name(MONTH), "deduction.csv"} <= kinds
    assert {"grid_month_score.csv", "grid_month_score.parquet"} <= kinds


def _screenshot_dir(tmp_path: Path) -> Path:
    out = Path(os.environ.get("GRIDPATROL_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _full_page_png(driver) -> bytes:
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 8000), "scale": 1},
        },
    )
    return base64.b64decode(shot["data"])


def _cjk_font() -> str | None:
    if shutil.which("fc-list") is None:
        return None
    found = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=False).stdout
    return found.splitlines()[0] if found.strip() else None


@pytest.mark.browser
def test_screenshots_of_the_dashboard_and_the_overview(driver, scored, tmp_path):
    from PIL import Image

    paths, _ = scored
    out = _screenshot_dir(tmp_path)
    written = []
    for name in ("index.html", "overview.html"):
        page = paths.out_month(MONTH) / name
        assert open_page(driver, page, is_map=name != "index.html") == []
        png = _full_page_png(driver) if name == "index.html" else driver.get_screenshot_as_png()
        target = out / f"{MONTH}_{Path(name).stem}.png"
        target.write_bytes(png)
        img = Image.open(io.BytesIO(png)).convert("RGB")
        assert img.width >= 1000 and len(img.resize((300, 200)).getcolors(maxcolors=60000)) > 20
        written.append(target)
    assert all(p.stat().st_size > 10_000 for p in written)
    if _cjk_font() is None:  # the test passes, the images show boxes: say why
        pytest.skip(f"screenshots written to {out}, but no CJK font (run tests/setup_system.sh: fonts-noto-cjk)")


@pytest.mark.browser
def test_prints_on_a4_landscape(driver, scored):
    page, _ = _index(scored)
    assert open_page(driver, page, is_map=False) == []
    driver.set_window_size(A4_PRINT_WIDTH_PX + 16, 900)
    try:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        time.sleep(0.2)
        wide = driver.execute_script(
            "var w = document.documentElement.clientWidth, out = [];"
            "document.querySelectorAll('body *').forEach(function(e){ var r = e.getBoundingClientRect();"
            " if (r.width && r.right > w + 1) { out.push(e.tagName + '#' + e.id); } });"
            "return [w, out];"
        )
        assert wide[1] == [], wide  # nothing is cut off at the right edge of an A4 landscape page
        pdf = driver.execute_cdp_cmd(
            "Page.printToPDF",
            {
                "landscape": True,
                "paperWidth": 11.69,
                "paperHeight": 8.27,
                "printBackground": True,
                "preferCSSPageSize": True,
            },
        )
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        driver.set_window_size(1200, 900)
    data = base64.b64decode(pdf["data"])
    pages = len(re.findall(rb"/Type\s*/Page\b", data))
    assert 1 <= pages <= 5, pages  # ranking, lost points, calendar, compliance, flags and links
