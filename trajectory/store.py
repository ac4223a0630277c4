"""The store: ``patrol.duckdb`` plus the Parquet files beside it.

Opening the store creates what is missing (tables of the contract with their fixed columns,
our own tables) and re-creates the Parquet views with absolute paths, so a workspace that was
moved or restored from a backup opens as it was. Writes replace a key's rows in one
transaction (:func:`replace_rows`) and Parquet files appear by atomic rename
(:func:`write_parquet_atomic`): a run killed at any moment leaves either the old or the new
state, never half of one.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trajectory import contract as c
from trajectory.errors import StoreError
from trajectory.workspace import WorkspacePaths

# Contract tables with their fixed columns; producers may add columns (added on first write).
TABLE_DDL: dict[str, str] = {
    c.QUARANTINE: """
        source_file VARCHAR, row_number BIGINT, reason VARCHAR, raw VARCHAR,
        file_hash VARCHAR, ingested_run VARCHAR""",
    c.INGEST_MANIFEST: """
        file_hash VARCHAR PRIMARY KEY, file_name VARCHAR, file_size BIGINT, file_format VARCHAR,
        rows_read BIGINT, rows_accepted BIGINT, rows_duplicate BIGINT, rows_quarantined BIGINT,
        dates VARCHAR, ingested_run VARCHAR, ingested_at TIMESTAMPTZ""",
    c.WORKER_DAY: """
        worker_id VARCHAR, grid_id VARCHAR, date DATE, workday BOOLEAN, exempt BOOLEAN,
        patrol_s DOUBLE, patrol_m DOUBLE, am_s DOUBLE, pm_s DOUBLE, status VARCHAR""",
    c.WORKER_WEEK: """
        worker_id VARCHAR, grid_id VARCHAR, week_start DATE, patrol_s DOUBLE, patrol_m DOUBLE,
        required_s DOUBLE, required_m DOUBLE, meets_time BOOLEAN, meets_distance BOOLEAN, month VARCHAR""",
    c.SITE_CHECK: """
        site_id VARCHAR, site_type VARCHAR, grid_id VARCHAR, period_start DATE, period_end DATE,
        visited BOOLEAN, month VARCHAR""",
    c.GRID_MONTH_SCORE: """
        grid_id VARCHAR, month VARCHAR, item_code VARCHAR, max_score DOUBLE, score DOUBLE""",
    c.DEDUCTION: """
        grid_id VARCHAR, month VARCHAR, item_code VARCHAR, reason VARCHAR, count DOUBLE,
        points DOUBLE, evidence VARCHAR""",
    c.RUN_LOG: """
        run_id VARCHAR, started_at TIMESTAMPTZ, ended_at TIMESTAMPTZ, command VARCHAR,
        files BIGINT, rows_accepted BIGINT, rows_duplicate BIGINT, rows_quarantined BIGINT,
        days_recomputed VARCHAR, months_scored VARCHAR, warnings VARCHAR, policy_hash VARCHAR,
        outcome VARCHAR, message VARCHAR""",
}

# Parquet-backed views: name -> store sub-folder
PARQUET_VIEWS = {c.GPS_POINT: "gps", "point_use": "point_use"}
EMPTY_VIEW_SQL = {
    c.GPS_POINT: """SELECT NULL::VARCHAR AS worker_id, NULL::TIMESTAMPTZ AS ts, NULL::DOUBLE AS lon,
        NULL::DOUBLE AS lat, NULL::DOUBLE AS accuracy_m, NULL::DOUBLE AS speed_mps, NULL::BOOLEAN AS mock,
        NULL::VARCHAR AS device_id, NULL::VARCHAR AS file_hash, NULL::DATE AS date WHERE false""",
    "point_use": """SELECT NULL::VARCHAR AS worker_id, NULL::TIMESTAMPTZ AS ts, NULL::DOUBLE AS lon,
        NULL::DOUBLE AS lat, NULL::BOOLEAN AS counted, NULL::VARCHAR AS reason, NULL::BOOLEAN AS in_grid,
        NULL::DATE AS date WHERE false""",
}


def connect(paths: WorkspacePaths, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the workspace's ``patrol.duckdb``, creating missing tables and refreshing views.

    Parameters
    ----------
    paths : WorkspacePaths
    read_only : bool
        Open without writing (maps, exports, notebooks). The file must exist.
    """
    if read_only and not paths.duckdb.exists():
        raise StoreError(
            f"no store yet at {paths.duckdb}: run `python -m trajectory.run --workspace {paths.root}` first"
        )
    try:
        con = duckdb.connect(str(paths.duckdb), read_only=read_only)
    except duckdb.IOException as exc:
        raise StoreError(f"cannot open {paths.duckdb}: {exc}") from exc
    con.execute("SET TimeZone = 'UTC'")
    if not read_only:
        for table, ddl in TABLE_DDL.items():
            con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({ddl})")
        refresh_views(con, paths)
    return con


