"""scoring.export: store the month in a real DuckDB, write the workbook, reopen it with openpyxl."""

from __future__ import annotations

import hashlib
import re
import zipfile
from datetime import date
from pathlib import Path

import duckdb
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl.utils import get_column_letter
from scoring_helpers import FINDINGS, MONTH, clean_tables, write_geojson, write_tables

from scoring.export import (
    EVENT_FLAG,
    GRIDS_PER_PAGE,
    check_month,
    item_label,
    main,
    month_end,
    public_path_text,
    score_and_store,
    seed_number,
    workbook_name,
    write_workbook,
)
from scoring.inputs import REQUIRED_TABLES
from trajectory.contract import DEDUCTION, GRID_MONTH_SCORE, ITEM_CODES, PATROL_FINDING, WORKER_DAY
from trajectory.errors import InputError
from trajectory.store import connect
from trajectory.workspace import load_workspace

HEAD = 3  # row 1 title, row 2 制表日期, row 3 the table header
KEY_PERSON_LABEL = "张小明（重点人员）"
SPECIAL_LABEL = "李某某（社区矫正）"


@pytest.fixture
def workspace(tmp_path: Path, grids_gdf, policy):
    root = tmp_path / "ws"
    write_geojson(root / "grids_geojson" / "grids.geojson", grids_gdf)
    (root / "workers.csv").write_text(
        "worker_id,worker_name,grid_id,full_time\nW1,王一,G01,true\nW2,王二,G02,true\nW3,王三,G03,true\nW4,王四,G01,true\n",
        encoding="utf-8",
    )
    (root / "sites.csv").write_text(
        "site_id,site_type,grid_id,lon,lat,label\n"
        f"KP-07,key_person,G01,119.905,31.705,{KEY_PERSON_LABEL}\n"
        f"SG-02,special_group,G02,119.915,31.705,{SPECIAL_LABEL}\n"
        "HS-01,hazard_site,G01,119.906,31.706,加油站\n",
        encoding="utf-8",
    )
    t = clean_tables(policy)
    ev = t["events"]
    ev.loc[ev.index[:2], "review"] = "unqualified"
    ev.loc[2, "photos_after"] = 0  # a quality flag
    t["complaints"] = pd.DataFrame(
        [{"date": "2026-10-05", "grid_id": "G02", "kind": "public_complaint", "verified": "true"}]
    )
    del t["inspections"]  # a missing table: a warning, not a crash
    write_tables(root / "indicators" / MONTH, t)
    ws = load_workspace(root)
    # a GPS point near event G01-E000 (W1) so the track check runs on the real view
    e0 = ev.iloc[0]
    ts = pd.Timestamp(e0["reported_at"], tz="Asia/Shanghai").tz_convert("UTC")
    gps = pa.table(
        {
            "worker_id": ["W1"],
            "ts": pa.array([ts], pa.timestamp("us", tz="UTC")),
            "lon": [e0["lon"]],
            "lat": [e0["lat"]],
        }
    )
    (root / "store" / "gps" / f"date={ts.date()}").mkdir(parents=True)
    pq.write_table(gps, root / "store" / "gps" / f"date={ts.date()}" / "batch.parquet")
    con = connect(ws.paths)
    con.register("f", FINDINGS)
    con.execute(f"INSERT INTO {PATROL_FINDING} BY NAME SELECT * FROM f")
    wd = pd.DataFrame(
        {
            "worker_id": ["W1", "W1", "W4"],
            "grid_id": "G01",
            "date": pd.to_datetime(["2026-10-08", "2026-10-12", "2026-10-08"]).date,
            "workday": True,
            "exempt": False,
            "patrol_s": [0.0, 7200.0, 0.0],
            "patrol_m": [0.0, 900.0, 0.0],
            "am_s": [0.0, 3600.0, 0.0],
            "pm_s": [0.0, 3600.0, 0.0],
            "status": ["absent", "short", "absent"],
        }
    )
    con.register("wd", wd)
    con.execute(f"INSERT INTO {WORKER_DAY} BY NAME SELECT * FROM wd")
    yield ws, con
    con.close()


