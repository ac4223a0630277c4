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
   being the commit point. Writing and committing run on one writer thread
   (:class:`~trajectory.ingest.model.IngestWriter`), in inbox order, while the next chunk or
   file is read: at most one chunk waits there. A run killed before it leaves parts without a manifest
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

The package follows the data flow, one stage a module: :mod:`~trajectory.ingest.inbox`
(listing, skipped entries, links), :mod:`~trajectory.ingest.readers` (one reader per format
on one base; :mod:`~trajectory.ingest.text` for encodings and overlong lines,
:mod:`~trajectory.ingest.headers` for header mapping), :mod:`~trajectory.ingest.classify`
(the SQL classification and its reasons), :mod:`~trajectory.ingest.keys` (dedupe keys),
:mod:`~trajectory.ingest.commit` (parts, manifest, orphan cleanup). This module runs them
per file in that order (:func:`ingest_inbox`); :class:`FileResult` is one file's outcome.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from trajectory import contract as c
from trajectory import store
from trajectory.errors import StoreError
from trajectory.ingest.classify import classify_chunk
from trajectory.ingest.commit import GPS_STORE_SCHEMA, remove_orphan_parts, remove_parts_of
from trajectory.ingest.commit import commit_file as _commit
from trajectory.ingest.commit import write_parts as _write_parts
from trajectory.ingest.headers import GPS_HEADER_ALIASES, normalise_header
from trajectory.ingest.inbox import format_of, inbox_files
from trajectory.ingest.inbox import sha256_of as _sha256
from trajectory.ingest.keys import KEY_TS_BITS, SeenKeys, find_new_points
from trajectory.ingest.model import FileResult, IngestContext, IngestReport
from trajectory.ingest.readers import ChunkReadError, FileSource, open_source
from trajectory.ingest.text import MAX_LINE_BYTES, RAW_MAX_CHARS, drop_long_lines, has_long_line
from trajectory.logs import log_step
from trajectory.workspace import Workspace

__all__ = ["GPS_HEADER_ALIASES", "GPS_STORE_SCHEMA", "FileResult", "IngestReport", "ingest_inbox"]
# _CHUNK_ROWS, _commit, _write_parts and _sha256 are looked up here at call time: tests replace
# them on the package (a crash before the manifest row, an unreadable file, small chunks).
# The overlong-line scan under the names the hostile-input and fuzz tests read:
_MAX_LINE_BYTES, _has_long_line, _drop_long_lines = MAX_LINE_BYTES, has_long_line, drop_long_lines

log = logging.getLogger(__name__)

# rows read, classified and written at a time: a file's peak memory is a chunk's, not the file's
_CHUNK_ROWS = 1 << 20


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
    con.execute(f"ALTER TABLE {c.INGEST_MANIFEST} ADD COLUMN IF NOT EXISTS file_mtime_ns BIGINT")
    report.warnings.extend(remove_orphan_parts(con, ws))
    files, skipped = inbox_files(inbox)
    report.warnings.extend(skipped)
    if not files:
        log_step("ingest_file", files=0)
    roster = pa.array(sorted(set(ws.workers["worker_id"].astype(str))), pa.string())
    if len(roster) >= 1 << (63 - KEY_TS_BITS):
        most = (1 << (63 - KEY_TS_BITS)) - 1
        raise StoreError(f"workers.csv lists {len(roster)} workers; ingest handles at most {most}")
    columns = {normalise_header(k): v for k, v in ws.policy.gps_columns.items()}
    ctx = IngestContext(ws, con, run_id, int(now.timestamp() * 1_000_000), roster, columns)
    _read_manifest(ctx)
    # worker_idx: position in the sorted roster, so (worker_idx, ts) sorts like (worker_id, ts)
    worker_idx = pa.array(np.arange(len(roster), dtype=np.int32))
    con.register("_gp_workers", pa.table({"worker_id": roster, "worker_idx": worker_idx}))
    try:
        for path in tqdm(files, desc="ingest", unit="file", file=sys.stderr, disable=not progress):
            fmt = format_of(path)
            if fmt is None:
                msg = f"inbox file {path.name}: 非GPS文件 not a GPS file (expected .csv, .csv.gz, .parquet, .jsonl, .ndjson); skipped"
                log.warning(msg)
                report.warnings.append(msg)
                continue
            try:
                stat = path.stat()
                # a file read before, unchanged (same name, size and modification time), is
                # known without reading its bytes again: the inbox keeps every night's files
                file_hash = ctx.unchanged.get((path.name, stat.st_size, stat.st_mtime_ns)) or _sha256(path)
                size = stat.st_size
            except OSError as exc:
                msg = f"inbox file {path.name}: cannot be read ({exc.strerror or exc}); skipped, tried again next run"
                log.warning(msg)
                report.warnings.append(msg)
                continue
            entry, new_dates, warnings = _ingest_one(ctx, path, fmt, file_hash, size, stat.st_mtime_ns)
            # reached after the file's commit, on the writer thread (the n-th file, for tests)
            ctx.writer.submit(lambda: store.crash_point("ingest.file"), heavy=False)
            report.files.append(entry)
            report.dates_touched |= new_dates
            report.warnings.extend(warnings)
        ctx.writer.wait()  # the last file's parts and commit
    finally:
        ctx.close_writer()
        con.unregister("_gp_workers")
    store.refresh_views(con, ws.paths, only_changed=True)
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


