"""Store a month's scores in ``patrol.duckdb`` and write the monthly workbook, CSV and Parquet.

``score_and_store`` is the month-end step of ``trajectory.run --month``: it loads the month's
indicator records, reads the engine's item-2.5 findings, scores, and replaces the month's rows
of ``grid_month_score``, ``deduction`` and our own tables in one transaction.

``python -m scoring.export --workspace DIR --month YYYY-MM`` reads those tables (read-only) and
writes ``out/YYYY-MM/考核得分_YYYY-MM.xlsx`` plus ``grid_month_score``, ``deduction`` and
``event_flag`` as CSV (UTF-8 with BOM, so Excel shows the Chinese) and Parquet. Re-running on
the same store writes byte-identical files. Personal sites (key persons, special groups, care
subjects) appear only by their code; labels, names and addresses never reach an export.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Collection, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from scoring import labels, workbook
from scoring.inputs import TABLE_ALIASES, TABLE_ITEMS, check_required, load_indicators, table_names
from scoring.labels import *  # noqa: F403  (re-exported: every name of labels.__all__, see __all__)
from scoring.labels import EVENT_CATEGORY, EVENT_FLAG, SCORE_NOTE, check_month, workbook_name
from scoring.policy import Policy
from scoring.quality import FLAG_COLUMNS, event_quality_flags
from scoring.rules import CATEGORY_REPORT_COLUMNS, DEDUCTION_ALL_COLUMNS, SCORE_COLUMNS, ScoreResult, score_month
from scoring.workbook import *  # noqa: F403  (re-exported: every name of workbook.__all__)
from scoring.workbook import write_workbook
from trajectory import contract as c
from trajectory import store
from trajectory.errors import GridpatrolError, exit_code
from trajectory.files import write_bytes_atomic
from trajectory.store import connect, workspace_lock, write_parquet_atomic
from trajectory.workspace import load_workspace

log = logging.getLogger(__name__)

_TEXT, _NUM = "VARCHAR", "DOUBLE"
_DDL = {
    c.GRID_MONTH_SCORE: {
        "item_name": _TEXT,
        "category": _TEXT,
        "rank": "BIGINT",
        "policy_hash": _TEXT,
        "missing_tables": _TEXT,
    },
    c.DEDUCTION: {"worker_id": _TEXT, "kind": _TEXT},
    EVENT_FLAG: {"month": _TEXT, **{col: _TEXT for col in FLAG_COLUMNS}},
    EVENT_CATEGORY: {
        **{col: _TEXT for col in CATEGORY_REPORT_COLUMNS},
        "minimum": _NUM,
        "reported": _NUM,
        "short": _NUM,
    },
    SCORE_NOTE: {"month": _TEXT, "message": _TEXT},
}


# --- scoring into the store ------------------------------------------------------------------


def score_and_store(
    ws: Any,
    con: duckdb.DuckDBPyConnection,
    month: str,
    *,
    allow_missing: Collection[str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> ScoreResult:
    """Score ``month`` for every grid of the workspace and replace its rows in the store.

    Parameters
    ----------
    ws : trajectory.workspace.Workspace
        Supplies ``paths.indicators(month)``, ``policy``, ``grids``, ``workers``, ``allow_missing``.
    con : duckdb connection
        Open read-write on the workspace's ``patrol.duckdb``.
    month : str
        ``YYYY-MM``.
    allow_missing : collection of str, optional
        Required tables the month may lack (default ``ws.allow_missing``, from ``--allow-missing``).
        Tables allowed when the month was last scored stay allowed while they are still missing,
        so a later night's re-scoring (late GPS uploads) does not stop on them.
    warn : callable, optional
        Receives each warning (default: the log, which the nightly run shows on the console).

    Returns
    -------
    ScoreResult
        With the indicators' warnings first.

    Raises
    ------
    InputError
        A required table is missing and not allowed (``scoring.inputs.check_required``).
    """
    check_month(month)
    grids = pd.DataFrame(ws.grids[list(c.GRID_PROPERTIES)])
    ind = load_indicators(ws.paths.indicators(month), ws.policy, grids["grid_id"], month)
    allowed = set(getattr(ws, "allow_missing", ()) if allow_missing is None else table_names(allow_missing))
    inherited = sorted(_allowed_before(con, month) & set(ind.missing) - allowed)
    check_required(ind, allowed | set(inherited))
    for table in inherited:
        ind.warnings.append(
            f"{ind.source}: table {table}（{TABLE_ALIASES[table][0]}）仍缺失 still missing; 沿用本月上次计分时的 "
            f"--allow-missing {table} (allowed when {month} was last scored): items {', '.join(TABLE_ITEMS[table])} 暂缺"
        )
    findings = _read_month(con, c.PATROL_FINDING, month)
    points = _track_points(con, ind.events, ws.policy)
    flags = event_quality_flags(
        ind.events[ind.events["grid_id"].isin(grids["grid_id"])], ws.grids, points, ws.workers, ws.policy
    )
    result = score_month(month, grids, ind, findings, ws.policy, flags)
    result.warnings[:0] = ind.warnings
    for w in result.warnings:
        (warn or log.warning)(w)
    notes = pd.DataFrame({"month": month, "message": pd.Series(result.warnings, dtype="str")})
    tables = {
        c.GRID_MONTH_SCORE: result.grid_month_score,
        c.DEDUCTION: result.deduction,
        EVENT_FLAG: flags.assign(month=month),
        EVENT_CATEGORY: result.category_report,
        SCORE_NOTE: notes,
    }
    _replace_month(con, month, tables)
    return result


def _allowed_before(con: duckdb.DuckDBPyConnection, month: str) -> set[str]:
    """The tables the month's stored scores were allowed to miss (its total rows' ``missing_tables``)."""
    if "missing_tables" not in _table_columns(con, c.GRID_MONTH_SCORE):
        return set()
    rows = con.execute(
        f"SELECT DISTINCT missing_tables FROM {c.GRID_MONTH_SCORE} WHERE month = ? AND item_code = ?",
        [month, c.ITEM_TOTAL],
    ).fetchall()
    return {t for (text,) in rows if text for t in str(text).split(",") if t}


def _table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position", [table]
    ).fetchall()
    return [r[0] for r in rows]


def _read_month(con: duckdb.DuckDBPyConnection, table: str, month: str) -> pd.DataFrame:
    """The month's rows of ``table``; an empty frame when the table (or its month column) is missing."""
    cols = _table_columns(con, table)
    if not cols:
        return pd.DataFrame()
    if "month" not in cols:
        return pd.DataFrame(columns=cols)
    return con.execute(f"SELECT * FROM {table} WHERE month = ?", [month]).df()


