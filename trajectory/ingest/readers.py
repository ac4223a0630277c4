"""Readers: a GPS file opened as a :class:`FileSource` of row chunks, one reader class per format.

:class:`Reader` is the base every format shares: it names the columns SQL can use, maps the
header to the contract (:mod:`trajectory.ingest.headers`), numbers the rows (``_row``, 1-based)
and cuts the stream into chunks of about ``chunk_rows`` rows. The subclasses only open their
format: :class:`CsvReader` (DuckDB ``read_csv``, all VARCHAR, malformed lines kept aside,
read again leniently when the strict dialect fails), :class:`JsonLinesReader` (one VARCHAR
per line, keys found in a first pass) and :class:`ParquetReader` (pyarrow, typed columns).
Text formats are made UTF-8 and cleared of overlong lines first (:mod:`trajectory.ingest.text`).
:func:`open_source` picks the reader by format.

Examples
--------
>>> sorted(READERS), READERS["jsonl"].text, READERS["parquet"].text
(['csv', 'jsonl', 'parquet'], True, False)
>>> _reject_reason("INVALID_UNICODE_ENCODING", "CSV")
'malformed CSV line (text is not UTF-8)'
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trajectory import contract as c
from trajectory.ingest.headers import REQUIRED_COLUMNS, arrow_kind, resolve_columns, sql_ident, sql_safe_names, sql_str
from trajectory.ingest.text import (
    MAX_LINE_BYTES,
    RAW_MAX_CHARS,
    as_utf8,
    drop_long_lines,
    has_long_line,
    is_blank,
    original_lines,
)

# the stage's interface inside the package; code outside imports from trajectory.ingest
__all__ = [
    "JSON_OBJECT_SQL",
    "READERS",
    "ChunkReadError",
    "CsvReader",
    "FileSource",
    "FileToOpen",
    "JsonLinesReader",
    "ParquetReader",
    "Reader",
    "open_source",
]

# AND does not short-circuit in SQL: json_type on a malformed line would stop the scan
JSON_OBJECT_SQL = "(CASE WHEN json_valid({line}) THEN json_type({line}) = 'OBJECT' ELSE false END)"


class ChunkReadError(Exception):
    """The reader failed in the middle of a file (after some chunks were handled)."""


@dataclass(frozen=True)
class FileToOpen:
    """What a reader opens: the file at ``path`` (delivered as ``name``), the header mapping
    ``columns``, ``long_lines`` (the lines cut out as too long: number, text) and, for CSV,
    ``lenient`` (read tolerantly at once, a strict read having failed with ``strict_error``)."""

    path: Path
    name: str
    columns: Mapping[str, str]
    long_lines: list[tuple[int, str]] = field(default_factory=list)
    lenient: bool = False
    strict_error: str | None = None


@dataclass
class FileSource:
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
        return [name for name in REQUIRED_COLUMNS if name not in self.fields]

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


def open_source(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    fmt: str,
    tmp: Path,
    columns: Mapping[str, str],
    *,
    chunk_rows: int,
    lenient: bool = False,
    strict_error: str | None = None,
) -> FileSource:
    """Open a file for reading in chunks of about ``chunk_rows`` rows.

    ``columns``: ``[gps.columns]`` with normalised headers; ``lenient``: CSV read again after
    a strict read failed (``strict_error``). Text is made UTF-8 and cleared of overlong lines
    first (into ``tmp``), so that neither can stop the reader.
    """
    if path.stat().st_size == 0:
        return FileSource(warnings=[f"inbox file {path.name}: empty file"])
    reader = READERS[fmt](con, chunk_rows)
    if not reader.text:
        return reader.open(FileToOpen(path, path.name, columns))
    text_path, warnings, error = as_utf8(path, tmp)
    if error is not None:
        return FileSource(error=error)
    assert text_path is not None
    try:
        if is_blank(text_path):
            return FileSource(warnings=[f"inbox file {path.name}: empty file"])
        long_lines: list[tuple[int, str]] = []
        if has_long_line(text_path, MAX_LINE_BYTES):
            out = tmp / (path.name.removesuffix(".gz") + ".lines")
            long_lines = drop_long_lines(text_path, out, MAX_LINE_BYTES)
            text_path = out
    except (OSError, EOFError, zlib.error) as exc:
        return FileSource(error=f"cannot be read: {exc}")
    if long_lines:
        warnings.append(
            f"inbox file {path.name}: {len(long_lines)} 行超长已隔离 line(s) longer than {MAX_LINE_BYTES} bytes "
            f"quarantined ({c.REASON_LINE_TOO_LONG}); the other lines are read"
        )
    if reader.header_line and long_lines and long_lines[0][0] == 1:
        return FileSource(error=f"the header line is longer than {MAX_LINE_BYTES} bytes", warnings=warnings)
    src = reader.open(FileToOpen(text_path, path.name, columns, long_lines, lenient, strict_error))
    src.warnings[:0] = warnings
    return src


class Reader:
    """What every format's reader shares: chunking, row numbers, header mapping, DuckDB scans.

    A subclass sets ``what`` (the format's name in messages), ``text`` (prepared by
    :mod:`trajectory.ingest.text` first) and ``header_line`` (line 1 is the header), and
    implements :meth:`open`.
    """

    what: ClassVar[str] = ""
    text: ClassVar[bool] = True
    header_line: ClassVar[bool] = False

    def __init__(self, con: duckdb.DuckDBPyConnection, chunk_rows: int) -> None:
        self.con = con
        self.chunk_rows = chunk_rows

    def open(self, file: FileToOpen) -> FileSource:
        """The file to open as a source."""
        raise NotImplementedError

    def rebatch(self, batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.Table]:
        """Tables of about ``chunk_rows`` rows from batches of any size (never an empty one)."""
        pending: list[pa.RecordBatch] = []
        n = 0
        for batch in batches:
            if batch.num_rows == 0:
                continue
            pending.append(batch)
            n += batch.num_rows
            if n >= self.chunk_rows:
                yield pa.Table.from_batches(pending, schema=schema)
                pending, n = [], 0
        if pending:
            yield pa.Table.from_batches(pending, schema=schema)

    def numbered(self, reader: pa.RecordBatchReader, schema: pa.Schema, names: list[str]) -> Iterator[pa.Table]:
        """The reader's chunks with columns ``names`` and ``_row``: the position from 1."""
        done = 0
        for table in self.rebatch(_scan(reader, self.what), schema):
            table = table.rename_columns(names)
            yield table.append_column("_row", pa.array(np.arange(done + 1, done + 1 + table.num_rows), pa.int64()))
            done += table.num_rows

    @staticmethod
    def typed_fields(
        schema: pa.Schema, columns: Mapping[str, str], name: str
    ) -> tuple[list[str], dict[str, tuple[str, str]], str, list[str]]:
        """SQL-safe column names, contract column -> (expression, kind), the raw-row SQL, warnings."""
        names = sql_safe_names(schema.names)
        found, warnings = resolve_columns(names, columns, name)
        types = dict(zip(names, schema.types, strict=True))
        fields = {col: (f"s.{sql_ident(n)}", arrow_kind(types[n])) for col, n in found.items()}
        raw_cols = ", ".join(f"{sql_ident(n)} := s.{sql_ident(n)}" for n in names)
        raw_sql = f"to_json(struct_pack({raw_cols}))" if raw_cols else "NULL"
        return names, fields, raw_sql, warnings

    def stream(
        self, cur: duckdb.DuckDBPyConnection, reader_sql: str
    ) -> tuple[pa.RecordBatchReader, Callable[[], list[tuple[int, str, str]]]]:
        """Start a DuckDB CSV scan keeping malformed lines aside (never silently dropped).

        Returns the batches and a function giving the malformed lines once the scan has ended.
        ``cur`` is a cursor of its own: the chunks are classified on the main connection while
        the scan is open.
        """
        _drop_rejects(cur)
        reader = cur.sql(f"SELECT * FROM {reader_sql}").to_arrow_reader(self.chunk_rows)

        def rejects() -> list[tuple[int, str, str]]:
            try:
                rows = cur.execute(
                    """SELECT line, first(error_type ORDER BY column_idx), first(csv_line ORDER BY column_idx)
                       FROM _gp_rejects GROUP BY line ORDER BY line"""
                ).fetchall()
            finally:
                _drop_rejects(cur)
            return [(int(line), str(kind), str(text or "")) for line, kind, text in rows]

        return reader, rejects


