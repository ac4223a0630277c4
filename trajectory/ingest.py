"""Ingest: GPS files of the inbox into the Parquet store, rejected rows into ``quarantine`` (SPEC §2).

Each file of ``inbox/gps/`` (CSV, optionally gzipped; Parquet; JSON Lines) goes through:

1. SHA-256 of its bytes; a hash already in ``ingest_manifest`` is skipped (a file delivered
   again, under any name, changes nothing; a new name is recorded once in ``ingest_alias``).
2. Columnar parsing in DuckDB (no Python per row): every field is read as delivered and
   converted with ``TRY_CAST`` / regular expressions, ``ts`` from ISO-8601 with offset, naive
   local time (workspace time zone) or epoch milliseconds; coordinates to WGS-84 per
   ``gps_crs`` (:mod:`trajectory.coords`).
3. Rows that cannot be a point go to ``quarantine`` with one specific reason and their raw
   values as JSON. Accuracy, speed and mock flags are never reasons: judging a valid point is
   the engine's job.
4. A point is (worker_id, ts): duplicates inside the file and against the store are stored once.
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

Inbox entries that are not regular files (a folder named like a file, a broken link, a pipe)
and files that cannot be opened are skipped with a warning, every run until they are fixed:
they have no content to record.

The caller (``trajectory.run``) holds the workspace lock.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
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
_RE_EPOCH_MS = r"-?[0-9]{1,15}"
_RE_EPOCH_MS_FRACTION = r"-?[0-9]{1,15}\.[0-9]*"
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
        be read at all, and ``dates``: the local dates that received new points).
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
    report.warnings.extend(_remove_orphan_parts(con, ws))
    entries = sorted(p for p in inbox.iterdir() if not p.name.startswith(".")) if inbox.is_dir() else []
    files = [p for p in entries if p.is_file()]
    report.warnings.extend(_not_regular_files(entries))
    if not files:
        log_step("ingest_file", files=0)
    roster = pa.array(sorted(set(ws.workers["worker_id"].astype(str))), pa.string())
    if len(roster) >= 1 << (63 - _KEY_TS_BITS):
        most = (1 << (63 - _KEY_TS_BITS)) - 1
        raise StoreError(f"workers.csv lists {len(roster)} workers; ingest handles at most {most}")
    ctx = _Context(ws, con, run_id, int(now.timestamp() * 1_000_000), roster)
    # worker_idx: position in the sorted roster, so (worker_idx, ts) sorts like (worker_id, ts)
    worker_idx = pa.array(np.arange(len(roster), dtype=np.int32))
    con.register("_gp_workers", pa.table({"worker_id": roster, "worker_idx": worker_idx}))
    try:
        for path in tqdm(files, desc="ingest", unit="file", file=sys.stderr, disable=not progress):
            fmt = _format_of(path)
            if fmt is None:
                msg = f"inbox file {path.name}: not a GPS file (expected .csv, .csv.gz, .parquet, .jsonl, .ndjson); skipped"
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


def _not_regular_files(entries: list[Path]) -> list[str]:
    """Warnings for inbox entries that cannot be read as files (root reads any regular file)."""
    out = []
    for p in entries:
        if p.is_file() or (p.is_dir() and not p.is_symlink() and _format_of(p) is None):
            continue  # a plain sub-folder (an archive, say) is not a delivery
        if p.is_symlink() and not p.exists():
            what = "a broken symbolic link"
        elif p.is_dir():
            what = "a folder"
        else:
            what = "not a regular file (a pipe, socket or device)"
        msg = f"inbox entry {p.name}: {what}, not a GPS file; skipped"
        log.warning(msg)
        out.append(msg)
    return out


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
    known = _first(con, f"SELECT file_name, ingested_run FROM {c.INGEST_MANIFEST} WHERE file_hash = ?", [file_hash])
    if known is not None:
        entry["skipped_as_known"] = True
        warnings = _record_alias(ctx, path.name, file_hash, known)
        # every night re-lists the inbox: files already known are logged only at DEBUG level
        log_step("ingest_file", logging.DEBUG, file=path.name, skipped="known", same_as=known[0], run=known[1])
        return entry, set(), warnings

    with tempfile.TemporaryDirectory(prefix="gridpatrol-ingest-") as tmp:
        src = _load(con, path, fmt, Path(tmp))
        result = None
        while src.error is None:
            try:
                result = _ingest_chunks(ctx, src, file_hash)
                break
            except _ReadError as exc:
                # a reader failing half-way: the chunks already written are this file's, removed
                _remove_parts_of(ctx, file_hash)
                if fmt == "csv" and not src.lenient:
                    src = _load(con, path, fmt, Path(tmp), lenient=True, strict_error=str(exc))
                else:
                    src = _Source(error=str(exc), warnings=src.warnings)
        if result is None:
            assert src.error is not None
            entry["error"] = src.error
            _commit(ctx, path, file_hash, fmt, entry, [(0, f"unreadable file: {src.error}", _head_of(path))], None)
            msg = f"inbox file {path.name}: {src.error}; recorded in quarantine (row 0) and skipped"
            log.warning(msg)
            return entry, set(), [*src.warnings, msg]
        counts, parts_rows, quarantined = result
        store.crash_point("ingest.parts")
        entry.update(
            rows_read=counts["parsed"] + len(src.rejected),
            accepted=counts["accepted"],
            duplicate=counts["ok"] - counts["accepted"],
            quarantined=counts["rejected"] + len(src.rejected),
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
    (``_row`` final, ``reason``, ``raw``). The keys of the points accepted from earlier chunks
    and of the store's points are kept per local date, so a point is stored once whatever
    chunk its copies are in (the first copy in the file wins).
    """
    con = ctx.con
    counts = dict.fromkeys(
        ("parsed", "classified", "ok", "rejected", "accepted", "bad_mock", "bad_accuracy", "bad_speed"), 0
    )
    parts_rows: dict[date, int] = {}
    quarantined: list[pa.Table] = []
    seen: dict[int, _SeenKeys] = {}
    for chunk, table in enumerate(src.batches):
        con.register("_gp_src", table)
        try:
            chunk_counts, rows, ok = _classify(ctx, src)
            # the rejected rows (few) with their raw values, for the quarantine insert of _commit
            con.register("_gp_rows", rows.filter(pc.invert(ok)).select(["_row", "reason"]))
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
        del table
        point_cols = ["worker_idx", "ts_us", "lon", "lat", "accuracy_m", "speed_mps", "mock", "device_id", "local_date"]
        ok_rows = np.flatnonzero(ok.to_numpy(zero_copy_only=False))
        new_points = _new_points(ctx, file_hash, rows.select(point_cols), ok_rows, rows["_row"].to_numpy(), seen)
        del rows, ok
        # (chunk 0 keeps the part name of a file read in one piece)
        written = _write_parts(ctx, file_hash, new_points, chunk)
        for day, n in written.items():
            parts_rows[day] = parts_rows.get(day, 0) + n
        chunk_counts.update(parsed=parsed, accepted=new_points.num_rows)
        for key, value in chunk_counts.items():
            counts[key] += value
        del new_points
    if not quarantined:
        return counts, parts_rows, None
    q = pa.concat_tables(quarantined)
    final = src.row_numbers_of(q["_row"].to_numpy(), counts["parsed"])
    return counts, parts_rows, q.set_column(0, "_row", pa.array(final, pa.int64()))


