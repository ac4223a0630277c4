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
import hashlib
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trajectory import contract as c
from trajectory import files
from trajectory.errors import StoreError
from trajectory.logs import log_step
from trajectory.workspace import WorkspacePaths

# our own table (not in the contract): a file re-delivered under another name, recorded once
INGEST_ALIAS = c.INGEST_ALIAS
# our own table: work a run planned and has not finished yet (see :func:`add_pending`)
PENDING_WORK = c.PENDING_WORK
PENDING_DAY = "day"  # a local date to recompute (key YYYY-MM-DD)
PENDING_MONTH = "month"  # a month whose weeks, site checks and findings to recompute (key YYYY-MM)
PENDING_MONTH_DAY = "month_day"  # a day recomputed since its month's step last ran (key YYYY-MM-DD)
PENDING_SCORE = "score"  # a month to score and export (key YYYY-MM)
# our own table: the journal of month scoring asked for (see :func:`request_months`), one row per month
MONTH_REQUEST = c.MONTH_REQUEST
REQUEST_PENDING, REQUEST_SCORING, REQUEST_DONE, REQUEST_FAILED = "pending", "scoring", "done", "failed"
# test hooks: GRIDPATROL_CRASH_AT="<point>[:<n>]" SIGKILLs the run the n-th time it reaches <point>;
# GRIDPATROL_PAUSE_AT="<point>[:<n>]" sleeps there GRIDPATROL_PAUSE_S seconds (a test kills it from outside)
CRASH_ENV = "GRIDPATROL_CRASH_AT"
PAUSE_ENV, PAUSE_SECONDS_ENV = "GRIDPATROL_PAUSE_AT", "GRIDPATROL_PAUSE_S"
# DuckDB's message when another process holds patrol.duckdb (a writer excludes everyone, a reader a writer)
DUCKDB_LOCK_MESSAGE = "Could not set lock on file"
LOCK_POLL_S = 0.5  # how often a waiting run tries the lock again
# analysts' snapshots of patrol.duckdb kept besides the newest (another notebook may still read one)
SNAPSHOTS_KEPT = 2
STALE_COPY_S = 3600  # a snapshot copy's temporary file older than this was left by a killed notebook
# the Parquet store's partition folders and part names (one place, STYLE lesson 2)
PARTITION_PREFIX = "date="
GPS_PART_HASH_CHARS = 16

# Contract tables with their fixed columns (derived from trajectory.contract.SCHEMAS); producers
# may add columns (added on first write).
TABLE_DDL: dict[str, str] = {table: c.ddl(table) for table in c.DUCKDB_TABLES}

# Parquet-backed views: name -> store sub-folder (point_use is stored under its own name)
PARQUET_VIEWS = {c.GPS_POINT: "gps", c.POINT_USE: c.POINT_USE}
# a view's placeholder while it has no file yet: its columns and types, no row
EMPTY_VIEW_SQL = {view: c.empty_select(view) for view in PARQUET_VIEWS}