# --- one file ---


def _read_manifest(ctx: IngestContext) -> None:
    """The manifest as this run finds it, in one query (the inbox keeps every night's files:
    thirty lookups by name and by hash a night at the end of a month). A file read before,
    unchanged (same name, size and modification time) and read without error, is known by
    its row without reading its bytes again; any other file is hashed and looked up by content.
    Files this run commits are known from ``ctx.committing``."""
    rows = ctx.con.execute(
        f"SELECT file_hash, file_name, ingested_run, error, file_size, file_mtime_ns FROM {c.INGEST_MANIFEST}"
    ).fetchall()
    for file_hash, name, run, error, size, mtime_ns in rows:
        ctx.manifest[str(file_hash)] = (name, run, error)
        if error is None and size is not None and mtime_ns is not None:
            ctx.unchanged[(str(name), int(size), int(mtime_ns))] = str(file_hash)


def _ingest_one(
    ctx: IngestContext, path: Path, fmt: str, file_hash: str, size: int, mtime_ns: int | None = None
) -> tuple[FileResult, set[date], list[str]]:
    started = time.perf_counter()
    con = ctx.con
    entry = FileResult(name=path.name, hash=file_hash, format=fmt, size=size, mtime_ns=mtime_ns)
    known = ctx.committing.get(file_hash) or ctx.manifest.get(file_hash)
    # a file rejected for its header is looked at again: [gps.columns] may map it now
    retry = known is not None and str(known[2] or "").startswith(c.REASON_FILE_REJECTED)
    if known is not None and not retry:
        return _skip_known(ctx, path, file_hash, entry, known)

    with tempfile.TemporaryDirectory(prefix="gridpatrol-ingest-") as tmp:
        src = open_source(con, path, fmt, Path(tmp), ctx.columns, chunk_rows=_CHUNK_ROWS)
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
            except ChunkReadError as exc:
                # a reader failing half-way: the chunks already written are this file's, removed
                remove_parts_of(ctx, file_hash)
                if fmt == "csv" and not src.lenient:
                    src = open_source(
                        con,
                        path,
                        fmt,
                        Path(tmp),
                        ctx.columns,
                        chunk_rows=_CHUNK_ROWS,
                        lenient=True,
                        strict_error=str(exc),
                    )
                else:
                    src = FileSource(error=str(exc), warnings=src.warnings)
        if result is None:
            assert src.error is not None
            entry.error = f"{c.REASON_UNREADABLE_FILE}: {src.error}"
            _queue_commit(ctx, path, fmt, entry, [(0, entry.error, _head_of(path))], None)
            msg = f"inbox file {path.name}: 无法读取 {src.error}; recorded in quarantine (row 0) and skipped"
            log.warning(msg)
            return entry, set(), [*src.warnings, msg]
        counts, parts_rows, quarantined = result
        entry.rows_read = counts["parsed"] + len(src.rejected)
        entry.accepted = counts["accepted"]
        entry.duplicate = counts["ok"] - counts["accepted"] - counts["conflicting"]
        entry.quarantined = counts["rejected"] + counts["conflicting"] + len(src.rejected)
        entry.dates = sorted(parts_rows)
        _reconcile(path.name, entry, counts["classified"], sum(parts_rows.values()), counts["parsed"])
        warnings = list(src.warnings) + _soft_value_warnings(path.name, counts)
        for w in warnings:
            log.warning(w)
        fields = dict(
            file=path.name,
            format=fmt,
            rows=entry.rows_read,
            accepted=entry.accepted,
            duplicate=entry.duplicate,
            quarantined=entry.quarantined,
            dates=len(entry.dates),
        )
        _queue_commit(ctx, path, fmt, entry, src.rejected, quarantined, (fields, started))
    return entry, set(entry.dates), warnings