class CsvReader(Reader):
    """CSV (optionally gzipped): every field as VARCHAR; malformed lines quarantined, not fatal."""

    what = "CSV"
    header_line = True

    def open(self, file: FileToOpen) -> FileSource:
        path, name, columns, long_lines, lenient = file.path, file.name, file.columns, file.long_lines, file.lenient
        compression = _compression(path)
        reader_sql = (
            f"read_csv({sql_str(path.as_posix())}, all_varchar = true, header = true, "
            f"compression = '{compression}', {_rejects_options()}{{lenient}})"
        )
        cur = self.con.cursor()
        try:
            if lenient:
                raise duckdb.Error(file.strict_error or "read again leniently")
            reader, rejects = self.stream(cur, reader_sql.format(lenient=""))
        except duckdb.Error as exc:
            # the dialect sniffer gives up on mixed line endings (a Windows file appended to a
            # Unix one) or a stray quote; read again tolerantly rather than lose the whole file
            try:
                reader, rejects = self.stream(cur, reader_sql.format(lenient=", strict_mode = false"))
            except duckdb.Error:
                cur.close()
                first = str(exc).splitlines()[0] if str(exc) else ""
                first = first.removeprefix("cannot be read as CSV: ")
                return FileSource(error=f"cannot be read as CSV: {first}")
            lenient = True
        schema = reader.schema
        names, fields, raw_sql, warnings = self.typed_fields(schema, columns, name)
        notes = (
            [f"inbox file {name}: not strict CSV (mixed line endings or stray quotes); read leniently"]
            if lenient
            else []
        )
        # the header is line 1: data row = line - 1
        removed, too_long = _long_lines(long_lines, -1)
        src = FileSource(
            fields=fields,
            raw_sql=raw_sql,
            header=names,
            renumber=True,
            lenient=lenient,
            warnings=notes + warnings,
            closers=[reader.close, cur.close],
        )
        # reader lines count the header as line 1
        return _reading(
            src,
            self.numbered(reader, schema, names),
            lambda: too_long + _rejected_lines(rejects, "CSV", "CSV", -1, removed),
        )