def _scored(workspace):
    ws, con = workspace
    result = score_and_store(ws, con, MONTH)
    con.close()
    return ws, result


def test_score_and_store_replaces_the_month(workspace):
    ws, con = workspace
    score_and_store(ws, con, "2026-09", allow_missing=REQUIRED_TABLES)  # another month, no indicators: allowed
    r = score_and_store(ws, con, MONTH)
    n = con.execute(f"SELECT count(*) FROM {GRID_MONTH_SCORE} WHERE month = ?", [MONTH]).fetchone()[0]
    r2 = score_and_store(ws, con, MONTH)
    assert n == 3 * (len(ITEM_CODES) + 1)
    assert con.execute(f"SELECT count(*) FROM {GRID_MONTH_SCORE} WHERE month = ?", [MONTH]).fetchone()[0] == n
    assert con.execute(f"SELECT count(*) FROM {GRID_MONTH_SCORE} WHERE month = '2026-09'").fetchone()[0] == n
    assert con.execute(f"SELECT count(*) FROM {DEDUCTION} WHERE month = ?", [MONTH]).fetchone()[0] == len(r2.deduction)
    pd.testing.assert_frame_equal(r.grid_month_score, r2.grid_month_score)
    assert any("inspections" in w for w in r.warnings)
    flags = con.execute(f"SELECT event_id, flag FROM {EVENT_FLAG} WHERE month = ?", [MONTH]).fetchall()
    assert ("G01-E002", "missing_photos") in flags
    # W1's point is right at G01-E000; its other events have no point within ±30 min
    assert ("G01-E000", "no_track") not in flags and ("G01-E001", "no_track") in flags
    stored = con.execute(
        f"SELECT sum(points) FROM {DEDUCTION} WHERE month = ? AND grid_id = 'G01' AND item_code = '2.5'", [MONTH]
    ).fetchone()[0]
    assert stored == pytest.approx(2.5)


def test_cli_writes_workbook_csv_parquet(workspace, capsys):
    ws, _ = _scored(workspace)
    assert main(["--workspace", str(ws.root), "--month", MONTH]) == 0
    out = ws.root / "out" / MONTH
    printed = capsys.readouterr().out.split()
    assert str(out / workbook_name(MONTH)) in printed
    for name in ("grid_month_score", "deduction", "event_flag"):
        raw = (out / f"{name}.csv").read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens the Chinese
        assert len(pd.read_parquet(out / f"{name}.parquet")) == len(
            pd.read_csv(out / f"{name}.csv", encoding="utf-8-sig")
        )
    scores = pd.read_parquet(out / "grid_month_score.parquet")
    con = duckdb.connect(str(ws.paths.duckdb), read_only=True)
    db_total = con.execute(
        f"SELECT score FROM {GRID_MONTH_SCORE} WHERE month=? AND grid_id='G01' AND item_code='total'", [MONTH]
    ).fetchone()[0]
    con.close()
    assert scores.query("grid_id == 'G01' and item_code == 'total'")["score"].iloc[0] == db_total

    wb = openpyxl.load_workbook(out / workbook_name(MONTH))
    assert wb.sheetnames[:2] == ["汇总", "考核表"]
    assert {"G01", "G02", "G03", "巡查统计", "事项质量提示", "说明"} <= set(wb.sheetnames)
    summary = wb["汇总"]
    headers = [c.value for c in summary[HEAD]]
    assert headers[:5] == ["排名", "网格编号", "网格名称", "类型", "1\n网格工作纪律\n(4分)"]
    assert headers[-1] == "总分" and "6①(6.1a)\n事项上报数量\n(15分)" in headers
    assert len(headers) == 4 + len(ITEM_CODES) + 1
    assert summary.freeze_panes == "E4"
    rows = {r[1]: r for r in summary.iter_rows(min_row=HEAD + 1, max_row=HEAD + 3, values_only=True)}
    assert rows["G01"][-1] == pytest.approx(db_total)
    assert rows["G01"][2] == "湖滨社区一网格" and rows["G03"][3] == "村"
    assert summary.cell(HEAD + 1, len(headers)).number_format == "0.0"
    assert [r[0] for r in rows.values()] == sorted(r[0] for r in rows.values())
    table = wb["考核表"]
    assert [c.value for c in table[HEAD]][:5] == ["类别", "编号", "考核内容", "评分标准", "满分"]
    assert table.freeze_panes == "F4"
    assert table.cell(HEAD + len(ITEM_CODES) + 1, 3).value == "总分"
    g01 = wb["G01"]
    assert g01.freeze_panes == "A4"
    g01_text = [v for row in g01.iter_rows(values_only=True) for v in row if isinstance(v, str)]
    assert any("KP-07" in v for v in g01_text)  # the key person by code
    assert "工作日未巡查" in g01_text and "重点人员未按周期走访" in g01_text
    total_row = next(r for r in g01.iter_rows(values_only=True) if r[2] == "总分")
    assert total_row[4] == pytest.approx(db_total)
    notes = [r[1] for r in wb["说明"].iter_rows(min_row=2, values_only=True)]
    assert ws.policy.hash in notes and "2026年10月" in notes
    assert any("inspections" in str(n) for n in notes)
    flags = list(wb["事项质量提示"].iter_rows(min_row=2, values_only=True))
    assert ("G01-E002", "G01", "前后照片缺失") in {r[:3] for r in flags}
    # no personal label, worker name or event address anywhere in the workbook or tables
    everything = [str(v) for s in wb.worksheets for row in s.iter_rows(values_only=True) for v in row if v is not None]
    everything += [(out / f).read_text(encoding="utf-8-sig") for f in ("deduction.csv", "event_flag.csv")]
    for secret in (KEY_PERSON_LABEL, SPECIAL_LABEL, "张小明", "加油站", "王一", "湖滨路1号"):
        assert not any(secret in v for v in everything), secret


