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
import signal
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trajectory import contract as c
from trajectory.errors import StoreError
from trajectory.workspace import WorkspacePaths

# our own table (not in the contract): a file re-delivered under another name, recorded once
INGEST_ALIAS = "ingest_alias"
# our own table: work a run planned and has not finished yet (see :func:`add_pending`)
PENDING_WORK = "pending_work"
PENDING_DAY = "day"  # a local date to recompute (key YYYY-MM-DD)
PENDING_MONTH = "month"  # a month whose weeks, site checks and findings to recompute (key YYYY-MM)
PENDING_SCORE = "score"  # a month to score and export (key YYYY-MM)
# test hook: GRIDPATROL_CRASH_AT="<point>[:<n>]" SIGKILLs the run the n-th time it reaches <point>
CRASH_ENV = "GRIDPATROL_CRASH_AT"
# the Parquet store's partition folders and part names (one place, STYLE lesson 2)
PARTITION_PREFIX = "date="
GPS_PART_HASH_CHARS = 16

# Contract tables with their fixed columns; producers may add columns (added on first write).
TABLE_DDL: dict[str, str] = {
    c.QUARANTINE: """
        source_file VARCHAR, row_number BIGINT, reason VARCHAR, raw VARCHAR,
        file_hash VARCHAR, ingested_run VARCHAR""",
    c.INGEST_MANIFEST: """
        file_hash VARCHAR PRIMARY KEY, file_name VARCHAR, file_size BIGINT, file_format VARCHAR,
        rows_read BIGINT, rows_accepted BIGINT, rows_duplicate BIGINT, rows_quarantined BIGINT,
        dates VARCHAR, ingested_run VARCHAR, ingested_at TIMESTAMPTZ""",
    INGEST_ALIAS: """
        file_hash VARCHAR, file_name VARCHAR, first_seen_run VARCHAR, first_seen_at TIMESTAMPTZ""",
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
    c.SITE_VISIT: """
        worker_id VARCHAR, grid_id VARCHAR, site_id VARCHAR, site_type VARCHAR, date DATE,
        start_ts TIMESTAMPTZ, end_ts TIMESTAMPTZ, duration_s DOUBLE""",
    c.DAY_FLAG: """
        worker_id VARCHAR, grid_id VARCHAR, date DATE, flag VARCHAR, detail VARCHAR""",
    c.PATROL_FINDING: """
        grid_id VARCHAR, worker_id VARCHAR, month VARCHAR, kind VARCHAR, period_start DATE,
        period_end DATE, site_id VARCHAR, site_type VARCHAR, points DOUBLE, evidence VARCHAR""",
    PENDING_WORK: """
        kind VARCHAR, key VARCHAR, run_id VARCHAR, added_at TIMESTAMPTZ""",
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
    # read-only connections get temporary views, which shadow the stored ones: a moved or
    # restored workspace reads its own Parquet files, not the paths of its old place
    refresh_views(con, paths, temporary=read_only)
    return con


def refresh_views(con: duckdb.DuckDBPyConnection, paths: WorkspacePaths, temporary: bool = False) -> None:
    """(Re)create the Parquet views over the store with this workspace's absolute paths."""
    for view, folder in PARQUET_VIEWS.items():
        base = paths.store / folder
        has_files = base.is_dir() and any(base.glob("date=*/*.parquet"))
        if has_files:
            glob = (base / "date=*" / "*.parquet").as_posix().replace("'", "''")
            sql = f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"
        else:
            sql = EMPTY_VIEW_SQL[view]
        kind = "TEMP VIEW" if temporary else "VIEW"
        con.execute(f"CREATE OR REPLACE {kind} {view} AS {sql}")


def _ensure_columns(
    con: duckdb.DuckDBPyConnection, table: str, df: pd.DataFrame, types: Mapping[str, str] | None = None
) -> None:
    """Create ``table`` from ``df``'s schema if missing; add columns ``df`` has and the table lacks.

    ``types`` names the SQL type of columns whose pandas type says too little (an empty
    frame's object columns); an all-empty object column otherwise becomes VARCHAR.
    """
    con.register("_schema_probe", df.head(0))
    try:
        probe = con.execute("SELECT column_name, column_type FROM (DESCRIBE _schema_probe)").fetchall()
    finally:
        con.unregister("_schema_probe")
    given = types or {}
    types = {name: given.get(name) or ("VARCHAR" if kind.strip('"') == "NULL" else kind) for name, kind in probe}
    columns = ", ".join(f'"{name}" {kind}' for name, kind in types.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
    have = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
    for name, kind in types.items():
        if name not in have:
            con.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" {kind}')


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run the block in one DuckDB transaction: committed at its end, rolled back on an error."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def replace_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    df: pd.DataFrame,
    where: str,
    params: Sequence[Any] = (),
    *,
    own_transaction: bool = True,
    types: Mapping[str, str] | None = None,
) -> int:
    """Replace the rows of ``table`` selected by ``where`` with ``df``, in one transaction.

    Returns the number of rows inserted. Recomputing a day (or month) therefore replaces it
    atomically: a crash in between leaves the previous rows. With ``own_transaction=False``
    the caller holds a :func:`transaction` spanning several tables; ``types`` as in
    :func:`_ensure_columns`.
    """
    if own_transaction:
        with transaction(con):
            return replace_rows(con, table, df, where, params, own_transaction=False, types=types)
    _ensure_columns(con, table, df, types)
    con.execute(f"DELETE FROM {table} WHERE {where}", list(params))
    if len(df):
        con.register("_incoming", df)
        try:
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _incoming")
        finally:
            con.unregister("_incoming")
    return len(df)


def add_pending(con: duckdb.DuckDBPyConnection, kind: str, keys: Iterable[object], run_id: str) -> None:
    """Record work to do (``kind`` one of ``PENDING_*``; keys are dates or ``YYYY-MM``).

    A run records what it will do before doing it, and each step deletes its rows in the
    transaction that commits its result, so the next run finishes the work of a killed one.
    Call inside the caller's transaction when the work must appear together with its cause.
    """
    keys = sorted({k.isoformat() if isinstance(k, date) else str(k) for k in keys})
    if keys:
        con.execute(
            f"""INSERT INTO {PENDING_WORK} SELECT ?, k, ?, now() FROM unnest(?::VARCHAR[]) t(k)
                WHERE k NOT IN (SELECT key FROM {PENDING_WORK} WHERE kind = ?)""",
            [kind, run_id, keys, kind],
        )


def pending(con: duckdb.DuckDBPyConnection, kind: str) -> list[str]:
    """The keys of pending work of ``kind``, sorted."""
    return [
        r[0]
        for r in con.execute(f"SELECT DISTINCT key FROM {PENDING_WORK} WHERE kind = ? ORDER BY key", [kind]).fetchall()
    ]


def done_pending(con: duckdb.DuckDBPyConnection, kind: str, keys: Iterable[object]) -> None:
    """Delete pending work once its result is committed (same transaction as the result)."""
    keys = sorted({k.isoformat() if isinstance(k, date) else str(k) for k in keys})
    if keys:
        con.execute(f"DELETE FROM {PENDING_WORK} WHERE kind = ? AND key IN (SELECT unnest(?::VARCHAR[]))", [kind, keys])


def crash_point(name: str) -> None:
    """Test hook: kill this process (SIGKILL) at a named point of a run.

    Inactive unless ``GRIDPATROL_CRASH_AT`` is ``name`` or ``name:n`` (the n-th time the point
    is reached). Used by the crash-recovery tests (tests/test_nightly.py) to stop a run where
    a power cut or the OOM killer could, deterministically.
    """
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _crash_counts[name] = _crash_counts.get(name, 0) + 1
    if _crash_counts[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


_crash_counts: dict[str, int] = {}


def partition_dir(base: Path, day: date) -> Path:
    """The Hive partition folder of local date ``day`` under ``base`` (``base/date=YYYY-MM-DD``)."""
    return base / f"{PARTITION_PREFIX}{day.isoformat()}"


def gps_part_path(paths: WorkspacePaths, day: date, file_hash: str, chunk: int = 0) -> Path:
    """The GPS store part holding the points of one inbox file (by content hash) on one local date.

    Naming the part by the file's hash makes a re-ingest after a crash rewrite the same part.
    A file is ingested a chunk of rows at a time (memory bounded by the chunk, not the file):
    the first chunk's part is ``<hash16>.parquet``, chunk ``n`` > 0 writes ``<hash16>-<n>.parquet``.
    """
    suffix = f"-{chunk}" if chunk else ""
    return partition_dir(paths.gps_store, day) / f"{file_hash[:GPS_PART_HASH_CHARS]}{suffix}.parquet"


def gps_part_owner(part: Path) -> str:
    """The file-hash prefix a GPS store part is named by (the same for all chunks of a file)."""
    return part.stem[:GPS_PART_HASH_CHARS]


def gps_parts(paths: WorkspacePaths, days: Sequence[date] | None = None) -> list[Path]:
    """Existing GPS store parts, all of them or those of the given local dates."""
    if not paths.gps_store.is_dir():
        return []
    if days is None:
        return sorted(paths.gps_store.glob(f"{PARTITION_PREFIX}*/*.parquet"))
    return sorted(p for d in days for p in partition_dir(paths.gps_store, d).glob("*.parquet"))


def write_parquet_atomic(table: pa.Table, path: Path, **options: Any) -> None:
    """Write ``table`` to ``path`` through a temporary file and an atomic rename.

    Readers glob ``*.parquet``; the temporary name ends in ``.tmp`` so a half-written file is
    never read. The data is fsync'ed before the rename. ``options`` go to
    ``pyarrow.parquet.write_table`` (default: zstd compression).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    pq.write_table(table, tmp, **{"compression": "zstd", **options})
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def remove_stale_temporaries(paths: WorkspacePaths) -> int:
    """Delete ``.*.tmp`` files left by a killed run in the store and in ``out/``; returns how many.

    Every atomic writer (:func:`write_parquet_atomic`, the exports) names its temporary
    ``.<name>.<random>.tmp`` beside the target; the caller holds the workspace lock.
    """
    n = 0
    for folder in (paths.store, paths.out):
        if folder.is_dir():
            for tmp in folder.rglob(".*.tmp"):
                tmp.unlink(missing_ok=True)
                n += 1
    return n


def lock_holder(paths: WorkspacePaths) -> str | None:
    """Who holds the workspace's run lock (``"pid N"``), or None when no run is going."""
    if not paths.lock.exists():
        return None
    with open(paths.lock, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            return fh.read().strip() or "another process"
        return None  # closing releases the probe


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