class JsonLinesReader(Reader):
    """JSON Lines (optionally gzipped): one object per line, numbered by line; blank lines are not rows."""

    what = "JSON Lines"

    def open(self, file: FileToOpen) -> FileSource:
        path, name, columns, long_lines = file.path, file.name, file.columns, file.long_lines
        compression = _compression(path)
        # one VARCHAR per line (a delimiter that cannot occur in JSON text); blank lines are not rows
        reader_sql = (
            f"read_csv({sql_str(path.as_posix())}, columns = {{'line': 'VARCHAR'}}, header = false, "
            f"delim = chr(0), quote = '', escape = '', auto_detect = false, compression = '{compression}', "
            f"{_rejects_options()})"
        )
        cur = self.con.cursor()
        try:
            # a first pass finds the keys (the columns) of the file's JSON objects
            _drop_rejects(cur)
            keys = [
                r[0]
                for r in cur.execute(
                    f"SELECT DISTINCT unnest(json_keys(line)) FROM {reader_sql} WHERE "
                    + JSON_OBJECT_SQL.format(line="line")
                ).fetchall()
            ]
            reader, rejects = self.stream(cur, reader_sql)
        except duckdb.Error as exc:
            cur.close()
            return FileSource(error=f"cannot be read as JSON Lines: {str(exc).splitlines()[0]}")
        keys = sorted(keys)
        found, warnings = resolve_columns(keys, columns, name)
        # a malformed line must not stop the scan: extract only from valid JSON
        fields = {
            col: (
                f"json_extract_string(CASE WHEN json_valid(s.line) THEN s.line END, {sql_str('$.' + json.dumps(key))})",
                "text",
            )
            for col, key in found.items()
        }
        removed, too_long = _long_lines(long_lines, 0)
        src = FileSource(
            fields=fields,
            raw_sql="s.line",
            json_lines=True,
            # no key at all (every line malformed): the lines are quarantined one by one
            header=keys or None,
            warnings=warnings,
            closers=[reader.close, cur.close],
        )

        def lines() -> Iterator[pa.Table]:
            done = 0  # lines returned by the reader so far, blank ones included
            for table in self.rebatch(_scan(reader, self.what), reader.schema):
                # JSON Lines rows are numbered by line (blank lines included), not by position
                line_no = original_lines(np.arange(done + 1, done + 1 + table.num_rows, dtype=np.int64), removed)
                done += table.num_rows
                keep = pc.invert(pc.fill_null(pc.equal(pc.utf8_trim_whitespace(table["line"]), ""), True))
                kept = pa.table({"line": table["line"], "_row": pa.array(line_no, pa.int64())}).filter(keep)
                if kept.num_rows:
                    yield kept

        return _reading(src, lines(), lambda: too_long + _rejected_lines(rejects, "JSON Lines", "JSON", 0, removed))


