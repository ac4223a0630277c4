"""Stage 5 — anomaly flags: evidence for reviewers, never deductions.

Per worker-day (from the engine's aggregates): ``desk_phone`` (挂机: stationary for
``desk_phone_min_s`` within patrol hours), ``vehicle`` (车巡: vehicle speed for
``vehicle_min_s``), ``teleport`` (a jump of at least ``teleport_spike_m`` faster than
``max_jump_kmh`` beyond the noise that is not an isolated spike), ``mock_location`` (any mock-location point). Across days:
``replay`` (轨迹复用: the same track on two days) by :func:`detect_replays`.
Details carry figures only, no personal data.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from scoring.policy import Policy
from trajectory.clean import REASONS, is_trustworthy
from trajectory.contract import DAY_FLAG_COLUMNS
from trajectory.geo import planar_distance, to_local

__all__ = [
    "DAY_FLAG_COLUMNS",
    "FLAGS",
    "day_flags",
    "day_signatures",
    "decode_signatures",
    "detect_replays",
    "encode_signatures",
    "replay_pairs",
    "replay_partner_sql",
    "replays_from_signatures",
]

FLAGS = ("desk_phone", "vehicle", "teleport", "mock_location", "replay")
REPLAY_DETAIL_PREFIX = "same track as "  # a replay row's detail: then the other day, YYYY-MM-DD


def day_flags(day: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Flags of each worker-day from its aggregates.

    Parameters
    ----------
    day : DataFrame
        One row per worker-day: ``worker_id, grid_id, date, still_s, still_from, still_to,
        vehicle_s, max_speed_kmh, dropped_spike, jumps, max_jump_m, dropped_mock``.

    Returns
    -------
    DataFrame
        ``day_flag`` rows (``worker_id, grid_id, date, flag, detail``).
    """
    a = policy.patrol.anomalies
    # each flag: the worker-days it marks, and its detail from their columns
    rules: list[tuple[str, pd.Series, Callable[[pd.DataFrame], list[str]]]] = [
        (
            "desk_phone",
            day["still_s"] >= a.desk_phone_min_s,
            lambda d: [
                f"stationary {s / 3600:.1f} h in patrol hours ({f}–{t})"
                for s, f, t in zip(d["still_s"], d["still_from"], d["still_to"], strict=False)
            ],
        ),
        (
            "vehicle",
            day["vehicle_s"] >= a.vehicle_min_s,
            lambda d: [
                f"vehicle speed {s / 60:.0f} min, max {v:.0f} km/h"
                for s, v in zip(d["vehicle_s"], d["max_speed_kmh"], strict=False)
            ],
        ),
        # isolated spikes are GPS noise (multipath, a stale fix) that cleaning drops, however far
        # and however often; a teleport is a run of fixes somewhere else that cleaning cannot explain
        (
            "teleport",
            day["jumps"] >= 1,
            lambda d: [
                f"{int(n)} spike point(s), {int(j)} unexplained jump(s), largest {m / 1000:.1f} km"
                for n, j, m in zip(d["dropped_spike"], d["jumps"], d["max_jump_m"], strict=False)
            ],
        ),
        (
            "mock_location",
            day["dropped_mock"] >= 1,
            lambda d: [f"{int(n)} mock-location point(s)" for n in d["dropped_mock"]],
        ),
    ]
    parts = [marked.assign(flag=flag, detail=detail(marked)) for flag, mask, detail in rules for marked in [day[mask]]]
    out = pd.concat([p[list(DAY_FLAG_COLUMNS)] for p in parts], ignore_index=True)
    return out.sort_values(["worker_id", "date", "flag"]).reset_index(drop=True)