def test_rerun_is_byte_identical(workspace):
    ws, _ = _scored(workspace)
    out = ws.root / "out" / MONTH

    def digest():
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}

    assert main(["--workspace", str(ws.root), "--month", MONTH]) == 0
    first = digest()
    assert main(["--workspace", str(ws.root), "--month", MONTH]) == 0
    assert digest() == first
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_cli_score_option(workspace, capsys):
    ws, con = workspace
    con.close()
    assert main(["--workspace", str(ws.root), "--month", MONTH, "--score"]) == 0
    assert "warning:" in capsys.readouterr().err  # the missing inspections table
    assert (ws.root / "out" / MONTH / workbook_name(MONTH)).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "2026-13"], "month was '2026-13' but is expected as YYYY-MM"),
        (["--month", "2026-11"], "no scores for 2026-11 in patrol.duckdb"),
    ],
)
def test_cli_failure_is_one_line(args, message, workspace, capsys):
    ws, _ = _scored(workspace)
    assert main(["--workspace", str(ws.root), *args]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_cli_bad_month_is_an_input_error_exit_2(workspace, capsys):
    ws, _ = _scored(workspace)
    assert main(["--workspace", str(ws.root), "--month", "2026-13"]) == 2
    assert "--month: month was '2026-13'" in capsys.readouterr().err
    with pytest.raises(InputError):
        check_month("2026-13")


def test_cli_missing_workspace(tmp_path, capsys):
    # one exit-code map (trajectory.errors.exit_code): a wrong workspace is refused, 2, as in trajectory.run
    assert main(["--workspace", str(tmp_path / "nowhere"), "--month", MONTH]) == 2
    assert "workspace folder not found" in capsys.readouterr().err


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0 and "--month" in capsys.readouterr().out


# --- the printed workbook ----------------------------------------------------------------------


def _exported(workspace, complaints: int = 0, toml: str | None = None):
    """Score and export the fixture month; ``complaints`` verified public complaints for G02
    (item 1 runs out of points after 4), ``toml`` a workspace patrol.toml."""
    ws, con = workspace
    root = ws.root
    if complaints:
        rows = [{"date": "2026-10-05", "grid_id": "G02", "kind": "public_complaint", "verified": "true"}] * complaints
        pd.DataFrame(rows).to_csv(root / "indicators" / MONTH / "complaints.csv", index=False)
    if toml is not None:
        (root / "patrol.toml").write_text(toml, encoding="utf-8")
        con.close()
        ws = load_workspace(root)
        con = connect(ws.paths)
    score_and_store(ws, con, MONTH)
    con.close()
    assert main(["--workspace", str(root), "--month", MONTH]) == 0
    return ws, openpyxl.load_workbook(root / "out" / MONTH / workbook_name(MONTH))


def _texts(sheet) -> list[str]:
    return [v for row in sheet.iter_rows(values_only=True) for v in row if isinstance(v, str)]


def test_every_sheet_prints_on_a4_landscape_one_page_wide(workspace):
    _, wb = _exported(workspace)
    for sheet in wb.worksheets:
        setup = sheet.page_setup
        assert setup.orientation == "landscape" and int(setup.paperSize) == 9, sheet.title
        assert setup.fitToWidth == 1 and setup.fitToHeight == 0, sheet.title
        assert sheet.sheet_properties.pageSetUpPr.fitToPage, sheet.title
        assert sheet.print_title_rows in ("$1:$3", "$1:$2"), sheet.title
        assert sheet.freeze_panes and int(sheet.freeze_panes[1:]) == HEAD + 1, sheet.title
        assert 0.2 <= sheet.page_margins.left <= 1 and 0.2 <= sheet.page_margins.bottom <= 1
        title, when = sheet.cell(1, 1).value, sheet.cell(2, 1).value
        assert "常州西太湖科技产业园网格化集成管理中心" in title and "2026年10月" in title, sheet.title
        assert when == "制表日期：2026年10月31日"  # the month's last day: re-runs stay identical
        last = [v for v in (sheet.cell(sheet.max_row, j).value for j in range(1, 4)) if v]
        assert len(last) == 1 and "制表：" in last[0] and "审核：" in last[0], sheet.title
        widths = [sheet.column_dimensions[get_column_letter(j)].width for j in range(1, sheet.max_column + 1)]
        assert sum(widths) <= 200, sheet.title  # fit-to-width stays readable (~75 % or more)
    assert wb["汇总"].print_title_rows == "$1:$3" and wb["G01"].print_title_rows == "$1:$2"


def test_evidence_column_is_wide_and_wraps(workspace):
    _, wb = _exported(workspace)
    g01 = wb["G01"]
    head = next(c for row in g01.iter_rows() for c in row if c.value == "依据")
    span = next(r for r in g01.merged_cells.ranges if r.min_row == head.row and r.min_col == head.column)
    width = sum(g01.column_dimensions[get_column_letter(j)].width for j in range(span.min_col, span.max_col + 1))
    assert width >= 60
    evidence = g01.cell(head.row + 1, head.column)
    assert "2026-10-08" in evidence.value and evidence.alignment.wrap_text
    assert g01.row_dimensions[HEAD + 1].height is None or g01.row_dimensions[HEAD + 1].height >= 15


def test_figures_are_rounded_and_total_row_adds_up(workspace):
    _, wb = _exported(workspace, complaints=46)  # item 1 of G02: 46 points lost, 4 applied
    for sheet in wb.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, float):
                    assert round(cell.value, 1) == cell.value, (sheet.title, cell.coordinate, cell.value)
                    assert cell.number_format == "0.0", (sheet.title, cell.coordinate)
    for gid in ("G01", "G02", "G03"):
        sheet = wb[gid]
        assert [c.value for c in sheet[HEAD]][:7] == [
            "编号",
            "类别",
            "项目",
            "满分",
            "得分",
            "扣分（计入）",
            "扣分合计（未封底）",
        ]
        items = list(sheet.iter_rows(min_row=HEAD + 1, max_row=HEAD + len(ITEM_CODES), values_only=True))
        total = next(r for r in sheet.iter_rows(values_only=True) if r[2] == "总分")
        for r in items:
            assert r[5] == pytest.approx(r[3] - r[4], abs=0.05) and r[6] >= r[5] - 0.05
        assert total[3] == 100
        assert total[3] - total[4] == pytest.approx(sum(r[5] for r in items), abs=0.05)
        assert total[5] == pytest.approx(total[3] - total[4], abs=0.05)
        assert total[6] == pytest.approx(sum(r[6] for r in items), abs=0.05)
    g02 = {r[0]: r for r in wb["G02"].iter_rows(min_row=HEAD + 1, max_row=HEAD + len(ITEM_CODES), values_only=True)}
    assert g02["1"][4:7] == (0.0, 4.0, 46.0)  # floored: 4 applied of 46 (0.2 × 230 would show 46.00000000000001)


