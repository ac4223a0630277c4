"""Ingest under malformed input (hypothesis): it never raises and accounts for every row.

Generated CSV (UTF-8, BOM, GBK, gzip), JSON Lines and Parquet files with wrong types,
missing and renamed columns, garbage bytes, huge values, NaN/inf, very long strings,
embedded newlines and quotes are fed to :func:`trajectory.ingest.ingest_inbox` on a tiny
workspace. Per file: accepted + duplicate + quarantined == rows read (the documented
StoreError on a reconciliation failure must never happen), every quarantined row has a
reason, and the store holds exactly the accepted points.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ingest import LAT, LON, NOW, WORKERS, write_workspace

from trajectory import ingest, store
from trajectory.workspace import load_workspace

settings.register_profile(
    "ingest-fuzz",
    max_examples=35,
    deadline=None,
    derandomize=True,  # the same examples on every machine: a CI failure reproduces locally
    suppress_health_check=[HealthCheck.too_slow],
)

COLUMNS = ("worker_id", "ts", "lon", "lat", "accuracy_m", "speed_mps", "mock", "device_id")

nasty_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["", " ", "NaN", "nan", "inf", "-inf", "null", "None", '"', '""', "a,b", "line\nbreak", "\r\n", "\ufeff"]
    ),
    st.text(alphabet="网格员巡查西太湖", min_size=1, max_size=8),
    st.integers(1000, 20000).map(lambda n: "x" * n),  # very long field
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.floats(min_value=-200, max_value=200),
)
value_for = {
    "worker_id": st.one_of(st.sampled_from(WORKERS), st.sampled_from(["w9", "W1", " w1 "]), nasty_text),
    "ts": st.one_of(
        st.integers(1_700_000_000_000, 1_800_000_000_000),  # epoch ms around 2026
        st.integers(-(10**19), 10**19),
        st.sampled_from(["2026-10-09T08:30:00+08:00", "2026-10-09 08:30", "2026/10/09 08:30:00Z", "2026-13-45T99:99"]),
        numbers,
        nasty_text,
    ),
    "lon": st.one_of(st.floats(LON - 0.01, LON + 0.01), numbers, nasty_text),
    "lat": st.one_of(st.floats(LAT - 0.01, LAT + 0.01), numbers, nasty_text),
    "accuracy_m": st.one_of(numbers, nasty_text),
    "speed_mps": st.one_of(numbers, nasty_text),
    "mock": st.one_of(st.booleans(), st.sampled_from(["true", "0", "是", "maybe"]), nasty_text),
    "device_id": nasty_text,
}


@st.composite
def gps_rows(draw: st.DrawFn) -> tuple[list[str], list[dict]]:
    """A header (some contract columns, maybe renamed, plus extras) and rows for it."""
    cols = draw(st.lists(st.sampled_from(COLUMNS), unique=True, min_size=0, max_size=len(COLUMNS)))
    header = [draw(st.sampled_from([c, c.upper(), f" {c} "])) for c in cols]
    header += draw(st.lists(st.sampled_from(["extra", "备注", "x y", ""]), max_size=2))
    rows = [
        {h: draw(value_for.get(h.strip().lower(), nasty_text)) for h in header} for _ in range(draw(st.integers(0, 12)))
    ]
    return header, rows


def _cell(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def csv_bytes(header: list[str], rows: list[dict], encoding: str, windows: bool) -> bytes:
    buf = io.StringIO()
    # a minimally quoted field holding a bare CR is only unambiguous with CRLF line ends
    out = (
        csv.writer(buf, lineterminator="\r\n")
        if windows
        else csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    )
    out.writerow(header)
    out.writerows([_cell(r[h]) for h in header] for r in rows)
    text = buf.getvalue()
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:  # not every generated character exists in GBK
        return text.encode("utf-8")


def jsonl_bytes(header: list[str], rows: list[dict], garbage: list[str]) -> bytes:
    lines = [json.dumps({h: r[h] for h in header}, ensure_ascii=False) for r in rows] + garbage
    return "\n".join(lines).encode("utf-8")


def parquet_bytes(header: list[str], rows: list[dict], typed: bool) -> bytes:
    columns = {}
    for h in dict.fromkeys(header):
        values = [r[h] for r in rows]
        if typed and all(isinstance(v, float) for v in values):
            columns[h] = pa.array(values, pa.float64())
        elif typed and all(isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2**63 for v in values):
            columns[h] = pa.array(values, pa.int64())
        else:
            columns[h] = pa.array([_cell(v) for v in values], pa.string())
    buf = io.BytesIO()
    pq.write_table(pa.table(columns) if columns else pa.table({"empty": pa.array([], pa.int8())}), buf)
    return buf.getvalue()


@st.composite
def inbox_file(draw: st.DrawFn) -> tuple[str, bytes, int | None]:
    """A file name ending, its bytes, and the number of rows it holds (None: unknown, garbage)."""
    header, rows = draw(gps_rows())
    kind = draw(st.sampled_from(["csv", "csv-bom", "csv-gbk", "csv.gz", "jsonl", "parquet", "garbage", "empty"]))
    if kind == "garbage":
        ext = draw(st.sampled_from(["csv", "jsonl", "parquet", "csv.gz"]))
        return ext, draw(st.binary(min_size=1, max_size=600)), None
    if kind == "empty":
        return draw(st.sampled_from(["csv", "jsonl", "parquet"])), b"", 0
    if kind.startswith("csv"):
        encoding = {"csv-bom": "utf-8-sig", "csv-gbk": "gbk"}.get(kind, "utf-8")
        data = csv_bytes(header, rows, encoding, windows=draw(st.booleans()))
        n: int | None = len(rows) if header else None
        if draw(st.booleans()):  # a truncated or corrupted tail
            data += draw(st.binary(min_size=1, max_size=40))
            n = None
        return ("csv.gz", gzip.compress(data), n) if kind == "csv.gz" else ("csv", data, n)
    if kind == "jsonl":
        garbage = draw(st.lists(st.sampled_from(["{not json", "[1, 2]", "", "null", '"text"', "{}"]), max_size=3))
        return "jsonl", jsonl_bytes(header, rows, garbage), len(rows) + sum(bool(g) for g in garbage)
    # a Parquet table without columns has no rows either
    return "parquet", parquet_bytes(header, rows, typed=draw(st.booleans())), len(rows) if header else 0


@settings(settings.get_profile("ingest-fuzz"))
@given(files=st.lists(inbox_file(), min_size=1, max_size=3))
def test_malformed_files_never_raise_and_every_row_is_accounted_for(files: list[tuple[str, bytes, int | None]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = write_workspace(Path(tmp) / "ws")
        expected = {}
        for i, (ext, data, n_rows) in enumerate(files):
            (root / "inbox" / "gps" / f"f{i}.{ext}").write_bytes(data)
            expected[f"f{i}.{ext}"] = n_rows
        ws = load_workspace(root)
        con = store.connect(ws.paths)
        try:
            report = ingest.ingest_inbox(ws, con, "fuzz", progress=False, now=NOW)
            manifest = {
                r[0]: r[1:]
                for r in con.execute(
                    "SELECT file_name, rows_read, rows_accepted, rows_duplicate, rows_quarantined FROM ingest_manifest"
                ).fetchall()
            }
            for f in report.files:
                if f["skipped_as_known"]:  # the same bytes drawn twice
                    continue
                assert f["accepted"] + f["duplicate"] + f["quarantined"] == f["rows_read"], f
                if expected[f["name"]] is not None:  # no row lost or invented by the readers
                    assert f["rows_read"] == expected[f["name"]], f
                assert manifest[f["name"]] == (f["rows_read"], f["accepted"], f["duplicate"], f["quarantined"])
                reasons = [
                    r[0]
                    for r in con.execute("SELECT reason FROM quarantine WHERE source_file = ?", [f["name"]]).fetchall()
                ]
                # an unreadable file is one quarantine row (row 0) standing for the whole file
                assert len(reasons) == (1 if "error" in f else f["quarantined"])
                assert all(isinstance(r, str) and r.strip() for r in reasons)
            assert con.execute("SELECT count(*) FROM gps_point").fetchone() == (report.rows_accepted,)
            stored = con.execute("SELECT lon, lat FROM gps_point").fetchall()
            assert all(math.isfinite(x) and math.isfinite(y) for x, y in stored)
            assert con.execute(
                "SELECT count(*) FROM gps_point WHERE worker_id NOT IN ?", [list(WORKERS)]
            ).fetchone() == (0,)
        finally:
            con.close()
