"""What an ingest produces (:class:`FileResult`, :class:`IngestReport`) and the state one run shares.

A :class:`FileResult` is one inbox file's outcome. It is read by attribute
(``result.accepted``) or, as callers did when it was a dict, by key (``result["accepted"]``);
``"error" in result`` is true only when the file has an error.

Examples
--------
>>> r = FileResult(name="a.csv", hash="ab", format="csv", size=10, rows_read=3, accepted=2, quarantined=1)
>>> r["accepted"], "error" in r, r.rows_read == r["accepted"] + r["duplicate"] + r["quarantined"]
(2, False, True)
>>> r.error = "file rejected: ..."
>>> "error" in r
True
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from trajectory.workspace import Workspace

__all__ = ["FileResult", "IngestContext", "IngestReport", "IngestWriter", "KeyRuns", "PartKeyCache"]


@dataclass
class FileResult:
    """What the ingest of one inbox file did (one ``ingest_manifest`` row, for a file read).

    Attributes
    ----------
    name, hash, format : str
        File name in the inbox, SHA-256 of its bytes, ``csv`` / ``jsonl`` / ``parquet``.
    size : int
        Bytes.
    mtime_ns : int or None
        The file's modification time (ns) when it was read: with its name and size, what lets
        a later run know the file without hashing it again.
    rows_read, accepted, duplicate, quarantined : int
        Rows; ``accepted + duplicate + quarantined == rows_read`` (``quarantined`` counts
        conflicting duplicates and the reader's rejected lines too).
    skipped_as_known : bool
        The hash was in the manifest already: nothing read.
    dates : list of datetime.date
        Local dates that received new points, sorted.
    error : str or None
        Why the file was not read at all (unreadable, header rejected); None otherwise.
    """

    name: str
    hash: str
    format: str
    size: int
    mtime_ns: int | None = None
    rows_read: int = 0
    accepted: int = 0
    duplicate: int = 0
    quarantined: int = 0
    skipped_as_known: bool = False
    dates: list[date] = field(default_factory=list)
    error: str | None = None

    def __getitem__(self, key: str) -> Any:
        if key not in self:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        if key == "error":
            return self.error is not None
        return key in _FILE_RESULT_KEYS

    def get(self, key: str, default: Any = None) -> Any:
        """``self[key]``, or ``default`` when the key is absent (``error`` when there is none)."""
        return self[key] if key in self else default


_FILE_RESULT_KEYS = frozenset(f.name for f in fields(FileResult))


@dataclass
class IngestReport:
    """What one ingest did.

    Attributes
    ----------
    files : list of FileResult
        One per inbox file with a GPS format (see :class:`FileResult`; readable by key as the
        dicts it replaces: ``f["accepted"]``).
    dates_touched : set of datetime.date
        Local dates that received new points (the days to recompute).
    warnings : list of str
        For the run summary.
    """

    files: list[FileResult] = field(default_factory=list)
    dates_touched: set[date] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_accepted(self) -> int:
        return sum(f.accepted for f in self.files)

    @property
    def rows_duplicate(self) -> int:
        return sum(f.duplicate for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.quarantined for f in self.files)

    @property
    def files_ingested(self) -> int:
        return sum(not f.skipped_as_known for f in self.files)


# points whose dedupe keys and coordinates an ingest run keeps (24 bytes each: ≈ 100 MB)
PART_CACHE_POINTS = 1 << 22


class PartKeyCache:
    """The dedupe keys (sorted) and WGS-84 coordinates of store parts, kept for one ingest run.

    A day delivered in several files compares each file with the parts of the files before
    it; without the cache the k-th file reads all k-1 parts again (quadratic in the files of
    a day). Parts written by this run are entered as they are written, parts of earlier runs
    when first read. An entry is used only while the part's size and modification time are
    those it was entered with; at most ``max_points`` points are kept (then parts are read).
    """

    def __init__(self, max_points: int | None = None) -> None:
        self.max_points = PART_CACHE_POINTS if max_points is None else max_points
        self.points = 0
        self._entries: dict[Path, tuple[tuple[int, int], np.ndarray, np.ndarray, np.ndarray]] = {}
        # parts queued for writing (IngestWriter): their keys are known before the file exists
        self._pending: dict[Path, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()  # parts are written by the writer thread

    def get(self, part: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        with self._lock:
            pending = self._pending.get(part)
            entry = self._entries.get(part)
        if pending is not None:
            return pending
        if entry is None:
            return None
        try:
            st = part.stat()
        except OSError:
            return None
        if entry[0] != (st.st_mtime_ns, st.st_size):
            return None
        return entry[1], entry[2], entry[3]

    def put(self, part: Path, key: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> None:
        try:
            st = part.stat()
        except OSError:
            return
        with self._lock:
            old = self._entries.pop(part, None)
            if old is not None:
                self.points -= len(old[1])
            if self.points + len(key) <= self.max_points:
                self._entries[part] = ((st.st_mtime_ns, st.st_size), key, lon, lat)
                self.points += len(key)

    def hold(self, part: Path, key: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> None:
        """A part queued for writing: its keys are used (whatever the cap) until it is written."""
        with self._lock:
            self._pending[part] = (key, lon, lat)

    def written(self, part: Path) -> None:
        """A held part is on disk: kept as an entry like any other (within the cap)."""
        with self._lock:
            held = self._pending.pop(part, None)
        if held is not None:
            self.put(part, *held)

    def held_in(self, folder: Path) -> list[Path]:
        """The held (not yet written) parts of one store folder."""
        with self._lock:
            return [p for p in self._pending if p.parent == folder]

    def forget(self, part: Path) -> None:
        with self._lock:
            self._pending.pop(part, None)
            old = self._entries.pop(part, None)
            if old is not None:
                self.points -= len(old[1])


class KeyRuns:
    """One local date's store keys (other files' parts) as a few sorted runs, merged as they come.

    A day delivered in k files searched each file's points in the k − 1 parts before it,
    one by one: quadratic in the files of a day (20 files of 200 k points: 0.9 s of searching).
    Runs merge like a binary counter (the newest absorbs the one before while that is no
    larger), so a search is over O(log k) runs and each key is merged O(log k) times.
    """

    def __init__(self) -> None:
        self.parts: set[Path] = set()
        self.runs: list[np.ndarray] = []

    @property
    def points(self) -> int:
        return sum(len(r) for r in self.runs)

    def add(self, part: Path, keys: np.ndarray) -> None:
        """Enter a part's sorted keys."""
        self.parts.add(part)
        self.runs.append(keys)
        while len(self.runs) > 1 and len(self.runs[-2]) <= len(self.runs[-1]):
            b, a = self.runs.pop(), self.runs.pop()
            # two sorted runs: NumPy's stable sort (timsort) merges them in one pass
            self.runs.append(np.sort(np.concatenate([a, b]), kind="stable"))


