"""Hostile and broken GPS input (issue 14, rows 5–10): real files in tmp workspaces, a real store.

Each test fails on the ingest before issue 14:

- row 5: a line over ~2 MiB made the whole file "unreadable" (its valid rows lost);
- row 6: a dot-file was skipped without a word;
- row 7: a symbolic link to a file outside the inbox was followed and stored;
- row 8: a (worker, ts) re-sent with other coordinates was counted as a duplicate;
- row 9: the platform's GBK export with Chinese headers quarantined every row "missing column";
- row 10: epoch seconds were quarantined as "ts before 2000-01-01".
"""

from __future__ import annotations

import gzip
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_ingest import LAT, LON, by_name, inbox, quarantine, run, write_workspace

from scoring.policy import load_policy
from trajectory import contract as c
from trajectory import coords, ingest
from trajectory.errors import PolicyError

T0 = datetime(2026, 10, 9, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai
T0_S = int(T0.timestamp())


@pytest.fixture
def ws_root(tmp_path: Path) -> Path:
    return write_workspace(tmp_path / "ws")


def iso(minute: int) -> str:
    return (T0 + timedelta(minutes=minute)).isoformat()


def assert_reasons_in_contract(con) -> None:
    reasons = [r[0] for r in con.execute("SELECT DISTINCT reason FROM quarantine").fetchall()]
    assert all(r.startswith(c.QUARANTINE_REASONS) for r in reasons), reasons


# --- row 5: an overlong line --------------------------------------------------------------


@pytest.mark.parametrize("size", [ingest._MAX_LINE_BYTES + 1, 2_500_000])
@pytest.mark.parametrize("name", ["big.csv", "big.csv.gz", "big.jsonl"])
def test_an_overlong_line_quarantines_only_itself(ws_root: Path, name: str, size: int) -> None:
    jsonl = name.endswith(".jsonl")
    lines = []
    for i in range(1, 102):
        lat = "abc" if i == 75 else str(LAT)
        if i == 51:
            lines.append("w1," + "x" * size)
        elif jsonl:
            lines.append(json.dumps({"worker_id": "w1", "ts": iso(i), "lon": LON, "lat": lat}))
        else:
            lines.append(f"w1,{iso(i)},{LON},{lat}")
    text = ("" if jsonl else "worker_id,ts,lon,lat\n") + "\n".join(lines) + "\n"
    data = gzip.compress(text.encode()) if name.endswith(".gz") else text.encode()
    (inbox(ws_root) / name).write_bytes(data)
    report, con = run(ws_root)
    f = by_name(report)[name]
    assert "error" not in f
    assert (f["rows_read"], f["accepted"], f["quarantined"]) == (101, 99, 2)
    q = quarantine(con)
    assert q == {(name, 51): f"line too long (over {ingest._MAX_LINE_BYTES} bytes)", (name, 75): "non-numeric lat"}
    raw = con.execute("SELECT raw FROM quarantine WHERE row_number = 51").fetchone()[0]
    assert len(raw) < 2100 and json.loads(raw)["line"].startswith("w1,xxx")
    assert any(name in w and "longer than" in w for w in report.warnings)
    # the rows after the long line keep their own numbers and times
    assert con.execute("SELECT count(*), max(ts) FROM gps_point").fetchone() == (99, T0 + timedelta(minutes=101))
    assert_reasons_in_contract(con)
    con.close()
    again, con = run(ws_root, "r2")
    assert by_name(again)[name]["skipped_as_known"] and quarantine(con) == q


# --- row 6: hidden and temporary names ----------------------------------------------------

TEMP_NAMES = [".x.csv", ".~lock.x.csv#", "x.csv.part", ".x.csv.part", "~$x.csv", "x.csv.tmp"]


def test_hidden_and_temporary_files_are_listed_as_skipped_not_ingested(ws_root: Path) -> None:
    row = f"worker_id,ts,lon,lat\nw1,{iso(0)},{LON},{LAT}\n"
    for name in TEMP_NAMES:
        (inbox(ws_root) / name).write_text(row)
    (inbox(ws_root) / ".archive").mkdir()  # a hidden folder: not a delivery, passed silently
    (inbox(ws_root) / ".archive" / "old.csv").write_text(row)
    (inbox(ws_root) / "a.csv").write_text(f"worker_id,ts,lon,lat\nw2,{iso(0)},{LON},{LAT}\n")
    for run_id in ("r1", "r2"):  # listed every run, like every other skipped entry
        report, con = run(ws_root, run_id)
        assert [f["name"] for f in report.files] == ["a.csv"]
        for name in TEMP_NAMES:
            said = [w for w in report.warnings if w.startswith(f"inbox entry {name}: ")]
            assert len(said) == 1 and "temporary" in said[0], (name, report.warnings)
        assert not any(".archive" in w for w in report.warnings)
        assert con.execute("SELECT file_name FROM ingest_manifest").fetchall() == [("a.csv",)]
        assert con.execute("SELECT worker_id FROM gps_point").fetchall() == [("w2",)]
        con.close()
    # renamed to its final name once complete, the upload is read
    (inbox(ws_root) / ".x.csv").rename(inbox(ws_root) / "x.csv")
    report, con = run(ws_root, "r3")
    assert by_name(report)["x.csv"]["accepted"] == 1


# --- row 7: symbolic links out of the inbox -------------------------------------------------

_OPENED: list[str] | None = None


def _record_opens(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_record_opens)  # hooks cannot be removed: it records only while _OPENED is a list


def test_links_resolving_outside_the_inbox_are_refused_and_never_opened(ws_root: Path, tmp_path: Path) -> None:
    global _OPENED
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text(f"worker_id,ts,lon,lat\nw3,{iso(0)},{LON},{LAT}\n")
    box = inbox(ws_root)
    (box / "a.csv").write_text(f"worker_id,ts,lon,lat\nw1,{iso(0)},{LON},{LAT}\n")
    (box / "secret.csv").symlink_to(outside / "secret.csv")
    (box / "passwd.csv").symlink_to("/etc/passwd")
    (box / "archive").symlink_to(outside, target_is_directory=True)  # a linked folder ...
    (box / "via.csv").symlink_to("archive/secret.csv")  # ... and a file reached through it
    (box / "latest.csv").symlink_to("a.csv")  # inside the inbox: followed
    _OPENED = []
    try:
        report, con = run(ws_root)
        opened = [p for p in _OPENED if Path(p).resolve().is_relative_to(outside) or p.startswith("/etc/")]
    finally:
        _OPENED = None
    assert opened == []
    for name in ("secret.csv", "passwd.csv", "archive", "via.csv"):
        said = [w for w in report.warnings if w.startswith(f"inbox entry {name}: ")]
        assert len(said) == 1 and "outside the inbox" in said[0], (name, report.warnings)
    assert sorted(f["name"] for f in report.files) == ["a.csv", "latest.csv"]
    assert by_name(report)["latest.csv"]["skipped_as_known"]  # the same bytes as a.csv
    assert con.execute("SELECT file_name FROM ingest_manifest").fetchall() == [("a.csv",)]
    assert con.execute("SELECT worker_id FROM gps_point").fetchall() == [("w1",)]
    assert quarantine(con) == {}


def test_an_inbox_that_is_itself_a_link_is_read(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws")
    real = tmp_path / "mounted" / "gps"
    real.mkdir(parents=True)
    inbox(root).rmdir()
    inbox(root).symlink_to(real, target_is_directory=True)
    (real / "a.csv").write_text(f"worker_id,ts,lon,lat\nw1,{iso(0)},{LON},{LAT}\n")
    report, _ = run(root)
    assert by_name(report)["a.csv"]["accepted"] == 1 and report.warnings == []


# --- row 8: the same (worker, ts) re-sent with other coordinates ----------------------------


@pytest.mark.parametrize("crs", ["wgs84", "gcj02"])
def test_a_conflicting_resend_is_quarantined_and_the_first_copy_stays(tmp_path: Path, crs: str) -> None:
    root = write_workspace(tmp_path / "ws", toml=f'gps_crs = "{crs}"\n')
    a, b, d = (LON, LAT), (LON + 0.001, LAT), (LON, LAT + 0.002)
    head = "worker_id,ts,lon,lat\n"
    (inbox(root) / "a.csv").write_text(head + f"w1,{iso(1)},{a[0]},{a[1]}\nw1,{iso(2)},{b[0]},{b[1]}\n")
    (inbox(root) / "b.csv").write_text(
        head
        + f"w1,{iso(1)},{b[0]},{b[1]}\n"  # 1: conflicts with the stored copy (a.csv row 1)
        + f"w1,{iso(2)},{b[0]:.8f},{b[1]}\n"  # 2: the stored point again, other formatting: a duplicate
        + f"w1,{iso(3)},{a[0]},{a[1]}\n"  # 3: new
        + f"w1,{iso(3)},{d[0]},{d[1]}\n"  # 4: conflicts with row 3 of this file
        + f"w1,{iso(3)},{a[0]},{a[1]}\n"  # 5: row 3 again: a duplicate
        + f"w2,{iso(1)},{b[0]},{b[1]}\n"  # 6: another worker: new
    )
    report, con = run(root)
    f = by_name(report)["b.csv"]
    assert (f["rows_read"], f["accepted"], f["duplicate"], f["quarantined"]) == (6, 2, 2, 2)
    assert quarantine(con) == {("b.csv", 1): "conflicting_duplicate", ("b.csv", 4): "conflicting_duplicate"}
    assert json.loads(con.execute("SELECT raw FROM quarantine WHERE row_number = 1").fetchone()[0])["lon"] == str(b[0])
    assert any("b.csv" in w and "conflicting_duplicate" in w for w in report.warnings)
    got = dict(
        ((w, ts), (lon, lat))
        for w, ts, lon, lat in con.execute("SELECT worker_id, ts, lon, lat FROM gps_point").fetchall()
    )
    to_wgs = coords.gcj02_to_wgs84 if crs == "gcj02" else (lambda x, y: (np.asarray(x), np.asarray(y)))
    for (w, minute), want in {("w1", 1): a, ("w1", 2): b, ("w1", 3): a, ("w2", 1): b}.items():
        lon, lat = to_wgs([want[0]], [want[1]])
        assert got[(w, T0 + timedelta(minutes=minute))] == pytest.approx((lon[0], lat[0]), abs=1e-9)
    assert len(got) == 4
    before = sorted(quarantine(con).items())
    con.close()
    again, con = run(root, "r2")  # idempotent
    assert all(f["skipped_as_known"] for f in again.files) and sorted(quarantine(con).items()) == before


def test_conflicts_are_found_across_chunks_of_one_file(ws_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "_CHUNK_ROWS", 2)  # a file of five rows read two rows at a time
    (inbox(ws_root) / "c.csv").write_text(
        "worker_id,ts,lon,lat\n"
        f"w1,{iso(1)},{LON},{LAT}\nw1,{iso(2)},{LON},{LAT}\n"
        f"w1,{iso(1)},{LON},{LAT}\nw1,{iso(2)},{LON + 0.01},{LAT}\n"
        f"w1,{iso(3)},{LON},{LAT}\n"
    )
    report, con = run(ws_root)
    f = by_name(report)["c.csv"]
    assert (f["accepted"], f["duplicate"], f["quarantined"]) == (3, 1, 1)
    assert quarantine(con) == {("c.csv", 4): "conflicting_duplicate"}
    assert con.execute("SELECT DISTINCT lon FROM gps_point").fetchall() == [(LON,)]


# --- row 9: the centre platform's own exports ------------------------------------------------


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_the_platforms_chinese_export_is_ingested(ws_root: Path, encoding: str) -> None:
    # 定位精度（米）: full-width brackets, as Excel on a Chinese system writes them
    header = "人员编号,定位时间,经度,纬度,定位精度（米）,速度,设备编号,备注\n"
    note = "𠀀" if encoding == "gb18030" else "正常"  # U+20000 exists in GB18030 only
    rows = [f"w1,2026/10/09 08:{30 + i}:00,{LON},{LAT},12.5,1.2,华为手机,{note}\n" for i in range(3)]
    (inbox(ws_root) / "平台导出.csv").write_bytes((header + "".join(rows)).encode(encoding))
    report, con = run(ws_root)
    f = by_name(report)["平台导出.csv"]
    assert (f["rows_read"], f["accepted"], f["quarantined"]) == (3, 3, 0), quarantine(con)
    assert con.execute("SELECT DISTINCT worker_id, accuracy_m, speed_mps, device_id FROM gps_point").fetchall() == [
        ("w1", 12.5, 1.2, "华为手机")
    ]
    assert con.execute("SELECT min(ts) FROM gps_point").fetchone() == (T0,)
    assert any("GB18030" in w for w in report.warnings)


def test_gps_columns_in_patrol_toml_map_other_headers(tmp_path: Path) -> None:
    toml = '[gps.columns]\n"员工" = "worker_id"\n"GPS 时刻" = "ts"\n"东经" = "lon"\n"北纬" = "lat"\n"速度" = ""\n'
    root = write_workspace(tmp_path / "ws", toml=toml)
    (inbox(root) / "other.csv").write_text(f"员工,GPS时刻,东经,北纬,速度\nw1,{iso(0)},{LON},{LAT},4.5\n")
    report, con = run(root)
    assert by_name(report)["other.csv"]["accepted"] == 1, quarantine(con)
    # 速度 mapped to "" is not read (a km/h column, say)
    assert con.execute("SELECT worker_id, ts, speed_mps FROM gps_point").fetchall() == [("w1", T0, None)]


def test_a_header_without_required_columns_rejects_the_file_once_until_mapped(ws_root: Path) -> None:
    name = "导出.csv"
    rows = "".join(f"w1,{iso(i)},{LON},{LAT}\n" for i in range(40))
    (inbox(ws_root) / name).write_bytes(("工作证号,时刻,x,y\n" + rows).encode("gbk"))
    report, con = run(ws_root)
    f = by_name(report)[name]
    assert f["rows_read"] == 0 and f["error"].startswith("file rejected")
    # one quarantine row (row 0) and one manifest row for the file, not 40 rows
    ((where, reason),) = quarantine(con).items()
    assert where == (name, 0) and "worker_id, ts, lon, lat" in reason
    assert json.loads(con.execute("SELECT raw FROM quarantine").fetchone()[0]) == {
        "header": ["工作证号", "时刻", "x", "y"]
    }
    assert con.execute("SELECT file_name, rows_read, error FROM ingest_manifest").fetchall() == [(name, 0, reason)]
    said = [w for w in report.warnings if name in w and "rejected" in w]
    assert len(said) == 1 and "worker_id, ts, lon, lat" in said[0] and "[gps.columns]" in said[0]
    con.close()
    report, con = run(ws_root, "r2")  # said once: the next runs skip it quietly
    assert by_name(report)[name]["skipped_as_known"] and not any(name in w for w in report.warnings)
    con.close()
    (ws_root / "patrol.toml").write_text(
        '[gps.columns]\n"工作证号" = "worker_id"\n"时刻" = "ts"\n"x" = "lon"\n"y" = "lat"\n', encoding="utf-8"
    )
    report, con = run(ws_root, "r3")  # mapped now: read, and its rejection replaced
    f = by_name(report)[name]
    assert (f["rows_read"], f["accepted"], f["quarantined"]) == (40, 40, 0)
    assert quarantine(con) == {}
    assert con.execute("SELECT rows_read, error FROM ingest_manifest").fetchall() == [(40, None)]


def test_gps_columns_are_validated(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[gps.columns]\n"x" = "latitude"\n', encoding="utf-8")
    with pytest.raises(PolicyError, match=r"gps\.columns\.x.*worker_id, ts, lon, lat"):
        load_policy(bad)
    bad.write_text("[gps]\nfoo = 1\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="unknown setting 'gps.foo'"):
        load_policy(bad)
    assert "gps" not in load_policy().raw  # the policy hash of a workspace without it is unchanged


# --- row 10: epoch seconds ---------------------------------------------------------------------

EPOCH_CASES = [
    # (ts as delivered, the instant it is, or the quarantine reason)
    (str(T0_S), T0),
    (str(T0_S * 1000), T0),
    (f"{T0_S}.25", T0 + timedelta(seconds=0.25)),
    ("946684799", "ts before 2000-01-01 (read as epoch seconds)"),
    ("946684799000", "ts before 2000-01-01 (read as epoch milliseconds)"),
    ("50000000000", "ts more than 1 day after the run (read as epoch seconds)"),
    ("99999999999999", "ts more than 1 day after the run (read as epoch milliseconds)"),
    ("100000000000000", "unparseable ts (an epoch number too large for seconds or milliseconds)"),
]


@pytest.mark.parametrize("form", ["csv", "jsonl", "parquet"])
def test_epoch_seconds_and_milliseconds_are_told_apart_by_magnitude(ws_root: Path, form: str) -> None:
    workers = [f"w{i % 5 + 1}" for i in range(len(EPOCH_CASES))]  # the two readings of T0: two workers
    if form == "csv":
        rows = "".join(f"{w},{ts},{LON},{LAT}\n" for w, (ts, _) in zip(workers, EPOCH_CASES, strict=True))
        (inbox(ws_root) / "e.csv").write_text("worker_id,ts,lon,lat\n" + rows)
    elif form == "jsonl":
        lines = [
            json.dumps({"worker_id": w, "ts": json.loads(ts), "lon": LON, "lat": LAT})
            for w, (ts, _) in zip(workers, EPOCH_CASES, strict=True)
        ]
        (inbox(ws_root) / "e.jsonl").write_text("\n".join(lines) + "\n")
    else:  # typed numbers: int64 and float64 columns of two files
        ints = [(w, int(ts)) for w, (ts, _) in zip(workers, EPOCH_CASES, strict=True) if "." not in ts]
        pq.write_table(
            pa.table(
                {
                    "worker_id": [w for w, _ in ints],
                    "ts": [t for _, t in ints],
                    "lon": [LON] * len(ints),
                    "lat": [LAT] * len(ints),
                }
            ),
            inbox(ws_root) / "e.parquet",
        )
        pq.write_table(
            pa.table({"worker_id": ["w5"], "ts": pa.array([T0_S + 0.25], pa.float64()), "lon": [LON], "lat": [LAT]}),
            inbox(ws_root) / "f.parquet",
        )
    report, con = run(ws_root)
    reasons = sorted(quarantine(con).values())
    assert reasons == sorted(want for _, want in EPOCH_CASES if isinstance(want, str))
    stored = sorted(r[0] for r in con.execute("SELECT ts FROM gps_point").fetchall())
    assert stored == sorted(want for _, want in EPOCH_CASES if isinstance(want, datetime))
    assert_reasons_in_contract(con)