def test_labels_are_chinese_with_the_seed_numbering(workspace):
    _, wb = _exported(workspace)
    everything = [v for sheet in wb.worksheets for v in _texts(sheet)]
    assert "总分" in everything
    assert not any("total" in v.lower() for v in everything)
    codes = [r[1] for r in wb["考核表"].iter_rows(min_row=HEAD + 1, max_row=HEAD + len(ITEM_CODES), values_only=True)]
    assert codes == ["1", "2①(2.1)", "2②(2.2)", "2③(2.3)", "2④(2.4)", "2⑤(2.5)", "3", "4", "5"] + [
        "6①(6.1a)",
        "6①(6.1b)",
        "6②(6.2)",
        "7",
        "8",
    ]
    g01 = _texts(wb["G01"])
    assert "6②(6.2)" in g01 and "2⑤(2.5)" in g01  # deduction rows too
    assert not any(v in ("6.1a", "6.1b", "6.2", "2.5") for v in everything)
    # the category column of 考核表 is merged once per category, as on the paper form
    assert wb["考核表"].cell(HEAD + 1, 1).value == "一、日常工作"


def test_item_labels(policy):
    assert [seed_number(k) for k in ITEM_CODES] == [
        "1",
        *(f"2{n}" for n in "①②③④⑤"),
        "3",
        "4",
        "5",
        "6①",
        "6①",
        "6②",
        "7",
        "8",
    ]
    assert item_label("6.1a", policy) == "6①(6.1a) 事项上报数量"
    assert item_label("6.1b", policy) == "6①(6.1b) 服务纪录"
    assert item_label("6.2", policy) == "6②(6.2) 事项上报质量"
    assert item_label("2.5", policy) == "2⑤(2.5) 巡查走访"
    assert item_label("1", policy) == "1 网格工作纪律"
    assert item_label("total", policy) == "总分"
    assert month_end("2026-10").isoformat() == "2026-10-31" and month_end("2028-02").day == 29


