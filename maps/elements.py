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

import folium
import numpy as np
from branca.element import Element, MacroElement
from folium.elements import ElementAddToElement
from folium.map import Layer
from folium.plugins import TimestampedGeoJson
from folium.template import Template

from maps.escape import script_json

COORD_DECIMALS = 6


def _coords(values: np.ndarray) -> list[float]:
    return np.round(np.asarray(values, dtype=np.float64), COORD_DECIMALS).tolist()


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


def _render_raw(element: MacroElement, kwargs: dict) -> None:
    """``MacroElement.render`` without its re-compilation of the output as a Jinja template.

    branca wraps each rendered macro in ``Element(text)``, which parses the text as a template
    again: megabytes of coordinates are tokenised for nothing, and ``{{`` in data would be read
    as template code. Our elements add the finished text instead.
    """
    figure = element.get_root()
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


class _CategorisedLayer(_RawLayer):
    """A layer of features coloured by a category code, with a tooltip each (or the category's
    name): the JSON columns both :class:`PointsLayer` and :class:`CellsLayer` read."""

    def _set_categories(
        self, category: np.ndarray, categories: Sequence[tuple[str, str]], texts: Sequence[str] | None
    ) -> None:
        self.category = script_json(np.asarray(category, dtype=np.int64).tolist())
        self.categories = script_json([list(c) for c in categories])
        self.texts = script_json(list(texts)) if texts is not None else "null"


class HeatLayer(_RawLayer):
    """leaflet.heat layer of points (lat, lon), drawn on a ``canvas.leaflet-heatmap-layer``."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.heatLayer(
                (function(){ var la = {{ this.lat }}, lo = {{ this.lon }}, out = new Array(la.length);
                  for (var i = 0; i < la.length; i++) { out[i] = [la[i], lo[i]]; } return out; })(),
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
    ) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "HeatLayer"
        self.lat = script_json(_coords(lat))
        self.lon = script_json(_coords(lon))
        options = {"radius": radius, "blur": blur, "minOpacity": min_opacity, "maxZoom": HEAT_MAX_ZOOM}
        options["max"] = heat_max(np.asarray(lat, float), np.asarray(lon, float), radius)
        self.options = script_json(options)


HEAT_MAX_ZOOM = 17
_VIEW_PX = 1000  # the width a page is first fitted to, roughly


def heat_max(lat: np.ndarray, lon: np.ndarray, radius: int) -> float:
    """The heat layer's ``max``: the 95th percentile of per-cell intensity at the first view.

    leaflet.heat sums points per cell of ``radius / 2`` pixels and scales them by
    ``2 ** (zoom - maxZoom)``; with its default ``max = 1`` a month of points saturates every
    cell red. Normalising to the busy cells of the fitted view keeps the gradient readable.

    Examples
    --------
    >>> lat = np.full(100, 31.7); lon = np.full(100, 119.9)
    >>> heat_max(lat, lon, 12) >= 1.0
    True
    """
    if len(lat) == 0:
        return 1.0
    span = max(float(np.ptp(lon)), float(np.ptp(lat)), 1e-4)
    zoom = int(np.clip(np.floor(np.log2(360.0 * _VIEW_PX / (256.0 * span))), 1, HEAT_MAX_ZOOM))
    cell_deg = (radius / 2.0) * 360.0 / (256.0 * 2**zoom)
    cells = np.stack([np.floor(lon / cell_deg), np.floor(lat / cell_deg)], axis=1).astype(np.int64)
    _, counts = np.unique(cells, axis=0, return_counts=True)
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
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.featureGroup();
            (function(){
              var la = {{ this.lat }}, lo = {{ this.lon }}, c = {{ this.category }},
                  cats = {{ this.categories }}, tx = {{ this.texts }};
              for (var i = 0; i < la.length; i++) {
                var k = cats[c[i]];
                L.circleMarker([la[i], lo[i]], {radius: {{ this.radius }}, color: k[1], weight: {{ this.weight }},
                    fillColor: k[1], fillOpacity: {{ this.fill_opacity }}})
                  .bindTooltip(tx === null ? k[0] : tx[i])
                  .addTo({{ this.get_name() }});
              }
            })();
        {% endmacro %}
        """
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
    ) -> None:
        super().__init__(name=name, overlay=overlay, control=control, show=show)
        self._name = "PointsLayer"
        self.lat = script_json(_coords(lat))
        self.lon = script_json(_coords(lon))
        self._set_categories(category, categories, texts)
        self.radius, self.weight, self.fill_opacity = float(radius), float(weight), float(fill_opacity)


class CellsLayer(_CategorisedLayer):
    """Translucent rectangles from columns (south, west, north, east): an area, not a pin.

    Personal sites are drawn as their privacy cell (:mod:`maps.privacy`) so the page does not
    suggest a precision it does not have. Colour by category, tooltip as :class:`PointsLayer`.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.featureGroup();
            (function(){
              var s = {{ this.south }}, w = {{ this.west }}, n = {{ this.north }}, e = {{ this.east }},
                  c = {{ this.category }}, cats = {{ this.categories }}, tx = {{ this.texts }};
              for (var i = 0; i < s.length; i++) {
                var k = cats[c[i]];
                L.rectangle([[s[i], w[i]], [n[i], e[i]]], {color: k[1], weight: {{ this.weight }},
                    fillColor: k[1], fillOpacity: {{ this.fill_opacity }}})
                  .bindTooltip(tx === null ? k[0] : tx[i])
                  .addTo({{ this.get_name() }});
              }
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
        super().__init__(name=name, overlay=overlay, control=control, show=show)
        self._name = "CellsLayer"
        self.south, self.west = script_json(_coords(south)), script_json(_coords(west))
        self.north, self.east = script_json(_coords(north)), script_json(_coords(east))
        self._set_categories(category, categories, texts)
        self.weight, self.fill_opacity = float(weight), float(fill_opacity)


class LinesLayer(_RawLayer):
    """Polylines from columns: consecutive points with the same ``part`` code form one line.

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
    ) -> None:
        super().__init__(name=name, overlay=overlay, control=control, show=show)
        self._name = "LinesLayer"
        part = np.asarray(part)
        starts = np.flatnonzero(np.r_[True, part[1:] != part[:-1]]) if len(part) else np.empty(0, dtype=np.int64)
        self.breaks = script_json([*starts.tolist(), len(part)] if len(part) else [])
        self.lat = script_json(_coords(lat))
        self.lon = script_json(_coords(lon))
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
    """folium's TimestampedGeoJson, with times shown in the workspace's time zone.

    folium's template formats times in the *browser's* zone and logs every tick to the
    console; a dispute is argued in local (Asia/Shanghai) time whatever the reviewer's PC says.
    Script links are cleared: the page's are set by :func:`maps.offline.local_assets`.
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
            var {{ this.get_name() }}_data = L.geoJson({{ this.data }}, {
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

    def __init__(self, data: dict, utc_offset_min: int, **kwargs: object) -> None:
        super().__init__(script_json(data), **kwargs)  # type: ignore[arg-type]
        self.embed = True
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
