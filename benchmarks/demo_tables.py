"""The demo month's tables, written out and compared: a refactoring must leave them identical.

    python -m benchmarks.demo_tables --dump /tmp/before          # build the demo, run it, write its tables
    python -m benchmarks.demo_tables --dump /tmp/after
    python -m benchmarks.demo_tables --compare /tmp/before /tmp/after

``--dump`` builds the demo workspace (``trajectory.run --demo``, fixed seed and month) in a
temporary folder, then writes every store table and the point_use store as Parquet, rows in
a canonical order, without the columns that name a run or a clock time (run ids, ingest and
log times). ``--compare`` exits 1 naming each table, column and first differing row that is
not identical (exactly: floats compared bit for bit), 0 when all are.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pandas as pd

from trajectory.contract import MONTH_REQUEST_COLUMNS

MONTH = "2026-10"
SEED = 20261001
# columns that name the run or its clock, not the result
VOLATILE = {
    "run_id",
    "ingested_run",
    "ingested_at",
    "first_seen_run",
    "first_seen_at",
    "added_at",
    "started_at",
    "ended_at",
    "seconds",
    # month_request's run ids and clocks
    *(c for c in MONTH_REQUEST_COLUMNS if c.endswith(("_run", "_at"))),
    "scored_at",
    "source_file",
    "message",
}
SKIP_TABLES = {"run_log", "pending_work", "month_request", "ingest_alias"}


def dump(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gridpatrol-demo-") as tmp:
        ws = Path(tmp) / "ws"
        cmd = [sys.executable, "-m", "trajectory.run", "--demo", "--workspace", str(ws), "--month", MONTH]
        cmd += ["--seed", str(SEED), "--no-progress", "-q"]
        subprocess.run(cmd, check=True)
        con = duckdb.connect(str(ws / "patrol.duckdb"), read_only=True)
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        for name in sorted(set(tables) - SKIP_TABLES):
            _write(con.execute(f"SELECT * FROM {name}").df(), out / f"{name}.parquet")
        pu = con.execute(f"SELECT * FROM read_parquet('{ws}/store/point_use/*/*.parquet', hive_partitioning=true)").df()
        _write(pu, out / "point_use.parquet")
        con.close()
    print(f"tables written to {out}")
    return 0


def _write(df: pd.DataFrame, path: Path) -> None:
    df = df.drop(columns=[c for c in df.columns if c in VOLATILE])
    df = df.astype({c: "string" for c in df.columns if df[c].dtype == object})
    df = df.sort_values(list(df.columns), kind="stable", na_position="first").reset_index(drop=True)
    df.to_parquet(path, index=False)


def compare(a: Path, b: Path) -> int:
    names = sorted({p.name for p in a.glob("*.parquet")} | {p.name for p in b.glob("*.parquet")})
    bad = 0
    for name in names:
        pa_, pb = a / name, b / name
        if not (pa_.exists() and pb.exists()):
            print(f"{name}: only in {'the first' if pa_.exists() else 'the second'}")
            bad += 1
            continue
        x, y = pd.read_parquet(pa_), pd.read_parquet(pb)
        if list(x.columns) != list(y.columns) or len(x) != len(y):
            print(f"{name}: columns {list(x.columns)} / {list(y.columns)}, rows {len(x)} / {len(y)}")
            bad += 1
            continue
        for col in x.columns:
            xs, ys = x[col], y[col]
            same = (xs == ys) | (xs.isna() & ys.isna())
            if not bool(same.all()):
                i = int((~same).to_numpy().argmax())
                print(f"{name}.{col}: row {i}: {xs.iloc[i]!r} / {ys.iloc[i]!r} ({int((~same).sum())} rows differ)")
                bad += 1
        print(f"{name}: {len(x):,} rows identical" if bad == 0 else f"{name}: checked")
    print("identical" if bad == 0 else f"{bad} differences")
    return 0 if bad == 0 else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--dump", type=Path, metavar="DIR")
    g.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args(argv)
    return dump(args.dump) if args.dump else compare(*args.compare)


if __name__ == "__main__":
    raise SystemExit(main())