def test_notes_show_no_absolute_path_and_unit_comes_from_policy(workspace, tmp_path):
    ws, wb = _exported(workspace, toml='[export]\nunit = "测试网格中心"\nprepared_by_label = "制表人"\n')
    about = {r[0]: r[1] for r in wb["说明"].iter_rows(min_row=HEAD + 1, values_only=True) if r[0]}
    assert about["策略来源"] == "patrol.toml" and about["数据来源"].startswith("patrol.duckdb: ")
    for sheet in wb.worksheets:
        assert sheet.cell(1, 1).value.startswith("测试网格中心 基础网格考核 2026年10月")
        assert "制表人：" in sheet.cell(sheet.max_row, 1).value
    texts = _texts(wb["说明"])
    assert not any(str(tmp_path) in v or str(ws.root) in v for v in texts)
    assert not any(re.search(r"(^|[\s:：])/[^\s/]+/", v) for v in texts)
    root = Path("/srv/centre/ws")
    assert public_path_text("/srv/centre/ws/indicators/2026-10/events.csv: row 7", root) == (
        "indicators/2026-10/events.csv: row 7"
    )
    assert public_path_text("cannot read /etc/other/x.toml; 6.1a/6.1b", root) == "cannot read x.toml; 6.1a/6.1b"


def _synthetic(policy, n: int):
    """Scores of ``n`` grids without a store (full marks but a few points), for write_workbook."""
    gids = [f"XTH{i:03d}" for i in range(1, n + 1)]
    grids = pd.DataFrame(
        {"grid_id": gids, "grid_name": [f"第{i}网格" for i in range(1, n + 1)], "grid_type": "village"}
    )
    grids.loc[0, "grid_name"] = '=HYPERLINK("http://x")'  # a name that looks like a formula
    rows = []
    for i, gid in enumerate(gids):
        for code in ITEM_CODES:
            top = policy.items[code].max_score
            rows.append((gid, MONTH, code, top, top - (0.2 * i if code == "6.1a" else 0.0)))
        rows.append((gid, MONTH, "total", 100.0, 100.0 - 0.2 * i))
    scores = pd.DataFrame(rows, columns=["grid_id", "month", "item_code", "max_score", "score"])
    total = scores["item_code"] == "total"
    scores["rank"] = scores["score"].where(total).rank(method="min", ascending=False)
    scores["policy_hash"] = policy.hash
    deductions = pd.DataFrame(
        columns=["grid_id", "month", "item_code", "reason", "count", "points", "evidence", "worker_id", "kind"]
    )
    empty = pd.DataFrame(columns=["worker_id", "grid_id", "event_id", "flag", "detail"])
    return scores, deductions, grids, empty