def refresh_views(con: duckdb.DuckDBPyConnection, paths: WorkspacePaths) -> None:
    """(Re)create the Parquet views over the store with this workspace's absolute paths."""
    for view, folder in PARQUET_VIEWS.items():
        base = paths.store / folder
        has_files = base.is_dir() and any(base.glob("date=*/*.parquet"))
        if has_files:
            glob = (base / "date=*" / "*.parquet").as_posix().replace("'", "''")
            sql = f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"
        else:
            sql = EMPTY_VIEW_SQL[view]
        con.execute(f"CREATE OR REPLACE VIEW {view} AS {sql}")


def _ensure_columns(con: duckdb.DuckDBPyConnection, table: str, df: pd.DataFrame) -> None:
    """Create ``table`` from ``df``'s schema if missing; add columns ``df`` has and the table lacks."""
    con.register("_schema_probe", df.head(0))
    try:
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM _schema_probe")
        have = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
        probe_types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE _schema_probe)").fetchall())
        for col in df.columns:
            if col not in have:
                con.execute(f'ALTER TABLE {table} ADD COLUMN "{col}" {probe_types[col]}')
    finally:
        con.unregister("_schema_probe")


def replace_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    df: pd.DataFrame,
    where: str,
    params: Sequence[Any] = (),
) -> int:
    """Replace the rows of ``table`` selected by ``where`` with ``df``, in one transaction.

    Returns the number of rows inserted. Recomputing a day (or month) therefore replaces it
    atomically: a crash in between leaves the previous rows.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        _ensure_columns(con, table, df)
        con.execute(f"DELETE FROM {table} WHERE {where}", list(params))
        if len(df):
            con.register("_incoming", df)
            try:
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _incoming")
            finally:
                con.unregister("_incoming")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return len(df)


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` through a temporary file and an atomic rename.

    Readers glob ``*.parquet``; the temporary name ends in ``.tmp`` so a half-written file is
    never read. The data is fsync'ed before the rename.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def remove_stale_temporaries(paths: WorkspacePaths) -> int:
    """Delete ``*.tmp`` files left by a killed run; returns how many."""
    n = 0
    if paths.store.is_dir():
        for tmp in paths.store.rglob("*.tmp"):
            tmp.unlink(missing_ok=True)
            n += 1
    return n


@contextmanager
def workspace_lock(paths: WorkspacePaths, wait: bool = False) -> Iterator[None]:
    """Hold the workspace's run lock: one run at a time per workspace.

    Raises
    ------
    StoreError
        Another run holds the lock and ``wait`` is false.
    """
    paths.root.mkdir(parents=True, exist_ok=True)
    fh = open(paths.lock, "a+")
    try:
        flags = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            fcntl.flock(fh, flags)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise StoreError(f"another run is using this workspace ({holder}); try later or pass --wait") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        yield
    finally:
        fh.close()  # closing releases the flock
