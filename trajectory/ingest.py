"""Ingest: GPS files of the inbox into the Parquet store, rejected rows into ``quarantine`` (SPEC §2).

Each file of ``inbox/gps/`` (CSV, optionally gzipped; Parquet; JSON Lines) goes through:

1. SHA-256 of its bytes; a hash already in ``ingest_manifest`` is skipped (a file delivered
   again, under any name, changes nothing; a new name is recorded once in ``ingest_alias``).
2. Columnar parsing in DuckDB (no Python per row): every field is read as delivered and
   converted with ``TRY_CAST`` / regular expressions, ``ts`` from ISO-8601 with offset, naive
   local time (workspace time zone) or epoch seconds / milliseconds (told apart by
   magnitude); coordinates to WGS-84 per ``gps_crs`` (:mod:`trajectory.coords`). Text is
   UTF-8 (with or without BOM), else GB18030 (GBK); headers are mapped to the contract's
   columns by name, by the built-in Chinese aliases (``GPS_HEADER_ALIASES``) and by
   ``[gps.columns]`` of ``patrol.toml``. A file without a column for a required field is
   rejected as a whole (row 0, ``file rejected``) and read again once its header maps.
   A text line longer than ``_MAX_LINE_BYTES`` is quarantined alone (``line too long``).
3. Rows that cannot be a point go to ``quarantine`` with one specific reason
   (``contract.QUARANTINE_REASONS``) and their raw values as JSON. Accuracy, speed and mock
   flags are never reasons: judging a valid point is the engine's job.
4. A point is (worker_id, ts): duplicates inside the file and against the store are stored once;
   a copy with other coordinates is quarantined as ``conflicting_duplicate`` (the first copy,
   stored or earlier in the file, stays).
5. The file is read and classified a chunk of rows at a time (``_CHUNK_ROWS``), so memory is
   bounded by the chunk whatever the file's size. Each chunk's new points are written to
   ``store/gps/date=<local date>/<hash[:16]>[-<chunk>].parquet`` by atomic rename; then
   quarantine rows and the manifest row are inserted in one transaction, the manifest row
   being the commit point. A run killed before it leaves parts without a manifest
   row ("orphans"); the next ingest deletes them and re-reads the file, which rewrites the
   same parts.
6. Reconciliation: accepted + duplicate + quarantined == rows read, per file, or StoreError.
7. The local dates that received points are recorded as pending work (``store.PENDING_DAY``)
   in the same transaction as the manifest row, so a run killed after ingest still
   recomputes them next time.

Inbox entries that are not regular files (a folder named like a file, a broken link, a pipe),
hidden or temporary names (``.x.csv``, ``x.csv.part``: an upload or editor may still be
writing them), symbolic links resolving outside the inbox (never opened) and files that
cannot be opened are skipped with a warning, every run until they are fixed: they have no
content to record. docs/ingest.md states the rules.

The caller (``trajectory.run``) holds the workspace lock.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import json
import logging
import mmap
import os
import sys
import tempfile
import time
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from trajectory import contract as c
from trajectory import store
from trajectory.coords import to_wgs84
from trajectory.errors import StoreError
from trajectory.logs import log_step
from trajectory.workspace import FALSE_WORDS, TRUE_WORDS, Workspace

log = logging.getLogger(__name__)

# file name ending -> format; checked longest first
_FORMATS = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonl.gz": "jsonl",
    ".ndjson.gz": "jsonl",
}
_REQUIRED = c.GPS_POINT_COLUMNS  # worker_id, ts, lon, lat
_OPTIONAL = c.GPS_OPTIONAL_COLUMNS  # accuracy_m, speed_mps, mock, device_id
_MIN_TS_US = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
_FUTURE_SLACK_US = 86_400 * 1_000_000  # "> 1 day in the future of the run"
_ENCODING_PROBE_BYTES = 1 << 20
_RAW_MAX_CHARS = 2000  # a quarantined row's raw JSON is cut here (a broken file can have megabyte lines)
# A GPS line is ~100 bytes. A longer line than this is broken (a binary blob, a lost newline)
# and quarantined alone; DuckDB, whose own limit stops the whole file, is given twice as much.
_MAX_LINE_BYTES = 1 << 20
_SCAN_BLOCK_BYTES = 1 << 22
# Epoch numbers in ``ts``: below 1e11 seconds, below 1e14 milliseconds. Every instant from
# 2000 to 5000 has one reading (s: 9.5e8..9.6e10, ms: 9.5e11..9.6e13); the rest is out of range.
_EPOCH_S_BELOW = 1e11
_EPOCH_MS_BELOW = 1e14
# Copies of (worker_id, ts) whose coordinates differ by more than this (degrees, ~0.1 m:
# finer than any phone reports, coarser than a re-export's rounding) are conflicting.
_SAME_POSITION_DEG = 1e-6
# Names an upload tool or editor gives a file it is still writing: never ingested
# (docs/ingest.md: upload as .x.csv or x.csv.part, then rename)
_TEMP_PREFIXES = (".", "~$")
_TEMP_SUFFIXES = (".part", ".partial", ".filepart", ".crdownload", ".download", ".tmp", ".temp", ".swp", "~", "#")
# Headers of the centre platform's own exports, per contract column in priority order (a file
# with two of them reads the first listed). Compared after NFKC (full-width brackets), case
# folding and removing blanks; ``[gps.columns]`` in patrol.toml adds more. 速度 is m/s, as
# phones report it (Android Location.getSpeed); a km/h column is mapped to "" (not read).
GPS_HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "worker_id": ("人员编号", "网格员编号", "网格员id", "人员id", "员工编号", "工号", "用户编号", "用户id"),
    "ts": ("定位时间", "采集时间", "gps时间", "时间", "时间戳"),
    "lon": ("经度",),
    "lat": ("纬度",),
    "accuracy_m": ("定位精度", "精度", "定位精度(米)", "精度(米)", "定位精度(m)", "精度(m)"),
    "speed_mps": ("速度", "速度(米/秒)", "速度(m/s)"),
    "mock": ("模拟定位", "是否模拟定位", "虚拟定位", "是否虚拟定位"),
    "device_id": ("设备编号", "设备号", "设备id", "终端编号", "终端号", "imei"),
}

# The store's Parquet schema (ARCHITECTURE "Points handed to the engine" + provenance)
GPS_STORE_SCHEMA = pa.schema(
    [
        ("worker_id", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        ("accuracy_m", pa.float64()),
        ("speed_mps", pa.float64()),
        ("mock", pa.bool_()),
        ("device_id", pa.string()),
        ("file_hash", pa.string()),
    ]
)

# ts in text: a date and a time, optionally an offset; or epoch milliseconds
_RE_DATE_TIME = r"[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}[T ][0-9]{1,2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
_RE_OFFSET = r"\s*(Z|[+-][0-9]{2}(:?[0-9]{2})?)"
# AND does not short-circuit in SQL: json_type on a malformed line would stop the scan
_JSON_OBJECT = "(CASE WHEN json_valid({line}) THEN json_type({line}) = 'OBJECT' ELSE false END)"
_RE_EPOCH = r"-?[0-9]{1,19}(\.[0-9]*)?"
# A point's key within one local date: worker_idx << _KEY_TS_BITS | microseconds since the
# start of the day before (UTC). A local date spans at most 25 h and lies within 14 h of
# its UTC date, so the offset is below 61 h < 2**38 us (76 h).
_KEY_TS_BITS = 38
_DAY_US = 86_400 * 1_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_WRITE_THREADS = 2
# rows read, classified and written at a time: a file's peak memory is a chunk's, not the file's
_CHUNK_ROWS = 1 << 20
# GPS parts: dictionaries for the repetitive strings only (a dictionary of random coordinates
# is built and thrown away), delta-coded times, byte-split coordinates: 4M points written
# twice as fast and 40 % smaller than with pyarrow's defaults (benchmarks/bench_ingest.py)
_PART_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    # parts are sorted by (worker_id, ts): small row groups let a worker batch's read skip the rest
    "row_group_size": 128 * 1024,
    "use_dictionary": ["worker_id", "device_id", "file_hash"],
    "column_encoding": {"ts": "DELTA_BINARY_PACKED", "lon": "BYTE_STREAM_SPLIT", "lat": "BYTE_STREAM_SPLIT"},
}


@dataclass
class IngestReport:
    """What one ingest did.

    Attributes
    ----------
    files : list of dict
        One per inbox file with a GPS format: ``name, hash, format, rows_read, accepted,
        duplicate, quarantined, skipped_as_known, size`` (plus ``error`` when the file could not
        be read at all or was rejected for its header, and ``dates``: the local dates that
        received new points). ``quarantined`` counts conflicting duplicates too.
    dates_touched : set of datetime.date
        Local dates that received new points (the days to recompute).
    warnings : list of str
        For the run summary.
    """

    files: list[dict[str, Any]] = field(default_factory=list)
    dates_touched: set[date] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_accepted(self) -> int:
        return sum(f["accepted"] for f in self.files)

    @property
    def rows_duplicate(self) -> int:
        return sum(f["duplicate"] for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f["quarantined"] for f in self.files)

    @property
    def files_ingested(self) -> int:
        return sum(not f["skipped_as_known"] for f in self.files)


def ingest_inbox(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    progress: bool = True,
    *,
    now: datetime | None = None,
) -> IngestReport:
    """Ingest every new file of the workspace's GPS inbox.

    Parameters
    ----------
    ws : Workspace
        The loaded workspace (roster, time zone and ``gps_crs`` come from it).
    con : duckdb.DuckDBPyConnection
        The workspace store, opened by :func:`trajectory.store.connect`.
    run_id : str
        Written into the manifest and quarantine rows.
    progress : bool
        Show a progress bar over files on stderr.
    now : datetime, optional
        The run's time (aware); points more than a day after it are quarantined. Default: now.

    Returns
    -------
    IngestReport

    Raises
    ------
    StoreError
        A file's rows do not reconcile (accepted + duplicate + quarantined != rows read), or
        the store cannot be written.
    """
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware; found {now!r}")
    report = IngestReport()
    inbox = ws.paths.inbox_gps
    for table in (c.QUARANTINE, c.INGEST_MANIFEST, store.INGEST_ALIAS, store.PENDING_WORK):
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({store.TABLE_DDL[table]})")
    # why a file was not read (unreadable, rejected header): NULL for a file read normally; in
    # TABLE_DDL, and added here to a store made before the column existed
    con.execute(f"ALTER TABLE {c.INGEST_MANIFEST} ADD COLUMN IF NOT EXISTS error VARCHAR")
    report.warnings.extend(_remove_orphan_parts(con, ws))
    files, skipped = _inbox_files(inbox)
    report.warnings.extend(skipped)
    if not files:
        log_step("ingest_file", files=0)
    roster = pa.array(sorted(set(ws.workers["worker_id"].astype(str))), pa.string())
    if len(roster) >= 1 << (63 - _KEY_TS_BITS):
        most = (1 << (63 - _KEY_TS_BITS)) - 1
        raise StoreError(f"workers.csv lists {len(roster)} workers; ingest handles at most {most}")
    columns = {_norm(k): v for k, v in ws.policy.gps_columns.items()}
    ctx = _Context(ws, con, run_id, int(now.timestamp() * 1_000_000), roster, columns)
    # worker_idx: position in the sorted roster, so (worker_idx, ts) sorts like (worker_id, ts)
    worker_idx = pa.array(np.arange(len(roster), dtype=np.int32))
    con.register("_gp_workers", pa.table({"worker_id": roster, "worker_idx": worker_idx}))
    try:
        for path in tqdm(files, desc="ingest", unit="file", file=sys.stderr, disable=not progress):
            fmt = _format_of(path)
            if fmt is None:
                msg = f"inbox file {path.name}: 非GPS文件 not a GPS file (expected .csv, .csv.gz, .parquet, .jsonl, .ndjson); skipped"
                log.warning(msg)
                report.warnings.append(msg)
                continue
            try:
                file_hash, size = _sha256(path), path.stat().st_size
            except OSError as exc:
                msg = f"inbox file {path.name}: cannot be read ({exc.strerror or exc}); skipped, tried again next run"
                log.warning(msg)
                report.warnings.append(msg)
                continue
            entry, new_dates, warnings = _ingest_one(ctx, path, fmt, file_hash, size)
            store.crash_point("ingest.file")
            report.files.append(entry)
            report.dates_touched |= new_dates
            report.warnings.extend(warnings)
    finally:
        con.unregister("_gp_workers")
    store.refresh_views(con, ws.paths)
    log.debug(
        "ingest: %d files (%d new), %d points accepted, %d duplicate, %d quarantined, %d dates touched",
        len(report.files),
        report.files_ingested,
        report.rows_accepted,
        report.rows_duplicate,
        report.rows_quarantined,
        len(report.dates_touched),
    )
    return report


# --- one file -------------------------------------------------------------------------------


@dataclass
class _Context:
    ws: Workspace
    con: duckdb.DuckDBPyConnection
    run_id: str
    now_us: int
    roster: pa.Array  # worker ids of workers.csv, sorted (a point's worker_idx indexes it)
    columns: Mapping[str, str] = field(default_factory=dict)  # [gps.columns], headers normalised


class _ReadError(Exception):
    """The reader failed in the middle of a file (after some chunks were handled)."""


@dataclass
class _Source:
    """A file opened for reading in chunks (``batches``), each with ``_row``: the 1-based data row.

    For CSV, ``_row`` is provisional (rows the reader rejected are not counted yet) and is
    made final by :meth:`row_numbers_of` once the reader has reached the end of the file.
    """

    batches: Iterator[pa.Table] = field(default_factory=lambda: iter(()))
    # normalised name (worker_id, ts, …) -> SQL expression over the source view, and its kind
    fields: dict[str, tuple[str, str]] = field(default_factory=dict)
    raw_sql: str = "NULL"
    # rows the reader itself rejected (malformed lines): row number, reason, raw text; known
    # once ``batches`` is exhausted
    rejected: list[tuple[int, str, str]] = field(default_factory=list)
    json_lines: bool = False
    renumber: bool = False  # CSV: ``_row`` leaves out the reader's rejected rows
    lenient: bool = False
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    # the file's column names (JSON Lines: keys); None when it has none to judge (empty)
    header: list[str] | None = None
    closers: list[Callable[[], object]] = field(default_factory=list)

    def missing_required(self) -> list[str]:
        """Required contract columns the header has no column for (none when there is no header)."""
        if self.error is not None or self.header is None:
            return []
        return [name for name in _REQUIRED if name not in self.fields]

    def close(self) -> None:
        """Release the reader (also when its batches were never read)."""
        for close in self.closers:
            close()
        self.closers = []

    def row_numbers_of(self, provisional: np.ndarray, parsed: int) -> np.ndarray:
        """Final row numbers of rows given by provisional ``_row`` (1-based position among parsed rows).

        Parsed rows take the numbers 1..rows_read that the reader's rejected rows leave free,
        in order; past them (reader line numbers beyond the count: blank lines) they number on.
        """
        if not self.renumber or not self.rejected or not len(provisional):
            return provisional
        rows_read = parsed + len(self.rejected)
        taken = np.unique(np.array([r for r, _, _ in self.rejected], dtype=np.int64))
        taken = taken[(taken >= 1) & (taken <= rows_read)]
        n_free = rows_read - len(taken)
        pos = provisional.astype(np.int64) - 1
        # free numbers before taken[j]: taken[j] - 1 - j
        before = taken - 1 - np.arange(len(taken), dtype=np.int64)
        out = pos + 1 + np.searchsorted(before, pos, side="right")
        beyond = pos >= n_free
        out[beyond] = rows_read + 1 + (pos[beyond] - n_free)
        return out


def _inbox_files(inbox: Path) -> tuple[list[Path], list[str]]:
    """The inbox entries to read (sorted by name), and a warning for each entry skipped.

    Nothing outside the inbox is ever opened: a symbolic link (to a file or a folder) is
    followed only when its target lies inside the inbox, checked before any ``stat`` of the
    target. A plain sub-folder (an archive, say) is not a delivery and is passed silently.
    """
    if not inbox.is_dir():
        return [], []
    root = inbox.resolve()
    files, warnings = [], []
    for p in sorted(inbox.iterdir()):
        what = _skipped_entry(p, root)
        if what is None:
            files.append(p)
        elif what:
            msg = f"inbox entry {p.name}: {what}; skipped"
            log.warning(msg)
            warnings.append(msg)
    return files, warnings


def _skipped_entry(p: Path, root: Path) -> str | None:
    """Why inbox entry ``p`` is not read ("" = silently), or None when it is a file to read."""
    if p.is_symlink():
        try:
            target = p.resolve()
        except (OSError, RuntimeError):  # a loop of links
            return "损坏的符号链接 a broken symbolic link (a loop)"
        if not target.is_relative_to(root):
            if not p.exists():
                return "损坏的符号链接 a broken symbolic link (to a place outside the inbox), not a GPS file"
            return "指向收件箱以外的符号链接，拒绝读取 a symbolic link to a place outside the inbox, refused and not opened"
    name = p.name
    if p.is_dir() and not p.is_symlink() and (_format_of(p) is None or name.startswith(_TEMP_PREFIXES)):
        return ""
    if name.startswith(_TEMP_PREFIXES) or name.lower().endswith(_TEMP_SUFFIXES):
        return (
            "隐藏或临时文件，未入库 a hidden or temporary name (starts with '.' or '~$', or ends like .part/.tmp): "
            "an upload or editor may still be writing it; it is read once renamed to its final name"
        )
    if p.is_file():
        return None
    if p.is_symlink() and not p.exists():
        return "损坏的符号链接 a broken symbolic link, not a GPS file"
    if p.is_dir():
        return "文件夹 a folder, not a GPS file"
    return "非普通文件 not a regular file (a pipe, socket or device), not a GPS file"


def _format_of(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in sorted(_FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return _FORMATS[suffix]
    return None


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _ingest_one(
    ctx: _Context, path: Path, fmt: str, file_hash: str, size: int
) -> tuple[dict[str, Any], set[date], list[str]]:
    started = time.perf_counter()
    con = ctx.con
    entry: dict[str, Any] = {
        "name": path.name,
        "hash": file_hash,
        "format": fmt,
        "rows_read": 0,
        "accepted": 0,
        "duplicate": 0,
        "quarantined": 0,
        "skipped_as_known": False,
        "dates": [],
        "size": size,
    }
    known = _first(
        con, f"SELECT file_name, ingested_run, error FROM {c.INGEST_MANIFEST} WHERE file_hash = ?", [file_hash]
    )
    # a file rejected for its header is looked at again: [gps.columns] may map it now
    retry = known is not None and str(known[2] or "").startswith(c.REASON_FILE_REJECTED)
    if known is not None and not retry:
        return _skip_known(ctx, path, file_hash, entry, known)

    with tempfile.TemporaryDirectory(prefix="gridpatrol-ingest-") as tmp:
        src = _load(con, path, fmt, Path(tmp), ctx.columns)
        missing = src.missing_required()
        if missing:
            src.close()
            if known is not None:  # still rejected: said once, when it was
                return _skip_known(ctx, path, file_hash, entry, known)
            return _reject_file(ctx, path, file_hash, fmt, entry, src, missing)
        result = None
        while src.error is None:
            try:
                result = _ingest_chunks(ctx, src, file_hash)
                break
            except _ReadError as exc:
                # a reader failing half-way: the chunks already written are this file's, removed
                _remove_parts_of(ctx, file_hash)
                if fmt == "csv" and not src.lenient:
                    src = _load(con, path, fmt, Path(tmp), ctx.columns, lenient=True, strict_error=str(exc))
                else:
                    src = _Source(error=str(exc), warnings=src.warnings)
        if result is None:
            assert src.error is not None
            entry["error"] = f"{c.REASON_UNREADABLE_FILE}: {src.error}"
            _commit(ctx, path, file_hash, fmt, entry, [(0, entry["error"], _head_of(path))], None)
            msg = f"inbox file {path.name}: 无法读取 {src.error}; recorded in quarantine (row 0) and skipped"
            log.warning(msg)
            return entry, set(), [*src.warnings, msg]
        counts, parts_rows, quarantined = result
        store.crash_point("ingest.parts")
        entry.update(
            rows_read=counts["parsed"] + len(src.rejected),
            accepted=counts["accepted"],
            duplicate=counts["ok"] - counts["accepted"] - counts["conflicting"],
            quarantined=counts["rejected"] + counts["conflicting"] + len(src.rejected),
            dates=sorted(parts_rows),
        )
        _reconcile(path.name, entry, counts["classified"], sum(parts_rows.values()), counts["parsed"])
        _commit(ctx, path, file_hash, fmt, entry, src.rejected, quarantined)
    warnings = list(src.warnings) + _soft_value_warnings(path.name, counts)
    for w in warnings:
        log.warning(w)
    log_step(
        "ingest_file",
        file=path.name,
        format=fmt,
        rows=entry["rows_read"],
        accepted=entry["accepted"],
        duplicate=entry["duplicate"],
        quarantined=entry["quarantined"],
        dates=len(entry["dates"]),
        seconds=round(time.perf_counter() - started, 2),
    )
    return entry, set(entry["dates"]), warnings


def _ingest_chunks(
    ctx: _Context, src: _Source, file_hash: str
) -> tuple[dict[str, int], dict[date, int], pa.Table | None]:
    """Classify, dedupe and write the file a chunk at a time.

    Returns the summed counts, the rows written per local date and the quarantined rows
    (``_row`` final, ``reason``, ``raw``; conflicting copies among them). The keys of the
    points accepted from earlier chunks and of the store's points are kept per local date, so
    a point is stored once whatever chunk its copies are in (the stored copy, else the first
    in the file, wins) and a copy elsewhere is a ``conflicting_duplicate`` in any chunk.
    """
    con = ctx.con
    counts = dict.fromkeys(
        ("parsed", "classified", "ok", "rejected", "accepted", "conflicting", "bad_mock", "bad_accuracy", "bad_speed"),
        0,
    )
    parts_rows: dict[date, int] = {}
    quarantined: list[pa.Table] = []
    seen: dict[int, _SeenKeys] = {}
    point_cols = ["worker_idx", "ts_us", "lon", "lat", "accuracy_m", "speed_mps", "mock", "device_id", "local_date"]
    for chunk, table in enumerate(src.batches):
        con.register("_gp_src", table)
        try:
            chunk_counts, rows, ok = _classify(ctx, src)
            row_numbers = rows["_row"].to_numpy()
            ok_rows = np.flatnonzero(ok.to_numpy(zero_copy_only=False))
            new_points, conflicting = _new_points(ctx, file_hash, rows.select(point_cols), ok_rows, row_numbers, seen)
            # the rejected rows and conflicting copies (few) with their raw values, for _commit
            bad = rows.filter(pc.invert(ok)).select(["_row", "reason"])
            if len(conflicting):
                reason = pa.array([c.REASON_CONFLICTING_DUPLICATE] * len(conflicting), bad.schema.field("reason").type)
                extra = pa.table(
                    [pa.array(row_numbers[conflicting], bad.schema.field("_row").type), reason], schema=bad.schema
                )
                bad = pa.concat_tables([bad, extra])
            con.register("_gp_rows", bad)
            quarantined.append(
                con.sql(
                    f"""SELECT r._row, r.reason, left({src.raw_sql}, {_RAW_MAX_CHARS}) AS raw
                        FROM _gp_rows r JOIN _gp_src s USING (_row) WHERE r.reason IS NOT NULL"""
                ).to_arrow_table()
            )
        finally:
            con.unregister("_gp_src")
            con.unregister("_gp_rows")
        parsed = table.num_rows
        del table, rows, ok
        # (chunk 0 keeps the part name of a file read in one piece)
        written = _write_parts(ctx, file_hash, new_points, chunk)
        for day, n in written.items():
            parts_rows[day] = parts_rows.get(day, 0) + n
        chunk_counts.update(parsed=parsed, accepted=new_points.num_rows, conflicting=len(conflicting))
        for key, value in chunk_counts.items():
            counts[key] += value
        del new_points
    if not quarantined:
        return counts, parts_rows, None
    q = pa.concat_tables(quarantined)
    final = src.row_numbers_of(q["_row"].to_numpy(), counts["parsed"])
    return counts, parts_rows, q.set_column(0, "_row", pa.array(final, pa.int64()))


def _skip_known(
    ctx: _Context, path: Path, file_hash: str, entry: dict[str, Any], known: tuple[Any, ...]
) -> tuple[dict[str, Any], set[date], list[str]]:
    entry["skipped_as_known"] = True
    warnings = _record_alias(ctx, path.name, file_hash, known)
    # every night re-lists the inbox: files already known are logged only at DEBUG level
    log_step("ingest_file", logging.DEBUG, file=path.name, skipped="known", same_as=known[0], run=known[1])
    return entry, set(), warnings


def _reject_file(
    ctx: _Context, path: Path, file_hash: str, fmt: str, entry: dict[str, Any], src: _Source, missing: list[str]
) -> tuple[dict[str, Any], set[date], list[str]]:
    """A file whose header has no column for a required one: one row 0 and one warning, not a row each."""
    need = ", ".join(missing)
    entry["error"] = (
        f"{c.REASON_FILE_REJECTED}: the header has no column for {need}; "
        "name its columns under [gps.columns] in patrol.toml and the file is read again"
    )
    raw = json.dumps({"header": [h[:100] for h in (src.header or [])[:200]]}, ensure_ascii=False)
    _commit(ctx, path, file_hash, fmt, entry, [(0, entry["error"], raw)], None)
    msg = (
        f"inbox file {path.name}: 文件被拒收，表头缺少必需列 {need} (file rejected: no column for {need}; nothing "
        "stored, quarantine row 0) — 在 patrol.toml 的 [gps.columns] 中对应表头后自动重读 (map its headers under "
        "[gps.columns] in patrol.toml: the file is read again on the next run)"
    )
    log.warning(msg)
    return entry, set(), [*src.warnings, msg]


def _record_alias(ctx: _Context, name: str, file_hash: str, known: tuple[Any, ...]) -> list[str]:
    first_name, first_run = known[0], known[1]
    if name == first_name:
        return []
    seen = _first(
        ctx.con, f"SELECT 1 FROM {store.INGEST_ALIAS} WHERE file_hash = ? AND file_name = ?", [file_hash, name]
    )
    if seen is not None:
        return []
    ctx.con.execute(f"INSERT INTO {store.INGEST_ALIAS} VALUES (?, ?, ?, now())", [file_hash, name, ctx.run_id])
    return [f"inbox file {name}: same content as {first_name} (ingested in run {first_run}); nothing new"]


def _reconcile(name: str, entry: dict[str, Any], classified: int, written: int, parsed: int) -> None:
    if (
        classified != parsed
        or written != entry["accepted"]
        or (entry["accepted"] + entry["duplicate"] + entry["quarantined"] != entry["rows_read"])
    ):
        raise StoreError(
            f"ingest of {name} does not reconcile: rows read {entry['rows_read']}, accepted {entry['accepted']} "
            f"(written {written}), duplicate {entry['duplicate']}, quarantined {entry['quarantined']}, "
            f"classified {classified} of {parsed} parsed; nothing was committed for this file"
        )


def _soft_value_warnings(name: str, counts: dict[str, int]) -> list[str]:
    out = []
    for key, what in (
        ("bad_mock", "mock values that are not true/false/1/0 (stored as false)"),
        ("bad_accuracy", "non-numeric accuracy_m values (stored as unknown)"),
        ("bad_speed", "non-numeric speed_mps values (stored as unknown)"),
        (
            "conflicting",
            f"个点与已有点同一人员同一时间但坐标不同，已隔离 points re-sent for the same (worker_id, ts) with other "
            f"coordinates, quarantined as {c.REASON_CONFLICTING_DUPLICATE} (the first copy is kept)",
        ),
    ):
        if counts.get(key):
            out.append(f"inbox file {name}: {counts[key]} {what}")
    return out


def _head_of(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(120)
    return json.dumps({"first_bytes": head.hex()})


# --- loading ---------------------------------------------------------------------------------


def _first(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> tuple[Any, ...] | None:
    """The first row of a query, reading the result to its end (DuckDB 2 refuses other work before)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _norm(name: str) -> str:
    """A header as compared: NFKC (full-width forms), case folded, without BOM and blanks."""
    return "".join(unicodedata.normalize("NFKC", name.replace("\ufeff", "")).casefold().split())


