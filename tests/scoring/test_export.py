"""scoring.export: store the month in a real DuckDB, write the workbook, reopen it with openpyxl."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scoring_helpers import FINDINGS, MONTH, clean_tables, write_geojson, write_tables

from scoring.export import EVENT_FLAG, main, score_and_store, workbook_name
from trajectory.contract import DEDUCTION, GRID_MONTH_SCORE, ITEM_CODES, PATROL_FINDING, WORKER_DAY
from trajectory.store import connect
from trajectory.workspace import load_workspace

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
    score_and_store(ws, con, "2026-09")  # another month, no indicators: warnings only
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
    headers = [c.value for c in summary[1]]
    assert headers[:5] == ["排名", "网格编号", "网格名称", "类型", "1 网格工作纪律(4)"]
    assert headers[-1] == "总分" and "6.1a 事项上报数量(15)" in headers and len(headers) == 4 + len(ITEM_CODES) + 1
    assert summary.freeze_panes == "E2"
    rows = {r[1]: r for r in summary.iter_rows(min_row=2, values_only=True)}
    assert rows["G01"][-1] == pytest.approx(db_total)
    assert rows["G01"][2] == "湖滨社区一网格" and rows["G03"][3] == "村"
    assert summary.cell(2, len(headers)).number_format == "0.0"
    assert [r[0] for r in summary.iter_rows(min_row=2, values_only=True)] == sorted(r[0] for r in rows.values())
    table = wb["考核表"]
    assert [c.value for c in table[1]][:5] == ["类别", "编号", "考核内容", "评分标准", "满分"]
    assert table.freeze_panes == "F2"
    assert table.cell(1 + len(ITEM_CODES) + 1, 3).value == "总分"
    g01 = wb["G01"]
    assert g01.freeze_panes == "A2"
    g01_text = [v for row in g01.iter_rows(values_only=True) for v in row if isinstance(v, str)]
    assert any("KP-07" in v for v in g01_text)  # the key person by code
    assert "工作日未巡查" in g01_text and "重点人员未按周期走访" in g01_text
    total_row = next(r for r in g01.iter_rows(values_only=True) if r[0] == "total")
    assert total_row[4] == pytest.approx(db_total)
    notes = [r[1] for r in wb["说明"].iter_rows(min_row=2, values_only=True)]
    assert ws.policy.hash in notes and MONTH in notes
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


def test_cli_missing_workspace(tmp_path, capsys):
    assert main(["--workspace", str(tmp_path / "nowhere"), "--month", MONTH]) == 1
    assert "workspace folder not found" in capsys.readouterr().err


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0 and "--month" in capsys.readouterr().out