def _record_alias(ctx: _Context, name: str, file_hash: str, known: tuple[str, str]) -> list[str]:
    first_name, first_run = known
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
    return name.replace("\ufeff", "").strip().lower()


def _load(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    fmt: str,
    tmp: Path,
    *,
    lenient: bool = False,
    strict_error: str | None = None,
) -> _Source:
    """Open a file for reading in chunks (``lenient``: CSV read again after a strict read failed)."""
    if path.stat().st_size == 0:
        return _Source(warnings=[f"inbox file {path.name}: empty file"])
    if fmt == "parquet":
        return _load_parquet(path)
    text_path, warnings, error = _as_utf8(path, tmp)
    if error is not None:
        return _Source(error=error)
    assert text_path is not None
    if fmt == "csv":
        src = _load_csv(con, text_path, path.name, lenient=lenient, strict_error=strict_error)
    else:
        src = _load_jsonl(con, text_path, path.name)
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
    """UTF-8 (with or without BOM) is read as is; GBK (common in Chinese exports) is transcoded.

    The encoding is decided on the first MiB; a later undecodable line is rejected by the
    CSV reader and quarantined.
    """
    try:
        with _open_bytes(path) as fh:
            head = fh.read(_ENCODING_PROBE_BYTES)
    except (OSError, EOFError) as exc:
        return None, [], f"cannot be read: {exc}"
    if _decodes(head, "utf-8"):
        return path, [], None
    if not _decodes(head, "gbk"):
        return None, [], "not a text file in UTF-8 or GBK (garbage or binary bytes)"
    out = tmp / (path.name.removesuffix(".gz") + ".utf8")
    decoder = codecs.getincrementaldecoder("gbk")(errors="replace")
    with _open_bytes(path) as fin, out.open("w", encoding="utf-8", newline="") as fout:
        while chunk := fin.read(1 << 22):
            fout.write(decoder.decode(chunk))
        fout.write(decoder.decode(b"", final=True))
    return out, [f"inbox file {path.name}: GBK-encoded text, read as GBK"], None