def connect(
    paths: WorkspacePaths,
    read_only: bool = False,
    *,
    wait_s: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the workspace's ``patrol.duckdb``, creating missing tables and refreshing views.

    Parameters
    ----------
    paths : WorkspacePaths
    read_only : bool
        Open without writing (maps, exports). The file must exist. Notebooks read a snapshot
        instead (:func:`connect_snapshot`): a reader excludes the nightly run's writer.
    wait_s : float
        While another process holds the file (DuckDB: a writer excludes everyone, readers
        exclude a writer), try again for up to this many seconds before giving up.
    on_wait : callable, optional
        Called once with the holder (``"pid N (program)"``) when the open has to wait.

    Raises
    ------
    StoreError
        The file cannot be opened, or is still held by another process after ``wait_s``.
    """
    if read_only and not paths.duckdb.exists():
        raise StoreError(
            f"no store yet at {paths.duckdb}: run `python -m trajectory.run --workspace {paths.root}` first"
        )
    con = _open_duckdb(paths.duckdb, read_only, wait_s, on_wait)
    con.execute("SET TimeZone = 'UTC'")
    if not read_only:
        for table, ddl in TABLE_DDL.items():
            con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({ddl})")
    # read-only connections get temporary views, which shadow the stored ones: a moved or
    # restored workspace reads its own Parquet files, not the paths of its old place
    refresh_views(con, paths, temporary=read_only)
    return con


def _open_duckdb(
    db: Path, read_only: bool, wait_s: float, on_wait: Callable[[str], None] | None
) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        try:
            return duckdb.connect(str(db), read_only=read_only)
        except duckdb.IOException as exc:
            holder = database_holder(exc)
            if holder is None:
                raise StoreError(f"cannot open {db}: {exc}") from exc
            if time.monotonic() >= deadline:
                waited = f"，已等待 {round(wait_s, 1):g} 秒 after waiting {round(wait_s, 1):g} s" if wait_s > 0 else ""
                raise StoreError(
                    f"数据库被占用 {db} is held by {holder}{waited}; close that connection (notebooks: read "
                    "through trajectory.api, which works on a snapshot) and try again"
                ) from None
            if on_wait is not None and not told:
                on_wait(holder)
                told = True
            time.sleep(min(LOCK_POLL_S, max(deadline - time.monotonic(), 0.0)))


def database_holder(exc: BaseException) -> str | None:
    """Who holds ``patrol.duckdb``, read from DuckDB's lock error; None if ``exc`` is another error.

    DuckDB names the holder's pid (``Conflicting lock is held in /usr/bin/python3 (PID 4242)``);
    the program is read from ``/proc`` without its arguments, which may name files.

    Examples
    --------
    >>> database_holder(OSError("disk full")) is None
    True
    >>> database_holder(OSError('Could not set lock on file "x": Conflicting lock is held in x (PID 0)'))
    'pid 0'
    """
    text = str(exc)
    if DUCKDB_LOCK_MESSAGE not in text:
        return None
    found = re.search(r"\(PID (\d+)\)", text)
    if found is None:
        return "another process"
    pid = int(found.group(1))
    program = _program_of(pid)
    return f"pid {pid} ({program})" if program else f"pid {pid}"


def _program_of(pid: int) -> str:
    """``python3.11 -m ipykernel_launcher``: the executable and the module it runs, or ''."""
    try:
        argv = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return ""
    if not argv or pid == 0:
        return ""
    words = [os.path.basename(argv[0])]
    if "-m" in argv[1:-1]:
        words += ["-m", argv[argv.index("-m", 1) + 1]]
    if any("ipykernel" in a for a in argv):
        words.append("(Jupyter)")
    return " ".join(words)


def refresh_views(
    con: duckdb.DuckDBPyConnection, paths: WorkspacePaths, temporary: bool = False, *, only_changed: bool = False
) -> None:
    """(Re)create the Parquet views over the store with this workspace's absolute paths.

    A view over the parts' glob sees parts and days written later by itself (DuckDB binds a
    view at each query, and follows a schema the new parts extend), but creating it binds it
    once more: every part's footer is read (``union_by_name``), 20 ms at a month's end, a
    few times a night. ``only_changed`` (after ingest and the day job) leaves a view alone when
    it reads this glob already, and recreates it only where the store's first parts appeared
    (the empty view becomes the glob's) or the workspace moved.
    """
    current: dict[str, str] = {}
    if only_changed:
        rows = con.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal AND temporary = ?", [temporary]
        ).fetchall()
        current = {str(name): str(sql) for name, sql in rows}
    for view, folder in PARQUET_VIEWS.items():
        base = paths.store / folder
        has_files = base.is_dir() and any(base.glob("date=*/*.parquet"))
        if has_files:
            glob = (base / "date=*" / "*.parquet").as_posix().replace("'", "''")
            sql = f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"
            if f"read_parquet('{glob}'" in current.get(view, ""):
                continue
        else:
            sql = EMPTY_VIEW_SQL[view]
        kind = "TEMP VIEW" if temporary else "VIEW"
        con.execute(f"CREATE OR REPLACE {kind} {view} AS {sql}")


def _ensure_columns(
    con: duckdb.DuckDBPyConnection, table: str, df: pd.DataFrame, types: Mapping[str, str] | None = None
) -> None:
    """Create ``table`` from ``df``'s schema if missing; add columns ``df`` has and the table lacks.

    A column of the table's schema (:data:`trajectory.contract.SCHEMAS`, with the producer's
    extra columns) gets its declared type, whatever the first frame's dtype (a day without a
    stay has integer ``stationary_s``). ``types`` names the SQL type of other columns whose
    pandas type says too little (an empty frame's object columns); an all-empty object column
    otherwise becomes VARCHAR.
    """
    con.register("_schema_probe", df.head(0))
    try:
        probe = con.execute("SELECT column_name, column_type FROM (DESCRIBE _schema_probe)").fetchall()
    finally:
        con.unregister("_schema_probe")
    schema = c.SCHEMAS.get(table)
    declared = {col.name: col.type for col in (*schema.columns, *schema.extra)} if schema else {}
    given = {**declared, **(types or {})}
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


def request_months(con: duckdb.DuckDBPyConnection, months: Iterable[str], run_id: str) -> None:
    """Journal month scoring asked for (``--month``, or a scored month re-opened by late points).

    The month becomes pending work (``PENDING_SCORE``) and a ``pending`` row of
    ``month_request`` in one go; :func:`month_scored` marks it done only once the workbook and
    the maps are written. A run records its ``--month`` before it ingests anything, so a run
    killed at any point leaves the request for the next run, whatever that one is asked.
    Call inside the caller's :func:`transaction`.
    """
    months = sorted(set(months))
    if not months:
        return
    add_pending(con, PENDING_SCORE, months, run_id)
    # a month scored before and asked again is a new request; an unfinished one keeps its first requester
    con.execute(
        f"DELETE FROM {MONTH_REQUEST} WHERE state = ? AND month IN (SELECT unnest(?::VARCHAR[]))",
        [REQUEST_DONE, months],
    )
    con.execute(
        f"""INSERT INTO {MONTH_REQUEST} (month, state, requested_run, requested_at, last_run, updated_at)
            SELECT m, ?, ?, now(), ?, now() FROM unnest(?::VARCHAR[]) t(m)
            WHERE m NOT IN (SELECT month FROM {MONTH_REQUEST})""",
        [REQUEST_PENDING, run_id, run_id, months],
    )


def take_over_months(
    con: duckdb.DuckDBPyConnection, run_id: str, asked: Iterable[str] = (), allow_missing: Iterable[str] = ()
) -> list[str]:
    """Journal the months ``asked`` and make every pending month this run's work; returns them sorted.

    One transaction, at the start of a run (before ingest): the journal's ``last_run`` names
    the run that is to score each month. The request keeps its ``--allow-missing`` tables, so
    the run that finishes a killed one scores the month as it was asked. Pending work left by
    a store older than the journal is journalled here.
    """
    asked = sorted(set(asked))
    with transaction(con):
        months = sorted(set(pending(con, PENDING_SCORE)) | set(asked))
        request_months(con, months, run_id)
        con.execute(
            f"UPDATE {MONTH_REQUEST} SET last_run = ?, updated_at = now() WHERE state <> ? AND month IN "
            "(SELECT unnest(?::VARCHAR[]))",
            [run_id, REQUEST_DONE, months],
        )
        con.execute(
            f"UPDATE {MONTH_REQUEST} SET allow_missing = ? WHERE month IN (SELECT unnest(?::VARCHAR[]))",
            [",".join(sorted(set(allow_missing))), asked],
        )
    return months


def month_allowance(con: duckdb.DuckDBPyConnection, month: str) -> list[str]:
    """The ``--allow-missing`` tables the month's pending request was made with (journalled)."""
    row = con.execute(f"SELECT allow_missing FROM {MONTH_REQUEST} WHERE month = ?", [month]).fetchone()
    return [t for t in (row[0] or "").split(",") if t] if row else []


def month_scoring(con: duckdb.DuckDBPyConnection, month: str, run_id: str) -> None:
    """Journal that ``run_id`` starts scoring ``month`` (a run killed now leaves it ``scoring``)."""
    con.execute(
        f"UPDATE {MONTH_REQUEST} SET state = ?, last_run = ?, updated_at = now(), message = NULL WHERE month = ?",
        [REQUEST_SCORING, run_id, month],
    )


def month_scored(con: duckdb.DuckDBPyConnection, month: str, run_id: str) -> None:
    """The month's workbook and maps are written: its pending work and journal row are done."""
    with transaction(con):
        done_pending(con, PENDING_SCORE, [month])
        con.execute(
            f"""UPDATE {MONTH_REQUEST} SET state = ?, last_run = ?, done_run = ?, done_at = now(),
                       updated_at = now(), message = NULL WHERE month = ?""",
            [REQUEST_DONE, run_id, run_id, month],
        )


def months_failed(con: duckdb.DuckDBPyConnection, run_id: str, message: str) -> None:
    """``run_id`` failed: the month it was scoring is ``failed``, the others it had still ``pending``;
    all keep their pending work (the next run tries again) and get the one-line reason."""
    con.execute(
        f"""UPDATE {MONTH_REQUEST} SET state = CASE WHEN state = ? THEN ? ELSE state END,
                   updated_at = now(), message = ? WHERE last_run = ? AND state <> ?""",
        [REQUEST_SCORING, REQUEST_FAILED, f"run {run_id}: {message}", run_id, REQUEST_DONE],
    )


def month_requests(con: duckdb.DuckDBPyConnection, limit: int = 12) -> pd.DataFrame:
    """The journal of month scoring, unfinished first, then newest; for ``--status``.

    Empty for a store no run of this version has written yet (a read-only open creates nothing).
    """
    tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name = ?", [MONTH_REQUEST]).fetchall()
    if not tables:
        return pd.DataFrame(columns=["month", "state", "requested_run", "last_run", "done_run", "done_at", "message"])
    return con.execute(
        f"""SELECT * FROM {MONTH_REQUEST}
            ORDER BY state = ?, coalesce(done_at, requested_at) DESC, month DESC LIMIT ?""",
        [REQUEST_DONE, limit],
    ).df()


def crash_point(name: str) -> None:
    """Test hooks at a named point of a run: kill this process (SIGKILL), or pause it.

    Inactive unless ``GRIDPATROL_CRASH_AT`` is ``name`` or ``name:n`` (the n-th time the point
    is reached). Used by the crash-recovery tests (tests/test_nightly.py) to stop a run where
    a power cut or the OOM killer could, deterministically. ``GRIDPATROL_PAUSE_AT`` (same form)
    only sleeps there ``GRIDPATROL_PAUSE_S`` seconds (default 30) after logging ``step=pause``,
    so a test can ``kill -9`` the run from outside at a known stage (tests/test_locks.py).
    """
    for env in (CRASH_ENV, PAUSE_ENV):
        spec = os.environ.get(env)
        if not spec:
            continue
        target, _, nth = spec.partition(":")
        if target != name:
            continue
        _crash_counts[env, name] = _crash_counts.get((env, name), 0) + 1
        if _crash_counts[env, name] != int(nth or 1):
            continue
        if env == CRASH_ENV:
            os.kill(os.getpid(), signal.SIGKILL)
        seconds = float(os.environ.get(PAUSE_SECONDS_ENV) or 30)
        log_step("pause", point=name, seconds=seconds)
        time.sleep(seconds)


_crash_counts: dict[tuple[str, str], int] = {}


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
    never read. The data is fsync'ed before the rename (:func:`trajectory.files.write_atomic`).
    ``options`` go to ``pyarrow.parquet.write_table`` (default: zstd compression).
    """
    files.write_atomic(path, lambda tmp: pq.write_table(table, tmp, **{"compression": "zstd", **options}))


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
def workspace_lock(
    paths: WorkspacePaths, wait: float = 0.0, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the workspace's run lock: one run at a time per workspace.

    Parameters
    ----------
    wait : float
        Seconds to wait for another run to end (0: refuse at once).
    on_wait : callable, optional
        Called once with the holder (``"pid N"``) when the lock has to be waited for.

    Raises
    ------
    StoreError
        Another run holds the lock, and still does after ``wait`` seconds.
    """
    paths.root.mkdir(parents=True, exist_ok=True)
    fh = open(paths.lock, "a+")
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
            if wait <= 0:
                raise StoreError(f"another run is using this workspace ({holder}); try later or pass --wait")
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"another run is still using this workspace ({holder}) after waiting {round(wait, 1):g} s; "
                    "see --status, or pass a longer --wait SECONDS"
                )
            if on_wait is not None and not told:
                on_wait(holder)
                told = True
            time.sleep(min(LOCK_POLL_S, max(deadline - time.monotonic(), 0.0)))
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        yield
    finally:
        fh.close()  # closing releases the flock


