"""scoring.inputs: CSV (UTF-8, BOM, GBK) and workbook inputs, English and Chinese, validation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import openpyxl
import pandas as pd
import pytest
from scoring_helpers import GRID_IDS, MONTH, clean_tables, with_rows, write_geojson, write_tables

from scoring.export import main as export_main
from scoring.export import score_and_store, workbook_name
from scoring.inputs import (
    COLUMN_ALIASES,
    REQUIRED_TABLES,
    SCHEMA,
    TABLE_ALIASES,
    TABLE_ITEMS,
    check_required,
    load_indicators,
)
from scoring.rules import score_month
from trajectory.errors import InputError
from trajectory.store import connect
from trajectory.workspace import load_workspace

ZH_VALUES = {
    "public_complaint": "群众投诉",
    "inspector_complaint": "巡查员投诉",
    "leader_dissatisfied": "领导评价不满意",
    "meeting_absent": "未参加例会",
    "badge_missing": "未带工作证",
    "not_updated": "未更新",
    "inaccurate_record": "信息不实",
    "ok": "合格",
    "unqualified": "不合格",
    "false": "虚假",
    "random_check": "不定期抽查",
    "public_report": "群众投诉举报",
    "daily_patrol": "日常巡查",
    "center_assigned": "中心交办",
    "public_security": "社会治安",
    "city_management": "城市管理",
    "livelihood_service": "民生服务",
    "comprehensive_management": "综合管理",
}
ZH_BOOLS = {"true": "是", "false": "否"}
BOOL_COLUMNS = {"verified", "valid", "shirked", "rectified_in_time"}


def busy_month(policy) -> dict[str, pd.DataFrame]:
    t = clean_tables(policy)
    t["complaints"] = pd.DataFrame(
        [
            {"date": "2026-10-05", "grid_id": "G01", "kind": "public_complaint", "verified": "true"},
            {"date": "2026-10-06", "grid_id": "G02", "kind": "leader_dissatisfied", "verified": "false"},
        ]
    )
    t["discipline"] = pd.DataFrame(
        [
            {"date": "2026-10-07", "grid_id": "G01", "kind": "meeting_absent", "count": 2},
            {"date": "2026-10-08", "grid_id": "G03", "kind": "badge_missing", "count": 1},
        ]
    )
    t["info_checks"] = pd.DataFrame(
        [
            {"date": "2026-10-09", "grid_id": "G02", "kind": "not_updated", "count": 1},
            {"date": "2026-10-09", "grid_id": "G03", "kind": "inaccurate_record", "count": 1},
        ]
    )
    t["inspections"] = pd.DataFrame(
        [
            {"date": "2026-10-10", "grid_id": "G01", "source": "random_check", "rectified_in_time": "false"},
            {"date": "2026-10-11", "grid_id": "G02", "source": "center_assigned", "rectified_in_time": "false"},
            {"date": "2026-10-12", "grid_id": "G03", "source": "daily_patrol", "rectified_in_time": "true"},
        ]
    )
    ev = t["events"]
    ev.loc[ev.index[:3], "review"] = "unqualified"
    ev.loc[ev.index[3:5], "valid"] = "false"
    t["info_collection"].loc[0, "collected"] = 90
    return t


def to_chinese(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The same records with the centre's Chinese table names, headers and values."""
    out = {}
    for name, df in tables.items():
        zh = df.astype(str).apply(lambda col: col.replace(ZH_BOOLS if col.name in BOOL_COLUMNS else ZH_VALUES))
        zh.columns = [COLUMN_ALIASES[c][0] for c in df.columns]
        out[TABLE_ALIASES[name][0]] = zh
    return out


