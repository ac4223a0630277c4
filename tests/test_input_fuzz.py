"""Workspace and indicator inputs under hostile and broken files (hypothesis).

Generated grid GeoJSON (garbage bytes, wrong JSON, every geometry type, collections as
``make_valid`` returns them, bow-ties, metres without a crs, NaN and huge coordinates, bad or
duplicate properties, bogus crs members), rosters, sites, leave and calendar files (wrong and
duplicate headers, encodings, garbage values) and indicator tables (CSV or one workbook, every
column filled with near-misses) are loaded and scored. The property: each either loads (and then
holds what the contract promises) or raises :class:`~trajectory.errors.InputError`, which the
commands turn into exit 2 with a one-line message naming the file (and the row and column of a
wrong value). Any other exception fails the test: a user would see a traceback.
"""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.inputs import COLUMN_ALIASES, SCHEMA, TABLE_ALIASES, TABLES, check_required, load_indicators
from scoring.policy import load_policy
from scoring.quality import event_quality_flags
from scoring.rules import score_month
from trajectory.errors import InputError
from trajectory.workspace import load_workspace

settings.register_profile(
    "input-fuzz",
    max_examples=100,
    deadline=None,
    derandomize=True,  # the same examples on every machine: a CI failure reproduces locally
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("input-fuzz")

MONTH = "2026-10"
LON, LAT, SIDE = 119.95, 31.78, 0.01
POLICY = load_policy()

# --- values -----------------------------------------------------------------------------------

nasty_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        ["", " ", "NaN", "nan", "inf", "-inf", "null", "None", '"', "a,b", "line\nbreak", "\r\n", "\ufeff", "=1+1"]
    ),
    st.text(alphabet="网格员巡查西太湖社区村是否", min_size=1, max_size=6),
    st.integers(300, 3000).map(lambda n: "x" * n),  # a very long field
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(-200, 200).map(lambda f: f"{f:.6f}"),
)


def one_of_or_nasty(*values: str) -> st.SearchStrategy[str]:
    """Mostly a good value (so that a file gets past its first rows), now and then a near-miss."""
    good = st.sampled_from(values)
    return st.one_of(good, good, good, good, nasty_text, numbers)


def assert_reported(exc: InputError, names: set[str]) -> None:
    """What the CLI prints for an InputError: one line that names the file."""
    text = str(exc)
    assert exc.file and text.startswith(exc.file), text
    assert any(name in exc.file for name in names), exc.file
    assert "\n" not in text and "\r" not in text, text  # `print(f"error: {exc}")` stays one line
    assert len(text) < 2000, text[:200]
    if exc.row is not None:
        assert f"row {exc.row}" in text


# --- grids ------------------------------------------------------------------------------------


def box(i: int = 0, j: int = 0) -> shapely.Polygon:
    return shapely.box(LON + i * SIDE, LAT + j * SIDE, LON + (i + 1) * SIDE, LAT + (j + 1) * SIDE)


def spiked(i: int = 0) -> shapely.Polygon:
    x0, y0, x1, y1 = box(i).bounds
    xm = (x0 + x1) / 2
    return shapely.Polygon([(x0, y0), (x1, y0), (x1, y1), (xm, y1), (xm, y1 + SIDE / 4), (xm, y1), (x0, y1)])


def bow_tie(i: int = 0) -> shapely.Polygon:
    x0, y0, x1, y1 = box(i).bounds
    return shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])


def geojson(geom: shapely.Geometry) -> dict:
    return json.loads(shapely.to_geojson(geom))


def _metres(i: int) -> dict:
    x, y = 13_352_772.9 + i * 1000, 3_734_466.7
    return {"type": "Polygon", "coordinates": [[[x, y], [x + 900, y], [x + 900, y + 900], [x, y + 900], [x, y]]]}