class ParquetReader(Reader):
    """Parquet: typed columns read as they are (a timestamp column needs no parsing)."""

    what = "Parquet"
    text = False

    def open(self, file: FileToOpen) -> FileSource:
        try:
            pf = pq.ParquetFile(file.path)
            schema = pf.schema_arrow
        except (pa.ArrowException, OSError) as exc:
            return FileSource(error=f"cannot be read as Parquet: {str(exc).splitlines()[0]}")
        names, fields, raw_sql, warnings = self.typed_fields(schema, file.columns, file.name)

        def batches() -> Iterator[pa.Table]:
            try:
                stream = pf.iter_batches(batch_size=self.chunk_rows)
                yield from self.numbered(pa.RecordBatchReader.from_batches(schema, stream), schema, names)
            finally:
                pf.close()

        return FileSource(
            batches=batches(),
            fields=fields,
            raw_sql=raw_sql,
            # a table without columns has no rows either: nothing to reject
            header=names or None,
            warnings=warnings,
            closers=[pf.close],
        )


READERS: dict[str, type[Reader]] = {"csv": CsvReader, "jsonl": JsonLinesReader, "parquet": ParquetReader}


def _scan(
    reader: pa.RecordBatchReader, what: str, cur: duckdb.DuckDBPyConnection | None = None
) -> Iterator[pa.RecordBatch]:
    """The reader's batches; a failure half-way is a :class:`ChunkReadError` (``cur`` closed at the end)."""
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (duckdb.Error, pa.ArrowException, OSError) as exc:
                raise ChunkReadError(f"cannot be read as {what}: {str(exc).splitlines()[0]}") from exc
            yield batch
    finally:
        if cur is not None:
            reader.close()


def _reading(
    src: FileSource, tables: Iterator[pa.Table], rejected: Callable[[], list[tuple[int, str, str]]]
) -> FileSource:
    """``src`` reading ``tables``; once all are read, ``src.rejected`` is the sorted ``rejected()``.

    The source is closed when the tables end, fail or are abandoned.
    """

    def batches() -> Iterator[pa.Table]:
        try:
            yield from tables
            src.rejected = sorted(rejected())
        finally:
            src.close()

    src.batches = batches()
    return src


def _rejects_options() -> str:
    return (
        "store_rejects = true, rejects_table = '_gp_rejects', rejects_scan = '_gp_reject_scans', "
        f"max_line_size = {2 * MAX_LINE_BYTES}"
    )


def _compression(path: Path) -> str:
    """DuckDB's ``compression`` option for a text file: gzip by the name's ``.gz``."""
    return "gzip" if path.name.lower().endswith(".gz") else "none"


def _drop_rejects(cur: duckdb.DuckDBPyConnection) -> None:
    """Drop the reader's rejects tables (before a scan, and once its rejects are read)."""
    cur.execute("DROP TABLE IF EXISTS _gp_rejects")
    cur.execute("DROP TABLE IF EXISTS _gp_reject_scans")


def _long_lines(long_lines: list[tuple[int, str]], line_offset: int) -> tuple[np.ndarray, list[tuple[int, str, str]]]:
    """The line numbers cut out as too long, and their quarantine entries (row = line + ``line_offset``)."""
    removed = np.array([n for n, _ in long_lines], dtype=np.int64)
    reason = f"{c.REASON_LINE_TOO_LONG} (over {MAX_LINE_BYTES} bytes)"
    return removed, [
        (n + line_offset, reason, json.dumps({"line": text}, ensure_ascii=False)) for n, text in long_lines
    ]


def _rejected_lines(
    rejects: Callable[[], list[tuple[int, str, str]]], fmt: str, what: str, line_offset: int, removed: np.ndarray
) -> list[tuple[int, str, str]]:
    """The reader's rejected lines as ``(row_number, reason, raw)`` quarantine entries.

    ``removed``: the file's lines that the reader did not see (too long), for its line numbers.
    """
    try:
        found = rejects()
    except duckdb.Error as exc:
        raise ChunkReadError(f"cannot be read as {fmt}: {str(exc).splitlines()[0]}") from exc
    lines = original_lines(np.array([line for line, _, _ in found], dtype=np.int64), removed)
    return [
        (
            int(line) + line_offset,
            _reject_reason(kind, what),
            json.dumps({"line": text[:RAW_MAX_CHARS]}, ensure_ascii=False),
        )
        for line, (_, kind, text) in zip(lines, found, strict=True)
    ]


def _reject_reason(kind: str, what: str) -> str:
    if "ENCODING" in kind:
        return f"malformed {what} line (text is not UTF-8)"
    return f"malformed {what} line ({kind.lower()})"
