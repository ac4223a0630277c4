"""Background tiles of the map pages, from the ``[maps]`` section of ``patrol.toml``.

The default is no tiles at all: a page then makes no network request and opens anywhere.
A provider adds one tile layer (two for Tianditu: map + annotation). The tile URL template
in the page's script is the only reference to another host a page may contain
(``maps.offline.external_references`` ignores it, nothing else).

Providers
---------
none      blank background (default; fully offline)
osm       OpenStreetMap's standard tiles (WGS-84 overlays)
tianditu  天地图 vector map + annotation; needs ``tianditu_key``. The key is written into the
          pages only when ``include_key_in_exports = true``: otherwise the pages carry no
          tile layer (and say so in the title box), so a shared export never leaks the key.
amap      高德 (AutoNavi) tiles, which are in GCJ-02: every overlay coordinate is shifted
          from WGS-84 to GCJ-02 so tracks sit on the streets.
url       an intranet template such as ``http://tiles.intra/{z}/{x}/{y}.png``; set
          ``tile_coords = "gcj02"`` when that server draws GCJ-02 maps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from maps.coverage import LonLatTransform
from maps.escape import html_text
from trajectory.errors import PolicyError

if TYPE_CHECKING:  # folium (maps.elements) is imported by the pages only: the nightly run checks [maps] without it
    from maps.elements import TileLayer

PROVIDERS = ("none", "osm", "tianditu", "amap", "url")
TILE_COORDS = ("wgs84", "gcj02")
_SOURCE = "patrol.toml [maps]"
_KEYS = ("provider", "url", "attribution", "tianditu_key", "include_key_in_exports", "tile_coords", "max_zoom")

OSM_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTR = "&copy; OpenStreetMap contributors"
# Tianditu WMTS in Web Mercator ("_w"); CGCS2000 ≈ WGS-84 at map scale, so no shift
TIANDITU_URL = (
    "https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
)
TIANDITU_ATTR = "&copy; 天地图 国家地理信息公共服务平台"
AMAP_URL = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"
AMAP_ATTR = "&copy; 高德地图 AutoNavi"


@dataclass(frozen=True)
class TileConfig:
    """Which background tiles the pages use (``[maps]`` of ``patrol.toml``).

    Examples
    --------
    >>> TileConfig().provider
    'none'
    >>> TileConfig.from_mapping({"provider": "amap"}).overlay_crs
    'gcj02'
    """

    provider: str = "none"
    url: str = ""
    attribution: str = ""
    tianditu_key: str = ""
    include_key_in_exports: bool = False
    tile_coords: str = "wgs84"
    max_zoom: int = 19

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> TileConfig:
        """Build and validate a config from the ``[maps]`` table (missing keys keep defaults).

        Raises
        ------
        PolicyError
            Unknown key, unknown provider, or a provider without what it needs.
        """
        d = dict(d or {})
        unknown = sorted(set(d) - set(_KEYS))
        if unknown:
            raise PolicyError(_SOURCE, f"unknown setting(s) {', '.join(unknown)}; expected some of {', '.join(_KEYS)}")
        provider = str(d.get("provider", "none") or "none").strip().lower()
        if provider not in PROVIDERS:
            raise PolicyError(
                _SOURCE,
                f"provider was '{provider}' but is expected to be one of {', '.join(PROVIDERS)}",
                column="provider",
            )
        include = d.get("include_key_in_exports", False)
        if not isinstance(include, bool):
            raise PolicyError(_SOURCE, f"include_key_in_exports must be true or false, found {include!r}")
        default_coords = "gcj02" if provider == "amap" else "wgs84"
        coords = str(d.get("tile_coords", default_coords)).strip().lower()
        if coords not in TILE_COORDS:
            raise PolicyError(
                _SOURCE, f"tile_coords was '{coords}' but is expected to be wgs84 or gcj02", column="tile_coords"
            )
        if provider == "amap" and coords != "gcj02":
            raise PolicyError(
                _SOURCE, "AMap tiles are in GCJ-02; tile_coords must be gcj02 (or left out)", column="tile_coords"
            )
        cfg = cls(
            provider=provider,
            url=str(d.get("url", "") or "").strip(),
            attribution=str(d.get("attribution", "") or "").strip(),
            tianditu_key=str(d.get("tianditu_key", "") or "").strip(),
            include_key_in_exports=include,
            tile_coords=coords,
            max_zoom=int(d.get("max_zoom", 19)),
        )
        if provider == "url":
            if not cfg.url or not all(p in cfg.url for p in ("{z}", "{x}", "{y}")):
                raise PolicyError(
                    _SOURCE, f"provider 'url' needs url with {{z}}, {{x}} and {{y}}; found '{cfg.url}'", column="url"
                )
        if provider == "tianditu" and not cfg.tianditu_key:
            raise PolicyError(
                _SOURCE, "provider 'tianditu' needs tianditu_key (天地图 developer key)", column="tianditu_key"
            )
        return cfg

    @property
    def overlay_crs(self) -> str:
        """Datum the overlays must be drawn in to sit on these tiles: ``wgs84`` or ``gcj02``."""
        return self.tile_coords

    @property
    def withheld_note(self) -> str | None:
        """Why the configured tiles are not in the pages (Chinese, shown on the page), or None."""
        if self.provider == "tianditu" and not self.include_key_in_exports:
            return "天地图底图未载入：密钥不写入导出页面（include_key_in_exports = false）"
        return None


def tile_layers(config: TileConfig) -> list[TileLayer]:
    """The tile layers a page gets for ``config`` (empty for ``none`` or a withheld key).

    The configured attribution is workspace text, shown as text (Leaflet inserts attributions
    as HTML; the defaults here are ours and carry ``&copy;``).
    """
    from maps.elements import TileLayer

    z = config.max_zoom
    own = html_text(config.attribution) if config.attribution else ""
    if config.provider == "osm":
        return [TileLayer(OSM_URL, attr=own or OSM_ATTR, name="OpenStreetMap", max_zoom=z)]
    if config.provider == "amap":
        return [TileLayer(AMAP_URL, attr=own or AMAP_ATTR, name="高德地图", subdomains="1234", max_zoom=z)]
    if config.provider == "url":
        return [TileLayer(config.url, attr=own or "内网底图", name="底图", max_zoom=z)]
    if config.provider == "tianditu" and config.include_key_in_exports:
        attr = own or TIANDITU_ATTR
        return [
            TileLayer(
                TIANDITU_URL.format(layer=layer, key=config.tianditu_key),
                attr=attr,
                name=name,
                subdomains="01234567",
                max_zoom=min(z, 18),
                overlay=layer == "cva",
                control=False,
            )
            for layer, name in (("vec", "天地图"), ("cva", "天地图注记"))
        ]
    return []


def overlay_transform(config: TileConfig) -> LonLatTransform:
    """The coordinate function applied to every overlay (identity unless tiles are GCJ-02)."""
    if config.overlay_crs != "gcj02":
        return _identity
    # imported here: trajectory.coords is written in parallel and only GCJ-02 tiles need it
    from trajectory.coords import wgs84_to_gcj02

    def to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        glon, glat = wgs84_to_gcj02(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
        return np.asarray(glon, dtype=np.float64), np.asarray(glat, dtype=np.float64)

    return to_gcj02


def _identity(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


__all__ = [
    "PROVIDERS",
    "TILE_COORDS",
    "OSM_URL",
    "OSM_ATTR",
    "TIANDITU_URL",
    "TIANDITU_ATTR",
    "AMAP_URL",
    "AMAP_ATTR",
    "TileConfig",
    "tile_layers",
    "overlay_transform",
]