def detect_replays(point_use: pd.DataFrame, policy: Policy, noise: pd.DataFrame | None = None) -> pd.DataFrame:
    """Worker-days whose track repeats another day's track of the same worker (轨迹复用).

    Each worker-day's trustworthy points (at least ``replay_min_points``) are resampled to
    ``replay_min_points`` positions evenly spaced along the point sequence; two days of one
    worker match when the median distance between their positions is at most
    ``replay_max_offset_m``, their durations agree within 1 % (a replay copies the timing;
    the same route walked again at another pace does not match) and the track spans more
    than four times the offset (a phone lying on the same desk every day is the desk-phone
    flag, not a replay). All pairs of days of all
    workers are compared at once with NumPy broadcasting.

    Parameters
    ----------
    point_use : DataFrame
        ``worker_id, ts, lon, lat, date, reason`` (and ``grid_id`` when present).
    policy : Policy
    noise : DataFrame, optional
        ``worker_id, date, noise_m`` (the engine's ``worker_day``): the day's GPS noise σ. A
        copy repeats the noise, so its offsets lie far below it; the same route walked again
        has independent noise and offsets around it. Two days match only when the offset is
        below ``replay_noise_ratio`` × the smaller σ (clamped to ``replay_min_offset_m`` …
        ``replay_max_offset_m``); without ``noise``, below ``replay_min_offset_m``.

    Returns
    -------
    DataFrame
        ``worker_id, grid_id, date, flag='replay', detail`` — a row for each day of a
        matching pair, naming the other date.
    """
    cols = list(DAY_FLAG_COLUMNS)
    a = policy.patrol.anomalies
    m = int(a.replay_min_points)
    need = {"worker_id", "ts", "lon", "lat", "date", "reason"}
    if not need <= set(point_use.columns):
        raise ValueError(f"detect_replays: point_use lacks columns {sorted(need - set(point_use.columns))}")
    if point_use.empty or m < 2:
        return pd.DataFrame(columns=cols)
    reason = point_use["reason"]
    codes = pd.Categorical(reason, categories=list(REASONS)).codes.astype(np.int16) + 1
    pu = point_use[is_trustworthy(codes)]
    if pu.empty:
        return pd.DataFrame(columns=cols)
    pu = pu.sort_values(["worker_id", "date", "ts"], kind="stable")
    key = pu["worker_id"].astype(str) + "|" + _day_text(pu["date"])
    tcode, tkeys = pd.factorize(key, sort=False)
    lat0 = float(pu["lat"].mean())
    lon0 = float(pu["lon"].mean())
    x, y = to_local(pu["lon"].to_numpy(), pu["lat"].to_numpy(), lon0, lat0)
    tsec = (
        pu["ts"].astype("int64").to_numpy() / 1e6
        if pu["ts"].dtype.kind == "M"
        else np.asarray(pd.to_datetime(pu["ts"], utc=True).astype("int64")) / 1e6
    )
    starts, rx, ry, duration, spread = day_signatures(tcode, x, y, tsec, m)
    if len(starts) < 2:
        return pd.DataFrame(columns=cols)
    workers = pu["worker_id"].to_numpy()[starts]
    dates = pu["date"].to_numpy()[starts]
    grids = pu["grid_id"].to_numpy()[starts] if "grid_id" in pu.columns else np.full(len(starts), None, object)
    sigma = np.zeros(len(starts))
    if noise is not None and len(noise) and "noise_m" in noise.columns:
        nz = noise.assign(_k=noise["worker_id"].astype(str) + "|" + _day_text(noise["date"]))
        sigma = nz.set_index("_k")["noise_m"].reindex(np.asarray(tkeys)[tcode[starts]]).fillna(0.0).to_numpy(float)
    return replay_pairs(workers, grids, dates, rx, ry, duration, spread, sigma, policy)


