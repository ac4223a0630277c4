"""Constants and helpers shared by the map tests' fixtures and assertions."""

import time
from pathlib import Path

MONTH = "2026-10"
LON0, LAT0 = 119.88, 31.68
# personal labels that must never reach a page
SECRET_LABELS = ("张三 住址XX路1号", "李四 住址YY路2号", "王五 住址ZZ路3号", "赵六化工厂 负责人钱七")
# (lon, lat) of KP001, SG001, CS001 (personal: shown only at their privacy cell) and HZ001 (a
# hazard site: exact). Six decimals, chosen so that no track point or walked cell of the fixtures
# prints as any 4-6 decimal form of them (WGS-84 or GCJ-02): a leak at any precision is recognisable.
SITE_POSITIONS = ((119.883617, 31.682593), (119.886171, 31.686548), (119.895162, 31.684731), (119.909, 31.685))
PERSONAL_SITES = ("KP001", "SG001", "CS001")
# the scored month of the dashboard tests: flags of three kinds, one of them (replay) only in day_flag
DAY_FLAGS = (
    ("W1", "G01", "2026-10-09", "mock_location", "35 mock-location point(s)"),
    ("W1", "G01", "2026-10-09", "replay", "same track as 2026-10-08 (median offset 0.0 m over 60 positions)"),
    ("W1", "G01", "2026-10-08", "replay", "same track as 2026-10-09 (median offset 0.0 m over 60 positions)"),
    ("W2", "G02", "2026-10-08", "vehicle", "vehicle speed 23 min, max 44 km/h"),
)


# the switches both the browser tests and measure_pages.py start Chromium with
HEADLESS_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
)


def chromium_options(binary: str, *args: str):
    """selenium ChromeOptions for headless Chromium at ``binary``: :data:`HEADLESS_ARGS`, then ``args``."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (*HEADLESS_ARGS, *args):
        options.add_argument(arg)
    return options


def block_network(drv) -> None:
    """Make any request of ``drv`` to another host fail (file:// pages only)."""
    drv.execute_cdp_cmd("Network.enable", {})
    drv.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*"]})


def write_workspace(root, grids, worker_day, site_check, sites, point_use, policy_toml: str | None = None):
    """A workspace at ``root`` with the fixtures' frames in its inputs and store; its WorkspacePaths.

    ``policy_toml`` is written as the workspace's ``patrol.toml`` when given.
    """
    import pandas as pd
    import pyarrow as pa

    from trajectory.store import connect, replace_rows, write_parquet_atomic
    from trajectory.workspace import WorkspacePaths

    paths = WorkspacePaths(root)
    paths.grids_dir.mkdir(parents=True)
    if policy_toml is not None:
        paths.policy.write_text(policy_toml, encoding="utf-8")
    grids.to_file(paths.grids_dir / "grids.geojson", driver="GeoJSON")
    pd.DataFrame(
        {
            "worker_id": ["W1", "W2", "W3"],
            "worker_name": ["甲", "乙", "丙"],
            "grid_id": ["G01", "G02", "G03"],
            "full_time": "true",
        }
    ).to_csv(paths.workers, index=False)
    sites.to_csv(paths.sites, index=False)
    con = connect(paths)
    replace_rows(con, "worker_day", worker_day.drop(columns=["flags"]), "true")
    replace_rows(con, "site_check", site_check, "true")
    for day, part in point_use.groupby("date"):
        write_parquet_atomic(
            pa.Table.from_pandas(part.drop(columns=["date"]), preserve_index=False),
            paths.point_use_store / f"date={day}" / "part.parquet",
        )
    con.close()
    return paths


def open_page(driver, page: Path, is_map: bool = True) -> list[dict]:
    """Open ``page`` in the browser, wait for the map to draw; the SEVERE console entries it logged."""
    driver.get_log("browser")  # drain what an earlier page logged
    driver.get(page.resolve().as_uri())
    deadline = time.time() + 10
    while (
        is_map
        and time.time() < deadline
        and not driver.execute_script("return !!document.querySelector('.leaflet-container')")
    ):
        time.sleep(0.1)
    if is_map:
        time.sleep(0.5)  # let the heat canvas and controls draw
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def scores_frames(month: str, grid_ids, shift: float = 0.0):
    """A scored month as the scoring step stores it: ``grid_month_score`` and ``deduction`` rows.

    Grid ``i`` loses ``0.2 · (i + 1) + shift`` points on item 2.5 (工作日巡查不足), ``1.0 · i`` on
    6.2 (虚假事项) and, for ``i == 1``, 1 point on item 1 (a verified complaint); ranks by total.
    """
    import pandas as pd

    from scoring.policy import load_policy
    from trajectory.contract import ITEM_CODES, ITEM_TOTAL

    items = load_policy().items
    lost = {
        g: {"2.5": round(0.2 * (i + 1) + shift, 4), "6.2": 1.0 * i, "1": 1.0 if i == 1 else 0.0}
        for i, g in enumerate(grid_ids)
    }
    reasons = {"2.5": "工作日巡查不足（时长、里程或上下午）", "6.2": "虚假事项", "1": "被群众投诉（经核实）"}
    rows, deductions = [], []
    for g in grid_ids:
        total = 0.0
        for code in ITEM_CODES:
            top = items[code].max_score
            score = max(0.0, top - lost[g].get(code, 0.0))
            total += score
            rows.append((g, month, code, top, score))
            if lost[g].get(code, 0.0) > 0:
                points = lost[g][code]
                count = round(points / 0.2) if code == "2.5" else points
                deductions.append((g, month, code, reasons[code], float(count), points, f"{month} {reasons[code]}"))
        rows.append((g, month, ITEM_TOTAL, 100.0, total))
    scores = pd.DataFrame(rows, columns=["grid_id", "month", "item_code", "max_score", "score"])
    total = scores["item_code"] == ITEM_TOTAL
    scores["rank"] = scores["score"].where(total).rank(method="min", ascending=False).astype("Int64")
    deduction = pd.DataFrame(
        deductions, columns=["grid_id", "month", "item_code", "reason", "count", "points", "evidence"]
    )
    return scores, deduction


def write_scores(paths, month: str, grid_ids, shift: float = 0.0, reason: str | None = None) -> None:
    """Store :func:`scores_frames` for ``month`` (``reason`` replaces every deduction reason)."""
    from trajectory.store import connect, replace_rows

    scores, deduction = scores_frames(month, grid_ids, shift)
    if reason is not None:
        deduction["reason"] = reason
    con = connect(paths)
    try:
        replace_rows(con, "grid_month_score", scores, "month = ?", [month])
        replace_rows(con, "deduction", deduction, "month = ?", [month])
    finally:
        con.close()


def write_day_flags(paths, rows) -> None:
    """Store ``day_flag`` rows: (worker_id, grid_id, date YYYY-MM-DD, flag, detail)."""
    import pandas as pd

    from trajectory.store import connect, replace_rows

    df = pd.DataFrame(rows, columns=["worker_id", "grid_id", "date", "flag", "detail"])
    df["date"] = pd.to_datetime(df["date"]).dt.date
    con = connect(paths)
    try:
        replace_rows(con, "day_flag", df, "true")
    finally:
        con.close()