@st.composite
def grid_geometry(draw: st.DrawFn) -> object:
    i = draw(st.integers(0, 3))  # neighbours, or the same place (an overlap)
    kind = draw(
        st.sampled_from(
            [
                *["box"] * 10,  # most features are fine: the broken one must not hide behind another error
                "metres",
                "metres",
                "swapped",
                "made-valid",
                "spiked",
                "bowtie",
                "made-valid",
                "collection-lines",
                "nested",
                "point",
                "line",
                "null",
                "empty",
                "metres",
                "swapped",
                "huge",
                "nan",
                "short-ring",
                "unclosed",
                "garbage",
                "multi-overlapping",
            ]
        )
    )
    g = box(i)
    if kind == "box":
        return geojson(g)
    if kind == "spiked":
        return geojson(spiked(i))
    if kind == "bowtie":
        return geojson(bow_tie(i))
    if kind == "made-valid":
        return geojson(shapely.make_valid(draw(st.sampled_from([spiked(i), bow_tie(i)]))))
    if kind == "collection-lines":
        return geojson(shapely.GeometryCollection([g.boundary, shapely.Point(LON, LAT)]))
    if kind == "nested":
        return geojson(shapely.GeometryCollection([shapely.GeometryCollection([g]), g.boundary]))
    if kind == "point":
        return {"type": "Point", "coordinates": [LON, LAT]}
    if kind == "line":
        return geojson(g.boundary)
    if kind == "null":
        return None
    if kind == "empty":
        return {"type": draw(st.sampled_from(["Polygon", "MultiPolygon", "GeometryCollection"])), "coordinates": []}
    if kind == "metres":
        return _metres(i)
    if kind == "swapped":
        return {"type": "Polygon", "coordinates": [[[y, x] for x, y in g.exterior.coords]]}
    if kind == "huge":
        return {"type": "Polygon", "coordinates": [[[1e308, 0], [1e308, 1], [-1e308, 1], [1e308, 0]]]}
    if kind == "nan":
        return {"type": "Polygon", "coordinates": [[[math.nan, LAT], [LON, LAT], [LON, math.inf], [math.nan, LAT]]]}
    if kind == "short-ring":
        return {"type": "Polygon", "coordinates": [[[LON, LAT], [LON + SIDE, LAT], [LON, LAT]]]}
    if kind == "unclosed":
        return {"type": "Polygon", "coordinates": [list(map(list, g.exterior.coords))[:-1]]}
    if kind == "garbage":
        return draw(st.one_of(st.text(max_size=10), st.integers(), st.just({"type": "Polygon"}), st.just([1, 2])))
    half = shapely.box(*(np.asarray(g.bounds) + [SIDE / 2, 0, SIDE / 2, 0]))
    return geojson(shapely.MultiPolygon([g, half]))  # parts overlapping each other: invalid


grid_property = {
    "grid_id": st.one_of(st.sampled_from(["G1", "G2", "G3", "G1 ", "", "网格1"]), st.integers(0, 3), st.none()),
    "grid_name": st.one_of(st.text(max_size=8), st.none(), st.integers()),
    "grid_type": st.one_of(
        st.sampled_from(["community", "village", "社区", "村", "Village", "town", ""]), st.none(), st.integers()
    ),
}


@st.composite
def grid_file(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["collection"] * 16 + ["garbage", "empty", "not-a-collection", "no-features"]))
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=300))
    if kind == "empty":
        return b""
    if kind == "not-a-collection":
        return json.dumps(draw(st.one_of(st.integers(), st.lists(st.integers(), max_size=3), st.text()))).encode()
    features = []
    for k in range(draw(st.integers(0 if kind == "no-features" else 1, 3))):
        good = {"grid_id": f"G{k + 1}", "grid_name": f"网格{k + 1}", "grid_type": "社区"}
        # now and then a property is wrong or absent
        props = {
            name: (draw(value) if draw(st.integers(0, 7)) == 0 else good[name])
            for name, value in grid_property.items()
            if draw(st.integers(0, 15)) > 0
        }
        features.append({"type": "Feature", "properties": props, "geometry": draw(grid_geometry())})
    fc: dict = {"type": "FeatureCollection", "features": features}
    crs = draw(
        st.sampled_from([None, None, None, "urn:ogc:def:crs:EPSG::3857", "EPSG:4326", "EPSG:999999", "nonsense"])
    )
    if crs:
        fc["crs"] = {"type": "name", "properties": {"name": crs}}
    return json.dumps(fc, ensure_ascii=draw(st.booleans())).encode("utf-8")