def _decodes(head: bytes, encoding: str) -> bool:
    # a probe cut in the middle of a multi-byte character still decodes (final=False)
    try:
        codecs.getincrementaldecoder(encoding)().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _rejects_options() -> str:
    return "store_rejects = true, rejects_table = '_gp_rejects', rejects_scan = '_gp_reject_scans'"


def _load_csv(
    con: duckdb.DuckDBPyConnection, path: Path, name: str, *, lenient: bool = False, strict_error: str | None = None
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
    fields, warnings = _map_columns(pa.schema([pa.field(n, t) for n, t in zip(names, schema.types, strict=True)]), name)
    raw_cols = ", ".join(f"{_ident(n)} := s.{_ident(n)}" for n in names)
    raw_sql = f"to_json(struct_pack({raw_cols}))" if raw_cols else "NULL"
    notes = (
        [f"inbox file {name}: not strict CSV (mixed line endings or stray quotes); read leniently"] if lenient else []
    )
    src = _Source(fields=fields, raw_sql=raw_sql, renumber=True, lenient=lenient, warnings=notes + warnings)

    def batches() -> Iterator[pa.Table]:
        done = 0
        try:
            for table in _rebatch(_scan(reader, "CSV"), schema):
                table = table.rename_columns(names)
                yield table.append_column("_row", pa.array(np.arange(done + 1, done + 1 + table.num_rows), pa.int64()))
                done += table.num_rows
            # reader lines count the header as line 1
            src.rejected = _rejected_lines(rejects, "CSV", "CSV", line_offset=-1)
        finally:
            reader.close()
            cur.close()

    src.batches = batches()
    return src


def _rejected_lines(
    rejects: Callable[[], list[tuple[int, str, str]]], fmt: str, what: str, line_offset: int
) -> list[tuple[int, str, str]]:
    """The reader's rejected lines as ``(row_number, reason, raw)`` quarantine entries."""
    try:
        found = rejects()
    except duckdb.Error as exc:
        raise _ReadError(f"cannot be read as {fmt}: {str(exc).splitlines()[0]}") from exc
    return [
        (
            line + line_offset,
            _reject_reason(kind, what),
            json.dumps({"line": text[:_RAW_MAX_CHARS]}, ensure_ascii=False),
        )
        for line, kind, text in found
    ]


def _reject_reason(kind: str, what: str) -> str:
    if "ENCODING" in kind:
        return f"malformed {what} line (text is not UTF-8)"
    return f"malformed {what} line ({kind.lower()})"


def _load_jsonl(con: duckdb.DuckDBPyConnection, path: Path, name: str) -> _Source:
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
    fields: dict[str, tuple[str, str]] = {}
    warnings: list[str] = []
    for key in sorted(keys):
        norm = _norm(key)
        if norm in (*_REQUIRED, *_OPTIONAL):
            if norm in fields:
                warnings.append(f"inbox file {name}: keys '{key}' and another both read as {norm}; the first is used")
                continue
            # a malformed line must not stop the scan: extract only from valid JSON
            path_sql = _sql_str("$." + json.dumps(key))
            fields[norm] = (f"json_extract_string(CASE WHEN json_valid(s.line) THEN s.line END, {path_sql})", "text")
    src = _Source(fields=fields, raw_sql="s.line", json_lines=True, warnings=warnings)

    def batches() -> Iterator[pa.Table]:
        done = 0  # lines returned by the reader so far, blank ones included
        try:
            for table in _rebatch(_scan(reader, "JSON Lines"), reader.schema):
                # JSON Lines rows are numbered by line (blank lines included), not by position
                line_no = pa.array(np.arange(done + 1, done + 1 + table.num_rows), pa.int64())
                done += table.num_rows
                keep = pc.invert(pc.fill_null(pc.equal(pc.utf8_trim_whitespace(table["line"]), ""), True))
                kept = pa.table({"line": table["line"], "_row": line_no}).filter(keep)
                if kept.num_rows:
                    yield kept
            src.rejected = _rejected_lines(rejects, "JSON Lines", "JSON", line_offset=0)
        finally:
            reader.close()
            cur.close()

    src.batches = batches()
    return src


def _load_parquet(path: Path) -> _Source:
    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        return _Source(error=f"cannot be read as Parquet: {str(exc).splitlines()[0]}")
    names = _sql_safe_names(schema.names)
    fields, warnings = _map_columns(
        pa.schema([pa.field(n, t) for n, t in zip(names, schema.types, strict=True)]), path.name
    )
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
        warnings=warnings,
    )


