"""Ingest under malformed input (hypothesis): it never raises and accounts for every row.

Generated CSV (UTF-8, BOM, GBK/GB18030, gzip), JSON Lines and Parquet files with wrong types,
missing, renamed and Chinese-aliased columns, garbage bytes, huge values, NaN/inf, very long
strings, lines over the reader's line limit, embedded newlines and quotes, re-sent points
with other coordinates are fed to :func:`trajectory.ingest.ingest_inbox` on a tiny
workspace. Per file: accepted + duplicate + quarantined == rows read (the documented
StoreError on a reconciliation failure must never happen), a file without a column for a
required field is rejected as a whole (one row 0), every quarantined row has a reason of
the contract's list, and the store holds exactly the accepted points, each (worker, ts) once.
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
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ingest import LAT, LON, NOW, WORKERS, write_workspace

from trajectory import contract, ingest, store
from trajectory.workspace import load_workspace

settings.register_profile(
    "ingest-fuzz",
    max_examples=35,
    deadline=None,
    derandomize=True,  # the same examples on every machine: a CI failure reproduces locally
    suppress_health_check=[HealthCheck.too_slow],
)

COLUMNS = ("worker_id", "ts", "lon", "lat", "accuracy_m", "speed_mps", "mock", "device_id")
REQUIRED = COLUMNS[:4]

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
        st.integers(1_700_000_000, 1_800_000_000),  # epoch seconds around 2026
        st.sampled_from([1791505800, 1791505800000, "1791505800", "1791505800.5"]),  # the same instant: copies
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
def gps_rows(draw: st.DrawFn) -> tuple[list[str], list[dict], bool]:
    """A header (contract columns, maybe renamed or by a Chinese alias, plus extras), rows for it,
    and whether the header has a column for every required field."""
    if draw(st.booleans()):  # mostly complete headers: the rows are read
        cols = [*REQUIRED, *draw(st.lists(st.sampled_from(COLUMNS[4:]), unique=True))]
    else:
        cols = draw(st.lists(st.sampled_from(COLUMNS), unique=True, min_size=0, max_size=len(COLUMNS)))
    named = {
        draw(
            st.sampled_from([c, c.upper(), f" {c} ", ingest.GPS_HEADER_ALIASES[c][0], ingest.GPS_HEADER_ALIASES[c][-1]])
        ): c
        for c in cols
    }
    header = [*named, *draw(st.lists(st.sampled_from(["extra", "备注", "x y", ""]), max_size=2))]
    rows = [
        {h: draw(value_for.get(named.get(h, ""), nasty_text)) for h in header} for _ in range(draw(st.integers(0, 12)))
    ]
    return header, rows, set(REQUIRED) <= set(named.values())


# a line longer than the reader's line limit: quarantined alone, the file's other lines read
long_line = st.builds(
    lambda n, ch: "w1," + ch * n,
    st.integers(ingest._MAX_LINE_BYTES, ingest._MAX_LINE_BYTES + 5000),
    st.sampled_from("x网"),
)


def _cell(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def csv_bytes(header: list[str], rows: list[dict], encoding: str, windows: bool, long: tuple[int, str] | None) -> bytes:
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
    if long is not None:  # after the header, between two rows
        lines = text.splitlines(keepends=True)
        at = 1 + long[0] % max(len(rows), 1)
        text = "".join([*lines[:at], long[1] + "\n", *lines[at:]])
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:  # not every generated character exists in GBK
        return text.encode("utf-8")


def jsonl_bytes(header: list[str], rows: list[dict], garbage: list[str], long: tuple[int, str] | None) -> bytes:
    lines = [json.dumps({h: r[h] for h in header}, ensure_ascii=False) for r in rows] + garbage
    if long is not None:
        lines.insert(long[0] % (len(lines) + 1), long[1])
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
def inbox_file(draw: st.DrawFn) -> tuple[str, bytes, int | None, bool | None]:
    """A file name ending, its bytes, the number of rows it holds (None: unknown, garbage) and
    whether it must be rejected for its header (None: unknown)."""
    header, rows, complete = draw(gps_rows())
    kind = draw(
        st.sampled_from(["csv", "csv-bom", "csv-gbk", "csv-gb18030", "csv.gz", "jsonl", "parquet", "garbage", "empty"])
    )
    long = draw(st.none() | st.tuples(st.integers(0, 20), long_line)) if kind in ("csv", "csv.gz", "jsonl") else None
    if kind == "garbage":
        ext = draw(st.sampled_from(["csv", "jsonl", "parquet", "csv.gz"]))
        return ext, draw(st.binary(min_size=1, max_size=600)), None, None
    if kind == "empty":
        return draw(st.sampled_from(["csv", "jsonl", "parquet"])), b"", 0, False
    if kind.startswith("csv"):
        encoding = {"csv-bom": "utf-8-sig", "csv-gbk": "gbk", "csv-gb18030": "gb18030"}.get(kind, "utf-8")
        data = csv_bytes(header, rows, encoding, windows=draw(st.booleans()), long=long if header else None)
        n: int | None = len(rows) + (long is not None) if header else None
        if draw(st.booleans()):  # a truncated or corrupted tail
            data += draw(st.binary(min_size=1, max_size=40))
            n = None
        rejected = None if n is None else not complete
        return ("csv.gz", gzip.compress(data), n, rejected) if kind == "csv.gz" else ("csv", data, n, rejected)
    if kind == "jsonl":
        garbage = draw(st.lists(st.sampled_from(["{not json", "[1, 2]", "", "null", '"text"', "{}"]), max_size=3))
        n = len(rows) + sum(bool(g) for g in garbage) + (long is not None)
        # keys come from the objects: without any, the lines are judged one by one
        return "jsonl", jsonl_bytes(header, rows, garbage, long), n, bool(rows and header) and not complete
    # a Parquet table without columns has no rows either
    return "parquet", parquet_bytes(header, rows, typed=draw(st.booleans())), len(rows) if header else 0, not complete


@settings(settings.get_profile("ingest-fuzz"))
@given(files=st.lists(inbox_file(), min_size=1, max_size=3))
def test_malformed_files_never_raise_and_every_row_is_accounted_for(
    files: list[tuple[str, bytes, int | None, bool | None]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = write_workspace(Path(tmp) / "ws")
        expected, rejected = {}, {}
        for i, (ext, data, n_rows, header_rejected) in enumerate(files):
            (root / "inbox" / "gps" / f"f{i}.{ext}").write_bytes(data)
            expected[f"f{i}.{ext}"] = n_rows
            rejected[f"f{i}.{ext}"] = header_rejected
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
                if rejected[f["name"]] and expected[f["name"]]:  # a whole file, not a row each
                    assert f["error"].startswith(contract.REASON_FILE_REJECTED) and f["rows_read"] == 0, f
                elif expected[f["name"]] is not None:  # no row lost or invented by the readers
                    assert f["rows_read"] == expected[f["name"]], f
                assert manifest[f["name"]] == (f["rows_read"], f["accepted"], f["duplicate"], f["quarantined"])
                reasons = [
                    r[0]
                    for r in con.execute("SELECT reason FROM quarantine WHERE source_file = ?", [f["name"]]).fetchall()
                ]
                # an unreadable file is one quarantine row (row 0) standing for the whole file
                assert len(reasons) == (1 if "error" in f else f["quarantined"])
                assert all(isinstance(r, str) and r.startswith(contract.QUARANTINE_REASONS) for r in reasons), reasons
            assert con.execute("SELECT count(*) FROM gps_point").fetchone() == (report.rows_accepted,)
            assert con.execute("SELECT count(DISTINCT (worker_id, ts)) FROM gps_point").fetchone() == (
                report.rows_accepted,
            )
            stored = con.execute("SELECT lon, lat FROM gps_point").fetchall()
            assert all(math.isfinite(x) and math.isfinite(y) for x, y in stored)
            assert con.execute(
                "SELECT count(*) FROM gps_point WHERE worker_id NOT IN ?", [list(WORKERS)]
            ).fetchone() == (0,)
        finally:
            con.close()


# --- re-sent points: duplicates and conflicts against a model ------------------------------------

# one row: (worker, minute, longitude offset); offsets of 1e-7° are the same position, 5e-4° not
copy_rows = st.lists(
    st.tuples(st.sampled_from(WORKERS[:3]), st.integers(0, 4), st.sampled_from([0.0, 0.0, 1e-7, 5e-4, 1e-3])),
    min_size=1,
    max_size=25,
)


@settings(settings.get_profile("ingest-fuzz"))
@given(
    files=st.lists(st.tuples(copy_rows, st.sampled_from(["csv", "parquet"])), min_size=1, max_size=3),
    chunk_rows=st.integers(1, 8),
)
def test_resent_points_keep_the_first_copy_and_quarantine_the_conflicting_ones(
    files: list[tuple[list[tuple[str, int, float]], str]], chunk_rows: int
) -> None:
    first: dict[tuple[str, int], float] = {}  # the model: the copy that stays, in ingest (name) order
    want: dict[str, tuple[int, int, int]] = {}
    conflicts: set[tuple[str, int]] = set()
    real_chunk = ingest._CHUNK_ROWS
    with tempfile.TemporaryDirectory() as tmp:
        root = write_workspace(Path(tmp) / "ws")
        for i, (rows, fmt) in enumerate(files):
            name = f"f{i}.{fmt}"
            table = pa.table(
                {
                    "worker_id": [w for w, _, _ in rows],
                    "ts": [f"2026-10-09T08:{m:02d}:00+08:00" for _, m, _ in rows],
                    "lon": [LON + d for _, _, d in rows],
                    "lat": [LAT] * len(rows),
                }
            )
            if fmt == "csv":
                pacsv.write_csv(table, root / "inbox" / "gps" / name)
            else:
                pq.write_table(table, root / "inbox" / "gps" / name)
            counts = [0, 0, 0]
            for row, (w, m, d) in enumerate(rows, start=1):
                if (w, m) not in first:
                    first[(w, m)] = d
                    counts[0] += 1
                elif abs(first[(w, m)] - d) > 1e-6:
                    conflicts.add((name, row))
                    counts[2] += 1
                else:
                    counts[1] += 1
            want[name] = (counts[0], counts[1], counts[2])
        ingest._CHUNK_ROWS = chunk_rows
        try:
            ws = load_workspace(root)
            con = store.connect(ws.paths)
            report = ingest.ingest_inbox(ws, con, "fuzz", progress=False, now=NOW)
        finally:
            ingest._CHUNK_ROWS = real_chunk
        try:
            got = {f["name"]: (f["accepted"], f["duplicate"], f["quarantined"]) for f in report.files}
            q = con.execute("SELECT source_file, row_number, reason FROM quarantine").fetchall()
            stored = con.execute("SELECT worker_id, minute(ts), lon FROM gps_point").fetchall()
        finally:
            con.close()
    skipped = {f["name"] for f in report.files if f["skipped_as_known"]}  # the same rows drawn twice
    assert {k: v for k, v in got.items() if k not in skipped} == {k: v for k, v in want.items() if k not in skipped}
    assert {(f, r) for f, r, _ in q} == {(f, r) for f, r in conflicts if f not in skipped}
    assert {reason for _, _, reason in q} <= {contract.REASON_CONFLICTING_DUPLICATE}
    # each point once, at the coordinates of its first copy
    assert sorted((w, m, round(lon, 9)) for w, m, lon in stored) == sorted(
        (w, m, round(LON + d, 9)) for (w, m), d in first.items()
    )


# --- the line filter against a plain model ----------------------------------------------------------


@settings(settings.get_profile("ingest-fuzz"), max_examples=200)
@given(
    lengths=st.lists(st.integers(0, 40), max_size=20),
    final_newline=st.booleans(),
    limit=st.integers(1, 30),
    block=st.integers(1, 64),
)
def test_long_lines_are_cut_out_exactly(lengths: list[int], final_newline: bool, limit: int, block: int) -> None:
    lines = [bytes([65 + i % 26]) * n for i, n in enumerate(lengths)]
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    kept = [line for line in lines if len(line) <= limit]
    removed = [i for i, line in enumerate(lines, start=1) if len(line) > limit]
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.csv", Path(tmp) / "out.csv"
        src.write_bytes(data)
        assert ingest._has_long_line(src, limit, block) == bool(removed)
        assert ingest._has_long_line(src, limit) == bool(removed)  # memory-mapped
        dropped = ingest._drop_long_lines(src, out, limit, block)
        copy = out.read_bytes()
    assert [n for n, _ in dropped] == removed
    assert [text for _, text in dropped] == [lines[i - 1][:2000].decode() for i in removed]
    last_kept = bool(lines) and len(lines[-1]) <= limit
    assert copy == b"".join(line + b"\n" for line in kept)[: None if final_newline or not last_kept else -1]