# --- analysts' snapshots ----------------------------------------------------------------------


def connect_snapshot(paths: WorkspacePaths) -> tuple[duckdb.DuckDBPyConnection, str | None]:
    """A read-only connection to a snapshot of the store, and a note when that snapshot is old.

    The analysts' way in (``trajectory.api``): DuckDB lets readers of ``patrol.duckdb`` exclude
    its writer, so a long notebook query on the file itself would stop the nightly run. The
    query runs on a copy instead (:func:`analyst_snapshot`); the Parquet views point at the
    workspace's own store. While the nightly run writes, the newest existing copy is read and
    the note says since when.
    """
    for attempt in (1, 2):
        snap, note = analyst_snapshot(paths)
        try:
            con = duckdb.connect(str(snap), read_only=True)
            break
        except duckdb.IOException:
            if attempt == 2 or snap.exists():
                raise
            # pruned by another notebook between the two calls: take the newest again
    con.execute("SET TimeZone = 'UTC'")
    refresh_views(con, paths, temporary=True)
    return con, note


def analyst_snapshot(paths: WorkspacePaths) -> tuple[Path, str | None]:
    """The snapshot of ``patrol.duckdb`` to read, taken now if the store changed since the last one.

    A snapshot is named by the store file's identity (size, mtime, inode, and its WAL's), so an
    unchanged store is never copied twice and a stat is all a query costs. Copying holds a
    read-only connection on the store for the copy only (no writer can be mid-write then); a
    WAL left by a killed run is copied too and folded into the copy. Returns the snapshot and a
    note (None when it is current).

    Raises
    ------
    StoreError
        No store yet, or the nightly run holds the store and no snapshot exists yet.
    """
    if not paths.duckdb.exists():
        raise StoreError(
            f"no store yet at {paths.duckdb}: run `python -m trajectory.run --workspace {paths.root}` first"
        )
    folder = _snapshot_dir(paths)
    current = folder / f"patrol-{_store_signature(paths)}.duckdb"
    if current.exists():
        return current, None
    try:
        con = duckdb.connect(str(paths.duckdb), read_only=True)
    except duckdb.IOException as exc:
        holder = database_holder(exc)
        if holder is None:
            raise StoreError(f"cannot open {paths.duckdb}: {exc}") from exc
        older = _snapshots(folder)
        if not older:
            raise StoreError(
                f"数据库正在被夜间运行写入 the store {paths.duckdb} is being written by {holder} and there is no "
                "snapshot to read yet; try again when the run has ended (python -m trajectory.run --status)"
            ) from None
        taken = datetime.fromtimestamp(older[0].stat().st_mtime).astimezone()
        return older[0], (
            f"夜间运行正在写入数据库，读取的是 {taken:%Y-%m-%d %H:%M} 的快照 the store is being written by "
            f"{holder}; reading the snapshot taken at {taken:%Y-%m-%d %H:%M:%S %z}"
        )
    try:
        # the files cannot change while this connection is open: the signature is the copy's
        current = folder / f"patrol-{_store_signature(paths)}.duckdb"
        files.write_atomic(current, lambda tmp: _copy_store(paths, con, tmp), fsync=False)
    finally:
        con.close()
    for old in _snapshots(folder)[SNAPSHOTS_KEPT:]:
        old.unlink(missing_ok=True)  # a notebook still reading it keeps its open file
    for stale in folder.glob(".patrol*.tmp*"):
        # a copy whose notebook was killed mid-copy (a copy in progress is minutes old at most)
        with suppress(FileNotFoundError):
            if time.time() - stale.stat().st_mtime > STALE_COPY_S:
                stale.unlink()
    return current, None