def _ingest_chunks(
    ctx: IngestContext, src: FileSource, file_hash: str
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
    seen: dict[int, SeenKeys] = {}
    point_cols = ["worker_idx", "ts_us", "lon", "lat", "accuracy_m", "speed_mps", "mock", "device_id"]
    for chunk, table in enumerate(src.batches):
        con.register("_gp_src", table)
        try:
            chunk_counts, rows, ok = classify_chunk(ctx, src)
            row_numbers = rows["_row"].to_numpy()
            ok_rows = np.flatnonzero(ok.to_numpy(zero_copy_only=False))
            new_points, conflicting = find_new_points(
                ctx, file_hash, rows.select(point_cols), ok_rows, row_numbers, seen
            )
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
                    f"""SELECT r._row, r.reason, left({src.raw_sql}, {RAW_MAX_CHARS}) AS raw
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


def _queue_commit(
    ctx: IngestContext,
    path: Path,
    fmt: str,
    entry: FileResult,
    rejected: list[tuple[int, str, str]],
    quarantined: pa.Table | None,
    logged: tuple[dict[str, Any], float] | None = None,
) -> None:
    """The file's commit (:func:`~trajectory.ingest.commit.commit_file` of ``entry.hash``),
    queued behind its parts on the writer thread; ``logged``: a file read, its ``ingest_file``
    log fields and start time (logged once committed).

    The next file is read meanwhile; a copy of this one later in the inbox is known by
    ``ctx.committing`` before the manifest row exists.
    """
    ctx.committing[entry.hash] = (path.name, ctx.run_id, entry.error)
    writer_ctx = ctx.for_writer()

    def commit() -> None:
        if logged is not None:  # a file read: its points written, its manifest row not yet
            store.crash_point("ingest.parts")
        _commit(writer_ctx, path, entry.hash, fmt, entry, rejected, quarantined)
        if logged is not None:
            fields, started = logged
            log_step("ingest_file", **fields, seconds=round(time.perf_counter() - started, 2))

    ctx.writer.submit(commit, heavy=False)


def _skip_known(
    ctx: IngestContext, path: Path, file_hash: str, entry: FileResult, known: tuple[Any, ...]
) -> tuple[FileResult, set[date], list[str]]:
    entry.skipped_as_known = True
    warnings = _record_alias(ctx, path.name, file_hash, known)
    # every night re-lists the inbox: files already known are logged only at DEBUG level
    log_step("ingest_file", logging.DEBUG, file=path.name, skipped="known", same_as=known[0], run=known[1])
    return entry, set(), warnings


def _reject_file(
    ctx: IngestContext, path: Path, file_hash: str, fmt: str, entry: FileResult, src: FileSource, missing: list[str]
) -> tuple[FileResult, set[date], list[str]]:
    """A file whose header has no column for a required one: one row 0 and one warning, not a row each."""
    need = ", ".join(missing)
    entry.error = (
        f"{c.REASON_FILE_REJECTED}: the header has no column for {need}; "
        "name its columns under [gps.columns] in patrol.toml and the file is read again"
    )
    raw = json.dumps({"header": [h[:100] for h in (src.header or [])[:200]]}, ensure_ascii=False)
    _queue_commit(ctx, path, fmt, entry, [(0, entry.error, raw)], None)
    msg = (
        f"inbox file {path.name}: 文件被拒收，表头缺少必需列 {need} (file rejected: no column for {need}; nothing "
        "stored, quarantine row 0) — 在 patrol.toml 的 [gps.columns] 中对应表头后自动重读 (map its headers under "
        "[gps.columns] in patrol.toml: the file is read again on the next run)"
    )
    log.warning(msg)
    return entry, set(), [*src.warnings, msg]


def _record_alias(ctx: IngestContext, name: str, file_hash: str, known: tuple[Any, ...]) -> list[str]:
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


def _reconcile(name: str, entry: FileResult, classified: int, written: int, parsed: int) -> None:
    if (
        classified != parsed
        or written != entry.accepted
        or (entry.accepted + entry.duplicate + entry.quarantined != entry.rows_read)
    ):
        raise StoreError(
            f"ingest of {name} does not reconcile: rows read {entry.rows_read}, accepted {entry.accepted} "
            f"(written {written}), duplicate {entry.duplicate}, quarantined {entry.quarantined}, "
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


def _first(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> tuple[Any, ...] | None:
    """The first row of a query, reading the result to its end (DuckDB 2 refuses other work before)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None
