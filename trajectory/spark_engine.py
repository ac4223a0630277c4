"""The day job on Apache Spark: :func:`trajectory.engine.process_days` per worker, on executors.

A worker's worker-days depend on that worker's points only, so the job is a pure function
over each worker's points: ``groupBy("worker_id").applyInArrow(fn, schema)`` (docs/scale.md).
``fn`` turns the group's Arrow table into pandas, runs ``process_days`` with the roster cut to
that worker and returns its four outputs as rows of one *union schema* with an ``output``
discriminator column. One pass, one shuffle, one ``process_days`` per worker — four separate
passes would read, shuffle and compute everything four times. The context travels to the
executors in the closure (grids as WKB, the policy pickled).

Full-time workers of the roster without any point get their rows (absent / exempt / off)
from a local ``process_days`` on an empty frame.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa

from trajectory import contract
from trajectory.batching import context_for_workers, empty_points, full_time_ids
from trajectory.engine import DayResult, EngineContext, process_days

OUTPUTS = (contract.WORKER_DAY, contract.SITE_VISIT, contract.DAY_FLAG, contract.POINT_USE)
POINT_COLUMNS = ("worker_id", "ts", "lon", "lat", "accuracy_m", "speed_mps", "mock")

# Arrow type of every column of the four outputs (shared names have one type), from the contract
_TYPES: dict[str, pa.DataType] = contract.arrow_types(*OUTPUTS)
COLUMNS: dict[str, tuple[str, ...]] = {name: contract.SCHEMAS[name].names(extra=True) for name in OUTPUTS}
_OBJECT_STRINGS = {"exempt_reason", "leave_note", "flags", "detail"}
UNION_SCHEMA = pa.schema([pa.field("output", pa.string())] + [pa.field(name, typ) for name, typ in _TYPES.items()])


def spark_session(app: str = "gridpatrol", master: str = "local[2]", **conf: str) -> Any:
    """A Spark session set up for the engine.

    The Python workers run this interpreter (``PYSPARK_PYTHON`` = ``sys.executable``, so they
    have pyarrow and the package), the UI is off, shuffles use few partitions, Arrow is on and
    the session time zone is UTC. ``conf`` adds Spark settings (``spark.executor.memory=...``).
    """
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    b = (
        SparkSession.builder.appName(app)
        .master(master)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "2g")
        .config("spark.executorEnv.PYSPARK_PYTHON", sys.executable)
    )
    for k, v in conf.items():
        b = b.config(k, v)
    return b.getOrCreate()


def process_days_spark(spark: Any, gps: Any, ctx: EngineContext, dates: Sequence[date]) -> DayResult:
    """:func:`~trajectory.engine.process_days` on Spark, collected to pandas.

    Parameters
    ----------
    spark : SparkSession
    gps : str or pyspark DataFrame
        The Parquet store ``store/gps`` (hive partitions ``date=YYYY-MM-DD``; a folder or a
        glob such as ``/shared/ws/store/gps/date=2026-10-*``), or a DataFrame with the
        point columns and ``date``.
    ctx : EngineContext
    dates : sequence of datetime.date

    Returns
    -------
    DayResult
        Same rows as ``process_days`` on all the points: ``worker_day`` in its order
        (worker, date); ``site_visit``, ``day_flag`` and ``point_use`` ordered by worker,
        date and time.
    """
    dates = sorted(set(dates))
    frames = spark_outputs(spark, gps, ctx, dates)
    union = frames["_union"]
    got = {name: _to_pandas(union, name) for name in OUTPUTS}
    # the roster's full-time workers without points: absent, exempt or off, computed here
    seen = set(got[contract.WORKER_DAY]["worker_id"]) | set(got[contract.POINT_USE]["worker_id"])
    silent = [w for w in full_time_ids(ctx) if w not in seen]
    if silent:
        local = process_days(empty_points(), context_for_workers(ctx, silent), dates)
        for name in OUTPUTS:
            part = getattr(local, name)
            if len(part):
                got[name] = pd.concat([got[name], _conform(part.reset_index(drop=True), name)], ignore_index=True)
    union.unpersist()
    return DayResult(
        worker_day=_order(got[contract.WORKER_DAY], ["worker_id", "date"]),
        site_visit=_order(got[contract.SITE_VISIT], ["worker_id", "date", "start_ts", "site_id"]),
        day_flag=_order(got[contract.DAY_FLAG], ["worker_id", "date", "flag"]),
        point_use=_point_use_types(_order(got[contract.POINT_USE], ["worker_id", "date", "ts"])),
    )


def _point_use_types(pu: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as the engine returns them (a few codes instead of a string per point)."""
    from trajectory.clean import REASONS

    return pu.assign(
        worker_id=pu["worker_id"].astype("category"),
        grid_id=pu["grid_id"].astype("category"),
        reason=pd.Categorical(pu["reason"].astype(object), categories=list(REASONS)),
    )