def test_assessment_table_in_blocks_of_grids_and_formulas_stay_text(tmp_path, policy):
    n = 2 * GRIDS_PER_PAGE + 3
    scores, deductions, grids, empty = _synthetic(policy, n)
    path = write_workbook(
        tmp_path / "wb.xlsx",
        MONTH,
        scores,
        deductions,
        grids,
        empty,
        empty,
        policy,
        prepared_on=date(2026, 11, 3),
    )
    wb = openpyxl.load_workbook(path)
    table = wb["考核表"]
    heads = [c.row for c in table["A"] if c.value == "类别"]
    assert len(heads) == 3 and [b.id for b in table.row_breaks.brk] == [h - 1 for h in heads[1:]]
    assert table.print_title_rows == "$1:$2"  # blocks have their own header rows
    grid_cols = [table.cell(h, j).value for h in heads for j in range(6, 6 + GRIDS_PER_PAGE)]
    assert sum(v is not None for v in grid_cols) == n
    assert table.max_column == 5 + GRIDS_PER_PAGE
    assert wb["汇总"].cell(2, 1).value == "制表日期：2026年11月03日"
    name = next(c for row in wb["汇总"].iter_rows() for c in row if str(c.value).startswith("=HYPERLINK"))
    assert name.data_type == "s"
    with zipfile.ZipFile(path) as z:
        assert not any(b"<f>" in z.read(f) for f in z.namelist() if f.startswith("xl/worksheets/"))


def test_csv_exports_neutralise_formulas(tmp_path):
    """OWASP CSV injection: text a spreadsheet would run is prefixed with ', numbers stay numbers."""
    from scoring.export import write_table

    hostile = ['=HYPERLINK("http://x","y")', "+86 123", "-cmd|' /C calc'!A0", "@SUM(1)", "\tx", "正常文本"]
    df = pd.DataFrame({"grid_id": ["G01"] * 6, "evidence": hostile, "points": [-0.2, 0.2, 1.0, 0.5, 0.0, 3.0]})
    csv_path, pq_path = write_table(df, tmp_path, "deduction")
    back = pd.read_csv(csv_path, encoding="utf-8-sig", keep_default_na=False)
    assert back["evidence"].tolist()[:5] == ["'" + v for v in hostile[:5]]
    assert back["evidence"].iloc[5] == "正常文本"
    assert back["points"].tolist() == [-0.2, 0.2, 1.0, 0.5, 0.0, 3.0]  # negative numbers untouched
    assert pd.read_parquet(pq_path)["evidence"].tolist() == hostile  # the typed store keeps the value
