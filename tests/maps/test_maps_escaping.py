"""Hostile workspace text on the map pages: shown as typed, never run (``maps.escape``).

A real workspace (inputs + store, loaded by ``trajectory.workspace``) gets a payload corpus in
every text field the loader accepts: grid ids and names, worker ids and names, site ids and
labels, the engine's reason codes, and the tile attribution of ``patrol.toml``. The pages are
built through ``render_workspace_month`` and opened in headless Chromium with the network
blocked. Every payload, if it ran, would set ``window.__pwned`` (or ``document.title``); if
branca evaluated it as Jinja, ``{{ 7*7 }}`` would show as ``49`` or ``{% raw %}`` would stop the
build.
"""

from __future__ import annotations

import json
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from maps_fixtures import MONTH, open_page, write_day_flags, write_scores, write_workspace

# one string with every kind of payload; it starts and ends with a letter because the loader
# strips CSV and GeoJSON values
PAYLOAD = (
    "P'\"`${window.__pwned='template'}${document.title='x'}"
    "</script><script>window.__pwned='script'</script><!--"
    "<img src=x onerror=\"window.__pwned='img'\"><svg onload=window.__pwned='svg'>"
    " javascript:window.__pwned='url' "
    "{{ 7*7 }}{% raw %}{# c "
    "a\nb\r\nc\rd \u202eRTL\u202c \u2028LS\u2029PS \\u0041\\ &amp; &lt;b&gt; 网格“中文”"
    "Z"
)
LONG = "长" * 2000 + PAYLOAD + "x" * 3000
WORKERS = {"W1": "W1" + PAYLOAD, "W2": "W2" + PAYLOAD, "W3": "W3" + LONG}
GRID_IDS = {"G01": "G01" + PAYLOAD, "G02": "G02", "G03": "G03" + LONG}
GRID_NAMES = {"G01": "名" + PAYLOAD, "G02": "塘洋村 " + LONG, "G03": "西太湖\u202e网格"}
SITES = {s: s + PAYLOAD for s in ("KP001", "SG001", "CS001", "HZ001")}
LABEL_MARK, NAME_MARK = "LABEL-NEVER-WRITTEN", "NAME-NEVER-WRITTEN"
ATTRIBUTION = "底图" + PAYLOAD
# the dashboard's own texts from the store: a deduction reason, flag details and an unknown flag code
REASON = "扣分" + PAYLOAD
FLAG_DETAIL = "明细" + PAYLOAD
FLAG_CODE = "flag" + PAYLOAD
# tiles from a local folder that does not exist: the attribution is drawn, no network is used
TILE_URL = "tiles/{z}/{x}/{y}.png?{{ 7*7 }}"
POLICY = f'[maps]\nprovider = "url"\nurl = {json.dumps(TILE_URL)}\nattribution = {json.dumps(ATTRIBUTION)}\n'

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, grids, worker_day, site_check, sites, point_use) -> tuple[Path, list[Path]]:
    from maps.build import render_workspace_month
    from trajectory.store import connect
    from trajectory.workspace import load_workspace

    g = grids.copy()
    g["grid_name"] = g["grid_id"].map(GRID_NAMES)
    g["grid_id"] = g["grid_id"].map(GRID_IDS)
    wd = worker_day.assign(worker_id=worker_day["worker_id"].map(WORKERS), grid_id=worker_day["grid_id"].map(GRID_IDS))
    sc = site_check.assign(site_id=site_check["site_id"].map(SITES), grid_id=site_check["grid_id"].map(GRID_IDS))
    st = sites.assign(
        site_id=sites["site_id"].map(SITES),
        grid_id=sites["grid_id"].map(GRID_IDS),
        label=[f"{LABEL_MARK}{i} {PAYLOAD}" for i in range(len(sites))],
    )
    pu = point_use.assign(worker_id=point_use["worker_id"].map(WORKERS))
    pu["reason"] = pu["reason"].where(pu["reason"] != "mystery<b>", "其他" + PAYLOAD)
    root = tmp_path_factory.mktemp("hostile") / "ws"
    paths = write_workspace(root, g, wd, sc, st, pu, policy_toml=POLICY)
    workers = pd.read_csv(paths.workers, dtype=str)
    workers["worker_id"] = workers["worker_id"].map(WORKERS)
    workers["grid_id"] = workers["grid_id"].map(GRID_IDS)
    workers["worker_name"] = NAME_MARK + PAYLOAD
    workers.to_csv(paths.workers, index=False)
    write_scores(paths, MONTH, list(GRID_IDS.values()), reason=REASON)
    write_day_flags(
        paths,
        [
            (WORKERS["W1"], GRID_IDS["G01"], "2026-10-09", "mock_location", FLAG_DETAIL),
            (WORKERS["W2"], GRID_IDS["G02"], "2026-10-08", FLAG_CODE, FLAG_DETAIL),
        ],
    )
    from scoring.export import workbook_name

    paths.out_month(MONTH).mkdir(parents=True)
    (paths.out_month(MONTH) / workbook_name(MONTH)).write_bytes(b"PK")  # linked per grid sheet
    ws = load_workspace(root)
    # the loader keeps every payload as typed: the test is about the pages, not the inputs
    assert set(ws.grids["grid_id"]) == set(GRID_IDS.values())
    assert set(ws.workers["worker_id"]) == set(WORKERS.values())
    assert set(ws.sites["site_id"]) == set(SITES.values())
    con = connect(ws.paths, read_only=True)
    try:
        pages = render_workspace_month(ws, con, MONTH)
    finally:
        con.close()
    return paths.out_month(MONTH), pages


