"""Leaflet elements for folium that take NumPy columns, not Python objects per point.

folium's own ``HeatMap``, ``PolyLine`` and ``CircleMarker`` validate every coordinate in a
Python loop and write one object per marker; a month of GPS is millions of points. These
elements serialise whole columns once (coordinates rounded to 1e-6°, ≈ 0.1 m) and let the
browser build the markers. They carry no script links of their own: the page's scripts are
set by :func:`maps.offline.local_assets`.

Every value reaches the page's script as JSON (:func:`maps.escape.script_json`), and text
shown in a tooltip or box is HTML the caller escaped with :func:`maps.escape.html_text`: the
rule of :mod:`maps.escape`. These elements are rendered without branca's second pass of their
output through Jinja (:func:`_render_raw`), so no data is ever read as template code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import folium
import numpy as np
import pandas as pd
from branca.element import Element, Figure, MacroElement
from folium.elements import ElementAddToElement
from folium.map import Layer
from folium.plugins import TimestampedGeoJson
from folium.template import Template

from maps.escape import script_json

COORD_DECIMALS = 6
# GPS layers (tracks, heat, discarded points): 1e-5° ≈ 1.1 m, below any phone's GPS error
GPS_DECIMALS = 5

# one decoder per page (maps.elements.packed): running sums of integer steps, divided by 10^d
UNPACK_SCRIPT = (
    "<script>function gpUnpack(p){var v=p.v,s=Math.pow(10,p.d),o=new Array(v.length),q=0;"
    "for(var i=0;i<v.length;i++){q+=v[i];o[i]=q/s;}return o;}</script>"
)


def _coords(values: np.ndarray) -> list[float]:
    return np.round(np.asarray(values, dtype=np.float64), COORD_DECIMALS).tolist()


def packed(values: np.ndarray, decimals: int) -> str:
    """A column as a JavaScript expression decoding ``{"d": decimals, "v": [q0, q1 - q0, …]}``.

    ``q = round(value · 10^decimals)``: consecutive GPS fixes a few metres apart differ by two or
    three digits, where the decimal form repeats all ten (``31.676249``). The page decodes it with
    ``gpUnpack`` (:data:`UNPACK_SCRIPT`, added to the page by every element using it). Values
    must be finite.

    Examples
    --------
    >>> packed(np.array([31.67625, 31.67626, 31.6762]), 5)
    'gpUnpack({"d":5,"v":[3167625,1,-6]})'
    """
    q = np.round(np.asarray(values, dtype=np.float64) * 10.0**decimals).astype(np.int64)
    steps = np.diff(q, prepend=np.int64(0)) if len(q) else q
    return "gpUnpack(" + script_json({"d": int(decimals), "v": steps.tolist()}) + ")"


def _column(values: np.ndarray, decimals: int | None) -> str:
    """Plain 1e-6° JSON numbers (``decimals`` None: sites, whose exact figures tests look for) or
    :func:`packed`."""
    return script_json(_coords(values)) if decimals is None else packed(values, decimals)


class RawHtml(Element):
    """Finished HTML (escape workspace text in it with :func:`maps.escape.html_text`), rendered as is.

    branca's ``Element(text)`` would compile ``text`` as a Jinja template: ``{{`` in a grid name
    would run at build time. This one never does.
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def render(self, **kwargs: object) -> str:
        return self._text


class RawScript(MacroElement):
    """A fixed script line of ours (no workspace text) added to the page's script, without Jinja."""

    def __init__(self, code: str) -> None:
        super().__init__()
        self._name = "RawScript"
        self._code = code

    def render(self, **kwargs: object) -> None:  # type: ignore[override]
        cast(Figure, self.get_root()).script.add_child(RawHtml(self._code), name=self.get_name())


