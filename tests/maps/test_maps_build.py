"""Map pages from small synthetic frames: files, offline references, privacy, numbers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from maps_fixtures import MONTH, SECRET_LABELS, SITE_POSITIONS, write_workspace

from maps.build import grid_month_stats, reason_categories, render_month, render_playback
from maps.coverage import grid_coverage, grid_raster
from maps.offline import OfflineError, check_offline, external_references
from maps.tiles import TileConfig
from trajectory.errors import PolicyError

# every src/href of a tag that makes the browser fetch something
FETCH = re.compile(r"<(script|link|img|iframe)\b[^>]*?\b(src|href)\s*=\s*[\"']([^\"']*)[\"']", re.IGNORECASE)


def _html(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_pages_written(rendered):
    out, pages = rendered
    names = {p.relative_to(out).as_posix() for p in pages}
    assert {"overview.html", "index.html", "grids/G01.html", "grids/G02.html", "grids/G03.html"} <= names
    # flagged W1 day, short W2 day, absent-with-points W3 day; W2's absent day has no points
    assert {n for n in names if n.startswith("playback/")} == {
        "playback/W1_2026-10-09.html",
        "playback/W2_2026-10-08.html",
        "playback/W3_2026-10-09.html",
    }
    assert all(p.exists() and p.stat().st_size > 500 for p in pages)
    assert (out / "lib" / "leaflet" / "leaflet.js").exists()
    assert (out / "lib" / "licenses" / "leaflet-1.9.4.LICENSE.txt").exists()


def test_no_remote_script_or_stylesheet_and_every_local_one_exists(rendered):
    out, pages = rendered
    for page in pages:
        text = _html(page)
        refs = FETCH.findall(text)
        for _tag, _attr, url in refs:
            assert not re.match(r"^\s*(https?:)?//", url, re.IGNORECASE), f"{page.name} loads {url}"
            if page.name != "index.html":
                assert (page.parent / url).resolve().exists(), f"{page.name}: {url} missing"
        assert "http://" not in " ".join(u for *_, u in refs) and "https://" not in " ".join(u for *_, u in refs)
        # no tiles configured: no tile URL either, and nothing from the CDN defaults of folium
        for cdn in ("cdn.jsdelivr", "cdnjs", "code.jquery", "bootstrapcdn", "tile.openstreetmap"):
            assert cdn not in text, f"{page.name} mentions {cdn}"
    scripts = " ".join(u for *_, u in FETCH.findall(_html(out / "playback" / "W1_2026-10-09.html")))
    for lib in ("leaflet.js", "moment.min.js", "iso8601.js", "leaflet.timedimension.min.js"):
        assert lib in scripts
    assert "jquery" not in scripts.lower() and "bootstrap" not in scripts.lower()


def test_vendored_css_loads_nothing_remote():
    vendor = Path(__file__).resolve().parents[2] / "maps" / "vendor"
    for css in vendor.rglob("*.css"):
        assert external_references(f"<style>{css.read_text(encoding='utf-8')}</style>") == [], css


def test_personal_labels_never_in_pages(rendered):
    out, pages = rendered
    words = {w for label in SECRET_LABELS for w in label.split()} | {"张三", "住址", "label"}
    for page in pages:
        text = _html(page)
        for w in words:
            assert w not in text, f"{w!r} leaked into {page.name}"


def test_site_tooltips_show_code_type_and_periods(rendered):
    out, _ = rendered
    text = _html(out / "overview.html")
    for expected in (
        "KP001 · 重点人员 · 走访周期 1/2",
        "SG001 · 特殊人群 · 走访周期 1/1",
        "CS001 · 关爱对象 · 走访周期 0/1",
        "HZ001 · 重大安全隐患场所 · 走访周期 0/1",
    ):
        assert expected in text
    assert "巡查达标率" in text and "覆盖率" in text


def test_discard_reasons_in_chinese_and_escaped(rendered):
    out, _ = rendered
    text = _html(out / "grids" / "G01.html")
    for zh in ("重复", "精度差", "模拟定位", "漂移点", "车速", "网格外"):
        assert f"未计入：{zh}" in text
    # HTML-escaped text (maps.escape.html_text), in a JSON string whose "&" is \u0026
    assert "其他：mystery\\u0026lt;b\\u0026gt;" in text and "mystery<b>" not in text


def test_grid_month_stats(month_frames, rendered):
    from maps.build import prepare_month

    data = prepare_month(MONTH, **month_frames, tiles=TileConfig())
    stats = grid_month_stats(data.grids, data.worker_day).set_index("grid_id")
    # G01: 2 ok workdays, the exempt day excluded; G03: off day and September excluded
    assert stats.loc["G01", ["ok_days", "workdays"]].tolist() == [2, 2]
    assert stats.loc["G02", ["ok_days", "workdays"]].tolist() == [0, 2]
    assert stats.loc["G03", ["ok_days", "workdays"]].tolist() == [0, 1]
    assert stats.loc["G01", "patrol_km"] == pytest.approx(17.2)
    assert stats.loc["G01", "compliance"] == 1.0


def test_coverage_counts_points_and_walked_segments():
    geom = shapely.box(119.88, 31.68, 119.89, 31.69)
    raster = grid_raster(geom, 25.0)
    # one walk east along a row of cell centres, a point every 100 m, 60 s apart
    y_centre = raster.y0 + 20.5 * 25.0
    x = raster.x0 + 112.5 + np.arange(0, 501, 100.0)  # cell centres 4.5 .. 24.5: 500 m walked
    from trajectory.geo import from_local

    lon, lat = from_local(x, np.full(len(x), y_centre), raster.lon0, raster.lat0)
    ts = pd.Timestamp("2026-10-08T01:00Z") + pd.to_timedelta(np.arange(len(x)) * 60, unit="s")
    tracks = pd.DataFrame({"grid_id": "G", "worker_id": "W", "date": "2026-10-08", "ts": ts, "lon": lon, "lat": lat})
    grids = pd.DataFrame({"grid_id": ["G"], "geometry": [geom]})
    cov, rasters = grid_coverage(grids, tracks, 25.0, max_gap_s=300)
    assert cov.loc[0, "walked_cells"] == 21  # 500 m / 25 m + the end cell
    assert cov.loc[0, "grid_cells"] == raster.grid_cells
    assert cov.loc[0, "coverage"] == pytest.approx(21 / raster.grid_cells)
    # the same points 10 min apart: phone off in between, only the 6 point cells
    tracks["ts"] = pd.Timestamp("2026-10-08T01:00Z") + pd.to_timedelta(np.arange(len(x)) * 600, unit="s")
    cov, _ = grid_coverage(grids, tracks, 25.0, max_gap_s=300)
    assert cov.loc[0, "walked_cells"] == 6
    # a month without a single counted point: every grid at 0, not a crash
    cov, rasters = grid_coverage(grids, tracks.iloc[:0], 25.0, max_gap_s=300)
    assert cov.loc[0, "walked_cells"] == 0 and cov.loc[0, "coverage"] == 0.0
    assert len(rasters["G"][1]) == 0


def test_reason_categories():
    cats = reason_categories(
        pd.Series(["duplicate", "accuracy_50m", "mock", "jump", "vehicle_speed", "outside_grid", None, "?"])
    )
    assert cats.tolist() == [4, 3, 0, 2, 1, 6, 9, 9]
    outside = reason_categories(pd.Series([None, None]), pd.Series([False, True]))
    assert outside.tolist() == [6, 9]


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"provider": "google"}, "provider was 'google'"),
        ({"provider": "url"}, "needs url"),
        ({"provider": "tianditu"}, "tianditu_key"),
        ({"provider": "osm", "colour": "red"}, "unknown setting"),
        ({"provider": "amap", "tile_coords": "wgs84"}, "GCJ-02"),
    ],
)
def test_tile_config_rejects(mapping, message):
    with pytest.raises(PolicyError, match=message):
        TileConfig.from_mapping(mapping)


@pytest.mark.parametrize("include", [False, True])
def test_tianditu_key_only_in_pages_when_allowed(tmp_path, month_frames, include):
    tiles = TileConfig.from_mapping(
        {"provider": "tianditu", "tianditu_key": "SECRETKEY123", "include_key_in_exports": include}
    )
    pages = render_month(tmp_path, MONTH, tiles=tiles, workbook_name=None, **month_frames)
    texts = [_html(p) for p in pages]
    assert any("SECRETKEY123" in t for t in texts) == include
    if not include:
        assert all("tianditu.gov.cn" not in t for t in texts)
        assert "密钥不写入导出页面" in _html(tmp_path / "overview.html")
    for t in texts:  # tile templates live in JS; nothing is *loaded* from a remote host by tag
        assert external_references(t) == []


def test_amap_shifts_overlays_to_gcj02(tmp_path, month_frames):
    pytest.importorskip("trajectory.coords", reason="trajectory.coords (wgs84_to_gcj02) not in the tree yet")
    from trajectory.coords import wgs84_to_gcj02

    render_month(
        tmp_path, MONTH, tiles=TileConfig.from_mapping({"provider": "amap"}), workbook_name=None, **month_frames
    )
    text = _html(tmp_path / "overview.html")
    (lon, lat) = SITE_POSITIONS[3]  # hazard site HZ001: exact, so its shifted position is on the page
    glon, glat = wgs84_to_gcj02(np.array([lon]), np.array([lat]))
    assert f"{float(np.round(glat[0], 6))}" in text and f"{float(np.round(glon[0], 6))}" in text
    assert f"{lat}," not in text


def test_render_playback_alone(tmp_path, point_use, grids):
    pts = point_use[(point_use["worker_id"] == "W1") & (point_use["date"] == "2026-10-08")][
        ["ts", "lon", "lat", "counted", "reason"]
    ]
    page = render_playback(tmp_path / "dispute.html", "W1", "2026-10-08", pts, grid=grids.geometry.iloc[0])
    text = _html(page)
    assert (tmp_path / "lib" / "leaflet-timedimension" / "leaflet.timedimension.min.js").exists()
    assert "L.timeDimension" in text and "utcOffset(480)" in text
    assert external_references(text) == []


def test_index_links_relative(rendered):
    out, pages = rendered
    text = _html(out / "index.html")
    hrefs = set(re.findall(r"href=[\"']([^\"']*)[\"']", text))
    for href in (
        "overview.html",
        "grids/G01.html",
        "grids/G02.html",
        "grids/G03.html",
        "playback/W2_2026-10-08.html",
        "2026-10_考核.xlsx",
        "deductions.csv",
    ):
        assert href in hrefs, href
    assert "/tmp" not in text and "file:" not in text
    assert pages[-1] == out / "index.html"


def test_check_offline_refuses_cdn():
    with pytest.raises(OfflineError, match="cdn.example"):
        check_offline('<link rel="stylesheet" href="https://cdn.example/x.css">', "page")
    assert external_references("<script src='lib/a.js'></script><a href='https://example.org'>x</a>") == []


def test_cli_on_a_workspace(tmp_path, grids, worker_day, site_check, sites, point_use):
    ws = tmp_path / "ws"
    paths = write_workspace(ws, grids, worker_day, site_check, sites, point_use)
    run = subprocess.run(
        [sys.executable, "-m", "maps", "--workspace", str(ws), "--month", MONTH],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    out = paths.out_month(MONTH)
    assert (out / "overview.html").exists() and (out / "index.html").exists() and (out / "grids" / "G03.html").exists()
    assert (out / "playback" / "W2_2026-10-08.html").exists()
    bad = subprocess.run(
        [sys.executable, "-m", "maps", "--workspace", str(ws), "--month", "2026-13"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr  # a bad month is refused (exit_code: InputError)


def test_a_new_rendering_removes_pages_it_no_longer_writes(tmp_path, month_frames):
    out = tmp_path / MONTH
    first = render_month(out, MONTH, tiles=TileConfig(), **month_frames)
    assert len(list((out / "playback").glob("*.html"))) == 3
    (out / "grids" / "OLD.html").write_text("a grid that is gone", encoding="utf-8")
    (out / "notes.txt").write_text("not ours", encoding="utf-8")
    again = render_month(out, MONTH, tiles=TileConfig(), max_playback=1, **month_frames)
    assert sorted(p.name for p in (out / "playback").glob("*.html")) == ["W1_2026-10-09.html"]  # flagged first
    assert not (out / "grids" / "OLD.html").exists() and (out / "notes.txt").exists()
    assert all(p.exists() for p in again) and len(again) == len(first) - 2