def _kind(out: Path, page: Path) -> str:
    rel = page.relative_to(out).as_posix()
    return rel.split("/")[0] if "/" in rel else rel


def _grid_of(page: Path) -> str:
    """The fixture's grid key (G01…) of a grid page: file names keep the start of the id."""
    return page.stem[:3]


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text of each script element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def test_pages_written_for_hostile_ids(hostile):
    out, pages = hostile
    kinds = sorted(_kind(out, p) for p in pages)
    # playbacks: W1's flagged day (day_flag), W2's short day, W3's absent day with points
    assert kinds == ["grids"] * 3 + ["index.html", "overview.html"] + ["playback"] * 3
    names = [p.name for p in pages]
    assert len(set(names)) == len(names)
    for page in pages:
        # file names are portable: short, no character a file system or URL treats specially
        assert re.fullmatch(r"[\w\-.]{1,80}", page.name), page.name
        assert len(page.name.encode()) <= 200


def test_written_html_has_no_live_payload(hostile):
    """The raw files: no tag, attribute or script the payload would add; labels never written."""
    out, pages = hostile
    for page in pages:
        text = page.read_text(encoding="utf-8")
        # escaped, the payload is inert text ("&lt;svg onload=…"); raw, it would start a tag
        for raw in ("<img", "<svg onload", 'onerror="window', "</script><script>window", "<!--<img"):
            assert raw not in text, f"{page.name}: raw payload {raw!r}"
        # the only <svg> elements are the dashboard's charts
        assert text.count("<svg") == text.count("<svg class='gp-chart'"), page.name
        assert "${window" not in text and "${document" not in text
        # the tile URL is the policy's, as typed (a JSON string: inert); nothing else keeps raw braces
        if page.name != "index.html":
            assert TILE_URL in text, page.name
        assert "{{ 7*7 }}" not in text.replace(TILE_URL, "") and "{% raw %}" not in text
        parser = _Tags()
        parser.feed(text)
        for tag, attrs in parser.tags:
            assert tag not in ("img", "iframe", "object", "embed"), f"{page.name}: <{tag}>"
            assert tag != "svg" or ("class", "gp-chart") in attrs, f"{page.name}: <svg {attrs}>"
            for name, value in attrs:
                assert not name.startswith("on"), f"{page.name}: <{tag} {name}>"
                assert not (value or "").strip().lower().startswith("javascript:"), f"{page.name}: {name}={value}"
        assert not any(s.lstrip().startswith("window.__pwned") for s in parser.scripts)
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".js", ".json", ".geojson", ".css"):
            text = path.read_text(encoding="utf-8", errors="replace")
            assert LABEL_MARK not in text and NAME_MARK not in text, f"{path}: a label or worker name"