def _track_points(con: duckdb.DuckDBPyConnection, events: pd.DataFrame, policy: Policy) -> pd.DataFrame | None:
    """GPS points of each event's worker within ±track window of the report (None without a store)."""
    if not _table_columns(con, c.GPS_POINT):
        return None
    window = pd.Timedelta(minutes=policy.events.quality_checks.track_window_min)
    e = events[events["worker_id"].notna() & events["reported_at"].notna()]
    probe = pd.DataFrame(
        {"worker_id": e["worker_id"].astype(str), "lo": e["reported_at"] - window, "hi": e["reported_at"] + window}
    )
    con.register("_event_windows", probe)
    try:
        return con.execute(
            f"""SELECT DISTINCT p.worker_id, p.ts, p.lon, p.lat FROM {c.GPS_POINT} p
                JOIN _event_windows w ON p.worker_id = w.worker_id AND p.ts BETWEEN w.lo AND w.hi"""
        ).df()
    finally:
        con.unregister("_event_windows")


def _replace_month(con: duckdb.DuckDBPyConnection, month: str, tables: dict[str, pd.DataFrame]) -> None:
    """Replace the month's rows of every table, all in ONE transaction."""
    with store.transaction(con):
        for table, df in tables.items():
            store.replace_rows(con, table, df, "month = ?", [month], own_transaction=False, types=_DDL.get(table))


# --- reading the store back ------------------------------------------------------------------