def _sql_safe_names(names: list[str]) -> list[str]:
    """Rename columns SQL cannot name (an empty header cell) or tell apart (a repeated name).

    The raw values of quarantined rows are kept under these names; contract columns are
    found by :func:`_map_columns` on the names as delivered, so renaming never hides one.
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


def _map_columns(schema: pa.Schema, name: str) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """Contract columns found in a header (case and blanks ignored), as SQL expressions and kinds."""
    fields: dict[str, tuple[str, str]] = {}
    warnings: list[str] = []
    for col, typ in zip(schema.names, schema.types, strict=True):
        norm = _norm(col)
        if norm not in (*_REQUIRED, *_OPTIONAL):
            continue
        if norm in fields:
            warnings.append(f"inbox file {name}: two columns read as {norm}; the first is used")
            continue
        fields[norm] = (f"s.{_ident(col)}", _kind(typ))
    return fields, warnings


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


def _ts_us_sql(expr: str, kind: str, zone: str) -> str:
    """Expression giving the instant in epoch microseconds (NULL when unparseable)."""
    z = _sql_str(zone)
    if kind == "ts_tz":
        return f"epoch_us({expr})"
    if kind == "ts_naive":
        return f"epoch_us(timezone({z}, CAST({expr} AS TIMESTAMP)))"
    if kind == "int":
        return f"CASE WHEN abs({expr}) < 1e15 THEN CAST({expr} AS BIGINT) * 1000 END"
    if kind == "float":
        return f"CASE WHEN isfinite({expr}) AND abs({expr}) < 1e15 THEN CAST(round({expr} * 1000) AS BIGINT) END"
    t = f"upper({_text(expr)})"
    norm = f"replace({t}, '/', '-')"
    # a date-time has a ':', epoch milliseconds never: one cheap test spares two regexes a row
    return f"""CASE WHEN contains({t}, ':') THEN CASE
            WHEN regexp_full_match({t}, '{_RE_DATE_TIME}{_RE_OFFSET}') THEN epoch_us(TRY_CAST({norm} AS TIMESTAMPTZ))
            WHEN regexp_full_match({t}, '{_RE_DATE_TIME}') THEN epoch_us(timezone({z}, TRY_CAST({norm} AS TIMESTAMP)))
        END ELSE CASE
            WHEN regexp_full_match({t}, '{_RE_EPOCH_MS}') THEN CAST({t} AS BIGINT) * 1000
            WHEN regexp_full_match({t}, '{_RE_EPOCH_MS_FRACTION}') THEN CAST(round(CAST({t} AS DOUBLE) * 1000) AS BIGINT)
        END
    END"""


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

    # one reason per row, the first that applies, in the order a person would fix them; the
    # result comes back as Arrow (no temporary table, no second pass for the local date)
    rows = con.sql(
        f"""
        WITH p AS (
            SELECT s._row,
                   {json_ok} AS json_ok,
                   {_text(w_expr)} AS worker_id,
                   {present("ts")} AS ts_present,
                   {_ts_us_sql(ts_expr, ts_kind, zone)} AS ts_us,
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
        ), r AS (
            SELECT p._row, CASE
                    WHEN NOT json_ok THEN 'malformed JSON line (not a JSON object)'
                    WHEN {missing_reason} IS NOT NULL THEN {missing_reason}
                    WHEN p.worker_id IS NULL THEN 'missing worker_id'
                    WHEN w.worker_id IS NULL THEN 'unknown worker (not in workers.csv)'
                    WHEN NOT ts_present THEN 'missing ts'
                    WHEN ts_us IS NULL THEN 'unparseable ts'
                    WHEN NOT lon_present THEN 'missing lon'
                    WHEN lon IS NULL OR NOT isfinite(lon) THEN 'non-numeric lon'
                    WHEN NOT lat_present THEN 'missing lat'
                    WHEN lat IS NULL OR NOT isfinite(lat) THEN 'non-numeric lat'
                    WHEN lon < -180 OR lon > 180 THEN 'lon outside [-180, 180]'
                    WHEN lat < -90 OR lat > 90 THEN 'lat outside [-90, 90]'
                    WHEN lon = 0 AND lat = 0 THEN 'null island (0, 0)'
                    WHEN ts_us < {_MIN_TS_US} THEN 'ts before 2000-01-01'
                    WHEN ts_us > {ctx.now_us + _FUTURE_SLACK_US} THEN 'ts more than 1 day after the run'
                END AS reason,
                w.worker_idx, ts_us, lon, lat, accuracy_m, speed_mps, coalesce(mock, false) AS mock, device_id,
                mock IS NULL AND mock_present AS bad_mock,
                accuracy_m IS NULL AND acc_present AS bad_accuracy,
                speed_mps IS NULL AND spd_present AS bad_speed
            FROM p LEFT JOIN _gp_workers w ON p.worker_id = w.worker_id
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
    """Sorted keys of one local date's points: the store's (other files') and this file's so far."""

    stored: np.ndarray
    own: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))