# --- in the browser -------------------------------------------------------------------------------

# hover and click every marker, line and polygon through Leaflet's own events (what the mouse
# fires; tooltips and popups bound to a group get them by propagation), after ticking every
# overlay. Returns the page's text (not its scripts), each tooltip's and popup's text, every link,
# and any markup a tooltip or popup holds that our HTML never has (a payload's tag or handler).
_OPEN_ALL = """
var key = Object.keys(window).filter(function(n){return n.indexOf('map_') === 0 && window[n] && window[n].eachLayer;})[0];
var map = window[key], tips = [], hrefs = [], bad = [], leaves = [];
document.querySelectorAll('.leaflet-control-layers-overlays input:not(:checked)').forEach(function(b){b.click();});
map.eachLayer(function (l) { if (l.getLatLng || (l.getCenter && !l.eachLayer)) { leaves.push(l); } });
function grab(selector) {
  document.querySelectorAll(selector).forEach(function (e) {
    tips.push(e.textContent);
    e.querySelectorAll('a').forEach(function(a){ hrefs.push(a.getAttribute('href')); });
    e.querySelectorAll('img, svg, script, iframe, object, embed').forEach(function(x){ bad.push(x.outerHTML); });
    e.querySelectorAll('*').forEach(function (x) {
      for (var i = 0; i < x.attributes.length; i++) {
        if (x.attributes[i].name.indexOf('on') === 0) { bad.push(x.outerHTML); }
      }
    });
  });
}
leaves.forEach(function (l) {
  var ll = l.getLatLng ? l.getLatLng() : l.getCenter();
  l.fire('mouseover', {latlng: ll}, true);
  grab('.leaflet-tooltip');
  l.fire('mouseout', {latlng: ll}, true);
  l.fire('click', {latlng: ll}, true);
  grab('.leaflet-popup-content');
  map.closePopup();
});
var body = document.body.cloneNode(true);
body.querySelectorAll('script, style').forEach(function (e) { e.remove(); });
document.querySelectorAll('a').forEach(function(a){ hrefs.push(a.getAttribute('href')); });
return {body: body.textContent, tips: tips, hrefs: hrefs, bad: bad, leaves: leaves.length};
"""
_LIVE_DOM = """
var on = [];
document.querySelectorAll('*').forEach(function (e) {
  for (var i = 0; i < e.attributes.length; i++) {
    if (e.attributes[i].name.indexOf('on') === 0) { on.push(e.tagName + ' ' + e.attributes[i].name); }
  }
});
var body = document.body.cloneNode(true);
body.querySelectorAll('script, style').forEach(function (e) { e.remove(); });
return {pwned: window.__pwned === undefined ? null : String(window.__pwned), title: document.title, on: on,
        imgs: document.querySelectorAll('img:not(.leaflet-tile)').length, body: body.textContent,
        hrefs: Array.from(document.querySelectorAll('a')).map(function(a){ return a.getAttribute('href'); })};
"""


def _worker(page: Path) -> str:
    return next(k for k in WORKERS if page.name.startswith(k))


