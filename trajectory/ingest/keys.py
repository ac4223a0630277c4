"""Dedupe keys: a point is (worker_id, ts); copies are stored once, a copy elsewhere is conflicting.

A point's key within one local date is an int64: the worker's position in the sorted roster
shifted left by ``KEY_TS_BITS``, or-ed with microseconds since the start of the day before
(UTC). Keys are compared against the store's parts of that date (read once per date and
file) and the points accepted from the file's earlier chunks; the first copy (stored, else
the earliest in the file) stays.

Examples
--------
>>> import numpy as np
>>> k = _point_keys(np.array([0, 1]), np.array([_DAY_US, _DAY_US]), np.array([1, 1]))
>>> [int(x) for x in k] == [_DAY_US, (1 << KEY_TS_BITS) | _DAY_US]
True
>>> _find_sorted(np.array([2, 5, 9]), np.array([5, 3, 9])).tolist()
[1, -1, 2]
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trajectory import store
from trajectory.calendar import local_epoch_us
from trajectory.coords import to_wgs84
from trajectory.errors import StoreError
from trajectory.ingest.model import IngestContext, KeyRuns

# the stage's interface inside the package; code outside imports from trajectory.ingest
__all__ = ["EPOCH_ORDINAL", "KEY_TS_BITS", "READ_THREADS", "NewPoints", "SeenKeys", "find_new_points"]

# Copies of (worker_id, ts) whose coordinates differ by more than this (degrees, ~0.1 m:
# finer than any phone reports, coarser than a re-export's rounding) are conflicting.
_SAME_POSITION_DEG = 1e-6
# A point's key within one local date: worker_idx << KEY_TS_BITS | microseconds since the
# start of the day before (UTC). A local date spans at most 25 h and lies within 14 h of
# its UTC date, so the offset is below 61 h < 2**38 us (76 h).
KEY_TS_BITS = 38
_DAY_US = 86_400 * 1_000_000
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
READ_THREADS = 2


@dataclass
class SeenKeys:
    """Sorted keys of one local date's points, for duplicates and conflicts.

    ``stored``: the keys of the store's parts (other files'), a few sorted arrays (the date's
    merged runs, or one a part; parts are disjoint: a point is stored once).
    ``held``: the (sorted) keys of those the chunk that read them repeats, with their
    coordinates (WGS-84), kept so that memory stays that of the keys. ``own``: the keys
    accepted from this file's earlier chunks. A later chunk repeating a point whose
    coordinates are not kept reads them again from the parts.
    """

    stored: list[np.ndarray]
    held: tuple[np.ndarray, np.ndarray, np.ndarray]
    own: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))


@dataclass
class NewPoints:
    """The new points of a chunk: ``rows[index]``, sorted by (local date, key), not yet copied.

    ``day`` (days since 1970-01-01) and ``key`` are theirs, in that order; ``lon``/``lat`` are
    the chunk's coordinates as delivered, by position in ``rows``. The writer thread takes
    the rows (:func:`trajectory.ingest.commit.write_parts`): the copy is off the reading path.
    """

    rows: pa.Table
    index: np.ndarray
    day: np.ndarray
    key: np.ndarray
    lon: np.ndarray
    lat: np.ndarray

    @property
    def num_rows(self) -> int:
        return len(self.index)

    def slice(self, offset: int, length: int) -> NewPoints:
        end = offset + length
        return NewPoints(
            self.rows, self.index[offset:end], self.day[offset:end], self.key[offset:end], self.lon, self.lat
        )


def _find_sorted(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Position of each key in ``sorted_keys``, -1 where it is absent."""
    if not len(sorted_keys):
        return np.full(len(keys), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return np.where(sorted_keys[pos] == keys, pos, -1)


def _in_parts(parts: list[np.ndarray], keys: np.ndarray) -> np.ndarray:
    """Whether each key is among the sorted key arrays ``parts``."""
    held = np.zeros(len(keys), dtype=bool)
    for part in parts:
        held |= _find_sorted(part, keys) >= 0
    return held


def _moved(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """Whether two copies of a point lie apart (more than ``_SAME_POSITION_DEG`` in lon or lat)."""
    return (np.abs(lon1 - lon2) > _SAME_POSITION_DEG) | (np.abs(lat1 - lat2) > _SAME_POSITION_DEG)


def find_new_points(
    ctx: IngestContext,
    file_hash: str,
    rows: pa.Table,
    candidates: np.ndarray,
    row_numbers: np.ndarray,
    seen: dict[int, SeenKeys],
) -> tuple[NewPoints, np.ndarray]:
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
    # coordinates as delivered (``gps_crs``), by position in ``rows`` (NaN only in rejected rows)
    lon = rows["lon"].to_numpy(zero_copy_only=False)
    lat = rows["lat"].to_numpy(zero_copy_only=False)
    if n == 0:
        nothing = np.empty(0, np.int64)
        return NewPoints(rows, nothing, nothing.astype(np.int32), nothing, lon, lat), nothing

    def column(name: str) -> np.ndarray:  # NULL only in rejected rows, which are not candidates
        return rows[name].fill_null(0).to_numpy()[candidates]

    ts_us = column("ts_us")
    day = local_days(ts_us, ctx.ws.policy.timezone)
    key = _point_keys(column("worker_idx"), ts_us, day)
    row = row_numbers[candidates]
    # lexsort is stable: with the rows in file order (DuckDB keeps it, checked) copies stay in it
    in_file_order = n < 2 or bool(np.all(row[1:] > row[:-1]))
    # a file sorted by worker and time (most exports) is in key order already: nothing to sort
    ordered = in_file_order and bool(np.all((day[1:] > day[:-1]) | ((day[1:] == day[:-1]) & (key[1:] >= key[:-1]))))
    if ordered:
        order = candidates
    else:
        order = np.lexsort((key, day) if in_file_order else (row, key, day))
        key, day, order = key[order], day[order], candidates[order]
    first = np.ones(n, dtype=bool)
    first[1:] = (key[1:] != key[:-1]) | (day[1:] != day[:-1])
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
    found: dict[int, np.ndarray] = {}  # for a date first met: which of the chunk's keys the store holds
    if new_days:
        with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
            read = pool.map(lambda d: _stored_points(ctx, d[0], file_hash, wanted=d[1]), new_days)
            for (d, _), (stored, held_points, at) in zip(new_days, read, strict=True):
                seen[d], found[d] = SeenKeys(stored, held_points), at
    for lo, hi in zip(starts, ends, strict=True):
        day_number = int(day[lo])
        known = seen[day_number]
        seg = key[lo:hi]
        # ... every copy of a point held already, with the copy held (stored points are
        # WGS-84: the chunk's few copies of held points are converted to compare)
        at_store = found[day_number] if day_number in found else _in_parts(known.stored, seg)
        at_own = _find_sorted(known.own, seg) >= 0
        for own_parts, at in ((False, at_store), (True, at_own)):
            h = np.flatnonzero(at)
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
        held = at_store | at_own
        keep = first[lo:hi] & ~held
        first[lo:hi] = keep
        conflict[lo:hi] &= ~keep
        if keep.any():  # sorted and disjoint from own: a merge of two sorted runs
            kept = seg[keep]
            known.own = np.sort(np.concatenate([known.own, kept]), kind="stable") if len(known.own) else kept
    return NewPoints(rows, order[first], day[first], key[first], lon, lat), order[conflict]


def local_days(ts_us: np.ndarray, zone: str) -> np.ndarray:
    """Local date (days since 1970-01-01, int32) of UTC epoch microseconds in ``zone``.

    The store's partition of a point: its date in the workspace time zone, as the engine
    reads it (:func:`trajectory.calendar.local_epoch_us`, which the engine uses too).

    Examples
    --------
    >>> us = np.array([1_791_475_199_000_000, 1_791_475_200_000_000])  # 2026-10-08 15:59:59 / 16:00 UTC
    >>> [str(np.datetime64(int(d), "D")) for d in local_days(us, "Asia/Shanghai")]
    ['2026-10-08', '2026-10-09']
    """
    return (local_epoch_us(ts_us, zone) // _DAY_US).astype(np.int32)


def _point_keys(worker_idx: np.ndarray, ts_us: np.ndarray, day: np.ndarray) -> np.ndarray:
    """int64 key of (worker, ts) unique within local date ``day`` (days since 1970-01-01)."""
    offset = ts_us - (day.astype(np.int64) - 1) * _DAY_US
    if len(offset) and (offset.min() < 0 or offset.max() >= 1 << KEY_TS_BITS):
        raise StoreError(
            "a point's local date is more than a day away from its UTC date; check the workspace time zone"
        )
    return (worker_idx.astype(np.int64) << KEY_TS_BITS) | offset


def _stored_points(
    ctx: IngestContext, day_number: int, file_hash: str, own: bool = False, *, wanted: np.ndarray
) -> tuple[list[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Sorted keys of the points the store holds for one local date, and the held ones' coordinates.

    Other files' parts, or (``own``) the parts this file's earlier chunks wrote. Returns the
    store's keys as a few sorted arrays (other files' parts: the date's merged runs,
    :class:`~trajectory.ingest.model.KeyRuns`, while they fit ``KEY_RUNS_POINTS``; else one
    array a part), the points whose keys are among ``wanted`` (sorted) as (sorted keys, lon,
    lat), WGS-84, and whether each wanted key is held.
    """
    day = date.fromordinal(EPOCH_ORDINAL + day_number)
    owner = file_hash[: store.GPS_PART_HASH_CHARS]
    # those queued for writing (IngestWriter), whose keys are held, and those on disk: listed in
    # this order, a part written meanwhile is on disk before it leaves the queue
    queued = ctx.part_keys.held_in(store.partition_dir(ctx.ws.paths.gps_store, day))
    on_disk = store.gps_parts(ctx.ws.paths, [day])
    listed = [p for p in sorted(set(on_disk) | set(queued)) if (store.gps_part_owner(p) == owner) == own]
    runs = None if own else _key_runs(ctx, day_number, listed)
    arrays = []
    # parts the date's runs hold already: searched through the runs, their coordinates read
    # only for held keys. Reading every part here, for the runs' sake, read the store's parts
    # again for each file once the part-key cache was full (20 files over 5 days of 4 M points:
    # 6 of ingest's 11 s)
    in_runs = []
    for part in listed:
        if runs is not None and part in runs.parts:
            in_runs.append(part)
            continue
        key, lon, lat = _part_points(ctx, part, day_number)
        if runs is not None:
            runs.add(part, key)
        arrays.append((key, lon, lat))
    searched = runs.runs if runs is not None else [key for key, _, _ in arrays]
    held = _in_parts(searched, wanted)
    # a key repeated among the wanted (copies within the chunk) is held once; the (few) held
    # keys' coordinates are looked up part by part (a key is in one part only), the parts read
    # the latest first (a copy is most often of a file just before) until every key is found
    first = held.copy()
    first[1:] &= wanted[1:] != wanted[:-1]
    held_keys = wanted[first]
    held_lon, held_lat = np.full(len(held_keys), np.nan), np.full(len(held_keys), np.nan)
    if len(held_keys):
        missing = np.ones(len(held_keys), bool)
        later = (_part_points(ctx, p, day_number) for p in _latest_first(in_runs))
        for key, lon, lat in itertools.chain(arrays, later):
            at = _find_sorted(key, held_keys)
            hit = at >= 0
            held_lon[hit] = lon[at[hit]]
            held_lat[hit] = lat[at[hit]]
            missing &= ~hit
            if not missing.any():
                break
    return list(searched), (held_keys, held_lon, held_lat), held


def _part_points(ctx: IngestContext, part: Path, day_number: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A part's sorted keys and coordinates: from the part-key cache, else read (and cached)."""
    cached = ctx.part_keys.get(part)  # entered sorted (written in key order, or sorted on reading)
    if cached is None:
        cached = _read_part_keys(ctx, part, day_number)
        ctx.part_keys.put(part, *cached)
    return cached


def _latest_first(parts: list[Path]) -> list[Path]:
    def written(part: Path) -> int:
        try:
            return part.stat().st_mtime_ns
        except OSError:  # queued for writing (IngestWriter): the latest of all
            return 1 << 62

    return sorted(parts, key=written, reverse=True)


# points the merged key runs of a run's dates may hold (8 bytes each: ≈ 100 MB, as the
# part-key cache); past that, a date's parts are searched one by one
KEY_RUNS_POINTS = 12_500_000


def _key_runs(ctx: IngestContext, day_number: int, listed: list[Path]) -> KeyRuns | None:
    """The date's merged runs of other files' keys, or None past the budget.

    Parts of other files never change within a run (the run holds the lock); a part that
    left the store (never, save a rerun's cleanup) makes the date's runs start again.
    """
    runs = ctx.key_runs.get(day_number)
    if runs is not None and not runs.parts <= set(listed):
        runs = None
    if runs is None:
        if sum(r.points for r in list(ctx.key_runs.values())) >= KEY_RUNS_POINTS:  # (2 read threads)
            ctx.key_runs.pop(day_number, None)
            return None
        runs = ctx.key_runs[day_number] = KeyRuns()
    return runs


def _read_part_keys(ctx: IngestContext, part: Path, day_number: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The keys of one part's points of local date ``day_number`` (sorted) and their coordinates (WGS-84)."""
    keys, lons, lats = [], [], []
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
        valid = (widx >= 0) & (offset >= 0) & (offset < 1 << KEY_TS_BITS)
        valid &= w_chunk.is_valid().to_numpy(zero_copy_only=False)
        keys.append((widx[valid].astype(np.int64) << KEY_TS_BITS) | offset[valid])
        lons.append(lon_chunk.to_numpy(zero_copy_only=False)[valid])  # never NULL: accepted points
        lats.append(lat_chunk.to_numpy(zero_copy_only=False)[valid])
    if not keys:
        return np.empty(0, np.int64), np.empty(0), np.empty(0)
    key, lon, lat = np.concatenate(keys), np.concatenate(lons), np.concatenate(lats)
    if len(key) > 1 and not bool(np.all(key[1:] >= key[:-1])):
        # parts are written sorted by key; one written otherwise (an older version) is sorted here
        order = np.argsort(key, kind="stable")
        key, lon, lat = key[order], lon[order], lat[order]
    return key, lon, lat