def read_scores(con: duckdb.DuckDBPyConnection, month: str, policy: Policy) -> dict[str, pd.DataFrame]:
    """The month's stored tables; columns missing from an older store are filled in."""
    scores = _read_month(con, c.GRID_MONTH_SCORE, month)
    if not len(scores):
        raise GridpatrolError(
            f"no scores for {month} in patrol.duckdb; run `python -m scoring.export --score` "
            f"or `python -m trajectory.run --month {month}` first"
        )
    names = {code: policy.items[code].name for code in c.ITEM_CODES} | {c.ITEM_TOTAL: "总分"}
    if "item_name" not in scores:
        scores["item_name"] = scores["item_code"].map(names)
    if "category" not in scores:
        scores["category"] = scores["item_code"].map({k: policy.items[k].category for k in c.ITEM_CODES}).fillna("")
    if "rank" not in scores:
        total = scores["item_code"] == c.ITEM_TOTAL
        scores["rank"] = scores["score"].where(total).rank(method="min", ascending=False).astype("Int64")
    if "policy_hash" not in scores:
        scores["policy_hash"] = ""
    if "missing_tables" not in scores:
        scores["missing_tables"] = ""
    scores["missing_tables"] = scores["missing_tables"].fillna("").astype(str)
    deductions = _read_month(con, c.DEDUCTION, month).reindex(columns=DEDUCTION_ALL_COLUMNS)
    flags = _read_month(con, EVENT_FLAG, month).reindex(columns=list(FLAG_COLUMNS))
    categories = _read_month(con, EVENT_CATEGORY, month).reindex(columns=list(CATEGORY_REPORT_COLUMNS))
    notes = _read_month(con, SCORE_NOTE, month).reindex(columns=["message"])
    worker_day = _worker_days(con, month)
    return {
        "scores": scores.reindex(columns=SCORE_COLUMNS),
        "deductions": deductions,
        "flags": flags,
        "categories": categories,
        "notes": notes,
        "worker_day_summary": summarize_worker_days(worker_day),
    }


def _worker_days(con: duckdb.DuckDBPyConnection, month: str) -> pd.DataFrame:
    cols = _table_columns(con, c.WORKER_DAY)
    if not cols:
        return pd.DataFrame(columns=list(c.WORKER_DAY_COLUMNS))
    return con.execute(f"SELECT * FROM {c.WORKER_DAY} WHERE strftime(date, '%Y-%m') = ?", [month]).df()


def summarize_worker_days(worker_day: pd.DataFrame) -> pd.DataFrame:
    """One row per worker: days by status, patrol hours and kilometres of the month.

    Examples
    --------
    >>> wd = pd.DataFrame({"worker_id": ["W1", "W1"], "grid_id": ["G1", "G1"], "status": ["ok", "absent"],
    ...                    "patrol_s": [10800.0, 0.0], "patrol_m": [1500.0, 0.0], "workday": [True, True]})
    >>> summarize_worker_days(wd)[["worker_id", "ok", "absent", "patrol_h", "patrol_km"]].to_dict("records")
    [{'worker_id': 'W1', 'ok': 1, 'absent': 1, 'patrol_h': 3.0, 'patrol_km': 1.5}]
    """
    statuses = list(c.STATUSES)
    base = ["worker_id", "grid_id", "workdays", *statuses, "patrol_h", "patrol_km"]
    if not len(worker_day):
        return pd.DataFrame(columns=base)
    wd = worker_day.assign(workday=worker_day["workday"].astype(bool))
    counts = pd.crosstab([wd["worker_id"], wd["grid_id"]], wd["status"]).reindex(columns=statuses, fill_value=0)
    sums = wd.groupby(["worker_id", "grid_id"]).agg(
        workdays=("workday", "sum"), patrol_s=("patrol_s", "sum"), patrol_m=("patrol_m", "sum")
    )
    out = sums.join(counts).reset_index()
    out["patrol_h"] = (out["patrol_s"] / 3600.0).round(2)
    out["patrol_km"] = (out["patrol_m"] / 1000.0).round(2)
    out["workdays"] = out["workdays"].astype(int)
    return out[base].sort_values(["grid_id", "worker_id"]).reset_index(drop=True)


# --- files -----------------------------------------------------------------------------------


def export_month(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    month: str,
    grids: pd.DataFrame,
    policy: Policy,
    source: str = "patrol.duckdb",
    *,
    root: Path | None = None,
    prepared_on: date | None = None,
) -> list[Path]:
    """Write the workbook and the CSV/Parquet tables of ``month`` from the store into ``out_dir``.

    ``root`` (the workspace) and ``prepared_on`` (制表日期, default the month's last day) are
    passed to ``write_workbook``. Returns the paths written.
    """
    check_month(month)
    data = read_scores(con, month, policy)
    out_dir.mkdir(parents=True, exist_ok=True)
    notes = list(data["notes"]["message"].dropna())
    stored_hash = set(data["scores"]["policy_hash"].dropna()) - {""}
    if stored_hash and stored_hash != {policy.hash}:
        notes.insert(
            0,
            f"得分按策略 {', '.join(sorted(stored_hash))} 计算，与当前策略 {policy.hash} 不同；如需更新请重新计分（--score）",
        )
    book = out_dir / workbook_name(month)
    write_workbook(
        book,
        month,
        data["scores"],
        data["deductions"],
        grids,
        data["worker_day_summary"],
        data["flags"],
        policy,
        category_report=data["categories"],
        notes=notes,
        source=source,
        root=root,
        prepared_on=prepared_on,
    )
    written = [book]
    for name, df in (
        (c.GRID_MONTH_SCORE, data["scores"]),
        (c.DEDUCTION, data["deductions"]),
        (EVENT_FLAG, data["flags"]),
    ):
        written += write_table(df, out_dir, name)
    return written