WORKERS_OK = "worker_id,worker_name,grid_id,full_time\nw1,张三,G1,true\n"


def write_base(root: Path, grids: bytes | None = None, workers: bytes | None = None) -> Path:
    (root / "grids_geojson").mkdir(parents=True)
    if grids is None:
        fc = {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"grid_id": gid, "grid_name": "网格", "grid_type": "社区"},
                    "geometry": geojson(box(i)),
                }
                for i, gid in enumerate(("G1", "G2"))
            ],
        }
        grids = json.dumps(fc).encode("utf-8")
    (root / "grids_geojson" / "grids.geojson").write_bytes(grids)
    (root / "workers.csv").write_bytes(workers if workers is not None else WORKERS_OK.encode("utf-8"))
    return root


@settings(FUZZ)
@given(data=grid_file())
def test_fuzzed_grid_file_loads_or_is_reported(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = write_base(Path(tmp) / "ws", grids=data, workers=b"worker_id,worker_name,grid_id,full_time\n")
        try:
            ws = load_workspace(root)
        except InputError as exc:
            assert_reported(exc, {"grids.geojson", "grids_geojson"})
            return
        geom = ws.grids.geometry.values
        assert len(ws.grids) and ws.grids["grid_id"].is_unique and (ws.grids["grid_id"] != "").all()
        assert shapely.is_valid(geom).all() and np.isin(shapely.get_type_id(geom), (3, 6)).all()
        assert (shapely.area(geom) > 0).all()
        x0, y0, x1, y1 = ws.grids.total_bounds
        assert -180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90
        assert set(ws.grids["grid_type"]) <= {"community", "village"}


# --- roster, sites, leave, calendar -----------------------------------------------------------

CSV_FILES = {
    "workers.csv": {
        "worker_id": one_of_or_nasty("w1", "w2", "w3"),
        "worker_name": nasty_text,
        "grid_id": one_of_or_nasty("G1", "G2", "G9"),
        "full_time": one_of_or_nasty("true", "false", "是", "否", "1", "0"),
    },
    "sites.csv": {
        "site_id": one_of_or_nasty("S1", "S2"),
        "site_type": one_of_or_nasty("key_person", "special_group", "care_subject", "hazard_site"),
        "grid_id": one_of_or_nasty("G1", "G2"),
        "lon": st.one_of(st.floats(LON - 0.01, LON + 0.02).map(str), numbers, nasty_text),
        "lat": st.one_of(st.floats(LAT - 0.01, LAT + 0.02).map(str), numbers, nasty_text),
        "radius_m": one_of_or_nasty("", "50", "0", "20000"),
        "label": nasty_text,
    },
    "leave.csv": {
        "worker_id": one_of_or_nasty("w1", "w9"),
        "start_date": one_of_or_nasty("2026-10-12", "2026/10/13", "2026-02-30"),
        "end_date": one_of_or_nasty("2026-10-13", "2026-10-11"),
        "filed_date": one_of_or_nasty("2026-10-14", "yesterday"),
        "reason": nasty_text,
    },
    "calendar.csv": {"date": one_of_or_nasty("2026-10-10", "10/10/2026"), "workday": one_of_or_nasty("true", "0")},
}


@st.composite
def csv_bytes(draw: st.DrawFn, columns: dict[str, st.SearchStrategy[str]]) -> bytes:
    """A header (some columns, maybe padded, upper-cased or twice, plus extras) and rows for it."""
    kind = draw(st.sampled_from(["csv"] * 8 + ["garbage", "empty", "header-only"]))
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=200))
    if kind == "empty":
        return b""
    names = list(columns)
    if draw(st.integers(0, 3)) > 0:  # mostly the full header, now and then a column short
        cols = [c for c in names if draw(st.integers(0, 12)) > 0]
    else:
        cols = draw(st.lists(st.sampled_from(names), unique=True, min_size=0, max_size=len(names)))
    header = [draw(st.sampled_from([c, c, c, c, f" {c} ", f"{c} ", c.upper()])) for c in cols]
    # extras: a contract column once more (padded or not) in one file of four, unknown names, blanks
    if cols and draw(st.integers(0, 3)) == 0:
        header.append(draw(st.sampled_from(cols)) + draw(st.sampled_from(["", " "])))
    header += draw(st.lists(st.sampled_from(["extra", "备注", ""]), max_size=2))
    n = 0 if kind == "header-only" else draw(st.integers(0, 6))
    rows = [[draw(columns.get(h.strip(), nasty_text)) for h in header] for _ in range(n)]
    buf = io.StringIO()
    csv.writer(buf, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))).writerows([header, *rows])
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gbk"]))
    try:
        return buf.getvalue().encode(encoding)
    except UnicodeEncodeError:  # not every generated character exists in GBK
        return buf.getvalue().encode("utf-8")