def _in_sorted(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if not len(sorted_keys):
        return np.zeros(len(keys), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[pos] == keys


def _new_points(
    ctx: _Context,
    file_hash: str,
    rows: pa.Table,
    candidates: np.ndarray,
    row_numbers: np.ndarray,
    seen: dict[int, _SeenKeys],
) -> pa.Table:
    """First copy of each (worker_id, ts) of the chunk that the store and earlier chunks do not hold.

    ``candidates`` are the positions in ``rows`` of the valid points. Sorted by (local date,
    worker, ts, row), copies of a point are neighbours: the first one (lowest row) is kept.
    Points are compared by an int64 key per local date (worker's roster position and ts),
    against the keys of that date's parts (read once per date and file, into ``seen``) and of
    the points accepted from the file's earlier chunks; a date without other parts (a first
    delivery) reads nothing. The file's own parts (earlier chunks, or left by a run killed
    before its manifest row) are not "the store".
    """
    n = len(candidates)
    if n == 0:
        return rows.slice(0, 0)

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
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    ends = np.r_[starts[1:], n]
    for lo, hi in zip(starts, ends, strict=True):
        day_number = int(day[lo])
        known = seen.get(day_number)
        if known is None:
            known = seen[day_number] = _SeenKeys(_stored_keys(ctx, day_number, file_hash))
        seg = key[lo:hi]
        keep = first[lo:hi] & ~_in_sorted(known.stored, seg) & ~_in_sorted(known.own, seg)
        first[lo:hi] = keep
        if keep.any():  # sorted and disjoint from own: a merge of two sorted runs
            known.own = np.sort(np.concatenate([known.own, seg[keep]]), kind="stable")
    return rows.take(pa.array(order[first]))


def _point_keys(worker_idx: np.ndarray, ts_us: np.ndarray, day: np.ndarray) -> np.ndarray:
    """int64 key of (worker, ts) unique within local date ``day`` (days since 1970-01-01)."""
    offset = ts_us - (day.astype(np.int64) - 1) * _DAY_US
    if len(offset) and (offset.min() < 0 or offset.max() >= 1 << _KEY_TS_BITS):
        raise StoreError(
            "a point's local date is more than a day away from its UTC date; check the workspace time zone"
        )
    return (worker_idx.astype(np.int64) << _KEY_TS_BITS) | offset


def _stored_keys(ctx: _Context, day_number: int, file_hash: str) -> np.ndarray:
    """Sorted keys of the points the store holds for one local date (other files' parts)."""
    day = date.fromordinal(_EPOCH_ORDINAL + day_number)
    own = file_hash[: store.GPS_PART_HASH_CHARS]
    keys = []
    for part in store.gps_parts(ctx.ws.paths, [day]):
        if store.gps_part_owner(part) == own:
            continue
        t = pq.read_table(part, columns=["worker_id", "ts"], read_dictionary=["worker_id"])
        ts = t["ts"].cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        for w_chunk, ts_chunk in zip(t["worker_id"].chunks, ts.chunks, strict=True):
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
    return np.sort(np.concatenate(keys)) if keys else np.empty(0, np.int64)


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
                    rows_accepted, rows_duplicate, rows_quarantined, dates, ingested_run, ingested_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())""",
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
