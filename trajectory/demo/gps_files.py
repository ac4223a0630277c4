"""The demo's inbox: one or two GPS files a day in mixed formats, with the faults ingest must meet."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trajectory.demo.base import CENTER_LAT, CENTER_LON, S_FILES, UTC_OFFSET_S, stream_rng
from trajectory.demo.patrols import local_midnight_epoch
from trajectory.demo.phones import Track
from trajectory.geo import from_local

__all__ = ["write_gps"]

_GPS_COLUMNS = ["worker_id", "ts", "lon", "lat", "accuracy_m", "speed_mps", "mock", "device_id"]
# format by day with data: mostly CSV (ISO +08:00), some Parquet (epoch ms), some JSON Lines (naive local);
# a cycle of 5 over data days so every weekday meets every format
_FORMAT_CYCLE = ("csv", "csv", "parquet", "csv", "jsonl")


def _day_frame(rows: list[tuple[str, str, Track]], day: dt.date) -> pd.DataFrame:
    epoch0 = local_midnight_epoch(day)
    frames = []
    for worker_id, device, tr in rows:
        lon, lat = from_local(tr.x, tr.y, CENTER_LON, CENTER_LAT)
        frames.append(
            pd.DataFrame(
                {
                    "worker_id": worker_id,
                    "epoch_s": epoch0 + tr.t,
                    "lon": np.round(lon, 7),
                    "lat": np.round(lat, 7),
                    "accuracy_m": np.round(tr.accuracy, 1),
                    "speed_mps": np.round(tr.speed, 2),
                    "mock": tr.mock,
                    "device_id": device,
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values(["worker_id", "epoch_s"], kind="stable").reset_index(drop=True)


def write_gps(
    folder: Path, per_day: dict[dt.date, list[tuple[str, str, Track]]], workdays: set[str], seed: int
) -> dict[str, int]:
    """One or two files per day in the day's format, plus the planted faults of ingest."""
    rng = stream_rng(seed, S_FILES)
    files: list[tuple[str, str, pd.DataFrame]] = []  # name, fmt, frame
    data_days = [d for d in sorted(per_day) if per_day[d]]
    frames = {d: _day_frame(per_day[d], d) for d in data_days}
    # a few points delivered again in the next day's file (a late re-upload overlaps)
    n_dup = 0
    for k in (3, 10, 17):
        if k + 1 < len(data_days):
            d, nxt = data_days[k], data_days[k + 1]
            first = frames[d]["worker_id"].iloc[0]
            dup = frames[d][frames[d]["worker_id"] == first].tail(15)
            frames[nxt] = pd.concat([frames[nxt], dup], ignore_index=True)
            n_dup += len(dup)
    for k, d in enumerate(data_days):
        fmt = _FORMAT_CYCLE[k % len(_FORMAT_CYCLE)]
        df = frames[d]
        base = f"gps_{d.isoformat()}"
        second = (df["worker_id"].str[-1].astype(int) % 2 == 1).to_numpy()
        if d.day % 3 == 0 and 0 < second.sum() < len(df):  # a second upload batch: every other worker's data
            files.append((f"{base}.{fmt}", fmt, df[~second]))
            files.append((f"{base}_2.{fmt}", fmt, df[second]))
        else:
            files.append((f"{base}.{fmt}", fmt, df))
    # faults go into workday files (a holiday file may hold only a few duty patrols)
    csv_files = [i for i, f in enumerate(files) if f[1] == "csv" and f[0][4:14] in workdays]
    bad_index = csv_files[0] if csv_files else -1
    resend_index = csv_files[1] if len(csv_files) > 1 else -1
    counts = {"gps_points": 0, "gps_files": 0, "gps_bad_rows": 0, "gps_duplicate_points": n_dup}
    for i, (name, fmt, df) in enumerate(files):
        data = _encode(df, fmt)
        if i == bad_index:
            data, n_bad = _plant_bad_rows(data, df, rng)
            counts["gps_bad_rows"] = n_bad
        (folder / name).write_bytes(data)
        counts["gps_points"] += len(df)
        counts["gps_files"] += 1
        counts[f"gps_files_{fmt}"] = counts.get(f"gps_files_{fmt}", 0) + 1
        if i == resend_index:  # the same file delivered twice under another name
            (folder / name.replace(".csv", "_resend.csv")).write_bytes(data)
            counts["gps_files"] += 1
            counts["gps_resent_points"] = len(df)
    counts["gps_points_unique"] = counts["gps_points"] - n_dup
    return counts


def _encode(df: pd.DataFrame, fmt: str) -> bytes:
    out = df.drop(columns="epoch_s")
    local = (df["epoch_s"].to_numpy() + UTC_OFFSET_S).astype("datetime64[s]")
    if fmt == "csv":
        out.insert(1, "ts", np.char.add(np.datetime_as_string(local, unit="s"), "+08:00"))
        out["mock"] = np.where(df["mock"].to_numpy(), "true", "false")
        return out[_GPS_COLUMNS].to_csv(index=False, lineterminator="\n").encode("utf-8")
    if fmt == "parquet":
        out.insert(1, "ts", df["epoch_s"].to_numpy().astype(np.int64) * 1000)
        table = pa.Table.from_pandas(out[_GPS_COLUMNS], preserve_index=False)
        sink = pa.BufferOutputStream()
        pq.write_table(table.replace_schema_metadata(None), sink, compression="zstd")
        return sink.getvalue().to_pybytes()
    if fmt == "jsonl":
        out.insert(1, "ts", np.char.replace(np.datetime_as_string(local, unit="s"), "T", " "))
        out = out[_GPS_COLUMNS]
        out["provider"] = "gps"  # an extra column: kept or ignored, never an error
        return out.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8")
    raise ValueError(f"'fmt' was '{fmt}' but is expected to be csv, parquet or jsonl")


def _plant_bad_rows(data: bytes, df: pd.DataFrame, rng: np.random.Generator) -> tuple[bytes, int]:
    """Rows that cannot be a point, for the quarantine: missing lon, bad ts, lat 95, unknown worker."""
    lines = data.decode("utf-8").split("\n")
    r = df.iloc[len(df) // 2]
    ts = pd.Timestamp(int(r["epoch_s"]) + UTC_OFFSET_S, unit="s").strftime("%Y-%m-%dT%H:%M:%S") + "+08:00"
    day = ts[:10]
    bad = [
        f"{r['worker_id']},{day}T09:00:03+08:00,,{r['lat']},8.0,1.2,false,{r['device_id']}",
        f"{r['worker_id']},{day}T25:61:00+08:00,{r['lon']},{r['lat']},8.0,1.2,false,{r['device_id']}",
        f"{r['worker_id']},{day}T10:00:07+08:00,{r['lon']},95.0,8.0,1.2,false,{r['device_id']}",
        f"W999,{ts},{r['lon']},{r['lat']},6.0,1.1,false,DEV-999",
    ]
    positions = sorted(int(p) for p in rng.choice(np.arange(2, len(lines) - 2), len(bad), replace=False))
    for k, (pos, row) in enumerate(zip(positions, bad, strict=True)):
        lines.insert(pos + k, row)
    return "\n".join(lines).encode("utf-8"), len(bad)
