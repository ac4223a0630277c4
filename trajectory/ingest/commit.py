"""Commit: a chunk's new points written as store parts, then quarantine + manifest rows in one transaction.

Parts go to ``store/gps/date=<local date>/<hash[:16]>[-<chunk>].parquet`` by atomic rename;
the manifest row is the commit point. A run killed before it leaves parts without a
manifest row ("orphans"): :func:`remove_orphan_parts` deletes them at the next ingest,
which reads the file again and rewrites the same parts.

Examples
--------
>>> GPS_STORE_SCHEMA.names[:4], str(GPS_STORE_SCHEMA.field("ts").type)
(['worker_id', 'ts', 'lon', 'lat'], 'timestamp[us, tz=UTC]')
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from trajectory import contract as c
from trajectory import store
from trajectory.coords import to_wgs84
from trajectory.ingest.keys import EPOCH_ORDINAL, NewPoints
from trajectory.ingest.model import FileResult, IngestContext
from trajectory.workspace import Workspace

# the stage's interface inside the package; code outside imports from trajectory.ingest
__all__ = ["GPS_STORE_SCHEMA", "commit_file", "remove_orphan_parts", "remove_parts_of", "write_parts"]

log = logging.getLogger("trajectory.ingest")

# The store's Parquet schema (ARCHITECTURE "Points handed to the engine" + provenance), from
# the one column table of trajectory/contract.py (the ``date`` partition is the folder, not a column)
GPS_STORE_SCHEMA = c.arrow_schema(c.GPS_POINT)
# GPS parts: dictionaries for the repetitive strings only (a dictionary of random coordinates
# is built and thrown away), delta-coded times, byte-split coordinates: 4M points written
# twice as fast and 40 % smaller than with pyarrow's defaults (benchmarks/bench_ingest.py)
_PART_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    # parts are sorted by (worker_id, ts): small row groups let a worker batch's read skip the
    # rest. A batch of several days holds fewer workers, a smaller slice of each part: at 46
    # workers a batch, 128 k-row groups decoded 0.26 s per M points read, 32 k-row ones 0.16
    # (185 workers: 0.088 → 0.072), the parts no bigger
    "row_group_size": 32 * 1024,
    "use_dictionary": ["worker_id", "device_id", "file_hash"],
    "column_encoding": {"ts": "DELTA_BINARY_PACKED", "lon": "BYTE_STREAM_SPLIT", "lat": "BYTE_STREAM_SPLIT"},
    # the Parquet types alone (string, UTC timestamps) say the schema: worker_id and file_hash
    # are handed over as dictionaries (below) and read back as GPS_STORE_SCHEMA's strings
    "store_schema": False,
}
# worker_id (roster positions over the roster) and file_hash (one value) as dictionaries: the
# writer takes their indices as they are, where 1 M strings cost 0.18 s to build (bench_ingest)
_DICTIONARY = pa.dictionary(pa.int32(), pa.string())
_PART_WRITE_SCHEMA = pa.schema(
    [pa.field(f.name, _DICTIONARY, f.nullable) if f.name in ("worker_id", "file_hash") else f for f in GPS_STORE_SCHEMA]
)


def write_parts(ctx: IngestContext, file_hash: str, points: NewPoints, chunk: int = 0) -> dict[date, int]:
    """Queue a chunk's new points (sorted by local date) for writing, one part per date; returns rows per date.

    The parts' dedupe keys and WGS-84 coordinates are held in ``ctx.part_keys`` at once (the
    next chunk or file compares its points with them); the parts are copied out of the
    chunk, built and written by the ingest's writer thread (``ctx.writer``) while the next
    chunk is read and classified: writing and fsync-ing is a third of an ingest's time once
    parsing is columnar.
    """
    n = points.num_rows
    if n == 0:
        return {}
    days = points.day
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    ends = np.r_[starts[1:], n]
    parts = []
    for lo, hi in zip(starts, ends, strict=True):
        day = date.fromordinal(EPOCH_ORDINAL + int(days[lo]))
        index = points.index[lo:hi]
        lon, lat = to_wgs84(points.lon[index], points.lat[index], ctx.ws.policy.gps_crs)
        target = store.gps_part_path(ctx.ws.paths, day, file_hash, chunk)
        ctx.part_keys.hold(target, points.key[lo:hi], lon, lat)
        parts.append((day, index, lon, lat, target))
    rows = points.rows

    def write() -> None:
        for _day, index, lon, lat, target in parts:
            table = _part_table(rows.take(pa.array(index)), lon, lat, ctx.roster, file_hash)
            store.write_parquet_atomic(table, target, **_PART_OPTIONS)
            ctx.part_keys.written(target)

    ctx.writer.submit(write, heavy=True)
    return {day: len(index) for day, index, *_ in parts}


def _part_table(part: pa.Table, lon: np.ndarray, lat: np.ndarray, roster: pa.Array, file_hash: str) -> pa.Table:
    """One store part: the chunk's points of one date in the store's schema (WGS-84)."""
    n = part.num_rows
    worker_idx = part["worker_idx"].combine_chunks().cast(pa.int32())
    return pa.table(
        {
            "worker_id": pa.DictionaryArray.from_arrays(worker_idx, roster),
            "ts": part["ts_us"].cast(pa.timestamp("us", tz="UTC")),
            "lon": pa.array(lon, pa.float64()),
            "lat": pa.array(lat, pa.float64()),
            "accuracy_m": part["accuracy_m"],
            "speed_mps": part["speed_mps"],
            "mock": part["mock"],
            "device_id": part["device_id"].cast(pa.string()),
            "file_hash": pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(n, np.int32)), pa.array([file_hash], pa.string())
            ),
        },
        schema=_PART_WRITE_SCHEMA,
    )


def commit_file(
    ctx: IngestContext,
    path: Path,
    file_hash: str,
    fmt: str,
    entry: FileResult,
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
                    rows_accepted, rows_duplicate, rows_quarantined, dates, ingested_run, ingested_at, error,
                    file_mtime_ns)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?, ?)""",
            [
                file_hash,
                path.name,
                entry.size,
                fmt,
                entry.rows_read,
                entry.accepted,
                entry.duplicate,
                entry.quarantined,
                ",".join(d.isoformat() for d in entry.dates),
                ctx.run_id,
                entry.error,
                entry.mtime_ns,
            ],
        )
        store.add_pending(con, store.PENDING_DAY, entry.dates, ctx.run_id)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def remove_orphan_parts(con: duckdb.DuckDBPyConnection, ws: Workspace) -> list[str]:
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


def remove_parts_of(ctx: IngestContext, file_hash: str) -> None:
    """Delete the parts already written for a file whose reading failed half-way."""
    ctx.writer.wait()  # the parts queued are written first (or the failure to write them raised)
    own = file_hash[: store.GPS_PART_HASH_CHARS]
    for p in store.gps_parts(ctx.ws.paths):
        if store.gps_part_owner(p) == own:
            ctx.part_keys.forget(p)
            p.unlink(missing_ok=True)