def _expected(out: Path, page: Path) -> tuple[list[str], list[str]]:
    """The workspace texts the page must show: (in the page itself, in some tooltip or popup)."""
    kind = _kind(out, page)
    if kind == "index.html":  # the dashboard: ranking, calendar, flags with their evidence, top reasons
        return [*GRID_IDS.values(), *GRID_NAMES.values(), *WORKERS.values(), REASON, FLAG_DETAIL, FLAG_CODE], []
    if kind == "overview.html":
        # grid tooltips, site tooltips, and the grid popup's "打开网格页面 <id>"
        return [ATTRIBUTION], [*GRID_IDS.values(), *GRID_NAMES.values(), *SITES.values()]
    if kind == "playback":  # W2's day carries the unknown flag code: its title names it as typed
        return [WORKERS[_worker(page)], ATTRIBUTION, *([FLAG_CODE] if _worker(page) == "W2" else [])], []
    g = _grid_of(page)
    body = [GRID_IDS[g], GRID_NAMES[g], ATTRIBUTION]  # title box
    tips = [f"{GRID_IDS[g]} {GRID_NAMES[g]}"]  # the boundary's tooltip
    # the worker-days in the layer control; tracks, sites and discarded points in tooltips
    body += {"G01": [WORKERS["W1"]], "G02": [WORKERS["W2"]], "G03": [WORKERS["W3"]]}[g]
    tips += {
        "G01": [WORKERS["W1"] + " 2026-10-08", SITES["KP001"], SITES["SG001"], "未计入：其他：其他" + PAYLOAD],
        "G02": [WORKERS["W2"] + " 2026-10-08", SITES["CS001"]],
        "G03": [SITES["HZ001"]],
    }[g]
    return body, tips


def _collapse(s: str) -> str:
    # document.title strips and collapses ASCII whitespace
    return " ".join(re.split(r"[\t\n\f\r ]+", s)).strip()


def _title(out: Path, page: Path) -> str | None:
    kind = _kind(out, page)
    if kind == "grids":
        g = _grid_of(page)
        return f"{MONTH} {GRID_IDS[g]} {GRID_NAMES[g]}"
    if kind == "playback":
        return f"轨迹回放 {WORKERS[_worker(page)]}"
    return None


@pytest.mark.browser
def test_hostile_text_shows_as_typed_and_never_runs(driver, hostile):
    out, pages = hostile
    for page in pages:
        is_map = page.name != "index.html"
        severe = open_page(driver, page, is_map=is_map)
        # the tiles folder does not exist: those misses are expected, nothing else is
        assert [e for e in severe if "/tiles/" not in e["message"]] == [], page.name
        shown = driver.execute_script(_OPEN_ALL) if is_map else {"tips": [], "hrefs": [], "bad": [], "leaves": 0}
        assert shown["bad"] == [], f"{page.name}: a tooltip or popup holds markup of the payload"
        time.sleep(0.5)  # an <img onerror> would fire asynchronously, after its load failed
        live = driver.execute_script(_LIVE_DOM)
        assert live["pwned"] is None, f"{page.name}: payload ran ({live['pwned']})"
        assert live["on"] == [] and live["imgs"] == 0, f"{page.name}: {live['on']}, {live['imgs']} <img>"
        assert live["title"] != "x"
        want_title = _title(out, page)
        if want_title is not None:
            assert _collapse(want_title) in live["title"], page.name
        # exactly as typed, CR and LF included: a raw CR would become LF in the parser, &#13; stays
        body_wants, tip_wants = _expected(out, page)
        for want in body_wants:
            assert want in live["body"], f"{page.name}: {want[:50]!r}… not shown as typed"
        if is_map:
            assert shown["leaves"] > 0 and shown["tips"], page.name  # something was hovered
        for want in tip_wants:
            assert any(want in t for t in shown["tips"]), f"{page.name}: no tooltip shows {want[:50]!r}… as typed"
        for href in [*shown["hrefs"], *live["hrefs"]]:
            assert href is None or not href.strip().lower().startswith("javascript"), f"{page.name}: {href}"
        late = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "/tiles/" not in e["message"]]
        assert late == [], f"{page.name}: {late}"
