"""Ingest of the GPS inbox: real files in tmp workspaces, a real DuckDB store."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trajectory import coords, ingest, store
from trajectory.errors import StoreError
from trajectory.workspace import load_workspace

NOW = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)
WORKERS = ("w1", "w2", "w3", "w4", "w5", "网格员1")
LON, LAT = 119.95, 31.78  # Changzhou, 西太湖
HEADER = "worker_id,ts,lon,lat,accuracy_m,speed_mps,mock,device_id\n"


def write_workspace(root: Path, toml: str = "") -> Path:
    (root / "grids_geojson").mkdir(parents=True)
    ring = [
        [LON - 0.01, LAT - 0.01],
        [LON + 0.01, LAT - 0.01],
        [LON + 0.01, LAT + 0.01],
        [LON - 0.01, LAT + 0.01],
        [LON - 0.01, LAT - 0.01],
    ]
    feature = {
        "type": "Feature",
        "properties": {"grid_id": "G1", "grid_name": "西太湖一", "grid_type": "社区"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    (root / "grids_geojson" / "grids.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": [feature]}), encoding="utf-8"
    )
    rows = "".join(f"{w},Name {i},G1,true\n" for i, w in enumerate(WORKERS))
    (root / "workers.csv").write_text("worker_id,worker_name,grid_id,full_time\n" + rows, encoding="utf-8")
    (root / "inbox" / "gps").mkdir(parents=True)
    if toml:
        (root / "patrol.toml").write_text(toml, encoding="utf-8")
    return root


@pytest.fixture
def ws_root(tmp_path: Path) -> Path:
    return write_workspace(tmp_path / "ws")


def inbox(root: Path) -> Path:
    return root / "inbox" / "gps"


def run(root: Path, run_id: str = "r1"):
    ws = load_workspace(root)
    con = store.connect(ws.paths)
    report = ingest.ingest_inbox(ws, con, run_id, progress=False, now=NOW)
    for f in report.files:  # reconciliation, every file, every test
        assert f["accepted"] + f["duplicate"] + f["quarantined"] == f["rows_read"], f
    return report, con


def quarantine(con) -> dict[tuple[str, int], str]:
    return {
        (f, r): reason
        for f, r, reason in con.execute("SELECT source_file, row_number, reason FROM quarantine").fetchall()
    }


def by_name(report) -> dict[str, dict]:
    return {f["name"]: f for f in report.files}


def haversine_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(np.asarray(lon2) - lon1) / 2) ** 2
    return 2 * 6371008.8 * np.arcsin(np.sqrt(a))


BAD_ROWS = [
    # (line, expected reason or None when accepted)
    (f"w1,2026-10-09T08:30:00+08:00,{LON},{LAT},5,1.2,false,d1", None),
    (f",2026-10-09T08:31:00+08:00,{LON},{LAT},,,,", "missing worker_id"),
    (f"w9,2026-10-09T08:32:00+08:00,{LON},{LAT},,,,", "unknown worker (not in workers.csv)"),
    (f"w1,,{LON},{LAT},,,,", "missing ts"),
    (f"w1,yesterday at noon,{LON},{LAT},,,,", "unparseable ts"),
    (f"w1,2026-10-09,{LON},{LAT},,,,", "unparseable ts"),
    (f"w1,2026-10-09T08:33:00+08:00,,{LAT},,,,", "missing lon"),
    (f"w1,2026-10-09T08:34:00+08:00,{LON},abc,,,,", "non-numeric lat"),
    (f"w1,2026-10-09T08:35:00+08:00,200.5,{LAT},,,,", "lon outside [-180, 180]"),
    (f"w1,2026-10-09T08:36:00+08:00,{LON},-95,,,,", "lat outside [-90, 90]"),
    ("w1,2026-10-09T08:37:00+08:00,0,0,,,,", "null island (0, 0)"),
    (f"w1,1999-12-31T23:00:00Z,{LON},{LAT},,,,", "ts before 2000-01-01"),
    (f"w1,1791534600,{LON},{LAT},,,,", None),  # epoch seconds (2026-10-09T08:30Z), told from ms by magnitude
    (f"w1,946684799,{LON},{LAT},,,,", "ts before 2000-01-01 (read as epoch seconds)"),
    (f"w1,2026-10-22T08:00:00+08:00,{LON},{LAT},,,,", "ts more than 1 day after the run"),
    # accuracy / mock / speed never quarantine
    (f"w2,2026-10-09T08:38:00+08:00,{LON},{LAT},900,99,true,d2", None),
    (f"w2,2026-10-09T08:39:00+08:00,{LON},{LAT},abc,x,maybe,", None),
]


def test_bad_rows_are_quarantined_with_their_reason(ws_root: Path) -> None:
    (inbox(ws_root) / "day.csv").write_text(HEADER + "".join(line + "\n" for line, _ in BAD_ROWS), encoding="utf-8")
    report, con = run(ws_root)
    f = by_name(report)["day.csv"]
    expected = {("day.csv", i): reason for i, (_, reason) in enumerate(BAD_ROWS, start=1) if reason}
    assert quarantine(con) == expected
    assert f["rows_read"] == len(BAD_ROWS)
    assert f["quarantined"] == len(expected)
    assert f["accepted"] == len(BAD_ROWS) - len(expected)
    raw = json.loads(con.execute("SELECT raw FROM quarantine WHERE row_number = 9").fetchone()[0])
    assert raw["lon"] == "200.5" and raw["worker_id"] == "w1"
    pts = con.execute("SELECT worker_id, accuracy_m, speed_mps, mock FROM gps_point ORDER BY ts").fetchall()
    assert pts == [
        ("w1", 5.0, 1.2, False),
        ("w2", 900.0, 99.0, True),
        ("w2", None, None, False),
        ("w1", None, None, False),
    ]
    assert any("mock values" in w for w in report.warnings)
    assert report.dates_touched == {date(2026, 10, 9)}


def test_duplicates_and_redelivered_files_are_stored_once(ws_root: Path) -> None:
    a = (
        HEADER
        + "w1,1791505800000,119.95,31.78,,,,\nw1,1791505800000,119.950000,31.78,,,,\nw1,1791505860000,119.95,31.78,,,,\n"
    )
    b = HEADER + "w1,2026-10-09T08:31:00+08:00,119.95,31.78,,,,\nw1,2026-10-09T08:32:00+08:00,119.95,31.78,,,,\n"
    (inbox(ws_root) / "a.csv").write_text(a)
    (inbox(ws_root) / "b.csv").write_text(b)
    (inbox(ws_root) / "c-copy-of-a.csv").write_text(a)
    report, con = run(ws_root)
    files = by_name(report)
    assert (files["a.csv"]["accepted"], files["a.csv"]["duplicate"]) == (2, 1)
    assert (files["b.csv"]["accepted"], files["b.csv"]["duplicate"]) == (1, 1)
    assert files["c-copy-of-a.csv"]["skipped_as_known"]
    assert con.execute("SELECT count(*), count(DISTINCT (worker_id, ts)) FROM gps_point").fetchone() == (3, 3)
    assert any("same content as a.csv" in w for w in report.warnings)
    assert con.execute("SELECT file_name FROM ingest_alias").fetchall() == [("c-copy-of-a.csv",)]
    # the alias is reported once, not every night
    report2, _ = run(ws_root, "r2")
    assert not any("same content" in w for w in report2.warnings)


@pytest.mark.parametrize(
    "crs, forward", [("gcj02", coords.wgs84_to_gcj02), ("bd09", coords.wgs84_to_bd09), ("cgcs2000", None)]
)
def test_chinese_coordinates_land_within_half_a_metre(tmp_path: Path, crs: str, forward) -> None:
    root = write_workspace(tmp_path / "ws", toml=f'gps_crs = "{crs}"\n')
    rng = np.random.default_rng(3)
    lon = LON + rng.uniform(-0.05, 0.05, 200)
    lat = LAT + rng.uniform(-0.05, 0.05, 200)
    glon, glat = forward(lon, lat) if forward else (lon, lat)
    ts = 1791505800000 + np.arange(200) * 1000
    pq.write_table(pa.table({"worker_id": ["w1"] * 200, "ts": ts, "lon": glon, "lat": glat}), inbox(root) / "p.parquet")
    _, con = run(root)
    got = con.execute("SELECT lon, lat FROM gps_point ORDER BY ts").fetchnumpy()
    assert len(got["lon"]) == 200
    assert haversine_m(lon, lat, got["lon"], got["lat"]).max() < 0.5


def test_timestamp_forms_give_the_same_instant(ws_root: Path) -> None:
    instant = datetime(2026, 10, 9, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai
    ms = int(instant.timestamp() * 1000)
    rows = [
        ("w1", str(ms)),
        ("w2", "2026-10-09T08:30:00+08:00"),
        ("w3", "2026-10-09T00:30:00Z"),
        ("w4", "2026-10-09 08:30:00"),  # naive = workspace time zone
        ("w5", "2026/10/09 08:30"),
        ("网格员1", "2026-10-09T00:30:00.000z"),
    ]
    (inbox(ws_root) / "t.csv").write_text(
        "worker_id,ts,lon,lat\n" + "".join(f"{w},{t},{LON},{LAT}\n" for w, t in rows), encoding="utf-8"
    )
    # the same instant typed in Parquet and as a JSON number: duplicates of the CSV rows
    pq.write_table(
        pa.table(
            {
                "worker_id": ["w1", "w2"],
                "ts": pa.array([instant, instant], pa.timestamp("ms", tz="UTC")),
                "lon": [LON, LON],
                "lat": [LAT, LAT],
            }
        ),
        inbox(ws_root) / "t.parquet",
    )
    (inbox(ws_root) / "t.jsonl").write_text(json.dumps({"worker_id": "w3", "ts": ms, "lon": LON, "lat": LAT}) + "\n")
    report, con = run(ws_root)
    assert quarantine(con) == {}
    assert con.execute("SELECT DISTINCT ts FROM gps_point").fetchall() == [(instant,)]
    files = by_name(report)
    assert files["t.csv"]["accepted"] == 6
    assert files["t.parquet"]["duplicate"] == 2 and files["t.jsonl"]["duplicate"] == 1


def test_naive_time_in_a_zone_with_daylight_saving(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", toml='timezone = "America/New_York"\n')
    (inbox(root) / "t.csv").write_text(
        f"worker_id,ts,lon,lat\nw1,2026-07-01 08:00:00,{LON},{LAT}\nw1,2026-03-01 08:00:00,{LON},{LAT}\n"
    )
    _, con = run(root)
    got = [r[0] for r in con.execute("SELECT ts FROM gps_point ORDER BY ts").fetchall()]
    assert got == [datetime(2026, 3, 1, 13, tzinfo=UTC), datetime(2026, 7, 1, 12, tzinfo=UTC)]


def test_local_date_partitions_a_late_utc_point_on_the_next_day(ws_root: Path) -> None:
    (inbox(ws_root) / "late.csv").write_text(f"worker_id,ts,lon,lat\nw1,2026-10-09T23:30:00Z,{LON},{LAT}\n")
    report, con = run(ws_root)
    assert report.dates_touched == {date(2026, 10, 10)}
    h = report.files[0]["hash"]
    assert (ws_root / "store" / "gps" / "date=2026-10-10" / f"{h[:16]}.parquet").exists()
    assert con.execute("SELECT date FROM gps_point").fetchall() == [(date(2026, 10, 10),)]


def test_gps_point_view_has_the_contract_columns(ws_root: Path) -> None:
    (inbox(ws_root) / "a.csv").write_text(f"worker_id,ts,lon,lat\nw1,2026-10-09T08:30:00+08:00,{LON},{LAT}\n")
    _, con = run(ws_root)
    types = dict((r[0], r[1]) for r in con.execute("DESCRIBE gps_point").fetchall())
    assert types["worker_id"] == "VARCHAR" and types["ts"] == "TIMESTAMP WITH TIME ZONE"
    assert types["lon"] == "DOUBLE" and types["lat"] == "DOUBLE"


def test_missing_column_rejects_the_file_without_stopping_the_run(ws_root: Path) -> None:
    (inbox(ws_root) / "a-nolat.csv").write_text(
        f"worker_id,ts,lon\nw1,2026-10-09T08:30:00+08:00,{LON}\nw1,2026-10-09T08:31:00+08:00,{LON}\n"
    )
    (inbox(ws_root) / "b-good.csv").write_text(f"worker_id,ts,lon,lat\nw1,2026-10-09T08:30:00+08:00,{LON},{LAT}\n")
    report, con = run(ws_root)
    files = by_name(report)
    # one row 0 for the whole file, not a row each (docs/ingest.md)
    assert (files["a-nolat.csv"]["rows_read"], files["a-nolat.csv"]["accepted"]) == (0, 0)
    ((where, reason),) = quarantine(con).items()
    assert where == ("a-nolat.csv", 0) and reason.startswith("file rejected") and "lat" in reason
    assert files["b-good.csv"]["accepted"] == 1


@pytest.mark.parametrize("content", [b"", b"worker_id,ts,lon,lat\n", b"\xef\xbb\xbf"])
def test_empty_files(ws_root: Path, content: bytes) -> None:
    (inbox(ws_root) / "empty.csv").write_bytes(content)
    report, con = run(ws_root)
    assert report.files[0]["rows_read"] == 0 and report.files[0]["accepted"] == 0
    assert con.execute("SELECT count(*) FROM gps_point").fetchone() == (0,)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk"])
def test_bom_and_gbk_csv(ws_root: Path, encoding: str) -> None:
    text = f"worker_id,ts,lon,lat,device_id\n网格员1,2026-10-09T08:30:00+08:00,{LON},{LAT},华为手机\n"
    (inbox(ws_root) / "cn.csv").write_bytes(text.encode(encoding))
    report, con = run(ws_root)
    assert report.files[0]["accepted"] == 1, quarantine(con)
    assert con.execute("SELECT worker_id, device_id FROM gps_point").fetchall() == [("网格员1", "华为手机")]


@pytest.mark.parametrize("name", ["junk.csv", "junk.parquet", "junk.jsonl", "junk.csv.gz"])
def test_garbage_bytes_are_reported_not_fatal(ws_root: Path, name: str) -> None:
    rng = np.random.default_rng(1)
    (inbox(ws_root) / name).write_bytes(
        bytes([0xFF, 0xFE, 0x80]) + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    )
    (inbox(ws_root) / "ok.csv").write_text(f"worker_id,ts,lon,lat\nw1,2026-10-09T08:30:00+08:00,{LON},{LAT}\n")
    report, con = run(ws_root)
    files = by_name(report)
    assert "error" in files[name] and files["ok.csv"]["accepted"] == 1
    reasons = con.execute("SELECT row_number, reason FROM quarantine WHERE source_file = ?", [name]).fetchall()
    assert len(reasons) == 1 and reasons[0][0] == 0 and reasons[0][1].startswith("unreadable file")
    assert any(name in w for w in report.warnings)
    report2, _ = run(ws_root, "r2")
    assert all(f["skipped_as_known"] for f in report2.files)


def test_malformed_lines_are_quarantined_by_line(ws_root: Path) -> None:
    (inbox(ws_root) / "a.csv").write_text(
        f"worker_id,ts,lon,lat\nw1,2026-10-09T08:30:00+08:00,{LON},{LAT}\nw1,2026-10-09T08:31:00+08:00,{LON},{LAT},extra,cols\n"
        f"w1,2026-10-09T08:32:00+08:00,{LON},{LAT}\n"
    )
    lines = [
        json.dumps({"worker_id": "w1", "ts": "2026-10-09T09:00:00+08:00", "lon": LON, "lat": LAT, "extra": {"a": 1}}),
        "",
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"worker_id": "w1", "ts": 1791510000000, "lon": str(LON), "lat": LAT, "mock": True}),
        json.dumps({"worker_id": "w1", "lon": LON, "lat": LAT}),
    ]
    with gzip.open(inbox(ws_root) / "b.jsonl.gz", "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    report, con = run(ws_root)
    q = quarantine(con)
    assert q[("a.csv", 2)].startswith("malformed CSV line")
    assert q[("b.jsonl.gz", 3)] == q[("b.jsonl.gz", 4)] == "malformed JSON line (not a JSON object)"
    assert q[("b.jsonl.gz", 6)] == "missing ts"
    files = by_name(report)
    assert (files["a.csv"]["accepted"], files["a.csv"]["rows_read"]) == (2, 3)
    assert (files["b.jsonl.gz"]["accepted"], files["b.jsonl.gz"]["rows_read"]) == (2, 5)
    assert con.execute("SELECT count(*) FROM gps_point WHERE mock").fetchone() == (1,)


def test_unsupported_extension_is_a_warning(ws_root: Path) -> None:
    (inbox(ws_root) / "notes.xlsx").write_bytes(b"PK\x03\x04")
    report, _ = run(ws_root)
    assert report.files == [] and any("notes.xlsx" in w for w in report.warnings)


def test_rerun_changes_nothing(ws_root: Path) -> None:
    (inbox(ws_root) / "a.csv").write_text(HEADER + "".join(line + "\n" for line, _ in BAD_ROWS))
    _, con = run(ws_root)
    before = (con.execute("SELECT * FROM gps_point ORDER BY ts").fetchall(), sorted(quarantine(con).items()))
    con.close()
    report, con = run(ws_root, "r2")
    assert all(f["skipped_as_known"] for f in report.files) and report.dates_touched == set()
    assert (con.execute("SELECT * FROM gps_point ORDER BY ts").fetchall(), sorted(quarantine(con).items())) == before


def test_unchanged_files_are_not_read_again(ws_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the inbox keeps every night's file: a run must not hash a month of files again
    path = inbox(ws_root) / "a.csv"
    path.write_text(HEADER + "".join(line + "\n" for line, _ in BAD_ROWS))
    _, con = run(ws_root)
    con.close()
    hashed: list[str] = []
    real = ingest._sha256
    monkeypatch.setattr(ingest, "_sha256", lambda p: hashed.append(p.name) or real(p))
    report, con = run(ws_root, "r2")
    con.close()
    assert hashed == [] and all(f["skipped_as_known"] for f in report.files)
    # rewritten (new content, new modification time): hashed and read again
    path.write_text(HEADER + "".join(line + "\n" for line, _ in BAD_ROWS[:2]))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    report, con = run(ws_root, "r3")
    assert hashed == ["a.csv"] and not report.files[0]["skipped_as_known"]
    con.close()


def test_crash_before_the_manifest_row_is_recovered(ws_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (inbox(ws_root) / "a.csv").write_text(HEADER + "".join(line + "\n" for line, _ in BAD_ROWS))
    real_commit = ingest._commit

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(ingest, "_commit", crash)
    with pytest.raises(KeyboardInterrupt):
        run(ws_root)
    assert list((ws_root / "store" / "gps").glob("date=*/*.parquet"))  # parts written, not committed
    monkeypatch.setattr(ingest, "_commit", real_commit)
    report, con = run(ws_root, "r2")
    f = report.files[0]
    assert f["accepted"] == 4 and f["duplicate"] == 0
    assert con.execute("SELECT count(*) FROM gps_point").fetchone() == (4,)


def test_reconciliation_failure_is_loud(ws_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (inbox(ws_root) / "a.csv").write_text(f"worker_id,ts,lon,lat\nw1,2026-10-09T08:30:00+08:00,{LON},{LAT}\n")
    real = ingest._write_parts
    monkeypatch.setattr(ingest, "_write_parts", lambda ctx, h, pts, chunk=0: real(ctx, h, pts.slice(0, 0), chunk))
    # (pts: the chunk's new points, ingest.keys.NewPoints; none of them written)
    with pytest.raises(StoreError, match="does not reconcile"):
        run(ws_root)


def test_moved_inbox_file_copy_keeps_working(ws_root: Path, tmp_path: Path) -> None:
    # a workspace restored elsewhere reads its own store
    (inbox(ws_root) / "a.csv").write_text(f"worker_id,ts,lon,lat\nw1,2026-10-09T08:30:00+08:00,{LON},{LAT}\n")
    _, con = run(ws_root)
    con.close()
    moved = tmp_path / "moved"
    shutil.copytree(ws_root, moved)
    report, con = run(moved, "r2")
    assert report.files[0]["skipped_as_known"]
    assert con.execute("SELECT count(*) FROM gps_point").fetchone() == (1,)


def test_a_failed_part_write_stops_the_commits_after_it(ws_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # parts are written and files committed on a writer thread while the next file is read:
    # a write failing (disk full) is raised, its file and every later one stay uncommitted
    for k, name in enumerate(("a.csv", "b.csv", "c.csv")):
        rows = "".join(f"w{k + 1},2026-10-09T08:{m:02d}:00+08:00,{LON},{LAT},,,,\n" for m in range(10))
        (inbox(ws_root) / name).write_text(HEADER + rows)
    real = store.write_parquet_atomic
    calls: list[Path] = []

    def disk_full_at_second(table, path, **options):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(table, path, **options)

    monkeypatch.setattr(store, "write_parquet_atomic", disk_full_at_second)
    with pytest.raises(OSError, match="No space left"):
        run(ws_root)
    ws = load_workspace(ws_root)
    con = store.connect(ws.paths)
    assert con.execute("SELECT file_name FROM ingest_manifest").fetchall() == [("a.csv",)]
    con.close()
    monkeypatch.setattr(store, "write_parquet_atomic", real)
    report, con = run(ws_root, "r2")
    assert sorted(f["name"] for f in report.files if not f["skipped_as_known"]) == ["b.csv", "c.csv"]
    assert con.execute("SELECT count(*), count(DISTINCT (worker_id, ts)) FROM gps_point").fetchone() == (30, 30)


def test_local_date_partitions_follow_daylight_saving(tmp_path: Path) -> None:
    # 03:30 UTC is 23:30 the day before in New York in summer (UTC−4) and in winter (UTC−5);
    # 04:30 UTC is 00:30 in summer, still 23:30 the day before in winter
    root = write_workspace(tmp_path / "ws", toml='timezone = "America/New_York"\n')
    (inbox(root) / "z.csv").write_text(
        "worker_id,ts,lon,lat\n"
        + "".join(
            f"w1,{ts},{LON},{LAT}\n"
            for ts in ("2026-07-01T03:30:00Z", "2026-07-01T04:30:00Z", "2026-03-01T03:30:00Z", "2026-03-01T04:30:00Z")
        )
    )
    report, con = run(root)
    got = con.execute("SELECT strftime(ts, '%m-%dT%H:%M'), date FROM gps_point ORDER BY ts").fetchall()
    assert got == [
        ("03-01T03:30", date(2026, 2, 28)),
        ("03-01T04:30", date(2026, 2, 28)),
        ("07-01T03:30", date(2026, 6, 30)),
        ("07-01T04:30", date(2026, 7, 1)),
    ]
    assert report.dates_touched == {date(2026, 2, 28), date(2026, 6, 30), date(2026, 7, 1)}


@pytest.mark.parametrize("runs_budget", [0, None])
def test_a_day_in_many_files_keeps_the_first_copy_with_or_without_merged_key_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runs_budget: int | None
) -> None:
    # eight files of one day, each repeating points of the files before it (same place:
    # duplicate; moved: conflicting); the store's keys searched as merged runs (the default)
    # or part by part (no budget for runs) give the same store, counts and quarantine
    from trajectory.ingest import keys

    if runs_budget is not None:
        monkeypatch.setattr(keys, "KEY_RUNS_POINTS", runs_budget)
    root = write_workspace(tmp_path / "ws")
    rng = np.random.default_rng(11)
    minutes = np.arange(600)
    for k in range(8):
        own = minutes[k * 60 : (k + 1) * 60]
        again = rng.choice(minutes[: k * 60], size=min(k * 60, 30), replace=False) if k else np.array([], int)
        rows = [f"w{1 + m % 5},2026-10-09T{6 + m // 60:02d}:{m % 60:02d}:00+08:00,{LON},{LAT},,,," for m in own]
        for j, m in enumerate(again):
            lon = LON + (0.001 if j % 3 == 0 else 0.0)  # every third repeat moved: a conflicting copy
            rows.append(f"w{1 + m % 5},2026-10-09T{6 + m // 60:02d}:{m % 60:02d}:00+08:00,{lon},{LAT},,,,")
        (inbox(root) / f"f{k}.csv").write_text(HEADER + "\n".join(rows) + "\n")
    report, con = run(root)
    files = by_name(report)
    assert sum(f["accepted"] for f in files.values()) == 480
    assert con.execute("SELECT count(*), count(DISTINCT (worker_id, ts)) FROM gps_point").fetchone() == (480, 480)
    repeats = {k: min(k * 60, 30) for k in range(8)}
    for k in range(8):
        moved = len(range(0, repeats[k], 3))
        f = files[f"f{k}.csv"]
        assert (f["accepted"], f["duplicate"], f["quarantined"]) == (60, repeats[k] - moved, moved), f
    reasons = set(quarantine(con).values())
    assert reasons == {"conflicting_duplicate"}
    # the copy that stays is the first file's: no stored point lies where a moved copy said
    assert con.execute(f"SELECT count(*) FROM gps_point WHERE lon <> {LON}").fetchone() == (0,)