def _copy_store(paths: WorkspacePaths, con: duckdb.DuckDBPyConnection, tmp: Path) -> None:
    """Copy ``patrol.duckdb`` (and a WAL left beside it) to ``tmp`` while ``con`` holds it; close
    ``con``; fold the WAL into the copy."""
    wal, tmp_wal = Path(f"{paths.duckdb}.wal"), Path(f"{tmp}.wal")
    try:
        try:
            shutil.copyfile(paths.duckdb, tmp)
            has_wal = wal.exists()
            if has_wal:
                shutil.copyfile(wal, tmp_wal)
        finally:
            con.close()
        if has_wal:
            duckdb.connect(str(tmp)).close()  # replays the WAL into the copy and checkpoints it
    finally:
        tmp_wal.unlink(missing_ok=True)


def _store_signature(paths: WorkspacePaths) -> str:
    parts = []
    for f in (paths.duckdb, Path(f"{paths.duckdb}.wal")):
        try:
            st = f.stat()
            parts.append(f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}")
        except FileNotFoundError:
            parts.append("-")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _snapshots(folder: Path) -> list[Path]:
    """The snapshots in ``folder``, newest first."""
    found = []
    for snap in folder.glob("patrol-*.duckdb"):
        with suppress(FileNotFoundError):  # pruned meanwhile by another notebook
            found.append((snap.stat().st_mtime_ns, snap))
    return [snap for _, snap in sorted(found, reverse=True)]


def _snapshot_dir(paths: WorkspacePaths) -> Path:
    """``WORKSPACE/.snapshots``, or a private folder of this user when the workspace is read-only to them."""
    folder = paths.snapshots
    try:
        folder.mkdir(exist_ok=True)
        if os.access(folder, os.W_OK):
            return folder
    except OSError:
        pass
    key = hashlib.sha256(str(paths.root.resolve()).encode()).hexdigest()[:12]
    private = Path(tempfile.gettempdir()) / f"gridpatrol-{os.getuid()}"
    private.mkdir(mode=0o700, exist_ok=True)  # the store holds workers' data: this user only
    (private / key).mkdir(mode=0o700, exist_ok=True)
    return private / key