def day_signatures(
    group: np.ndarray, x: np.ndarray, y: np.ndarray, t: np.ndarray, m: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Replay signatures of the days (runs of equal ``group``, sorted by time) with ≥ ``m`` fixes.

    Returns each day's first index, its fixes resampled to ``m`` positions evenly along the
    sequence (``rx, ry``: days × m), its duration (``t`` units) and spread (largest distance
    from its first position).

    Examples
    --------
    >>> first, rx, ry, dur, spread = day_signatures(np.zeros(5, int), np.arange(5.0), np.zeros(5), np.arange(5.0), 3)
    >>> first.tolist(), rx.tolist(), dur.tolist(), spread.tolist()
    ([0], [[0.0, 2.0, 4.0]], [4.0], [4.0])
    """
    n = len(group)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if n else np.zeros(0, np.int64)
    counts = np.diff(np.r_[starts, n])
    keep = counts >= max(m, 2)
    starts, counts = starts[keep], counts[keep]
    pos = starts[:, None] + np.rint(np.linspace(0.0, 1.0, m)[None, :] * (counts[:, None] - 1)).astype(np.int64)
    rx, ry = x[pos], y[pos]
    spread = planar_distance(rx - rx[:, :1], ry - ry[:, :1]).max(axis=1) if len(starts) else np.zeros(0)
    return starts, rx, ry, t[starts + counts - 1] - t[starts], spread


def replay_pairs(
    workers: np.ndarray,
    grids: np.ndarray,
    dates: np.ndarray,
    rx: np.ndarray,
    ry: np.ndarray,
    duration: np.ndarray,
    spread: np.ndarray,
    sigma: np.ndarray,
    policy: Policy,
    touched: np.ndarray | None = None,
    unit_m: float = 1.0,
) -> pd.DataFrame:
    """Replay rows from per-day track signatures: ``rx, ry`` (days × m positions in one frame
    per worker, in units of ``unit_m`` metres), ``duration`` (s), ``spread`` (m) and ``sigma``
    (the day's noise, m); rows sorted by worker. All pairs of days of each worker are compared at once; with
    ``touched`` (a mask of the days), only the pairs with at least one touched day (the days
    a nightly run recomputed: the others' pairs are as stored)."""
    cols = list(DAY_FLAG_COLUMNS)
    a = policy.patrol.anomalies
    m = rx.shape[1] if rx.ndim == 2 else 0
    if len(workers) < 2 or m == 0:
        return pd.DataFrame(columns=cols)
    touched = None if touched is None else np.asarray(touched, bool)
    wcode = pd.factorize(workers)[0]
    if not bool(np.all(wcode[1:] >= wcode[:-1])):  # the days of a worker together (the month step's are)
        order = np.argsort(wcode, kind="stable")
        workers, grids, dates = workers[order], grids[order], dates[order]
        rx, ry, duration, spread, sigma = rx[order], ry[order], duration[order], spread[order], sigma[order]
        touched = None if touched is None else touched[order]
        wcode = pd.factorize(workers)[0]
    # all pairs (i < j) of days of the same worker
    gfirst = np.flatnonzero(np.r_[True, wcode[1:] != wcode[:-1]])
    gend = np.repeat(np.r_[gfirst[1:], len(wcode)], np.diff(np.r_[gfirst, len(wcode)]))
    npart = gend - np.arange(len(wcode)) - 1
    i = np.repeat(np.arange(len(wcode)), npart)
    j = i + 1 + (np.arange(npart.sum()) - np.repeat(np.cumsum(npart) - npart, npart))
    if touched is not None:
        keep = touched[i] | touched[j]
        i, j = i[keep], j[keep]
    if len(i) == 0:
        return pd.DataFrame(columns=cols)
    # the cheap tests first: a replay copies the timing (durations within 1 %) of a day that
    # went somewhere (not a phone lying still); only those pairs have their offsets measured
    same_time = np.abs(duration[i] - duration[j]) <= 0.01 * np.maximum(duration[i], duration[j])
    keep = same_time & (np.minimum(spread[i], spread[j]) > 4 * a.replay_max_offset_m)
    i, j = i[keep], j[keep]
    limit = np.clip(a.replay_noise_ratio * np.minimum(sigma[i], sigma[j]), a.replay_min_offset_m, a.replay_max_offset_m)
    off = _median_offsets(rx, ry, i, j, limit, unit_m)
    hit = off <= limit
    i, j, off = i[hit], j[hit], off[hit]
    if len(i) == 0:
        return pd.DataFrame(columns=cols)
    rows = pd.DataFrame(
        {
            "worker_id": np.r_[workers[i], workers[j]],
            "grid_id": np.r_[grids[i], grids[j]],
            "date": np.r_[dates[i], dates[j]],
            "flag": "replay",
            "detail": [
                f"{REPLAY_DETAIL_PREFIX}{d} (median offset {o:.1f} m over {m} positions)"
                for d, o in zip(np.r_[dates[j], dates[i]], np.r_[off, off], strict=False)
            ],
        }
    )
    return rows.sort_values(["worker_id", "date"]).reset_index(drop=True)


# pairs of days compared at once: 2 MB a temporary at 60 positions (cache-sized; 65 k pairs at
# once, 31 MB temporaries, took 1.5× as long)
_PAIRS_PER_CHUNK = 1 << 12


def _median_offsets(
    rx: np.ndarray,
    ry: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    limit: np.ndarray | None = None,
    unit_m: float = 1.0,
) -> np.ndarray:
    """Median distance (m) between the positions of days ``i`` and ``j`` (pairs), in chunks of
    pairs: a month of 2,000 workers holds ~10⁶ pairs, and all at once would take gigabytes.
    ``rx, ry`` are in units of ``unit_m`` metres (the stored signatures' integer decimetres are
    compared as they are: ``unit_m=0.1``, no float copy of the month's signatures).

    With ``limit`` (per pair), a pair whose median cannot be within it is +inf without its
    median taken: the median is at least the ⌈m/2⌉-th smallest distance, so fewer than ⌈m/2⌉
    positions within the limit rule it out (a count of squared distances, no sort). The
    medians of the other pairs are exact.

    Examples
    --------
    >>> rx = np.array([[0.0, 0, 0, 0], [1.0, 50, 50, 50], [3.0, 3, 3, 3]]); ry = np.zeros((3, 4))
    >>> _median_offsets(rx, ry, np.array([0, 0]), np.array([1, 2])).tolist()
    [50.0, 3.0]
    >>> _median_offsets(rx, ry, np.array([0, 0]), np.array([1, 2]), np.array([10.0, 10.0])).tolist()
    [inf, 3.0]
    >>> dm = (rx * 10).astype(np.int32); _median_offsets(dm, ry.astype(np.int32), np.array([0, 0]), np.array([1, 2]),
    ...                                                 np.array([10.0, 10.0]), unit_m=0.1).tolist()
    [inf, 3.0]
    """
    out = np.empty(len(i))
    m = rx.shape[1] if rx.ndim == 2 else 0
    need = (m + 1) // 2  # the median is at least the need-th smallest distance
    for lo in range(0, len(i), _PAIRS_PER_CHUNK):  # a loop over chunks of pairs, not over pairs
        a, b = i[lo : lo + _PAIRS_PER_CHUNK], j[lo : lo + _PAIRS_PER_CHUNK]
        dx = (rx[a] - rx[b]).astype(np.float64, copy=False)
        dy = (ry[a] - ry[b]).astype(np.float64, copy=False)
        if limit is None:
            out[lo : lo + len(a)] = np.median(planar_distance(dx, dy), axis=1) * unit_m
            continue
        d2 = dx * dx + dy * dy
        lim = limit[lo : lo + len(a)] / unit_m
        maybe = np.count_nonzero(d2 <= (lim * lim)[:, None], axis=1) >= need
        got = np.full(len(a), np.inf)
        if maybe.any():
            got[maybe] = np.median(np.sqrt(d2[maybe]), axis=1) * unit_m
        out[lo : lo + len(a)] = got
    return out


def encode_signatures(rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """Per-day track signatures as text: positions in decimetres as int32, base64 (one string a
    day, fixed length, vectorised over days).

    Examples
    --------
    >>> s = encode_signatures(np.array([[0.0, 12.34, -5.0]]), np.array([[1.0, 2.0, 3.0]]))
    >>> rx, ry = decode_signatures(s, 3); rx.tolist(), ry.tolist()
    ([[0.0, 12.3, -5.0]], [[1.0, 2.0, 3.0]])
    """
    n, m = rx.shape
    if n == 0:
        return np.zeros(0, dtype=object)
    ints = np.rint(np.concatenate([rx, ry], axis=1) * 10.0).astype("<i4")  # (n, 2m)
    width = 2 * m * 4
    pad = (-width) % 3  # whole base64 quanta per day, so the days split at fixed offsets
    raw = np.zeros((n, width + pad), np.uint8)
    raw[:, :width] = ints.view(np.uint8).reshape(n, width)
    text = base64.b64encode(raw.tobytes()).decode("ascii")
    size = (width + pad) // 3 * 4
    return np.frombuffer(text.encode("ascii"), dtype=f"S{size}").astype(str).astype(object)


def decode_signatures(signatures: Any, m: int, *, decimetres: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`encode_signatures`: ``rx, ry`` (days × m), metres, or with
    ``decimetres`` the stored int32 decimetres (a view of the bytes where their layout allows).
    The signatures are its text (a sequence of str), or their bytes once base64-decoded as a
    pyarrow binary array (DuckDB's ``from_base64`` fetched as Arrow: read in place, no Python
    object per day)."""
    n = len(signatures)
    if n == 0:
        return np.zeros((0, m)), np.zeros((0, m))
    width = 2 * m * 4
    pad = (-width) % 3
    if isinstance(signatures, pa.Array | pa.ChunkedArray):
        arr = signatures.combine_chunks() if isinstance(signatures, pa.ChunkedArray) else signatures
        offsets = np.frombuffer(arr.buffers()[1], np.int32)[arr.offset : arr.offset + n + 1]
        if arr.null_count or np.any(np.diff(offsets) != width + pad):
            raise ValueError(f"track signatures of {width + pad} bytes expected (replay_min_points = {m})")
        data = np.frombuffer(arr.buffers()[2], np.uint8)[offsets[0] : offsets[-1]]
    else:
        data = np.frombuffer(base64.b64decode("".join(signatures)), np.uint8)
    raw = data.reshape(n, width + pad)
    ints = (raw if pad == 0 else raw[:, :width].copy()).view("<i4").reshape(n, 2 * m)
    if decimetres:
        return ints[:, :m], ints[:, m:]
    metres = ints / 10.0
    return metres[:, :m], metres[:, m:]


def replays_from_signatures(
    worker_day: pd.DataFrame, policy: Policy, touched: np.ndarray | None = None, signatures: Any = None
) -> pd.DataFrame:
    """Replay rows of a month from ``worker_day``'s stored track signatures (no points read).

    ``worker_day`` needs ``worker_id, grid_id, date, noise_m, track_signature,
    track_duration_s, track_spread_m`` (the engine writes them with each day); ``touched`` as
    in :func:`replay_pairs` (a mask of ``worker_day``'s rows). ``signatures``, when given, are
    the rows' signatures as bytes (:func:`decode_signatures`, one a row, none missing) in place
    of the ``track_signature`` text.
    """
    need = {"worker_id", "grid_id", "date", "track_duration_s", "track_spread_m"}
    if not need <= set(worker_day.columns) or (signatures is None and "track_signature" not in worker_day.columns):
        return pd.DataFrame(columns=list(DAY_FLAG_COLUMNS))
    m = int(policy.patrol.anomalies.replay_min_points)
    if signatures is None:
        signed = worker_day["track_signature"].notna().to_numpy()
        wd = worker_day[signed]
        if touched is not None:
            touched = np.asarray(touched, bool)[signed]
        rx, ry = decode_signatures(wd["track_signature"].to_numpy(dtype=object), m, decimetres=True)
    else:
        wd = worker_day
        rx, ry = decode_signatures(signatures, m, decimetres=True)
    sigma = wd["noise_m"].to_numpy(dtype=float) if "noise_m" in wd.columns else np.zeros(len(wd))
    return replay_pairs(
        wd["worker_id"].to_numpy(dtype=object),
        wd["grid_id"].to_numpy(dtype=object),
        wd["date"].to_numpy(dtype=object),
        rx,
        ry,
        wd["track_duration_s"].to_numpy(dtype=float),
        wd["track_spread_m"].to_numpy(dtype=float),
        np.nan_to_num(sigma),
        policy,
        touched,
        unit_m=0.1,  # the stored decimetres, compared as they are
    )


def replay_partner_sql(detail: str) -> str:
    """SQL of the day a stored replay row's ``detail`` names as its copy ('YYYY-MM-DD' text):
    the month step deletes the rows of the pairs it recomputes by both of their days."""
    return f"substr({detail}, {len(REPLAY_DETAIL_PREFIX) + 1}, 10)"


def _day_text(dates: pd.Series) -> pd.Series:
    """'YYYY-MM-DD' of dates given as datetime.date, Timestamp or text (one key for both frames)."""
    return pd.to_datetime(dates.astype(str)).dt.strftime("%Y-%m-%d")