# a spreadsheet reads a cell starting with one of these as a formula (OWASP CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula, prefixed with ``'`` (numbers untouched).

    Examples
    --------
    >>> df = pd.DataFrame({"a": ["=HYPERLINK(1)", "ok", "+86 call", "@x"], "b": [-1.0, 2.0, 3.0, 4.0]})
    >>> neutralise_formulas(df).to_dict("list")
    {'a': ["'=HYPERLINK(1)", 'ok', "'+86 call", "'@x"], 'b': [-1.0, 2.0, 3.0, 4.0]}
    """
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype != object and not pd.api.types.is_string_dtype(s):
            continue
        text = s.astype("string")
        risky = text.str.startswith(_FORMULA_START).fillna(False).astype(bool)
        if risky.any():
            out[col] = s.where(~risky, "'" + text)
    return out


def write_table(df: pd.DataFrame, out_dir: Path, name: str) -> list[Path]:
    """``name.csv`` (UTF-8 with BOM, formulas neutralised) and ``name.parquet`` (values as they
    are: a typed store, not a spreadsheet), each replaced atomically."""
    csv_path, pq_path = out_dir / f"{name}.csv", out_dir / f"{name}.parquet"
    csv_text = neutralise_formulas(df).to_csv(index=False, lineterminator="\n")
    write_bytes_atomic(csv_path, csv_text.encode("utf-8-sig"))
    plain = df.astype({col: "object" for col in df.columns if df[col].dtype == object})
    write_parquet_atomic(pa.Table.from_pandas(plain, preserve_index=False), pq_path)
    return [csv_path, pq_path]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m scoring.export",
        description="Write the monthly assessment workbook (考核得分_YYYY-MM.xlsx) and the score tables "
        "as CSV and Parquet into WORKSPACE/out/YYYY-MM/.",
    )
    p.add_argument("--workspace", required=True, type=Path, help="the workspace folder")
    p.add_argument("--month", required=True, help="the month to export, YYYY-MM")
    p.add_argument(
        "--score",
        action="store_true",
        help="score the month first from indicators/YYYY-MM/ and the stored patrol findings "
        "(opens patrol.duckdb read-write); without it the stored scores are exported",
    )
    p.add_argument(
        "--allow-missing",
        action="append",
        default=[],
        metavar="TABLE",
        help="with --score: score the month although the required indicator table TABLE (events, "
        "service_records, info_collection, or its Chinese name) is missing; its items are marked 暂缺 "
        "and the total provisional (repeatable)",
    )
    return p


def _print_warning(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m scoring.export``; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.allow_missing and not args.score:
        parser.error("--allow-missing goes with --score")
    try:
        check_month(args.month)
        ws = load_workspace(args.workspace, allow_missing=args.allow_missing)
        if args.score:
            with workspace_lock(ws.paths):
                con = connect(ws.paths)
                try:
                    score_and_store(ws, con, args.month, warn=_print_warning)
                finally:
                    con.close()
        con = connect(ws.paths, read_only=True)
        try:
            written = export_month(
                con,
                ws.paths.out_month(args.month),
                args.month,
                ws.grids,
                ws.policy,
                source=str(ws.paths.duckdb.name),
                root=ws.root,
            )
        finally:
            con.close()
    except (GridpatrolError, duckdb.Error, OSError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        # refused (2: bad month, workspace, input, store busy) apart from a store or system failure (1)
        return exit_code(exc)
    for path in written:
        print(path)
    return exit_code(None)


__all__ = [
    # this module: storing the scores, the CSV/Parquet exports, the command line
    "score_and_store",
    "read_scores",
    "summarize_worker_days",
    "export_month",
    "neutralise_formulas",
    "write_table",
    "main",
]
# re-exported, so that ``from scoring.export import ...`` keeps working (docs/scoring.md): the
# names of scoring.labels and scoring.workbook, taken from their own lists
__all__ += labels.__all__
__all__ += workbook.__all__


if __name__ == "__main__":
    sys.exit(main())
