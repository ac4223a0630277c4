"""scoring.inputs: CSV (UTF-8, BOM, GBK) and workbook inputs, English and Chinese, validation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from scoring_helpers import GRID_IDS, MONTH, clean_tables, write_tables

from scoring.inputs import COLUMN_ALIASES, SCHEMA, TABLE_ALIASES, load_indicators
from scoring.rules import score_month
from trajectory.errors import InputError

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
