"""Classification: every row of a chunk given one quarantine reason, or none (a point), in one SQL query.

The fields are read as delivered and converted in DuckDB (``TRY_CAST``, regular
expressions; no Python per row): ``ts`` from ISO-8601 with offset, naive local time
(workspace time zone) or epoch seconds / milliseconds (told apart by magnitude). The first
reason that applies is given, in the order a person would fix them
(``contract.QUARANTINE_REASONS``). Accuracy, speed and mock flags are never reasons.

Examples
--------
>>> _number_sql("s.lon", "float")
'CAST(s.lon AS DOUBLE)'
>>> _epoch_sql("s.ts", "ts_tz")
'NULL'
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from trajectory.ingest.headers import REQUIRED_COLUMNS, sql_str
from trajectory.ingest.model import IngestContext
from trajectory.ingest.readers import JSON_OBJECT_SQL, FileSource
from trajectory.workspace import FALSE_WORDS, TRUE_WORDS

# the stage's interface inside the package; code outside imports from trajectory.ingest
__all__ = ["classify_chunk"]

_MIN_TS_US = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
_FUTURE_SLACK_US = 86_400 * 1_000_000  # "> 1 day in the future of the run"
# Epoch numbers in ``ts``: below 1e11 seconds, below 1e14 milliseconds. Every instant from
# 2000 to 5000 has one reading (s: 9.5e8..9.6e10, ms: 9.5e11..9.6e13); the rest is out of range.
_EPOCH_S_BELOW = 1e11
_EPOCH_MS_BELOW = 1e14
# ts in text: a date and a time, optionally an offset; or epoch milliseconds
_RE_DATE_TIME = r"[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}[T ][0-9]{1,2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
_RE_OFFSET = r"\s*(Z|[+-][0-9]{2}(:?[0-9]{2})?)"
_RE_EPOCH = r"-?[0-9]{1,19}(\.[0-9]*)?"


def _text(expr: str) -> str:
    return f"NULLIF(trim(CAST({expr} AS VARCHAR)), '')"


def _datetime_us_sql(expr: str, kind: str, zone: str) -> str:
    """Expression giving a date-time ``ts`` in epoch microseconds (NULL when it is not one)."""
    z = sql_str(zone)
    if kind == "ts_tz":
        return f"epoch_us({expr})"
    if kind == "ts_naive":
        return f"epoch_us(timezone({z}, CAST({expr} AS TIMESTAMP)))"
    if kind in ("int", "float"):
        return "NULL"
    t = f"upper({_text(expr)})"
    norm = f"replace({t}, '/', '-')"
    # a date-time has a ':', an epoch number never: one cheap test spares the regexes
    return f"""CASE WHEN contains({t}, ':') THEN CASE
            WHEN regexp_full_match({t}, '{_RE_DATE_TIME}{_RE_OFFSET}') THEN epoch_us(TRY_CAST({norm} AS TIMESTAMPTZ))
            WHEN regexp_full_match({t}, '{_RE_DATE_TIME}') THEN epoch_us(timezone({z}, TRY_CAST({norm} AS TIMESTAMP)))
        END END"""


def _epoch_sql(expr: str, kind: str) -> str:
    """Expression giving an epoch-number ``ts`` as DOUBLE (NULL when it is not one); unit by magnitude later."""
    if kind == "int":
        return f"CAST({expr} AS DOUBLE)"
    if kind == "float":
        return f"CASE WHEN isfinite({expr}) THEN CAST({expr} AS DOUBLE) END"
    if kind in ("ts_tz", "ts_naive"):
        return "NULL"
    t = _text(expr)
    # CASE, not AND: DuckDB then runs the regex only on the rows without a ':'
    return f"CASE WHEN contains({t}, ':') THEN NULL WHEN regexp_full_match({t}, '{_RE_EPOCH}') THEN CAST({t} AS DOUBLE) END"


def _number_sql(expr: str, kind: str) -> str:
    if kind in ("int", "float"):
        return f"CAST({expr} AS DOUBLE)"
    return f"TRY_CAST({_text(expr)} AS DOUBLE)"


def _bool_sql(expr: str, kind: str) -> str:
    if kind == "bool":
        return expr
    if kind in ("int", "float"):
        return f"CASE WHEN {expr} = 1 THEN true WHEN {expr} = 0 THEN false END"
    t = f"lower(coalesce({_text(expr)}, ''))"
    true_words = ", ".join(sql_str(w) for w in sorted(TRUE_WORDS))
    false_words = ", ".join(sql_str(w) for w in sorted(FALSE_WORDS))
    return f"CASE WHEN {t} IN ({true_words}) THEN true WHEN {t} IN ({false_words}) THEN false END"


def classify_chunk(ctx: IngestContext, src: FileSource) -> tuple[dict[str, int], pa.Table, pa.ChunkedArray]:
    """Give every row of the chunk ``_gp_src`` a reason (NULL = a point); returns counts, rows, points mask."""
    rows = ctx.con.sql(_classify_sql(ctx, src)).to_arrow_table()
    ok = pc.is_null(rows["reason"])
    n_ok = int(pc.sum(ok).as_py() or 0)

    def soft(flag: str) -> int:
        return int(pc.sum(pc.and_(ok, rows[flag])).as_py() or 0)

    counts = {
        "classified": rows.num_rows,
        "ok": n_ok,
        "rejected": rows.num_rows - n_ok,
        "bad_mock": soft("bad_mock"),
        "bad_accuracy": soft("bad_accuracy"),
        "bad_speed": soft("bad_speed"),
    }
    return counts, rows, ok


def _classify_sql(ctx: IngestContext, src: FileSource) -> str:
    """The query giving each row of ``_gp_src`` its reason, parsed fields, soft-value flags and local date."""
    zone = ctx.ws.policy.timezone
    f = src.fields
    missing = [name for name in REQUIRED_COLUMNS if name not in f]

    def col(name: str) -> tuple[str, str]:
        return f.get(name, ("NULL", "text"))

    w_expr, _ = col("worker_id")
    ts_expr, ts_kind = col("ts")
    lon_expr, lon_kind = col("lon")
    lat_expr, lat_kind = col("lat")
    acc_expr, acc_kind = col("accuracy_m")
    spd_expr, spd_kind = col("speed_mps")
    mock_expr, mock_kind = col("mock")
    dev_expr, _ = col("device_id")
    json_ok = JSON_OBJECT_SQL.format(line="s.line") if src.json_lines else "true"
    missing_reason = sql_str(f"missing column {', '.join(missing)}") if missing else "NULL"

    def present(name: str) -> str:
        expr, kind = col(name)
        if kind == "text":
            return f"({_text(expr)} IS NOT NULL)"
        if kind == "float":
            return f"({expr} IS NOT NULL AND NOT isnan({expr}))"
        return f"({expr} IS NOT NULL)"

    # an out-of-range epoch number names how it was read (evaluated for those rows only)
    read_as = f"""CASE WHEN ts_epoch IS NULL THEN ''
        WHEN abs(ts_epoch) < {_EPOCH_S_BELOW} THEN ' (read as epoch seconds)' ELSE ' (read as epoch milliseconds)' END"""
    # one reason per row, the first that applies, in the order a person would fix them; the
    # result comes back as Arrow (no temporary table, no second pass for the local date)
    return f"""
        WITH p AS (
            SELECT s._row,
                   {json_ok} AS json_ok,
                   {_text(w_expr)} AS worker_id,
                   {present("ts")} AS ts_present,
                   {_datetime_us_sql(ts_expr, ts_kind, zone)} AS ts_datetime_us,
                   {_epoch_sql(ts_expr, ts_kind)} AS ts_epoch,
                   {present("lon")} AS lon_present,
                   {present("lat")} AS lat_present,
                   {_number_sql(lon_expr, lon_kind)} AS lon,
                   {_number_sql(lat_expr, lat_kind)} AS lat,
                   {_number_sql(acc_expr, acc_kind)} AS accuracy_m,
                   {present("accuracy_m")} AS acc_present,
                   {_number_sql(spd_expr, spd_kind)} AS speed_mps,
                   {present("speed_mps")} AS spd_present,
                   {_bool_sql(mock_expr, mock_kind)} AS mock,
                   {present("mock")} AS mock_present,
                   {_text(dev_expr)} AS device_id
            FROM _gp_src s
        ), q AS (
            -- epoch seconds and milliseconds told apart by magnitude (no instant has both readings)
            SELECT *,
                   CASE WHEN ts_epoch IS NULL THEN ts_datetime_us
                        WHEN abs(ts_epoch) < {_EPOCH_S_BELOW} THEN CAST(round(ts_epoch * 1e6) AS BIGINT)
                        WHEN abs(ts_epoch) < {_EPOCH_MS_BELOW} THEN CAST(round(ts_epoch * 1e3) AS BIGINT)
                   END AS ts_us
            FROM p
        ), r AS (
            SELECT p._row, CASE
                    WHEN NOT json_ok THEN 'malformed JSON line (not a JSON object)'
                    WHEN {missing_reason} IS NOT NULL THEN {missing_reason}
                    WHEN p.worker_id IS NULL THEN 'missing worker_id'
                    WHEN w.worker_id IS NULL THEN 'unknown worker (not in workers.csv)'
                    WHEN NOT ts_present THEN 'missing ts'
                    WHEN ts_us IS NULL AND ts_epoch IS NOT NULL
                        THEN 'unparseable ts (an epoch number too large for seconds or milliseconds)'
                    WHEN ts_us IS NULL THEN 'unparseable ts'
                    WHEN NOT lon_present THEN 'missing lon'
                    WHEN lon IS NULL OR NOT isfinite(lon) THEN 'non-numeric lon'
                    WHEN NOT lat_present THEN 'missing lat'
                    WHEN lat IS NULL OR NOT isfinite(lat) THEN 'non-numeric lat'
                    WHEN lon < -180 OR lon > 180 THEN 'lon outside [-180, 180]'
                    WHEN lat < -90 OR lat > 90 THEN 'lat outside [-90, 90]'
                    WHEN lon = 0 AND lat = 0 THEN 'null island (0, 0)'
                    WHEN ts_us < {_MIN_TS_US} THEN 'ts before 2000-01-01' || {read_as}
                    WHEN ts_us > {ctx.now_us + _FUTURE_SLACK_US} THEN 'ts more than 1 day after the run' || {read_as}
                END AS reason,
                w.worker_idx, ts_us, lon, lat, accuracy_m, speed_mps, coalesce(mock, false) AS mock, device_id,
                mock IS NULL AND mock_present AS bad_mock,
                accuracy_m IS NULL AND acc_present AS bad_accuracy,
                speed_mps IS NULL AND spd_present AS bad_speed
            FROM q p LEFT JOIN _gp_workers w ON p.worker_id = w.worker_id
        )
        SELECT * FROM r
        """