def spark_outputs(spark: Any, gps: Any, ctx: EngineContext, dates: Sequence[date]) -> dict[str, Any]:
    """The four outputs as Spark DataFrames (lazy; for writing on the cluster).

    Returns a dict ``{output: DataFrame}`` plus ``'_union'``, the cached union frame they
    are filtered from. ``point_use`` can be written straight from the executors, e.g.
    ``out['point_use'].write.partitionBy('date').parquet(...)``, without collecting it.
    Full-time workers without points are not in these frames (see
    :func:`process_days_spark`).
    """
    from pyspark.sql import functions as F

    dates = sorted(set(dates))
    if isinstance(gps, str):
        df = _read_store(spark, gps)
    else:
        df = gps
    df = df.filter(F.col("date").isin(list(dates)))
    have = set(df.columns)
    cols = [c for c in POINT_COLUMNS if c in have]
    fn = _group_function(ctx, dates, cols)
    union = df.select(*cols).groupBy("worker_id").applyInArrow(fn, _spark_schema()).cache()
    out = {name: union.filter(F.col("output") == name).select(*COLUMNS[name]) for name in OUTPUTS}
    out["_union"] = union
    return out


# --- the executors' side ------------------------------------------------------------------------
def _group_function(ctx: EngineContext, dates: list[date], cols: list[str]):  # -> Callable[[pa.Table], pa.Table]
    """``fn(table) -> table`` for one worker's points; ``ctx`` rides in the closure."""
    packed = _pack_context(ctx)

    def fn(table: pa.Table) -> pa.Table:
        local = _unpack_context(packed)
        pts = _points_frame(table, cols)
        ids = sorted(set(pts["worker_id"]))
        res = process_days(pts, context_for_workers(local, ids), dates)
        return _union_table(res)

    return fn


def _pack_context(ctx: EngineContext) -> dict[str, Any]:
    """The context with the grid polygons as WKB (no shapely objects in the closure)."""
    g = ctx.grids
    if g.crs is not None and not g.crs.equals("EPSG:4326"):
        g = g.to_crs("EPSG:4326")
    attrs = pd.DataFrame(g.drop(columns=g.geometry.name))
    return {"ctx": replace(ctx, grids=None), "grid_attrs": attrs, "wkb": list(g.geometry.to_wkb())}


_CONTEXT_CACHE: dict[int, EngineContext] = {}


def _unpack_context(packed: dict[str, Any]) -> EngineContext:
    key = id(packed)  # one decode per Python worker and job, not per group
    if key not in _CONTEXT_CACHE:
        geom = gpd.GeoSeries.from_wkb(packed["wkb"], crs="EPSG:4326")
        grids = gpd.GeoDataFrame(packed["grid_attrs"], geometry=geom.values, crs="EPSG:4326")
        _CONTEXT_CACHE.clear()
        _CONTEXT_CACHE[key] = replace(packed["ctx"], grids=grids)
    return _CONTEXT_CACHE[key]