def _render_raw(element: MacroElement, kwargs: dict) -> None:
    """``MacroElement.render`` without its re-compilation of the output as a Jinja template.

    branca wraps each rendered macro in ``Element(text)``, which parses the text as a template
    again: megabytes of coordinates are tokenised for nothing, and ``{{`` in data would be read
    as template code. Our elements add the finished text instead.
    """
    figure = element.get_root()
    if getattr(element, "_packed", False):  # a named child: one decoder however many layers use it
        cast(Figure, figure).header.add_child(RawHtml(UNPACK_SCRIPT), name="gp_unpack")
    module = element._template.module.__dict__
    for part in ("header", "html", "script"):
        macro = module.get(part)
        if macro is not None:
            getattr(figure, part).add_child(RawHtml(macro(element, kwargs)), name=element.get_name())
    for child in element._children.values():
        child.render(**kwargs)


class _RawLayer(Layer):
    """A folium Layer (LayerControl, ``show``) rendered by :func:`_render_raw`."""

    def render(self, **kwargs: object) -> None:  # type: ignore[override]
        if self.show:
            assert self._parent is not None, "add the layer to a map or group first"
            self.add_child(
                ElementAddToElement(element_name=self.get_name(), element_parent_name=self._parent.get_name()),
                name=self.get_name() + "_add",
            )
        _render_raw(self, kwargs)