_ALIASES = {_norm(a): (col, rank) for col, aliases in GPS_HEADER_ALIASES.items() for rank, a in enumerate(aliases)}


def _load(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    fmt: str,
    tmp: Path,
    columns: Mapping[str, str],
    *,
    lenient: bool = False,
    strict_error: str | None = None,
) -> _Source:
    """Open a file for reading in chunks (``lenient``: CSV read again after a strict read failed).

    ``columns``: ``[gps.columns]`` with normalised headers. Text is made UTF-8 and cleared of
    overlong lines first (into ``tmp``), so that neither can stop the reader.
    """
    if path.stat().st_size == 0:
        return _Source(warnings=[f"inbox file {path.name}: empty file"])
    if fmt == "parquet":
        return _load_parquet(path, columns)
    text_path, warnings, error = _as_utf8(path, tmp)
    if error is not None:
        return _Source(error=error)
    assert text_path is not None
    try:
        if _is_blank(text_path):
            return _Source(warnings=[f"inbox file {path.name}: empty file"])
        long_lines: list[tuple[int, str]] = []
        if _has_long_line(text_path, _MAX_LINE_BYTES):
            out = tmp / (path.name.removesuffix(".gz") + ".lines")
            long_lines = _drop_long_lines(text_path, out, _MAX_LINE_BYTES)
            text_path = out
    except (OSError, EOFError, zlib.error) as exc:
        return _Source(error=f"cannot be read: {exc}")
    if long_lines:
        warnings.append(
            f"inbox file {path.name}: {len(long_lines)} 行超长已隔离 line(s) longer than {_MAX_LINE_BYTES} bytes "
            f"quarantined ({c.REASON_LINE_TOO_LONG}); the other lines are read"
        )
    if fmt == "csv":
        if long_lines and long_lines[0][0] == 1:
            return _Source(error=f"the header line is longer than {_MAX_LINE_BYTES} bytes", warnings=warnings)
        src = _load_csv(con, text_path, path.name, columns, long_lines, lenient=lenient, strict_error=strict_error)
    else:
        src = _load_jsonl(con, text_path, path.name, columns, long_lines)
    src.warnings[:0] = warnings
    return src


