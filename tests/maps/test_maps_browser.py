"""The pages in a real headless Chromium with the network blocked: no JS error, layers drawn."""

from __future__ import annotations

import io
import time

import pytest
from maps_fixtures import open_page as _open

pytestmark = pytest.mark.browser


def _count(driver, selector: str) -> int:
    return int(driver.execute_script("return document.querySelectorAll(arguments[0]).length", selector))


def _distinct_colours(driver) -> int:
    from PIL import Image

    img = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    return len(img.resize((300, 225)).getcolors(maxcolors=300 * 225))


@pytest.mark.parametrize(("page", "heat_shown"), [("overview.html", False), ("grids/G01.html", True)])
def test_map_pages_render_offline(driver, rendered, page, heat_shown):
    out, _ = rendered
    severe = _open(driver, out / page)
    assert severe == [], severe
    assert _count(driver, "path.leaflet-interactive") > 0  # grid polygons, site markers
    # the overview's first look is the compliance colours: its heat map waits in the layer control
    assert _count(driver, "canvas.leaflet-heatmap-layer") == int(heat_shown)
    assert _distinct_colours(driver) > 20  # not a blank page


def test_overview_heat_map_toggles_in_the_layer_control(driver, rendered):
    out, _ = rendered
    assert _open(driver, out / "overview.html") == []
    labels = driver.execute_script(
        "return Array.from(document.querySelectorAll('.leaflet-control-layers-overlays label'))"
        ".map(function(l){ return [l.textContent.trim(), l.querySelector('input').checked]; })"
    )
    heat = [checked for text, checked in labels if text.startswith("巡查热力图")]
    assert heat == [False], labels
    grids = [checked for text, checked in labels if text.startswith("网格巡查达标率")]
    assert grids == [True], labels
    driver.execute_script(
        "Array.from(document.querySelectorAll('.leaflet-control-layers-overlays label'))"
        ".filter(function(l){ return l.textContent.trim().indexOf('巡查热力图') === 0; })[0].querySelector('input').click();"
    )
    time.sleep(0.3)
    assert _count(driver, "canvas.leaflet-heatmap-layer") == 1
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []


def test_grid_page_worker_day_layers_toggle(driver, rendered):
    out, _ = rendered
    assert _open(driver, out / "grids" / "G01.html") == []
    before = _count(driver, "path.leaflet-interactive")
    # tick every overlay in the layer control: the worker-days' tracks and discarded points appear
    driver.execute_script(
        "document.querySelectorAll('.leaflet-control-layers-overlays input:not(:checked)').forEach(function(b){b.click();});"
    )
    time.sleep(0.3)
    after = _count(driver, "path.leaflet-interactive")
    assert after >= before + 2 + 35  # two solid tracks, 35 discarded points on W1's first day
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []


def test_playback_page_plays(driver, rendered):
    out, _ = rendered
    severe = _open(driver, out / "playback" / "W1_2026-10-09.html")
    assert severe == [], severe
    assert _count(driver, ".leaflet-bar-timecontrol") == 1
    shown = driver.execute_script("return document.querySelector('.timecontrol-date').textContent")
    assert shown.startswith("2026-10-09 09:00")  # 01:00 UTC shown in Asia/Shanghai time
    driver.execute_script(
        "var k = Object.keys(window).filter(function(n){return n.indexOf('map_') === 0;})[0];"
        "var td = window[k].timeDimension; td.setCurrentTimeIndex(td.getAvailableTimes().length - 1);"
    )
    time.sleep(0.5)
    assert driver.execute_script("return document.querySelector('.timecontrol-date').textContent").startswith(
        "2026-10-09 10:"
    )
    assert _count(driver, "path.leaflet-interactive") > 0
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    assert _distinct_colours(driver) > 20


def test_index_page_opens(driver, rendered):
    out, _ = rendered
    assert _open(driver, out / "index.html", is_map=False) == []
    assert _count(driver, "a[href]") >= 7