class IngestWriter:
    """One thread that writes a file's parts and commits the file while the next one is read.

    Jobs run in the order given, one at a time: parts are written and files committed in
    inbox order, as when one thread did everything. A *heavy* job (a chunk's parts) is queued
    only once the jobs before it are done, so at most one chunk waits here while the next
    is classified; a *light* one (a commit) queues at once. After a failure no later job
    runs; the failure is raised by the next heavy submit or :meth:`wait`.
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future[None]] = []
        self._failed = False

    def submit(self, job: Callable[[], None], *, heavy: bool) -> None:
        if heavy:
            self.wait()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridpatrol-ingest-writer")
        self._futures.append(self._pool.submit(self._run, job))

    def _run(self, job: Callable[[], None]) -> None:
        if self._failed:
            return  # the job before failed: nothing after it is written or committed
        try:
            job()
        except BaseException:
            self._failed = True
            raise

    def wait(self) -> None:
        """Until every job given has run; raises the first failure."""
        futures, self._futures = self._futures, []
        for fut in futures:
            fut.result()

    def close(self) -> None:
        """Stop the thread once its jobs have run (their failures are left to :meth:`wait`)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


@dataclass
class IngestContext:
    """What the stages of one ingest run share (the store connection, the roster, the run)."""

    ws: Workspace
    con: duckdb.DuckDBPyConnection
    run_id: str
    now_us: int
    roster: pa.Array  # worker ids of workers.csv, sorted (a point's worker_idx indexes it)
    columns: Mapping[str, str] = field(default_factory=dict)  # [gps.columns], headers normalised
    part_keys: PartKeyCache = field(default_factory=PartKeyCache)  # the store parts' keys, this run
    writer: IngestWriter = field(default_factory=IngestWriter)  # parts and commits, in the background
    # per local date (days since 1970): the store's keys as merged runs (KeyRuns), this run
    key_runs: dict[int, KeyRuns] = field(default_factory=dict)
    # files of this run queued for commit: hash → what their manifest row will say (file_name,
    # ingested_run, error), for a copy of one later in the inbox, before the row exists
    committing: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)
    # the manifest as the run found it: hash → (file_name, ingested_run, error), and the files
    # read without error by (name, size, mtime_ns) → hash (ingest_inbox: one query, not two a file)
    manifest: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)
    unchanged: dict[tuple[str, int, int], str] = field(default_factory=dict)
    _writer_con: duckdb.DuckDBPyConnection | None = None

    def for_writer(self) -> IngestContext:
        """This context on the writer thread's own connection (a cursor of the store's)."""
        if self._writer_con is None:
            self._writer_con = self.con.cursor()
        return replace(self, con=self._writer_con)

    def close_writer(self) -> None:
        self.writer.close()
        if self._writer_con is not None:
            self._writer_con.close()
            self._writer_con = None