def _rebatch(batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.Table]:
    """Tables of about ``_CHUNK_ROWS`` rows from batches of any size (never an empty one)."""
    pending: list[pa.RecordBatch] = []
    n = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        n += batch.num_rows
        if n >= _CHUNK_ROWS:
            yield pa.Table.from_batches(pending, schema=schema)
            pending, n = [], 0
    if pending:
        yield pa.Table.from_batches(pending, schema=schema)


def _csv_stream(
    cur: duckdb.DuckDBPyConnection, reader_sql: str
) -> tuple[pa.RecordBatchReader, Callable[[], list[tuple[int, str, str]]]]:
    """Start a DuckDB CSV scan keeping malformed lines aside (never silently dropped).

    Returns the batches and a function giving the malformed lines once the scan has ended.
    ``cur`` is a cursor of its own: the chunks are classified on the main connection while
    the scan is open.
    """
    cur.execute("DROP TABLE IF EXISTS _gp_rejects")
    cur.execute("DROP TABLE IF EXISTS _gp_reject_scans")
    reader = cur.sql(f"SELECT * FROM {reader_sql}").to_arrow_reader(_CHUNK_ROWS)

    def rejects() -> list[tuple[int, str, str]]:
        try:
            rows = cur.execute(
                """SELECT line, first(error_type ORDER BY column_idx), first(csv_line ORDER BY column_idx)
                   FROM _gp_rejects GROUP BY line ORDER BY line"""
            ).fetchall()
        finally:
            cur.execute("DROP TABLE IF EXISTS _gp_rejects")
            cur.execute("DROP TABLE IF EXISTS _gp_reject_scans")
        return [(int(line), str(kind), str(text or "")) for line, kind, text in rows]

    return reader, rejects


