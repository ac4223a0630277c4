"""One schema source (issue 16): the DuckDB DDL, the Arrow schemas and the Spark types derived
from ``trajectory.contract.SCHEMAS`` agree with what the store really creates in a real
``patrol.duckdb`` and with what the engine writes into it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from walks import DAY, at, context, loop, still, walk

from trajectory import contract as c
from trajectory import engine, files, flags, ingest, spark_engine, store, visits
from trajectory.engine import process_days
from trajectory.workspace import WorkspacePaths


def _describe(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    """Column names and types as DuckDB reports them (its long name for TIMESTAMPTZ shortened)."""
    rows = con.execute(f"DESCRIBE {table}").fetchall()
    return [(name, "TIMESTAMPTZ" if kind == "TIMESTAMP WITH TIME ZONE" else kind) for name, kind, *_ in rows]


def _contract(table: str, *, extra: bool = False, view: bool = False) -> list[tuple[str, str]]:
    t = c.SCHEMAS[table]
    cols = [*t.columns, *(t.extra if extra else ())]
    if view:  # read_parquet lists the hive partition column last
        cols = [col for col in cols if col.name != t.partition] + [col for col in cols if col.name == t.partition]
    return [(col.name, col.type) for col in cols]


@pytest.fixture()
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = store.connect(WorkspacePaths(tmp_path))
    yield con
    con.close()


def test_the_store_creates_every_table_with_the_contract_columns_and_types(con: duckdb.DuckDBPyConnection) -> None:
    tables = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == set(c.DUCKDB_TABLES) == set(store.TABLE_DDL)
    for table in c.DUCKDB_TABLES:
        assert _describe(con, table) == _contract(table), table
    keys = con.execute(
        "SELECT table_name, constraint_column_names FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'"
    ).fetchall()
    assert keys == [(c.INGEST_MANIFEST, ["file_hash"])]


def test_arrow_schemas_are_what_duckdb_returns_for_the_tables(con: duckdb.DuckDBPyConnection) -> None:
    for table in c.DUCKDB_TABLES:
        got = con.sql(f"SELECT * FROM {table}").to_arrow_table().schema
        assert got.remove_metadata().equals(c.arrow_schema(table)), table


def test_the_views_placeholder_has_the_columns_of_the_views_over_real_files(tmp_path: Path) -> None:
    """An empty store's views and the views over written Parquet parts have the same columns
    and types (the old point_use placeholder lacked grid_id)."""
    paths = WorkspacePaths(tmp_path)
    con = store.connect(paths)
    try:
        for view in store.PARQUET_VIEWS:
            assert _describe(con, view) == _contract(view, view=True), view
        # ingest's parts (GPS_STORE_SCHEMA) and the engine's point_use parts
        assert ingest.GPS_STORE_SCHEMA.equals(c.arrow_schema(c.GPS_POINT))
        ctx = context()
        points = walk(loop(200), at(9))
        res = process_days(points, ctx, [DAY])
        gps = pa.Table.from_pandas(points.assign(mock=False, device_id="d1", file_hash="h", speed_mps=None))
        gps = gps.select(c.arrow_schema(c.GPS_POINT).names).cast(c.arrow_schema(c.GPS_POINT))
        store.write_parquet_atomic(gps, store.gps_part_path(paths, DAY, "h" * 16, 0))
        part = pa.Table.from_pandas(res.point_use.drop(columns=["date"]), preserve_index=False)
        store.write_parquet_atomic(part, paths.point_use_store / f"date={DAY.isoformat()}" / "part-00000.parquet")
        store.refresh_views(con, paths)
        for view in store.PARQUET_VIEWS:
            assert _describe(con, view) == _contract(view, view=True), view
        assert con.execute(f"SELECT count(*) FROM {c.POINT_USE}").fetchone() == (len(points),)
    finally:
        con.close()


def test_the_engine_output_written_to_the_store_has_the_contract_types(con: duckdb.DuckDBPyConnection) -> None:
    """worker_day's extra columns are added on first write of the engine's frame with the
    contract's types (and Spark's union schema, derived from it), whatever the first day holds:
    a day without a stay gives int64 ``stationary_s`` in pandas, and once gave a BIGINT column."""
    walked = process_days(walk(loop(200), at(9)), context(), [DAY])
    assert walked.worker_day["stationary_s"].dtype == "int64"  # no stay that day
    stay = pd.concat([walk(loop(200), at(9)), still((200.0, 0.0), at(11), 600.0)], ignore_index=True)
    stayed = process_days(stay, context(sites=[("s1", c.SITE_HAZARD, "g1", 200.0, 0.0)]), [DAY])
    assert len(stayed.site_visit) == 1
    for table, df in (
        (c.WORKER_DAY, walked.worker_day),
        (c.SITE_VISIT, stayed.site_visit),
        (c.DAY_FLAG, walked.day_flag),
    ):
        store.replace_rows(con, table, df, "true")
        assert _describe(con, table) == _contract(table, extra=True), table
    store.replace_rows(con, c.WORKER_DAY, stayed.worker_day, "true")
    got = con.execute(f"SELECT stationary_s FROM {c.WORKER_DAY}").fetchone()
    assert got is not None and got[0] == pytest.approx(float(stayed.worker_day["stationary_s"].iloc[0]))


def test_spark_types_are_derived_from_the_contract() -> None:
    for name in spark_engine.OUTPUTS:
        assert spark_engine.COLUMNS[name] == c.SCHEMAS[name].names(extra=True)
        for col in (*c.SCHEMAS[name].columns, *c.SCHEMAS[name].extra):
            assert spark_engine.UNION_SCHEMA.field(col.name).type == c.arrow_type(col.type), (name, col.name)
    types = pytest.importorskip("pyspark.sql.types")
    from pyspark.sql.pandas.types import from_arrow_schema

    spark = {f.name: f.dataType for f in from_arrow_schema(spark_engine.UNION_SCHEMA).fields}
    expected = {
        "VARCHAR": types.StringType(),
        "BIGINT": types.LongType(),
        "DOUBLE": types.DoubleType(),
        "BOOLEAN": types.BooleanType(),
        "DATE": types.DateType(),
        "TIMESTAMPTZ": types.TimestampType(),
    }
    for name in spark_engine.OUTPUTS:
        for col in (*c.SCHEMAS[name].columns, *c.SCHEMAS[name].extra):
            assert spark[col.name] == expected[col.type], (name, col.name)


def test_the_engine_column_lists_and_table_names_come_from_the_contract() -> None:
    assert engine.POINT_USE_COLUMNS is c.POINT_USE_COLUMNS
    assert engine.WORKER_DAY_EXTRA is c.WORKER_DAY_EXTRA
    assert visits.SITE_VISIT_COLUMNS is c.SITE_VISIT_COLUMNS
    assert flags.DAY_FLAG_COLUMNS is c.DAY_FLAG_COLUMNS
    assert store.PARQUET_VIEWS == {c.GPS_POINT: "gps", c.POINT_USE: "point_use"}
    assert WorkspacePaths(Path("/w")).point_use_store == Path("/w/store") / c.POINT_USE
    # every column name has one type: the tables sharing a name agree
    seen: dict[str, str] = {}
    for t in c.SCHEMAS.values():
        for col in (*t.columns, *t.extra):
            assert seen.setdefault(col.name, col.type) == col.type, (t.name, col.name)


def test_write_atomic_replaces_whole_or_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.csv"
    files.write_bytes_atomic(target, b"old")
    assert target.read_bytes() == b"old"

    def half_then_fail(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.write_atomic(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.csv"]  # no temporary left
    files.write_atomic(target, lambda tmp: tmp.write_text("new"), fsync=False)
    assert target.read_text() == "new"
    assert files.temp_path(target).name.startswith(".a.csv.") and files.temp_path(target).suffix == ".tmp"