def write_xlsx(path: Path, tables: dict[str, pd.DataFrame]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        for name, df in tables.items():
            df.to_excel(xw, sheet_name=name, index=False)
    return path


@pytest.mark.parametrize("form", ["en-csv", "zh-csv-gbk", "zh-csv-bom", "en-xlsx", "zh-xlsx"])
def test_chinese_and_english_inputs_give_the_same_scores(form, tmp_path, policy, grids):
    tables = busy_month(policy)
    ref = score_month(
        MONTH, grids, load_indicators(write_tables(tmp_path / "ref", tables), policy, GRID_IDS), pd.DataFrame(), policy
    )
    folder = tmp_path / "indicators" / MONTH
    if form == "en-csv":
        write_tables(folder, tables)
    elif form == "zh-csv-gbk":
        write_tables(folder, to_chinese(tables), encoding="gbk")
    elif form == "zh-csv-bom":
        write_tables(folder, to_chinese(tables), encoding="utf-8-sig")
    elif form == "en-xlsx":
        write_xlsx(folder / "指标.xlsx", tables)
    else:
        write_xlsx(folder / "指标.xlsx", to_chinese(tables))
    ind = load_indicators(folder, policy, GRID_IDS)
    assert ind.warnings == []
    r = score_month(MONTH, grids, ind, pd.DataFrame(), policy)
    pd.testing.assert_frame_equal(r.grid_month_score, ref.grid_month_score)
    pd.testing.assert_frame_equal(r.deduction, ref.deduction)
    assert r.grid_month_score.query("item_code == 'total'")["score"].lt(100).all()


def test_typed_columns(tmp_path, policy):
    ind = load_indicators(write_tables(tmp_path / MONTH, busy_month(policy)), policy, GRID_IDS)
    ev = ind.events
    assert str(ev["reported_at"].dt.tz) == "UTC"
    # naive times are local (Asia/Shanghai, UTC+8)
    assert ev["reported_at"].iloc[0] == pd.Timestamp("2026-10-01 08:00", tz="Asia/Shanghai")
    assert ev["valid"].dtype == "boolean" and ev["photos_before"].dtype == "Int64"
    assert set(ind.inspections["source"]) == {"random_check", "center_assigned", "daily_patrol"}


def test_offsets_are_kept(tmp_path, policy):
    t = clean_tables(policy, ["G01"])
    t["events"] = t["events"].head(2).assign(reported_at=["2026-10-01T01:00:00Z", "2026-10-01 09:00:00+08:00"])
    ind = load_indicators(write_tables(tmp_path / MONTH, t), policy, ["G01"])
    assert ind.events["reported_at"].nunique() == 1


def test_missing_table_is_a_warning(tmp_path, policy, grids):
    t = clean_tables(policy)
    del t["inspections"], t["complaints"]
    ind = load_indicators(write_tables(tmp_path / "indicators" / MONTH, t), policy, GRID_IDS)
    assert len(ind.inspections) == 0 and list(ind.inspections.columns) == [c.name for c in SCHEMA["inspections"]]
    assert any("inspections" in w and "no records" in w for w in ind.warnings)
    assert any(w.startswith(f"indicators/{MONTH}: table complaints") for w in ind.warnings)
    r = score_month(MONTH, grids, ind, pd.DataFrame(), policy)
    assert r.grid_month_score.query("item_code == 'total'")["score"].eq(100).all()


def test_missing_folder_is_a_warning(tmp_path, policy):
    ind = load_indicators(tmp_path / "indicators" / MONTH, policy, GRID_IDS)
    assert len(ind.events) == 0 and "folder not found" in ind.warnings[0]


def test_unknown_grid_is_a_warning_and_extra_columns_are_ignored(tmp_path, policy):
    t = clean_tables(policy)
    t["complaints"] = pd.DataFrame(
        [{"date": "2026-10-05", "grid_id": "G99", "kind": "public_complaint", "verified": "yes", "备注": "extra"}]
    )
    ind = load_indicators(write_tables(tmp_path / MONTH, t), policy, GRID_IDS)
    assert [w for w in ind.warnings if "G99" in w] == [
        f"{tmp_path / MONTH}: complaints: 1 rows name unknown grids G99; not scored"
    ]
    assert "备注" not in ind.complaints.columns


def test_discipline_without_count_column_counts_each_row_once(tmp_path, policy):
    t = clean_tables(policy)
    t["discipline"] = pd.DataFrame([{"date": "2026-10-05", "grid_id": "G01", "kind": "training_absent"}])
    ind = load_indicators(write_tables(tmp_path / MONTH, t), policy, GRID_IDS)
    assert ind.discipline["count"].tolist() == [1]


BAD = [
    (
        "events",
        7,
        "review",
        "maybe",
        "column review: 'maybe' is not one of ok, unqualified, false (合格, 不合格, 虚假)",
    ),
    ("events", 3, "valid", "perhaps", "column valid: 'perhaps' is not true or false"),
    ("events", 2, "category", "交通", "column category: '交通' is not one of public_security"),
    ("events", 4, "reported_at", "yesterday", "column reported_at: 'yesterday' is not a date and time"),
    ("events", 5, "lon", "east", "column lon: 'east' is not a number"),
    ("complaints", 1, "verified", "", "column verified: empty is not a value"),
    ("discipline", 1, "count", "-1", "column count: '-1' is not a whole number ≥ 0"),
    ("inspections", 1, "source", "卫星", "column source: '卫星' is not one of random_check"),
    ("info_collection", 2, "collected", "1.5", "column collected: '1.5' is not a whole number"),
    ("service_records", 1, "date", "31/31/2026", "column date: '31/31/2026' is not a date"),
]


def _one_row_tables(policy):
    t = busy_month(policy)
    t["service_records"] = t["service_records"].head(1)
    return t


@pytest.mark.parametrize(("table", "row", "column", "value", "message"), BAD, ids=[f"{b[0]}.{b[2]}" for b in BAD])
def test_bad_value_names_file_row_and_column(table, row, column, value, message, tmp_path, policy):
    t = _one_row_tables(policy)
    df = t[table].astype(str).copy()
    df.loc[df.index[row - 1], column] = value
    t[table] = df
    folder = write_tables(tmp_path / "indicators" / MONTH, t)
    with pytest.raises(InputError) as exc:
        load_indicators(folder, policy, GRID_IDS)
    assert exc.value.file == f"indicators/{MONTH}/{table}.csv"
    assert (exc.value.row, exc.value.column) == (row, column)
    assert str(exc.value).startswith(f"indicators/{MONTH}/{table}.csv, row {row}, {message}")


def test_bad_value_in_a_sheet_names_the_sheet_and_excel_row(tmp_path, policy):
    t = to_chinese(busy_month(policy))
    t["事项"].loc[6, "审核结果"] = "maybe"  # 7th data row = Excel row 8
    write_xlsx(tmp_path / "indicators" / MONTH / "指标.xlsx", t)
    with pytest.raises(InputError) as exc:
        load_indicators(tmp_path / "indicators" / MONTH, policy, GRID_IDS)
    assert str(exc.value).startswith(
        f"indicators/{MONTH}/指标.xlsx, sheet 事项, row 8, column review: 'maybe' is not one of"
    )


def test_missing_column_names_what_was_expected(tmp_path, policy):
    t = clean_tables(policy)
    t["inspections"] = pd.DataFrame([{"date": "2026-10-05", "grid_id": "G01", "source": "random_check"}])
    with pytest.raises(InputError, match=r"column rectified_in_time missing; expected columns date \(日期\)"):
        load_indicators(write_tables(tmp_path / MONTH, t), policy, GRID_IDS)


def test_table_given_twice_is_an_error(tmp_path, policy):
    folder = write_tables(tmp_path / MONTH, clean_tables(policy))
    (folder / "投诉.csv").write_text("date,grid_id,kind,verified\n", encoding="utf-8")
    with pytest.raises(InputError, match="given twice"):
        load_indicators(folder, policy, GRID_IDS)


# --- a month never scored silently without a required table (issue 14, row 3) ---------------


def _workspace(tmp_path: Path, grids_gdf, tables: dict[str, pd.DataFrame], xlsx: bool = False) -> Path:
    root = tmp_path / "ws"
    write_geojson(root / "grids_geojson" / "grids.geojson", grids_gdf)
    (root / "workers.csv").write_text(
        "worker_id,worker_name,grid_id,full_time\nW1,王一,G01,true\nW2,王二,G02,true\nW3,王三,G03,true\n",
        encoding="utf-8",
    )
    folder = root / "indicators" / MONTH
    if xlsx:
        write_xlsx(folder / "指标.xlsx", tables)
    else:
        write_tables(folder, tables)
    return root


def _without(policy, *names: str) -> dict[str, pd.DataFrame]:
    t = clean_tables(policy)
    for name in names:
        del t[name]
    return t


@pytest.mark.parametrize("table", REQUIRED_TABLES)
@pytest.mark.parametrize("xlsx", [False, True], ids=["csv", "xlsx"])
def test_scoring_cli_refuses_a_month_without_a_required_table(table, xlsx, tmp_path, policy, grids_gdf, capsys):
    root = _workspace(tmp_path, grids_gdf, _without(policy, table), xlsx=xlsx)
    assert export_main(["--workspace", str(root), "--month", MONTH, "--score"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: indicators/{MONTH}: 缺少必需的指标表")
    assert f"{table}（{TABLE_ALIASES[table][0]}，计分项目 items {', '.join(TABLE_ITEMS[table])}）" in err
    assert f"--allow-missing {table}" in err
    assert not (root / "out" / MONTH).exists()


def run_month(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m trajectory.run`` in a process of its own (it configures logging for itself)."""
    return subprocess.run(
        [sys.executable, "-m", "trajectory.run", *args, "--no-progress", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_month_run_refuses_without_events_and_scores_with_allow_missing(tmp_path, policy, grids_gdf):
    root = _workspace(tmp_path, grids_gdf, _without(policy, "events"), xlsx=True)  # the workbook lacks 事项
    (root / "inbox" / "gps").mkdir(parents=True)
    points = [f"W1,2026-10-09T09:{m:02d}:00+08:00,{119.902 + m * 1e-4:.5f},31.705" for m in range(30)]
    (root / "inbox" / "gps" / "w1.csv").write_text("worker_id,ts,lon,lat\n" + "\n".join(points) + "\n")
    args = ["--workspace", str(root), "--month", MONTH]
    refused = run_month(*args)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    err = refused.stderr.strip().splitlines()
    assert err[-1].startswith(f"error: indicators/{MONTH}: 缺少必需的指标表 required indicator table missing: events")
    allowed = run_month(*args, "--allow-missing", "事项")
    assert allowed.returncode == 0, allowed.stderr
    # the one warning of the missing table, on the console
    assert [line for line in allowed.stderr.splitlines() if "table events（事项）not found" in line]
    con = duckdb.connect(str(root / "patrol.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT item_code, max_score, score, missing_tables FROM grid_month_score "
            "WHERE grid_id = 'G01' AND item_code IN ('5', '6.1a', '6.2', '6.1b', 'total') ORDER BY item_code"
        ).fetchall()
    finally:
        con.close()
    # 6.1a is not 0 (every grid −12 before): it is not scored; the total is out of 100 − 30
    assert rows == [
        ("5", 7.0, None, "events"),
        ("6.1a", 15.0, None, "events"),
        ("6.1b", 10.0, 10.0, ""),
        ("6.2", 8.0, None, "events"),
        ("total", 70.0, 64.0, "events"),  # 100 − 30 暂缺, − 6 of item 2.5 (no GPS at all this month)
    ]
    book = openpyxl.load_workbook(root / "out" / MONTH / workbook_name(MONTH))
    summary = book["汇总"]
    header = [cell.value for cell in summary[3]]
    row = next(r for r in summary.iter_rows(min_row=4) if r[1].value == "G01")
    cell_61a = row[next(i for i, h in enumerate(header) if h and "(6.1a)" in h)]
    assert cell_61a.value == "暂缺" and "events（事项）" in cell_61a.comment.text
    total = row[header.index("总分")]
    assert total.number_format == '0.0"（暂定）"' and "暂定总分" in total.comment.text
    assert "（暂定）" in summary["A1"].value
    about = {r[0]: r[1] for r in book["说明"].iter_rows(min_row=4, values_only=True) if r[0]}
    assert "6①(6.1a)" in about["暂缺"] and "满分 70 分" in about["暂缺"]
    grid_sheet = book["G01"]
    items = {r[0]: r[4] for r in grid_sheet.iter_rows(min_row=4, max_row=18, values_only=True)}
    assert items["6①(6.1a)"] == items["5"] == items["6②(6.2)"] == "暂缺" and items["6①(6.1b)"] == 10


def test_header_only_file_is_a_month_without_records_not_a_missing_table(tmp_path, policy, grids):
    t = clean_tables(policy)
    t["events"] = t["events"].head(0)  # written as its header line alone
    ind = load_indicators(write_tables(tmp_path / "indicators" / MONTH, t), policy, GRID_IDS)
    assert ind.missing == () and ind.warnings == []
    check_required(ind)  # nothing missing: no error
    r = score_month(MONTH, grids, ind, pd.DataFrame(), policy)
    scores = r.grid_month_score.set_index(["grid_id", "item_code"])["score"]
    assert scores["G01", "6.1a"] == 0.0  # a month without a single event: 80 × −0.2 floors at 0
    assert (r.grid_month_score["missing_tables"] == "").all()


@pytest.mark.parametrize("form", ["no-file", "zero-bytes", "empty-sheet"])
def test_missing_table_is_distinct_from_an_empty_one(form, tmp_path, policy):
    t = _without(policy, "events")
    folder = tmp_path / "indicators" / MONTH
    if form == "empty-sheet":
        write_xlsx(folder / "指标.xlsx", {**t, "事项": pd.DataFrame()})
    else:
        write_tables(folder, t)
        if form == "zero-bytes":
            (folder / "events.csv").write_bytes(b"")
    ind = load_indicators(folder, policy, GRID_IDS)
    assert ind.missing == ("events",)
    with pytest.raises(InputError, match="required indicator table missing: events") as err:
        check_required(ind)
    assert err.value.file == f"indicators/{MONTH}"
    check_required(ind, {"events"})  # allowed explicitly


def test_optional_tables_missing_give_one_console_warning_each(tmp_path, policy, grids_gdf, capsys):
    root = _workspace(tmp_path, grids_gdf, _without(policy, "complaints", "inspections"))
    assert export_main(["--workspace", str(root), "--month", MONTH, "--score"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    assert "table complaints（投诉）not found" in warnings[0] and "items 1)" in warnings[0]
    assert "table inspections（巡查）not found" in warnings[1] and "items 7, 8)" in warnings[1]
    assert all("按无记录计分 scored as no records" in w for w in warnings)


def test_allow_missing_names_a_known_table(tmp_path, grids_gdf, policy):
    root = _workspace(tmp_path, grids_gdf, clean_tables(policy))
    assert load_workspace(root, allow_missing=["事项", "service_records"]).allow_missing == {
        "events",
        "service_records",
    }
    with pytest.raises(InputError, match="'event' 不是指标表 is not an indicator table") as err:
        load_workspace(root, allow_missing=["event"])
    assert err.value.file == "--allow-missing"


def test_unscored_items_are_null_and_the_total_provisional(tmp_path, policy, grids):
    ind = load_indicators(
        write_tables(tmp_path / MONTH, _without(policy, "service_records", "info_collection")), policy
    )
    r = score_month(MONTH, grids, ind, pd.DataFrame(), policy)
    s = r.grid_month_score.set_index(["grid_id", "item_code"])
    for item, table in (("3", "info_collection"), ("6.1b", "service_records")):
        assert np.isnan(s.loc[("G02", item), "score"]) and s.loc[("G02", item), "missing_tables"] == table
    assert not r.deduction["item_code"].isin(["3", "6.1b"]).any()  # no deduction for records nobody delivered
    assert s.loc[("G02", "total"), "max_score"] == 100 - 12 - 10
    assert s.loc[("G02", "total"), "score"] == 78.0
    assert s.loc[("G02", "total"), "missing_tables"] == "info_collection,service_records"


def test_a_later_rescore_keeps_the_months_allowance_while_the_table_is_missing(tmp_path, policy, grids_gdf):
    root = _workspace(tmp_path, grids_gdf, _without(policy, "events"))
    ws = load_workspace(root)
    con = connect(ws.paths)
    try:
        with pytest.raises(InputError, match="events"):
            score_and_store(ws, con, MONTH)
        score_and_store(ws, con, MONTH, allow_missing=["events"])
        seen: list[str] = []
        again = score_and_store(ws, con, MONTH, warn=seen.append)  # a later night: late GPS re-opens the month
        assert again.grid_month_score.query("item_code == '6.1a'")["score"].isna().all()
        assert any("仍缺失 still missing" in w and "--allow-missing events" in w for w in seen)
        clean_tables(policy)["events"].to_csv(root / "indicators" / MONTH / "events.csv", index=False)
        complete = score_and_store(ws, con, MONTH)
        assert (complete.grid_month_score["missing_tables"] == "").all()
        assert complete.grid_month_score.query("item_code == 'total'")["score"].eq(100).all()
        (root / "indicators" / MONTH / "events.csv").unlink()
        with pytest.raises(InputError, match="events"):  # allowed only while it stayed missing
            score_and_store(ws, con, MONTH)
    finally:
        con.close()


# --- a record dated outside its month folder (issue 14, row 4) -------------------------------


def test_record_outside_the_month_is_rejected_with_file_row_and_column(tmp_path, policy, grids):
    t = with_rows(
        clean_tables(policy),
        complaints=[
            {"date": "2026-10-05", "grid_id": "G01", "kind": "public_complaint", "verified": "true"},
            {"date": "2026-09-15", "grid_id": "G01", "kind": "public_complaint", "verified": "true"},
            {"date": "2026-11-01", "grid_id": "G02", "kind": "public_complaint", "verified": "true"},
        ],
    )
    ind = load_indicators(write_tables(tmp_path / "indicators" / MONTH, t), policy, GRID_IDS)
    assert ind.complaints["date"].astype(str).tolist() == ["2026-10-05"]
    assert ind.rejected[["source_file", "row_number", "column", "value"]].values.tolist() == [
        [f"indicators/{MONTH}/complaints.csv", 2, "date", "2026-09-15"],
        [f"indicators/{MONTH}/complaints.csv", 3, "date", "2026-11-01"],
    ]
    assert ind.warnings == [
        f"indicators/{MONTH}/complaints.csv, row 2, column date: '2026-09-15' 不在 {MONTH} 月内 dated outside "
        "the month of its folder; 不计分 not counted（另有 1 行 more rows: 3）"
    ]
    r = score_month(MONTH, grids, ind, pd.DataFrame(), policy)
    item1 = r.grid_month_score.set_index(["grid_id", "item_code"])["score"]
    assert item1["G01", "1"] == 3.0 and item1["G02", "1"] == 4.0  # only the October complaint counts


def test_event_month_is_judged_in_local_time(tmp_path, policy):
    t = clean_tables(policy, ["G01"])
    ev = t["events"].head(4).copy()
    # local (Asia/Shanghai) times: the first two are October, the last two are not
    ev["reported_at"] = [
        "2026-10-01 00:10:00",  # 2026-09-30 16:10 UTC: still October locally
        "2026-10-31T23:30:00+08:00",
        "2026-10-31T16:30:00Z",  # 2026-11-01 00:30 local
        "2026-09-30 23:59:00",
    ]
    t["events"] = ev
    folder = tmp_path / "indicators" / MONTH
    write_xlsx(folder / "指标.xlsx", t)
    ind = load_indicators(folder, policy, ["G01"])
    assert len(ind.events) == 2
    # sheet rows as Excel shows them: header on row 1, the 3rd and 4th records on rows 4 and 5
    assert ind.rejected["row_number"].tolist() == [4, 5]
    assert set(ind.rejected["source_file"]) == {f"indicators/{MONTH}/指标.xlsx, sheet events"}
    assert set(ind.rejected["column"]) == {"reported_at"}