@settings(FUZZ)
@given(
    files=st.fixed_dictionaries(
        {"workers.csv": csv_bytes(CSV_FILES["workers.csv"])},
        optional={name: csv_bytes(cols) for name, cols in CSV_FILES.items() if name != "workers.csv"},
    )
)
def test_fuzzed_roster_sites_leave_calendar_load_or_are_reported(files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = write_base(Path(tmp) / "ws", workers=files["workers.csv"])
        for name, data in files.items():
            (root / name).write_bytes(data)
        try:
            ws = load_workspace(root)
        except InputError as exc:
            assert_reported(exc, set(files))
            return
        assert ws.workers["worker_id"].is_unique and ws.workers["grid_id"].isin(ws.grids["grid_id"]).all()
        assert ws.workers["full_time"].dtype == bool
        if len(ws.sites):
            assert ws.sites["site_id"].is_unique and ws.sites["grid_id"].isin(ws.grids["grid_id"]).all()
            assert ws.sites["lon"].between(-180, 180).all() and ws.sites["lat"].between(-90, 90).all()
            assert (ws.sites["radius_m"] > 0).all()
        if len(ws.leave):
            assert ws.leave["worker_id"].isin(ws.workers["worker_id"]).all()
            assert (ws.leave["end_date"] >= ws.leave["start_date"]).all()


# --- indicator tables -------------------------------------------------------------------------

# good values of each kind (in and out of the month, every accepted spelling) and near-misses
_GOOD = {
    "date": ("2026-10-05", "2026/10/31", "2026-10-01 08:00", "2026年10月9日", "2026-09-15", "2026-11-01"),
    "datetime": ("2026-10-05 08:00", "2026-10-31T23:30:00+08:00", "2026-10-31T16:30:00Z", "2026-09-30 23:00"),
    "id": ("G1", "G2", "E1", "W1", "G9"),
    "bool": ("true", "false", "是", "否", "1", "0"),
    "count": ("0", "1", "80", "3.0", "100"),
    "text": ("占道经营", ""),
}
_NEAR = {
    "date": ("/1", "2026", "0000-01-01", "2026-02-30", "10/5/2026", "99999-01-01"),
    "datetime": ("2026-13-01 08:00", "2026-10-05 25:00", "2026-03-08 02:30", "/1 08:00"),
    "id": ("",),
    "bool": ("maybe", "2"),
    "count": ("-1", "1.5", "1e12", "1e400", "nan"),
    "number": ("inf", "200", "-91", "east"),
    "text": ("\n",),
}


def good_value(table: str, column: str) -> st.SearchStrategy[str]:
    col = next(c for c in SCHEMA[table] if c.name == column)
    if col.kind == "enum":
        assert col.values is not None
        return st.sampled_from([*col.values, *(a for aliases in col.values.values() for a in aliases)])
    if col.name == "subcategory":
        return st.sampled_from(list(POLICY.info_collection.required_subcategories))
    if col.name in ("lon", "lat"):
        return st.sampled_from([f"{LON + 0.005:.6f}" if col.name == "lon" else f"{LAT + 0.005:.6f}", ""])
    return st.sampled_from(_GOOD[col.kind])


def near_miss(table: str, column: str) -> st.SearchStrategy[str]:
    col = next((c for c in SCHEMA[table] if c.name == column), None)
    own = st.sampled_from(_NEAR[col.kind]) if col is not None and col.kind in _NEAR else nasty_text
    return st.one_of(own, own, nasty_text, numbers)


@st.composite
def indicator_folder(draw: st.DrawFn) -> tuple[str, dict[str, pd.DataFrame]]:
    """Good tables (some missing, some header-only), then up to three mutations: a near-miss cell,
    a column dropped, given twice or in both languages, an extra column, a blank row."""
    form = draw(st.sampled_from(["csv", "csv-zh", "xlsx"]))
    tables: dict[str, pd.DataFrame] = {}
    for table in TABLES:
        if draw(st.integers(0, 7)) == 0:
            continue  # no file: missing
        names = [c.name for c in SCHEMA[table]]
        rows = [{c: draw(good_value(table, c)) for c in names} for _ in range(draw(st.integers(0, 4)))]
        tables[table] = pd.DataFrame(rows, columns=names, dtype=object)
    for _ in range(draw(st.integers(0, 3))):
        if not tables:
            break
        table = draw(st.sampled_from(sorted(tables)))
        frame = tables[table]
        what = draw(st.sampled_from(["cell", "cell", "cell", "drop", "twice", "both-languages", "extra", "blank"]))
        if what == "cell" and len(frame):
            col = draw(st.sampled_from(list(frame.columns)))
            frame.loc[draw(st.sampled_from(list(frame.index))), col] = draw(near_miss(table, str(col)))
        elif what == "drop" and len(frame.columns):
            frame = frame.drop(columns=[draw(st.sampled_from(list(frame.columns)))])
        elif what in ("twice", "both-languages") and len(frame.columns):
            col = str(draw(st.sampled_from(list(frame.columns))))
            other = COLUMN_ALIASES.get(col, (col,))[0] if what == "both-languages" else f"{col} "
            frame = frame.assign(**{other: frame[col]})
        elif what == "extra":
            frame = frame.assign(备注=draw(nasty_text))
        elif what == "blank":
            frame = pd.concat([frame, pd.DataFrame([{c: "" for c in frame.columns}])], ignore_index=True)
        tables[table] = frame
    out = {}
    for table, frame in tables.items():
        zh = form != "csv" and draw(st.booleans())
        if zh:
            frame = frame.rename(columns={c: COLUMN_ALIASES.get(str(c), (c,))[0] for c in frame.columns})
        out[TABLE_ALIASES[table][0] if zh else table] = frame
    return form, out


def _xlsx_safe(frame: pd.DataFrame) -> pd.DataFrame:
    # openpyxl refuses control characters in cells; a centre's workbook cannot hold them either
    return frame.apply(lambda s: s.astype(str).str.replace(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", regex=True))


@settings(FUZZ, max_examples=60)  # each example scores a month: the slowest property
@given(folder=indicator_folder())
def test_fuzzed_indicator_files_score_or_are_reported(folder: tuple[str, dict[str, pd.DataFrame]]) -> None:
    form, tables = folder
    grids = load_workspace(write_base(Path(tempfile.mkdtemp()) / "ws")).grids
    workers = pd.DataFrame({"worker_id": ["W1"], "grid_id": ["G1"], "full_time": [True]})
    with tempfile.TemporaryDirectory() as tmp:
        month_dir = Path(tmp) / "indicators" / MONTH
        month_dir.mkdir(parents=True)
        if form == "xlsx":
            with pd.ExcelWriter(month_dir / "指标.xlsx", engine="openpyxl") as xw:
                pd.DataFrame({"说明": ["本月指标"]}).to_excel(xw, sheet_name="说明", index=False)  # not a table
                for name, frame in tables.items():
                    _xlsx_safe(frame).to_excel(xw, sheet_name=name, index=False)
        else:
            for name, frame in tables.items():
                frame.to_csv(month_dir / f"{name}.csv", index=False, encoding="utf-8")
        try:
            ind = load_indicators(month_dir, POLICY, grids["grid_id"])
            check_required(ind, allow_missing=set(TABLES))
            flags = event_quality_flags(
                ind.events[ind.events["grid_id"].isin(grids["grid_id"])], grids, None, workers, POLICY
            )
            result = score_month(
                MONTH, grids[["grid_id", "grid_name", "grid_type"]], ind, pd.DataFrame(), POLICY, flags
            )
        except InputError as exc:
            assert_reported(exc, {f"indicators/{MONTH}"})
            return
    scores = result.grid_month_score
    scored = scores[scores["missing_tables"] == ""]
    assert scored["score"].between(0, scored["max_score"] + POLICY.events.ranking_bonus_cap).all()
    items = scores[scores["item_code"] != "total"]
    assert items[items["missing_tables"] != ""]["score"].isna().all()  # 暂缺: not scored
    total = scores[scores["item_code"] == "total"].set_index("grid_id")["score"]
    assert np.allclose(total, items.groupby("grid_id")["score"].sum().reindex(total.index))
    for table in ("complaints", "service_records", "inspections"):  # only the month's records count
        dates = getattr(ind, table)["date"]
        assert all(str(d).startswith(MONTH) for d in dates)
    assert all(str(t.tz_convert("Asia/Shanghai")).startswith(MONTH) for t in ind.events["reported_at"].dropna())


# what the properties found in the code before them (each crashed, or read a wrong value silently)
@pytest.mark.parametrize(
    "name, text, column",
    [
        # a header naming full_time twice (one with a trailing space): AttributeError
        ("workers.csv", "worker_id,worker_name,grid_id,full_time,full_time \nw1,张三,G1,true,false\n", "full_time"),
        # a quoted value with a line break: the message printed on two lines
        ("workers.csv", 'worker_id,worker_name,grid_id,full_time\nw1,张三,G1,"maybe\nnot"\n', "full_time"),
        ("sites.csv", "site_id,site_type,grid_id,lon,lat\nS1,hazard_site,G1,1e400,31.78\n", "lon"),
    ],
    ids=["duplicate-header", "newline-in-value", "overflowing-number"],
)
def test_workspace_examples_the_fuzzing_found(tmp_path: Path, name: str, text: str, column: str) -> None:
    root = write_base(tmp_path / "ws")
    (root / name).write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_workspace(root)
    assert_reported(err.value, {name})
    assert err.value.column == column


@pytest.mark.parametrize(
    "value, column, found",
    [
        ("1e30", "count", "'1e30' is not a whole number"),  # TypeError: cannot safely cast to int64
        ("/1", "date", "'/1' is not a date"),  # ValueError: year 0 is out of range
        ("2026", "date", "'2026' is not a date"),  # read as 2026-01-01 and counted in January's folder
        ("10/5/2026", "date", "'10/5/2026' is not a date"),  # read in US order
    ],
)
def test_indicator_examples_the_fuzzing_found(tmp_path: Path, value: str, column: str, found: str) -> None:
    row = {"date": "2026-10-05", "grid_id": "G1", "count": "1", column: value}
    folder = tmp_path / "indicators" / MONTH
    folder.mkdir(parents=True)
    pd.DataFrame([row]).to_csv(folder / "service_records.csv", index=False)
    with pytest.raises(InputError) as err:
        load_indicators(folder, POLICY)
    assert_reported(err.value, {f"indicators/{MONTH}/service_records.csv"})
    assert (err.value.row, err.value.column) == (1, column) and found in str(err.value)