def _points_frame(table: pa.Table, cols: list[str]) -> pd.DataFrame:
    pts = table.select(cols).to_pandas()
    pts["ts"] = pd.to_datetime(pts["ts"], utc=True).astype("datetime64[us, UTC]")
    pts["worker_id"] = pts["worker_id"].astype(str)
    if "mock" in pts.columns:
        pts["mock"] = pts["mock"].fillna(False).astype(bool)
    for c in ("lon", "lat", "accuracy_m", "speed_mps"):
        if c in pts.columns:
            pts[c] = pts[c].astype("float64")
    # the store's order (run.load_points: ORDER BY worker_id, ts); ties keep the file order
    return pts.sort_values("ts", kind="stable").reset_index(drop=True)


def _union_table(res: DayResult) -> pa.Table:
    parts = []
    for name in OUTPUTS:
        df = getattr(res, name)
        n = len(df)
        if n == 0:
            continue
        arrays = []
        for field in UNION_SCHEMA:
            if field.name == "output":
                arrays.append(pa.array([name] * n, pa.string()))
            elif field.name in df.columns:
                arrays.append(_arrow(df[field.name], field.type))
            else:
                arrays.append(pa.nulls(n, field.type))
        parts.append(pa.Table.from_arrays(arrays, schema=UNION_SCHEMA))
    if not parts:
        return UNION_SCHEMA.empty_table()
    return pa.concat_tables(parts)


def _arrow(s: pd.Series, typ: pa.DataType) -> pa.Array:
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object).where(s.notna(), None)
    elif s.dtype == object and pa.types.is_string(typ):
        s = s.where(s.notna(), None)
    return pa.array(s, type=typ, from_pandas=True)


# --- the driver's side ---------------------------------------------------------------------------
def _read_store(spark: Any, path: str) -> Any:
    """The GPS Parquet store (``date`` from the hive partition folders)."""
    base = path.split("/date=")[0].rstrip("/*") if "/date=" in path else path.rstrip("/*")
    return spark.read.option("basePath", base).option("mergeSchema", "false").parquet(path)


def _spark_schema() -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(UNION_SCHEMA)


def _to_pandas(union: Any, name: str) -> pd.DataFrame:
    from pyspark.sql import functions as F

    sub = union.filter(F.col("output") == name).select(*COLUMNS[name])
    table = sub.toArrow() if hasattr(sub, "toArrow") else pa.Table.from_pandas(sub.toPandas())
    table = table.cast(pa.schema([pa.field(c, _TYPES[c]) for c in COLUMNS[name]]))
    df = table.to_pandas(date_as_object=True)
    return _conform(df, name)


def _conform(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Column types as ``process_days`` returns them (Python dates, µs UTC times, objects)."""
    df = df.copy()
    for c in COLUMNS[name]:
        typ = _TYPES[c]
        s = df[c]
        if pa.types.is_timestamp(typ):
            df[c] = pd.to_datetime(s, utc=True).astype("datetime64[us, UTC]")
        elif pa.types.is_string(typ):
            obj = s.astype(object).where(s.notna(), None).to_numpy(dtype=object)
            # as the engine builds them: inferred from Python strings (pandas 3: 'str'), except
            # the columns the engine keeps as objects with None
            df[c] = pd.Series(obj, index=df.index, dtype=object if c in _OBJECT_STRINGS else None)
        elif pa.types.is_boolean(typ):
            df[c] = s.astype(bool)
        elif pa.types.is_integer(typ):
            df[c] = s.astype(np.int64)
        elif pa.types.is_floating(typ):
            df[c] = s.astype(np.float64)
        elif pa.types.is_date(typ) and s.dtype != object:
            df[c] = pd.to_datetime(s).dt.date.astype(object)
    return df[list(COLUMNS[name])]


def _order(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return df.sort_values(by, kind="stable").reset_index(drop=True) if len(df) else df.reset_index(drop=True)