def _scan(
    reader: pa.RecordBatchReader, what: str, cur: duckdb.DuckDBPyConnection | None = None
) -> Iterator[pa.RecordBatch]:
    """The reader's batches; a failure half-way is a :class:`_ReadError` (``cur`` closed at the end)."""
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (duckdb.Error, pa.ArrowException, OSError) as exc:
                raise _ReadError(f"cannot be read as {what}: {str(exc).splitlines()[0]}") from exc
            yield batch
    finally:
        if cur is not None:
            reader.close()


def _open_bytes(path: Path) -> Any:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb")


def _as_utf8(path: Path, tmp: Path) -> tuple[Path | None, list[str], str | None]:
    """UTF-8 (with or without BOM) is read as is; anything else as GB18030 (GBK's superset), transcoded.

    The encoding is decided on the first MiB; a later undecodable line is rejected by the
    CSV reader and quarantined.
    """
    try:
        with _open_bytes(path) as fh:
            head = fh.read(_ENCODING_PROBE_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        return None, [], f"cannot be read: {exc}"
    if _decodes(head, "utf-8"):
        return path, [], None
    if not _decodes(head, "gb18030"):
        return None, [], "not a text file in UTF-8 or GB18030/GBK (garbage or binary bytes)"
    out = tmp / (path.name.removesuffix(".gz") + ".utf8")
    decoder = codecs.getincrementaldecoder("gb18030")(errors="replace")
    try:
        with _open_bytes(path) as fin, out.open("w", encoding="utf-8", newline="") as fout:
            while chunk := fin.read(1 << 22):
                fout.write(decoder.decode(chunk))
            fout.write(decoder.decode(b"", final=True))
    except (OSError, EOFError, zlib.error) as exc:
        return None, [], f"cannot be read: {exc}"
    return out, [f"inbox file {path.name}: GB18030/GBK 编码 GB18030/GBK-encoded text, read as GB18030"], None


def _decodes(head: bytes, encoding: str) -> bool:
    # a probe cut in the middle of a multi-byte character still decodes (final=False)
    try:
        codecs.getincrementaldecoder(encoding)().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _is_blank(path: Path) -> bool:
    """A text file holding nothing but a BOM and blanks (an export of nothing)."""
    with _open_bytes(path) as fh:
        head = fh.read(4096)
    return len(head) < 4096 and not head.removeprefix(b"\xef\xbb\xbf").strip()


def _has_long_line(path: Path, limit: int, block_bytes: int | None = None) -> bool:
    """Whether a line of the file is longer than ``limit`` bytes (newline excluded), streamed.

    Every window of ``limit + 1`` bytes must hold a newline: one ``rfind`` per window, each
    hop landing past the window before it, so a file costs a few searches per ``limit`` bytes,
    not one per line. An uncompressed file is searched in place (memory-mapped, no copy);
    ``block_bytes`` forces reading blocks of that size.
    """
    with _open_bytes(path) as fh:
        if block_bytes is None and not path.name.lower().endswith(".gz"):
            if os.fstat(fh.fileno()).st_size == 0:
                return False
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as whole:
                return _long_line_in([whole], limit)
        return _long_line_in(iter(lambda: fh.read(block_bytes or _SCAN_BLOCK_BYTES), b""), limit)


def _long_line_in(blocks: Iterable[Any], limit: int) -> bool:
    start = 0  # the current line's start, relative to the block (negative: in a block before)
    for block in blocks:
        size = len(block)
        while start + limit < size:
            nl = block.rfind(b"\n", max(start, 0), start + limit + 1)
            if nl < 0:
                return True
            start = nl + 1
        nl = block.rfind(b"\n", max(start, 0))  # the last line's start, carried to the next block
        start = (nl + 1 if nl >= 0 else start) - size
    return False


def _drop_long_lines(path: Path, out: Path, limit: int, block_bytes: int = _SCAN_BLOCK_BYTES) -> list[tuple[int, str]]:
    """Copy ``path`` to ``out`` without its lines longer than ``limit`` bytes; returns those lines.

    Each removed line is given as (line number from 1, its first ``_RAW_MAX_CHARS`` bytes as
    text). Streamed a block at a time: memory is a block plus at most one line's ``limit``.
    """
    removed: list[tuple[int, str]] = []
    line_no = 1  # of the line that ``pending`` begins
    pending = b""  # the current line so far, while not known to be long
    head: bytes | None = None  # the current line's head once it is known to be long

    def drop(number: int, text: bytes) -> None:
        removed.append((number, text[:_RAW_MAX_CHARS].decode("utf-8", errors="replace")))

    with _open_bytes(path) as fin, out.open("wb") as fout:
        while block := fin.read(block_bytes):
            ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 0x0A)
            if not len(ends):
                if head is not None:
                    head += block[: _RAW_MAX_CHARS - len(head)]
                else:
                    pending += block
                    if len(pending) > limit:
                        head, pending = pending[:_RAW_MAX_CHARS], b""
                continue
            first = int(ends[0])
            if head is not None or len(pending) + first > limit:
                drop(line_no, (head if head is not None else pending) + block[:first])
            else:
                fout.write(pending)
                fout.write(block[: first + 1])
            pending, head = b"", None
            # whole lines of the block: the long ones (few) are cut out of what is written
            lengths = np.diff(ends) - 1
            written = first + 1
            for j in np.flatnonzero(lengths > limit):
                lo, hi = int(ends[j]) + 1, int(ends[j + 1])
                fout.write(block[written:lo])
                drop(line_no + 1 + int(j), block[lo:hi])
                written = hi + 1
            fout.write(block[written : int(ends[-1]) + 1])
            line_no += len(ends)
            tail = block[int(ends[-1]) + 1 :]
            if len(tail) > limit:
                head = tail[:_RAW_MAX_CHARS]
            else:
                pending = tail
        if head is not None:
            drop(line_no, head)
        else:
            fout.write(pending)
    return removed