def _categorised_template(columns: str, rows: str, feature: str) -> Template:
    """The script of a :class:`_CategorisedLayer`: a feature group with one feature per row.

    ``columns`` declares the layer's coordinate columns (JavaScript ``name = {{ this.attr }}``
    pairs), ``rows`` names the one whose length is the row count, and ``feature`` is the Leaflet
    constructor of row ``i`` coloured ``k[1]`` (its category's colour); the category columns, the
    tooltip and the group are the same for every such layer.
    """
    return Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.featureGroup();
            (function(){
              var """
        + columns
        + """,
                  c = {{ this.category }}, cats = {{ this.categories }}, tx = {{ this.texts }}, ti = {{ this.text_index }};
              for (var i = 0; i < """
        + rows
        + """.length; i++) {
                var k = cats[c[i]];
                """
        + feature
        + """
                  .bindTooltip(tx === null ? k[0] : tx[ti[i]])
                  .addTo({{ this.get_name() }});
              }
            })();
        {% endmacro %}
        """
    )


class _CategorisedLayer(_RawLayer):
    """A layer of features coloured by a category code, with a tooltip each (or the category's
    name): the JSON columns both :class:`PointsLayer` and :class:`CellsLayer` read, and their
    script (:func:`_categorised_template`)."""

    def __init__(
        self,
        category: np.ndarray,
        categories: Sequence[tuple[str, str]],
        texts: Sequence[str] | None,
        **layer: Any,
    ) -> None:
        """``layer``: the folium ``Layer`` options (name, overlay, control, show)."""
        super().__init__(**layer)
        self._name = type(self).__name__
        self.category = script_json(np.asarray(category, dtype=np.int64).tolist())
        self.categories = script_json([list(c) for c in categories])
        if texts is None:
            self.texts, self.text_index = "null", "null"
            return
        # each distinct text once: a day's discarded points share a handful of reasons
        codes, uniques = pd.factorize(pd.Series(list(texts), dtype=object))
        self.texts = script_json([str(u) for u in uniques])
        self.text_index = script_json(codes.tolist())


class HeatLayer(_RawLayer):
    """leaflet.heat layer of points (lat, lon) with optional weights, drawn on a
    ``canvas.leaflet-heatmap-layer``.

    Coordinates are :func:`packed` at ``decimals``. Pass binned points (``maps.coverage.heat_bins``)
    with their counts as ``weight``: leaflet.heat sums intensities per cell, so the picture is the
    same as from every point, at a fraction of the page weight.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.heatLayer(
                (function(){ var la = {{ this.lat }}, lo = {{ this.lon }}, w = {{ this.weight }},
                  out = new Array(la.length);
                  for (var i = 0; i < la.length; i++) { out[i] = w === null ? [la[i], lo[i]] : [la[i], lo[i], w[i]]; }
                  return out; })(),
                {{ this.options }});
        {% endmacro %}
        """
    )

    def __init__(
        self,
        lat: np.ndarray,
        lon: np.ndarray,
        name: str = "热力图",
        radius: int = 12,
        blur: int = 15,
        min_opacity: float = 0.35,
        show: bool = True,
        weight: np.ndarray | None = None,
        decimals: int = GPS_DECIMALS,
    ) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "HeatLayer"
        self._packed = True
        self.lat = packed(lat, decimals)
        self.lon = packed(lon, decimals)
        self.weight = "null" if weight is None else script_json(np.asarray(weight, dtype=np.int64).tolist())
        options = {"radius": radius, "blur": blur, "minOpacity": min_opacity, "maxZoom": HEAT_MAX_ZOOM}
        options["max"] = heat_max(np.asarray(lat, float), np.asarray(lon, float), radius, weight)
        self.options = script_json(options)


HEAT_MAX_ZOOM = 17
_VIEW_PX = 1000  # the width a page is first fitted to, roughly


def heat_max(lat: np.ndarray, lon: np.ndarray, radius: int, weight: np.ndarray | None = None) -> float:
    """The heat layer's ``max``: the 95th percentile of per-cell intensity at the first view.

    leaflet.heat sums points (their weights) per cell of ``radius / 2`` pixels and scales them by
    ``2 ** (zoom - maxZoom)``; with its default ``max = 1`` a month of points saturates every
    cell red. Normalising to the busy cells of the fitted view keeps the gradient readable.

    Examples
    --------
    >>> lat = np.full(100, 31.7); lon = np.full(100, 119.9)
    >>> heat_max(lat, lon, 12) >= 1.0
    True
    >>> heat_max(lat[:1], lon[:1], 12, weight=np.array([100])) == heat_max(lat, lon, 12)
    True
    """
    if len(lat) == 0:
        return 1.0
    span = max(float(np.ptp(lon)), float(np.ptp(lat)), 1e-4)
    zoom = int(np.clip(np.floor(np.log2(360.0 * _VIEW_PX / (256.0 * span))), 1, HEAT_MAX_ZOOM))
    cell_deg = (radius / 2.0) * 360.0 / (256.0 * 2**zoom)
    cells = np.stack([np.floor(lon / cell_deg), np.floor(lat / cell_deg)], axis=1).astype(np.int64)
    _, inverse = np.unique(cells, axis=0, return_inverse=True)
    w = np.ones(len(lat)) if weight is None else np.asarray(weight, dtype=np.float64)
    counts = np.bincount(inverse.ravel(), weights=w)
    scale = 1.0 / 2 ** max(0, HEAT_MAX_ZOOM - zoom)
    return float(max(1.0, np.percentile(counts, 95) * scale))


class PointsLayer(_CategorisedLayer):
    """Circle markers from columns: colour by category, tooltip by category or per point.

    Parameters
    ----------
    lat, lon : arrays
    category : int array
        Index into ``categories`` for each point.
    categories : list of (label, colour)
        Label shown in the tooltip when ``texts`` is None.
    texts : sequence of str, optional
        Per-point tooltip HTML: workspace text in it escaped with :func:`maps.escape.html_texts`.
        Written once per distinct text.
    decimals : int, optional
        :func:`packed` coordinates at this precision (GPS points); None writes plain 1e-6°
        numbers (sites).
    """

    _template = _categorised_template(
        "la = {{ this.lat }}, lo = {{ this.lon }}",
        "la",
        "L.circleMarker([la[i], lo[i]], {radius: {{ this.radius }}, color: k[1], weight: {{ this.weight }},"
        " fillColor: k[1], fillOpacity: {{ this.fill_opacity }}})",
    )

    def __init__(
        self,
        lat: np.ndarray,
        lon: np.ndarray,
        category: np.ndarray,
        categories: Sequence[tuple[str, str]],
        texts: Sequence[str] | None = None,
        name: str | None = None,
        radius: float = 3,
        weight: float = 1,
        fill_opacity: float = 0.8,
        overlay: bool = True,
        control: bool = True,
        show: bool = True,
        decimals: int | None = None,
    ) -> None:
        super().__init__(category, categories, texts, name=name, overlay=overlay, control=control, show=show)
        self._packed = decimals is not None
        self.lat = _column(lat, decimals)
        self.lon = _column(lon, decimals)
        self.radius, self.weight, self.fill_opacity = float(radius), float(weight), float(fill_opacity)


class CellsLayer(_CategorisedLayer):
    """Translucent rectangles from columns (south, west, north, east): an area, not a pin.

    Personal sites are drawn as their privacy cell (:mod:`maps.privacy`) so the page does not
    suggest a precision it does not have. Colour by category, tooltip as :class:`PointsLayer`.
    """

    _template = _categorised_template(
        "s = {{ this.south }}, w = {{ this.west }}, n = {{ this.north }}, e = {{ this.east }}",
        "s",
        "L.rectangle([[s[i], w[i]], [n[i], e[i]]], {color: k[1], weight: {{ this.weight }},"
        " fillColor: k[1], fillOpacity: {{ this.fill_opacity }}})",
    )

    def __init__(
        self,
        south: np.ndarray,
        west: np.ndarray,
        north: np.ndarray,
        east: np.ndarray,
        category: np.ndarray,
        categories: Sequence[tuple[str, str]],
        texts: Sequence[str] | None = None,
        name: str | None = None,
        weight: float = 1.5,
        fill_opacity: float = 0.3,
        overlay: bool = True,
        control: bool = True,
        show: bool = True,
    ) -> None:
        super().__init__(category, categories, texts, name=name, overlay=overlay, control=control, show=show)
        self.south, self.west = script_json(_coords(south)), script_json(_coords(west))
        self.north, self.east = script_json(_coords(north)), script_json(_coords(east))
        self.weight, self.fill_opacity = float(weight), float(fill_opacity)


class RectanglesLayer(_RawLayer):
    """Many rectangles (south, west, north, east; :func:`packed`) as ONE Leaflet multipolygon:
    one SVG path, one style, whatever the count — the walked 25 m cells of a grid page."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = (function(){
              var s = {{ this.south }}, w = {{ this.west }}, n = {{ this.north }}, e = {{ this.east }},
                  rings = new Array(s.length);
              for (var i = 0; i < s.length; i++) {
                rings[i] = [[[s[i], w[i]], [s[i], e[i]], [n[i], e[i]], [n[i], w[i]]]];
              }
              return L.polygon(rings, {{ this.style }});
            })();
        {% endmacro %}
        """
    )

    def __init__(
        self,
        south: np.ndarray,
        west: np.ndarray,
        north: np.ndarray,
        east: np.ndarray,
        name: str | None = None,
        color: str = "#00695c",
        weight: float = 0.3,
        fill_color: str = "#26a69a",
        fill_opacity: float = 0.35,
        show: bool = True,
    ) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "RectanglesLayer"
        self._packed = True
        self.south, self.west = packed(south, COORD_DECIMALS), packed(west, COORD_DECIMALS)
        self.north, self.east = packed(north, COORD_DECIMALS), packed(east, COORD_DECIMALS)
        self.style = script_json(
            {"color": color, "weight": weight, "fillColor": fill_color, "fillOpacity": fill_opacity}
        )


class LinesLayer(_RawLayer):
    """Polylines from columns (:func:`packed` at ``decimals``): consecutive points with the same
    ``part`` code form one line.

    ``tooltip`` is HTML: workspace text in it escaped with :func:`maps.escape.html_text`.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.featureGroup();
            (function(){
              var la = {{ this.lat }}, lo = {{ this.lon }}, br = {{ this.breaks }}, lines = [];
              for (var j = 0; j + 1 < br.length; j++) {
                var seg = [];
                for (var i = br[j]; i < br[j + 1]; i++) { seg.push([la[i], lo[i]]); }
                lines.push(seg);
              }
              L.polyline(lines, {{ this.style }}){% if this.tooltip %}.bindTooltip({{ this.tooltip }}){% endif %}
                .addTo({{ this.get_name() }});
            })();
        {% endmacro %}
        """
    )

    def __init__(
        self,
        lat: np.ndarray,
        lon: np.ndarray,
        part: np.ndarray,
        color: str = "#1f6fd1",
        weight: float = 3,
        opacity: float = 0.9,
        dash: str | None = None,
        tooltip: str | None = None,
        name: str | None = None,
        overlay: bool = True,
        control: bool = True,
        show: bool = True,
        decimals: int = GPS_DECIMALS,
    ) -> None:
        super().__init__(name=name, overlay=overlay, control=control, show=show)
        self._name = "LinesLayer"
        self._packed = True
        part = np.asarray(part)
        starts = np.flatnonzero(np.r_[True, part[1:] != part[:-1]]) if len(part) else np.empty(0, dtype=np.int64)
        self.breaks = script_json([*starts.tolist(), len(part)] if len(part) else [])
        self.lat = packed(lat, decimals)
        self.lon = packed(lon, decimals)
        style: dict[str, object] = {"color": color, "weight": weight, "opacity": opacity}
        if dash:
            style["dashArray"] = dash
        self.style = script_json(style)
        self.tooltip = script_json(tooltip) if tooltip else ""


class InfoBox(MacroElement):
    """A Leaflet control holding fixed HTML (page title, legend, notes).

    ``html`` is inserted with ``innerHTML``: escape workspace text in it with
    :func:`maps.escape.html_text`.
    """

    _template = Template(
        """
        {% macro header(this, kwargs) %}
            <style>
              .gp-box { background: rgba(255,255,255,0.92); padding: 6px 10px; border-radius: 5px;
                        box-shadow: 0 1px 5px rgba(0,0,0,0.4); font: 13px/1.5 "Noto Sans CJK SC", "Microsoft YaHei",
                        "PingFang SC", sans-serif; max-width: 340px; }
              .gp-box h1 { font-size: 15px; margin: 0 0 2px 0; }
              .gp-box .sw { display: inline-block; width: 14px; height: 14px; margin-right: 6px;
                            vertical-align: -2px; border: 1px solid #555; }
              .gp-box .dot { border-radius: 7px; }
            </style>
        {% endmacro %}
        {% macro script(this, kwargs) %}
            (function(){
              var box = L.control({position: {{ this.position }}});
              box.onAdd = function () {
                var div = L.DomUtil.create("div", {{ this.css_class }});
                div.innerHTML = {{ this.html }};
                L.DomEvent.disableClickPropagation(div);
                return div;
              };
              box.addTo({{ this._parent.get_name() }});
            })();
        {% endmacro %}
        """
    )

    def __init__(self, html: str, position: str = "bottomright", css_class: str = "") -> None:
        super().__init__()
        self._name = "InfoBox"
        self.html = script_json(html)
        self.position = script_json(position)
        self.css_class = script_json(f"gp-box {css_class}".strip())

    def render(self, **kwargs: object) -> None:  # type: ignore[override]
        _render_raw(self, kwargs)


class PlaybackGeoJson(TimestampedGeoJson):
    """folium's TimestampedGeoJson over columns, with times shown in the workspace's time zone.

    folium's template formats times in the *browser's* zone and logs every tick to the
    console; a dispute is argued in local (Asia/Shanghai) time whatever the reviewer's PC says.
    The features are built in the page from :func:`packed` columns (``lat``, ``lon``, epoch
    milliseconds ``ms``) and one ``(mask, style, tooltip)`` per growing line: a line of the points
    where its mask is true (one point: a circle), each vertex timed. Script links are cleared:
    the page's are set by :func:`maps.offline.local_assets`.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            L.Control.TimeDimensionGridpatrol = L.Control.TimeDimension.extend({
                _getDisplayDateFormat: function (date) {
                    return moment(date).utcOffset({{ this.utc_offset_min }}).format("{{ this.date_options }}");
                }
            });
            {{ this._parent.get_name() }}.timeDimension = L.timeDimension({ period: {{ this.period|tojson }} });
            {{ this._parent.get_name() }}.addControl(new L.Control.TimeDimensionGridpatrol({{ this.options|tojavascript }}));
            var {{ this.get_name() }}_data = L.geoJson((function () {
                var la = {{ this.lat }}, lo = {{ this.lon }}, t = {{ this.ms }}, tracks = {{ this.tracks }}, feats = [];
                tracks.forEach(function (k) {
                    var xy = [], tt = [];
                    for (var i = 0; i < la.length; i++) {
                        if (k.mask === null || k.mask.charAt(i) === "1") { xy.push([lo[i], la[i]]); tt.push(t[i]); }
                    }
                    if (!xy.length) { return; }
                    feats.push({type: "Feature",
                        geometry: xy.length > 1 ? {type: "LineString", coordinates: xy} : {type: "Point", coordinates: xy[0]},
                        properties: {times: tt, style: k.style, tooltip: k.tooltip,
                            iconstyle: {radius: 6, color: k.style.color, fillColor: k.style.color, fillOpacity: 0.9}}});
                });
                return {type: "FeatureCollection", features: feats};
            })(), {
                pointToLayer: function (feature, latLng) {
                    return L.circleMarker(latLng, feature.properties.iconstyle || {radius: 5});
                },
                style: function (feature) { return feature.properties.style; },
                onEachFeature: function (feature, layer) {
                    if (feature.properties.tooltip) { layer.bindTooltip(feature.properties.tooltip); }
                }
            });
            var {{ this.get_name() }} = L.timeDimension.layer.geoJson({{ this.get_name() }}_data, {
                updateTimeDimension: true,
                addlastPoint: {{ this.add_last_point|tojson }},
                duration: {{ this.duration }},
            }).addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(
        self,
        lat: np.ndarray,
        lon: np.ndarray,
        ms: np.ndarray,
        tracks: Sequence[tuple[np.ndarray | None, dict, str]],
        utc_offset_min: int,
        decimals: int = COORD_DECIMALS,
        **kwargs: object,
    ) -> None:
        super().__init__({"type": "FeatureCollection", "features": []}, **kwargs)  # type: ignore[arg-type]
        self.embed = True
        self._packed = True
        self.lat, self.lon = packed(lat, decimals), packed(lon, decimals)
        self.ms = packed(np.asarray(ms, dtype=np.int64), 0)
        self.tracks = script_json(
            [
                {
                    "mask": None if mask is None else "".join(np.where(np.asarray(mask, dtype=bool), "1", "0")),
                    "style": style,
                    "tooltip": tooltip,
                }
                for mask, style, tooltip in tracks
            ]
        )
        self.utc_offset_min = int(utc_offset_min)
        self.default_js: list[tuple[str, str]] = []
        self.default_css: list[tuple[str, str]] = []

    def render(self, **kwargs: object) -> None:  # type: ignore[override]
        _render_raw(self, kwargs)


class TileLayer(_RawLayer, folium.TileLayer):
    """folium's TileLayer, rendered without the Jinja pass (:func:`_render_raw`).

    Its URL template and attribution come from ``patrol.toml``: ``{{`` in them must stay text.
    The attribution is shown with ``innerHTML`` by Leaflet: pass workspace text escaped with
    :func:`maps.escape.html_text`.
    """


__all__ = [
    "COORD_DECIMALS",
    "GPS_DECIMALS",
    "UNPACK_SCRIPT",
    "packed",
    "RawHtml",
    "RawScript",
    "HeatLayer",
    "HEAT_MAX_ZOOM",
    "heat_max",
    "PointsLayer",
    "CellsLayer",
    "RectanglesLayer",
    "LinesLayer",
    "InfoBox",
    "PlaybackGeoJson",
    "TileLayer",
]