def _original_lines(lines: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Line numbers in the copy without the ``removed`` lines (sorted) -> line numbers in the file."""
    if not len(removed):
        return lines
    before = removed - np.arange(len(removed))  # a removed line's number in the copy, were it kept
    return lines + np.searchsorted(before, lines, side="right")


def _rejects_options() -> str:
    return (
        "store_rejects = true, rejects_table = '_gp_rejects', rejects_scan = '_gp_reject_scans', "
        f"max_line_size = {2 * _MAX_LINE_BYTES}"
    )


def _load_csv(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    name: str,
    columns: Mapping[str, str],
    long_lines: list[tuple[int, str]],
    *,
    lenient: bool = False,
    strict_error: str | None = None,
) -> _Source:
    compression = "gzip" if path.name.lower().endswith(".gz") else "none"
    reader_sql = (
        f"read_csv({_sql_str(path.as_posix())}, all_varchar = true, header = true, compression = '{compression}', "
        f"{_rejects_options()}{{lenient}})"
    )
    cur = con.cursor()
    try:
        if lenient:
            raise duckdb.Error(strict_error or "read again leniently")
        reader, rejects = _csv_stream(cur, reader_sql.format(lenient=""))
    except duckdb.Error as exc:
        # the dialect sniffer gives up on mixed line endings (a Windows file appended to a
        # Unix one) or a stray quote; read again tolerantly rather than lose the whole file
        try:
            reader, rejects = _csv_stream(cur, reader_sql.format(lenient=", strict_mode = false"))
        except duckdb.Error:
            cur.close()
            first = str(exc).splitlines()[0] if str(exc) else ""
            first = first.removeprefix("cannot be read as CSV: ")
            return _Source(error=f"cannot be read as CSV: {first}")
        lenient = True
    schema = reader.schema
    names = _sql_safe_names(schema.names)
    found, warnings = _resolve_columns(names, columns, name)
    types = dict(zip(names, schema.types, strict=True))
    fields = {col: (f"s.{_ident(n)}", _kind(types[n])) for col, n in found.items()}
    raw_cols = ", ".join(f"{_ident(n)} := s.{_ident(n)}" for n in names)
    raw_sql = f"to_json(struct_pack({raw_cols}))" if raw_cols else "NULL"
    notes = (
        [f"inbox file {name}: not strict CSV (mixed line endings or stray quotes); read leniently"] if lenient else []
    )
    removed = np.array([n for n, _ in long_lines], dtype=np.int64)
    # the header is line 1: data row = line - 1
    too_long = [(n - 1, _line_too_long(), json.dumps({"line": text}, ensure_ascii=False)) for n, text in long_lines]
    src = _Source(
        fields=fields,
        raw_sql=raw_sql,
        header=names,
        renumber=True,
        lenient=lenient,
        warnings=notes + warnings,
        closers=[reader.close, cur.close],
    )

    def batches() -> Iterator[pa.Table]:
        done = 0
        try:
            for table in _rebatch(_scan(reader, "CSV"), schema):
                table = table.rename_columns(names)
                yield table.append_column("_row", pa.array(np.arange(done + 1, done + 1 + table.num_rows), pa.int64()))
                done += table.num_rows
            # reader lines count the header as line 1
            src.rejected = sorted(too_long + _rejected_lines(rejects, "CSV", "CSV", -1, removed))
        finally:
            src.close()

    src.batches = batches()
    return src


def _line_too_long() -> str:
    return f"{c.REASON_LINE_TOO_LONG} (over {_MAX_LINE_BYTES} bytes)"


def _rejected_lines(
    rejects: Callable[[], list[tuple[int, str, str]]], fmt: str, what: str, line_offset: int, removed: np.ndarray
) -> list[tuple[int, str, str]]:
    """The reader's rejected lines as ``(row_number, reason, raw)`` quarantine entries.

    ``removed``: the file's lines that the reader did not see (too long), for its line numbers.
    """
    try:
        found = rejects()
    except duckdb.Error as exc:
        raise _ReadError(f"cannot be read as {fmt}: {str(exc).splitlines()[0]}") from exc
    lines = _original_lines(np.array([line for line, _, _ in found], dtype=np.int64), removed)
    return [
        (
            int(line) + line_offset,
            _reject_reason(kind, what),
            json.dumps({"line": text[:_RAW_MAX_CHARS]}, ensure_ascii=False),
        )
        for line, (_, kind, text) in zip(lines, found, strict=True)
    ]


def _reject_reason(kind: str, what: str) -> str:
    if "ENCODING" in kind:
        return f"malformed {what} line (text is not UTF-8)"
    return f"malformed {what} line ({kind.lower()})"


def _load_jsonl(
    con: duckdb.DuckDBPyConnection, path: Path, name: str, columns: Mapping[str, str], long_lines: list[tuple[int, str]]
) -> _Source:
    compression = "gzip" if path.name.lower().endswith(".gz") else "none"
    # one VARCHAR per line (a delimiter that cannot occur in JSON text); blank lines are not rows
    reader_sql = (
        f"read_csv({_sql_str(path.as_posix())}, columns = {{'line': 'VARCHAR'}}, header = false, delim = chr(0), "
        f"quote = '', escape = '', auto_detect = false, compression = '{compression}', {_rejects_options()})"
    )
    cur = con.cursor()
    try:
        # a first pass finds the keys (the columns) of the file's JSON objects
        cur.execute("DROP TABLE IF EXISTS _gp_rejects")
        cur.execute("DROP TABLE IF EXISTS _gp_reject_scans")
        keys = [
            r[0]
            for r in cur.execute(
                f"SELECT DISTINCT unnest(json_keys(line)) FROM {reader_sql} WHERE " + _JSON_OBJECT.format(line="line")
            ).fetchall()
        ]
        reader, rejects = _csv_stream(cur, reader_sql)
    except duckdb.Error as exc:
        cur.close()
        return _Source(error=f"cannot be read as JSON Lines: {str(exc).splitlines()[0]}")
    keys = sorted(keys)
    found, warnings = _resolve_columns(keys, columns, name)
    # a malformed line must not stop the scan: extract only from valid JSON
    fields = {
        col: (
            f"json_extract_string(CASE WHEN json_valid(s.line) THEN s.line END, {_sql_str('$.' + json.dumps(key))})",
            "text",
        )
        for col, key in found.items()
    }
    removed = np.array([n for n, _ in long_lines], dtype=np.int64)
    too_long = [(n, _line_too_long(), json.dumps({"line": text}, ensure_ascii=False)) for n, text in long_lines]
    src = _Source(
        fields=fields,
        raw_sql="s.line",
        json_lines=True,
        # no key at all (every line malformed): the lines are quarantined one by one
        header=keys or None,
        warnings=warnings,
        closers=[reader.close, cur.close],
    )

    def batches() -> Iterator[pa.Table]:
        done = 0  # lines returned by the reader so far, blank ones included
        try:
            for table in _rebatch(_scan(reader, "JSON Lines"), reader.schema):
                # JSON Lines rows are numbered by line (blank lines included), not by position
                line_no = _original_lines(np.arange(done + 1, done + 1 + table.num_rows, dtype=np.int64), removed)
                done += table.num_rows
                keep = pc.invert(pc.fill_null(pc.equal(pc.utf8_trim_whitespace(table["line"]), ""), True))
                kept = pa.table({"line": table["line"], "_row": pa.array(line_no, pa.int64())}).filter(keep)
                if kept.num_rows:
                    yield kept
            src.rejected = sorted(too_long + _rejected_lines(rejects, "JSON Lines", "JSON", 0, removed))
        finally:
            src.close()

    src.batches = batches()
    return src


def _load_parquet(path: Path, columns: Mapping[str, str]) -> _Source:
    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        return _Source(error=f"cannot be read as Parquet: {str(exc).splitlines()[0]}")
    names = _sql_safe_names(schema.names)
    found, warnings = _resolve_columns(names, columns, path.name)
    types = dict(zip(names, schema.types, strict=True))
    fields = {col: (f"s.{_ident(n)}", _kind(types[n])) for col, n in found.items()}
    raw_cols = ", ".join(f"{_ident(n)} := s.{_ident(n)}" for n in names)

    def batches() -> Iterator[pa.Table]:
        done = 0
        try:
            stream = pf.iter_batches(batch_size=_CHUNK_ROWS)
            reader = pa.RecordBatchReader.from_batches(schema, stream)
            for table in _rebatch(_scan(reader, "Parquet"), schema):
                table = table.rename_columns(names)
                yield table.append_column("_row", pa.array(np.arange(done + 1, done + 1 + table.num_rows), pa.int64()))
                done += table.num_rows
        finally:
            pf.close()

    return _Source(
        batches=batches(),
        fields=fields,
        raw_sql=f"to_json(struct_pack({raw_cols}))" if raw_cols else "NULL",
        # a table without columns has no rows either: nothing to reject
        header=names or None,
        warnings=warnings,
        closers=[pf.close],
    )


def _sql_safe_names(names: list[str]) -> list[str]:
    """Rename columns SQL cannot name (an empty header cell) or tell apart (a repeated name).

    The raw values of quarantined rows are kept under these names; a repeated name is read
    from its first column (:func:`_resolve_columns`), so renaming the others hides nothing.
    """
    seen: set[str] = set()
    out = []
    for i, name in enumerate(names):
        new = name if name.strip() else f"column{i}"
        while new in seen:
            new = f"{new}_{i}"
        seen.add(new)
        out.append(new)
    return out


def _resolve_columns(names: list[str], columns: Mapping[str, str], file_name: str) -> tuple[dict[str, str], list[str]]:
    """Which delivered column (or JSON key) is read as each contract column, and warnings.

    A header means, in this order: what ``columns`` (``[gps.columns]``, normalised headers)
    says ("" = not read), the contract column it names, the column of its built-in alias
    (:data:`GPS_HEADER_ALIASES`). Of two headers for one contract column, the contract's own
    name beats ``[gps.columns]``, which beats an alias (the earlier listed first); then the
    first in the file is read, with a warning.
    """
    contract = (*_REQUIRED, *_OPTIONAL)
    best: dict[str, tuple[tuple[int, int, int], str]] = {}
    others: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        norm = _norm(name)
        if norm in columns:
            target, rank = columns[norm], (1, 0)
        elif norm in contract:
            target, rank = norm, (0, 0)
        elif norm in _ALIASES:
            target, alias_rank = _ALIASES[norm]
            rank = (2, alias_rank)
        else:
            continue
        if not target:
            continue
        key = (*rank, i)
        if target in best and best[target][0] < key:
            others.setdefault(target, []).append(name)
            continue
        if target in best:
            others.setdefault(target, []).append(best[target][1])
        best[target] = (key, name)
    found = {target: name for target, (_, name) in best.items()}
    warnings = [
        f"inbox file {file_name}: columns {', '.join(repr(h) for h in [found[t], *rest])} all read as {t}; "
        f"'{found[t]}' is used"
        for t, rest in others.items()
    ]
    return found, warnings


def _kind(typ: pa.DataType) -> str:
    if pa.types.is_timestamp(typ):
        return "ts_tz" if typ.tz is not None else "ts_naive"
    if pa.types.is_integer(typ):
        return "int"
    if pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        return "float"
    if pa.types.is_boolean(typ):
        return "bool"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "text"
    return "other"


# --- classification (one SQL query per file) ----------------------------------------------------


def _text(expr: str) -> str:
    return f"NULLIF(trim(CAST({expr} AS VARCHAR)), '')"


def _datetime_us_sql(expr: str, kind: str, zone: str) -> str:
    """Expression giving a date-time ``ts`` in epoch microseconds (NULL when it is not one)."""
    z = _sql_str(zone)
    if kind == "ts_tz":
        return f"epoch_us({expr})"
    if kind == "ts_naive":
        return f"epoch_us(timezone({z}, CAST({expr} AS TIMESTAMP)))"
    if kind in ("int", "float"):
        return "NULL"
    t = f"upper({_text(expr)})"
    norm = f"replace({t}, '/', '-')"
    # a date-time has a ':', an epoch number never: one cheap test spares the regexes
    return f"""CASE WHEN contains({t}, ':') THEN CASE
            WHEN regexp_full_match({t}, '{_RE_DATE_TIME}{_RE_OFFSET}') THEN epoch_us(TRY_CAST({norm} AS TIMESTAMPTZ))
            WHEN regexp_full_match({t}, '{_RE_DATE_TIME}') THEN epoch_us(timezone({z}, TRY_CAST({norm} AS TIMESTAMP)))
        END END"""


def _epoch_sql(expr: str, kind: str) -> str:
    """Expression giving an epoch-number ``ts`` as DOUBLE (NULL when it is not one); unit by magnitude later."""
    if kind == "int":
        return f"CAST({expr} AS DOUBLE)"
    if kind == "float":
        return f"CASE WHEN isfinite({expr}) THEN CAST({expr} AS DOUBLE) END"
    if kind in ("ts_tz", "ts_naive"):
        return "NULL"
    t = _text(expr)
    # CASE, not AND: DuckDB then runs the regex only on the rows without a ':'
    return f"CASE WHEN contains({t}, ':') THEN NULL WHEN regexp_full_match({t}, '{_RE_EPOCH}') THEN CAST({t} AS DOUBLE) END"


def _number_sql(expr: str, kind: str) -> str:
    if kind in ("int", "float"):
        return f"CAST({expr} AS DOUBLE)"
    return f"TRY_CAST({_text(expr)} AS DOUBLE)"


def _bool_sql(expr: str, kind: str) -> str:
    if kind == "bool":
        return expr
    if kind in ("int", "float"):
        return f"CASE WHEN {expr} = 1 THEN true WHEN {expr} = 0 THEN false END"
    t = f"lower(coalesce({_text(expr)}, ''))"
    true_words = ", ".join(_sql_str(w) for w in sorted(TRUE_WORDS))
    false_words = ", ".join(_sql_str(w) for w in sorted(FALSE_WORDS))
    return f"CASE WHEN {t} IN ({true_words}) THEN true WHEN {t} IN ({false_words}) THEN false END"


def _classify(ctx: _Context, src: _Source) -> tuple[dict[str, int], pa.Table, pa.ChunkedArray]:
    """Give every row of the chunk ``_gp_src`` a reason (NULL = a point); returns counts, rows, points mask."""
    con, zone = ctx.con, ctx.ws.policy.timezone
    f = src.fields
    missing = [name for name in _REQUIRED if name not in f]

    def col(name: str) -> tuple[str, str]:
        return f.get(name, ("NULL", "text"))

    w_expr, _ = col("worker_id")
    ts_expr, ts_kind = col("ts")
    lon_expr, lon_kind = col("lon")
    lat_expr, lat_kind = col("lat")
    acc_expr, acc_kind = col("accuracy_m")
    spd_expr, spd_kind = col("speed_mps")
    mock_expr, mock_kind = col("mock")
    dev_expr, _ = col("device_id")
    json_ok = _JSON_OBJECT.format(line="s.line") if src.json_lines else "true"
    missing_reason = _sql_str(f"missing column {', '.join(missing)}") if missing else "NULL"

    def present(name: str) -> str:
        expr, kind = col(name)
        if kind == "text":
            return f"({_text(expr)} IS NOT NULL)"
        if kind == "float":
            return f"({expr} IS NOT NULL AND NOT isnan({expr}))"
        return f"({expr} IS NOT NULL)"

    # an out-of-range epoch number names how it was read (evaluated for those rows only)
    read_as = f"""CASE WHEN ts_epoch IS NULL THEN ''
        WHEN abs(ts_epoch) < {_EPOCH_S_BELOW} THEN ' (read as epoch seconds)' ELSE ' (read as epoch milliseconds)' END"""
    # one reason per row, the first that applies, in the order a person would fix them; the
    # result comes back as Arrow (no temporary table, no second pass for the local date)
    rows = con.sql(
        f"""
        WITH p AS (
            SELECT s._row,
                   {json_ok} AS json_ok,
                   {_text(w_expr)} AS worker_id,
                   {present("ts")} AS ts_present,
                   {_datetime_us_sql(ts_expr, ts_kind, zone)} AS ts_datetime_us,
                   {_epoch_sql(ts_expr, ts_kind)} AS ts_epoch,
                   {present("lon")} AS lon_present,
                   {present("lat")} AS lat_present,
                   {_number_sql(lon_expr, lon_kind)} AS lon,
                   {_number_sql(lat_expr, lat_kind)} AS lat,
                   {_number_sql(acc_expr, acc_kind)} AS accuracy_m,
                   {present("accuracy_m")} AS acc_present,
                   {_number_sql(spd_expr, spd_kind)} AS speed_mps,
                   {present("speed_mps")} AS spd_present,
                   {_bool_sql(mock_expr, mock_kind)} AS mock,
                   {present("mock")} AS mock_present,
                   {_text(dev_expr)} AS device_id
            FROM _gp_src s
        ), q AS (
            -- epoch seconds and milliseconds told apart by magnitude (no instant has both readings)
            SELECT *,
                   CASE WHEN ts_epoch IS NULL THEN ts_datetime_us
                        WHEN abs(ts_epoch) < {_EPOCH_S_BELOW} THEN CAST(round(ts_epoch * 1e6) AS BIGINT)
                        WHEN abs(ts_epoch) < {_EPOCH_MS_BELOW} THEN CAST(round(ts_epoch * 1e3) AS BIGINT)
                   END AS ts_us
            FROM p
        ), r AS (
            SELECT p._row, CASE
                    WHEN NOT json_ok THEN 'malformed JSON line (not a JSON object)'
                    WHEN {missing_reason} IS NOT NULL THEN {missing_reason}
                    WHEN p.worker_id IS NULL THEN 'missing worker_id'
                    WHEN w.worker_id IS NULL THEN 'unknown worker (not in workers.csv)'
                    WHEN NOT ts_present THEN 'missing ts'
                    WHEN ts_us IS NULL AND ts_epoch IS NOT NULL
                        THEN 'unparseable ts (an epoch number too large for seconds or milliseconds)'
                    WHEN ts_us IS NULL THEN 'unparseable ts'
                    WHEN NOT lon_present THEN 'missing lon'
                    WHEN lon IS NULL OR NOT isfinite(lon) THEN 'non-numeric lon'
                    WHEN NOT lat_present THEN 'missing lat'
                    WHEN lat IS NULL OR NOT isfinite(lat) THEN 'non-numeric lat'
                    WHEN lon < -180 OR lon > 180 THEN 'lon outside [-180, 180]'
                    WHEN lat < -90 OR lat > 90 THEN 'lat outside [-90, 90]'
                    WHEN lon = 0 AND lat = 0 THEN 'null island (0, 0)'
                    WHEN ts_us < {_MIN_TS_US} THEN 'ts before 2000-01-01' || {read_as}
                    WHEN ts_us > {ctx.now_us + _FUTURE_SLACK_US} THEN 'ts more than 1 day after the run' || {read_as}
                END AS reason,
                w.worker_idx, ts_us, lon, lat, accuracy_m, speed_mps, coalesce(mock, false) AS mock, device_id,
                mock IS NULL AND mock_present AS bad_mock,
                accuracy_m IS NULL AND acc_present AS bad_accuracy,
                speed_mps IS NULL AND spd_present AS bad_speed
            FROM q p LEFT JOIN _gp_workers w ON p.worker_id = w.worker_id
        )
        SELECT *, CASE WHEN reason IS NULL
                       THEN CAST(timezone({_sql_str(zone)}, make_timestamptz(ts_us)) AS DATE) END AS local_date
        FROM r
        """
    ).to_arrow_table()
    ok = pc.is_null(rows["reason"])
    n_ok = int(pc.sum(ok).as_py() or 0)

    def soft(flag: str) -> int:
        return int(pc.sum(pc.and_(ok, rows[flag])).as_py() or 0)

    counts = {
        "classified": rows.num_rows,
        "ok": n_ok,
        "rejected": rows.num_rows - n_ok,
        "bad_mock": soft("bad_mock"),
        "bad_accuracy": soft("bad_accuracy"),
        "bad_speed": soft("bad_speed"),
    }
    return counts, rows, ok


@dataclass
class _SeenKeys:
    """Sorted keys of one local date's points, for duplicates and conflicts.

    ``stored``: the store's points (other files'); ``held``: the (sorted) keys of those the
    chunk that read them repeats, with their coordinates (WGS-84), kept so that memory stays
    that of the keys. ``own``: the keys accepted from this file's earlier chunks. A later
    chunk repeating a point whose coordinates are not kept reads them again from the parts.
    """

    stored: np.ndarray
    held: tuple[np.ndarray, np.ndarray, np.ndarray]
    own: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))


def _find_sorted(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Position of each key in ``sorted_keys``, -1 where it is absent."""
    if not len(sorted_keys):
        return np.full(len(keys), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return np.where(sorted_keys[pos] == keys, pos, -1)


def _moved(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """Whether two copies of a point lie apart (more than ``_SAME_POSITION_DEG`` in lon or lat)."""
    return (np.abs(lon1 - lon2) > _SAME_POSITION_DEG) | (np.abs(lat1 - lat2) > _SAME_POSITION_DEG)


def _new_points(
    ctx: _Context,
    file_hash: str,
    rows: pa.Table,
    candidates: np.ndarray,
    row_numbers: np.ndarray,
    seen: dict[int, _SeenKeys],
) -> tuple[pa.Table, np.ndarray]:
    """First copy of each (worker_id, ts) of the chunk that the store and earlier chunks do not hold.

    ``candidates`` are the positions in ``rows`` of the valid points. Sorted by (local date,
    worker, ts, row), copies of a point are neighbours: the first one (lowest row) is kept.
    Points are compared by an int64 key per local date (worker's roster position and ts),
    against the keys of that date's parts (read once per date and file, into ``seen``) and of
    the points accepted from the file's earlier chunks; a date without other parts (a first
    delivery) reads nothing. The file's own parts (earlier chunks, or left by a run killed
    before its manifest row) are not "the store".

    Returns the new points and the positions in ``rows`` of the *conflicting* copies: those
    lying elsewhere than the copy that stays (the stored one, else the file's first).
    """
    n = len(candidates)
    if n == 0:
        return rows.slice(0, 0), np.empty(0, np.int64)

    def column(name: str) -> np.ndarray:  # NULL only in rejected rows, which are not candidates
        return rows[name].fill_null(0).to_numpy()[candidates]

    day = rows["local_date"].cast(pa.int32()).fill_null(0).to_numpy()[candidates]
    key = _point_keys(column("worker_idx"), column("ts_us"), day)
    row = row_numbers[candidates]
    # lexsort is stable: with the rows in file order (DuckDB keeps it, checked) copies stay in it
    in_file_order = n < 2 or bool(np.all(row[1:] > row[:-1]))
    order = np.lexsort((key, day) if in_file_order else (row, key, day))
    key, day, order = key[order], day[order], candidates[order]
    first = np.ones(n, dtype=bool)
    first[1:] = (key[1:] != key[:-1]) | (day[1:] != day[:-1])
    # coordinates as delivered (``gps_crs``), by position in ``rows`` (NaN only in rejected rows)
    lon = rows["lon"].to_numpy(zero_copy_only=False)
    lat = rows["lat"].to_numpy(zero_copy_only=False)
    crs = ctx.ws.policy.gps_crs
    # a later copy in the chunk is compared with the chunk's first copy ...
    conflict = np.zeros(n, dtype=bool)
    copies = np.flatnonzero(~first)
    if len(copies):
        firsts = np.flatnonzero(first)
        lead = order[firsts[np.searchsorted(firsts, copies, side="right") - 1]]
        conflict[copies] = _moved(lon[order[copies]], lat[order[copies]], lon[lead], lat[lead])
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    ends = np.r_[starts[1:], n]
    # the store's points of the dates first met, read by two threads (Arrow's reader and
    # NumPy release the GIL): reading is most of this step
    new_days = [(int(day[lo]), key[lo:hi]) for lo, hi in zip(starts, ends, strict=True) if int(day[lo]) not in seen]
    found: dict[int, np.ndarray] = {}  # for a date first met: where the chunk's keys are in the store's
    if new_days:
        with ThreadPoolExecutor(max_workers=_WRITE_THREADS) as pool:
            read = pool.map(lambda d: _stored_points(ctx, d[0], file_hash, wanted=d[1]), new_days)
            for (d, _), (stored, held_points, at) in zip(new_days, read, strict=True):
                seen[d], found[d] = _SeenKeys(stored, held_points), at
    for lo, hi in zip(starts, ends, strict=True):
        day_number = int(day[lo])
        known = seen[day_number]
        seg = key[lo:hi]
        # ... every copy of a point held already, with the copy held (stored points are
        # WGS-84: the chunk's few copies of held points are converted to compare)
        at_store = found[day_number] if day_number in found else _find_sorted(known.stored, seg)
        at_own = _find_sorted(known.own, seg)
        for own_parts, at in ((False, at_store), (True, at_own)):
            h = np.flatnonzero(at >= 0)
            if not len(h):
                continue
            held_keys, held_lon, held_lat = known.held
            pos = np.full(len(h), -1) if own_parts else _find_sorted(held_keys, seg[h])
            if (pos < 0).any():  # not kept (a later chunk, or this file's own points): read again
                _, (held_keys, held_lon, held_lat), _ = _stored_points(
                    ctx, day_number, file_hash, own_parts, wanted=seg[h]
                )
                pos = _find_sorted(held_keys, seg[h])
            wlon, wlat = to_wgs84(lon[order[lo + h]], lat[order[lo + h]], crs)
            # every key is found (the parts hold what the keys list); -1 would be no conflict
            conflict[lo + h] = (pos >= 0) & _moved(wlon, wlat, held_lon[pos], held_lat[pos])
        held = (at_store >= 0) | (at_own >= 0)
        keep = first[lo:hi] & ~held
        first[lo:hi] = keep
        conflict[lo:hi] &= ~keep
        if keep.any():  # sorted and disjoint from own: a merge of two sorted runs
            known.own = np.sort(np.concatenate([known.own, seg[keep]]), kind="stable")
    return rows.take(pa.array(order[first])), order[conflict]


def _point_keys(worker_idx: np.ndarray, ts_us: np.ndarray, day: np.ndarray) -> np.ndarray:
    """int64 key of (worker, ts) unique within local date ``day`` (days since 1970-01-01)."""
    offset = ts_us - (day.astype(np.int64) - 1) * _DAY_US
    if len(offset) and (offset.min() < 0 or offset.max() >= 1 << _KEY_TS_BITS):
        raise StoreError(
            "a point's local date is more than a day away from its UTC date; check the workspace time zone"
        )
    return (worker_idx.astype(np.int64) << _KEY_TS_BITS) | offset


def _stored_points(
    ctx: _Context, day_number: int, file_hash: str, own: bool = False, *, wanted: np.ndarray
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Sorted keys of the points the store holds for one local date, and the held ones' coordinates.

    Other files' parts, or (``own``) the parts this file's earlier chunks wrote. The points
    whose keys are among ``wanted`` come back as (sorted keys, lon, lat), WGS-84, and the
    position of each wanted key among the keys (-1: not held).
    """
    day = date.fromordinal(_EPOCH_ORDINAL + day_number)
    owner = file_hash[: store.GPS_PART_HASH_CHARS]
    keys, lons, lats = [], [], []
    for part in store.gps_parts(ctx.ws.paths, [day]):
        if (store.gps_part_owner(part) == owner) != own:
            continue
        t = pq.read_table(part, columns=["worker_id", "ts", "lon", "lat"], read_dictionary=["worker_id"])
        ts = t["ts"].cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        chunks = zip(t["worker_id"].chunks, ts.chunks, t["lon"].chunks, t["lat"].chunks, strict=True)
        for w_chunk, ts_chunk, lon_chunk, lat_chunk in chunks:
            if not pa.types.is_dictionary(w_chunk.type):
                w_chunk = w_chunk.dictionary_encode()
            # workers no longer in the roster cannot match a new point: dropped
            pos = pc.index_in(w_chunk.dictionary.cast(pa.string()), value_set=ctx.roster).fill_null(-1).to_numpy()
            indices = w_chunk.indices.fill_null(0).to_numpy(zero_copy_only=False)
            widx = pos[indices] if len(pos) else np.empty(0, np.int64)
            t_us = ts_chunk.fill_null(-1).to_numpy()
            offset = t_us - (day_number - 1) * _DAY_US  # points of another zone's date cannot match either
            valid = (widx >= 0) & (offset >= 0) & (offset < 1 << _KEY_TS_BITS)
            valid &= w_chunk.is_valid().to_numpy(zero_copy_only=False)
            keys.append((widx[valid].astype(np.int64) << _KEY_TS_BITS) | offset[valid])
            lons.append(lon_chunk.to_numpy(zero_copy_only=False)[valid])  # never NULL: accepted points
            lats.append(lat_chunk.to_numpy(zero_copy_only=False)[valid])
    if not keys:
        return np.empty(0, np.int64), (np.empty(0, np.int64), np.empty(0), np.empty(0)), np.full(len(wanted), -1)
    key, lon, lat = np.concatenate(keys), np.concatenate(lons), np.concatenate(lats)
    if len(key) > 1 and not bool(np.all(key[1:] >= key[:-1])):
        # each part is sorted by key already (written so): the stable sort merges their runs
        order = np.argsort(key, kind="stable")
        key, lon, lat = key[order], lon[order], lat[order]
    at = _find_sorted(key, wanted)
    held = np.unique(at[at >= 0])
    return key, (key[held], lon[held], lat[held]), at


# --- writing ---------------------------------------------------------------------------------


def _write_parts(ctx: _Context, file_hash: str, points: pa.Table, chunk: int = 0) -> dict[date, int]:
    """Write a chunk's new points (sorted by local date), one part per date; returns rows written per date.

    The parts are built and written by two threads (NumPy and Arrow's Parquet writer release
    the GIL), each from its slice of ``points``: writing and fsync-ing is most of an ingest's
    time once parsing is columnar, and a slice at a time keeps the memory small.
    """
    n = points.num_rows
    if n == 0:
        return {}
    day_numbers = points["local_date"].cast(pa.int32()).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, day_numbers[1:] != day_numbers[:-1]])
    ends = np.r_[starts[1:], n]
    slices = {
        date.fromordinal(_EPOCH_ORDINAL + int(day_numbers[lo])): (int(lo), int(hi))
        for lo, hi in zip(starts, ends, strict=True)
    }

    def write(day: date, lo: int, hi: int) -> None:
        part = points.slice(lo, hi - lo)
        lon, lat = to_wgs84(
            part["lon"].to_numpy(zero_copy_only=False),
            part["lat"].to_numpy(zero_copy_only=False),
            ctx.ws.policy.gps_crs,
        )
        table = pa.table(
            {
                "worker_id": ctx.roster.take(part["worker_idx"]),
                "ts": part["ts_us"].cast(pa.timestamp("us", tz="UTC")),
                "lon": pa.array(lon, pa.float64()),
                "lat": pa.array(lat, pa.float64()),
                "accuracy_m": part["accuracy_m"],
                "speed_mps": part["speed_mps"],
                "mock": part["mock"],
                "device_id": part["device_id"].cast(pa.string()),
                "file_hash": pa.repeat(pa.scalar(file_hash, pa.string()), hi - lo),
            },
            schema=GPS_STORE_SCHEMA,
        )
        store.write_parquet_atomic(table, store.gps_part_path(ctx.ws.paths, day, file_hash, chunk), **_PART_OPTIONS)

    with ThreadPoolExecutor(max_workers=_WRITE_THREADS) as pool:
        futures = [pool.submit(write, day, lo, hi) for day, (lo, hi) in slices.items()]
        for fut in futures:
            fut.result()  # the first failure (disk full, say) is raised as is
    return {day: hi - lo for day, (lo, hi) in slices.items()}


def _commit(
    ctx: _Context,
    path: Path,
    file_hash: str,
    fmt: str,
    entry: dict[str, Any],
    rejected: list[tuple[int, str, str]],
    quarantined: pa.Table | None,
) -> None:
    """Quarantine rows and the manifest row in one transaction; the manifest row commits the file.

    ``quarantined``: the parsed rows given a reason (``_row``, ``reason``, ``raw``);
    ``rejected``: the rows the reader itself rejected.
    """
    con = ctx.con
    cols = "source_file, row_number, reason, raw, file_hash, ingested_run"
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {c.QUARANTINE} WHERE file_hash = ?", [file_hash])
        # a file rejected for its header and now read replaces its manifest row
        con.execute(f"DELETE FROM {c.INGEST_MANIFEST} WHERE file_hash = ?", [file_hash])
        if quarantined is not None and quarantined.num_rows:
            con.register("_gp_quarantine", quarantined)
            try:
                con.execute(
                    f"""INSERT INTO {c.QUARANTINE} ({cols})
                        SELECT ?, _row, reason, raw, ?, ? FROM _gp_quarantine ORDER BY _row""",
                    [path.name, file_hash, ctx.run_id],
                )
            finally:
                con.unregister("_gp_quarantine")
        if rejected:
            con.executemany(
                f"INSERT INTO {c.QUARANTINE} ({cols}) VALUES (?, ?, ?, ?, ?, ?)",
                [[path.name, row, reason, raw, file_hash, ctx.run_id] for row, reason, raw in rejected],
            )
        con.execute(
            f"""INSERT INTO {c.INGEST_MANIFEST} (file_hash, file_name, file_size, file_format, rows_read,
                    rows_accepted, rows_duplicate, rows_quarantined, dates, ingested_run, ingested_at, error)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?)""",
            [
                file_hash,
                path.name,
                entry["size"],
                fmt,
                entry["rows_read"],
                entry["accepted"],
                entry["duplicate"],
                entry["quarantined"],
                ",".join(d.isoformat() for d in entry["dates"]),
                ctx.run_id,
                entry.get("error"),
            ],
        )
        store.add_pending(con, store.PENDING_DAY, entry["dates"], ctx.run_id)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def _remove_orphan_parts(con: duckdb.DuckDBPyConnection, ws: Workspace) -> list[str]:
    """Delete store parts of files whose ingest never committed (a killed run)."""
    parts = store.gps_parts(ws.paths)
    if not parts:
        return []
    known = {
        r[0][: store.GPS_PART_HASH_CHARS] for r in con.execute(f"SELECT file_hash FROM {c.INGEST_MANIFEST}").fetchall()
    }
    orphans = [p for p in parts if store.gps_part_owner(p) not in known]
    for p in orphans:
        p.unlink(missing_ok=True)
    if not orphans:
        return []
    msg = (
        f"removed {len(orphans)} GPS store part(s) of an ingest that did not finish "
        f"({', '.join(sorted({store.gps_part_owner(p) for p in orphans}))}); their files are read again if still in the inbox"
    )
    log.warning(msg)
    return [msg]


def _remove_parts_of(ctx: _Context, file_hash: str) -> None:
    """Delete the parts already written for a file whose reading failed half-way."""
    own = file_hash[: store.GPS_PART_HASH_CHARS]
    for p in store.gps_parts(ctx.ws.paths):
        if store.gps_part_owner(p) == own:
            p.unlink(missing_ok=True)
