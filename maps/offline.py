"""Offline pages: the vendored Leaflet stack, copied beside the pages, and the check that no
page fetches anything from another host.

folium loads Leaflet, jQuery, Bootstrap, Font Awesome, awesome-markers and each plugin's
scripts from CDNs. Our pages use none of the CDN files: every map is created by
:func:`local_assets`, which replaces the map's script and stylesheet list with the files of
``maps/vendor/`` (see ``maps/vendor/VERSIONS.md``), referenced relatively from the page;
:func:`install_lib` copies them to ``out/YYYY-MM/lib/``. :func:`check_offline` refuses to write a
page that still references another host, so a new folium release cannot re-introduce a CDN.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

VENDOR_DIR = Path(__file__).resolve().parent / "vendor"
LIB_DIRNAME = "lib"

# (name, path under the lib folder), in load order
CORE_JS = (("leaflet", "leaflet/leaflet.js"),)
CORE_CSS = (("leaflet_css", "leaflet/leaflet.css"),)
PLUGIN_JS = {
    "heat": (("leaflet_heat", "leaflet.heat/leaflet-heat.js"),),
    "timedimension": (
        ("moment", "moment/moment.min.js"),
        ("iso8601", "iso8601-js-period/iso8601.js"),
        ("leaflet_timedimension", "leaflet-timedimension/leaflet.timedimension.min.js"),
    ),
}
PLUGIN_CSS = {
    "heat": (),
    "timedimension": (("leaflet_timedimension_css", "leaflet-timedimension/leaflet.timedimension.control.css"),),
}

# src/href of tags that make the browser fetch something (a plain <a href> does not)
_FETCHING_ATTR = re.compile(
    r"<(?:script|link|img|iframe|source|embed|object|audio|video)\b[^>]*?\b(?:src|href|data)\s*=\s*[\"']([^\"']*)[\"']",
    re.IGNORECASE,
)
_CSS_URL = re.compile(r"url\(\s*[\"']?([^\"')]+)", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"@import\s+[\"']([^\"']+)", re.IGNORECASE)
_REMOTE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)


class OfflineError(RuntimeError):
    """A page would fetch a script, stylesheet or other resource from another host."""


def install_lib(lib_dir: Path) -> Path:
    """Copy the vendored libraries (with their licences) to ``lib_dir``; returns ``lib_dir``.

    Idempotent: files already there with the same size are kept.
    """
    lib_dir = Path(lib_dir)
    for src in VENDOR_DIR.rglob("*"):
        if src.is_dir() or src.suffix == ".py" or "__pycache__" in src.parts:
            continue
        dst = lib_dir / src.relative_to(VENDOR_DIR)
        if dst.exists() and dst.stat().st_size == src.stat().st_size:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return lib_dir


def lib_href(page: Path, lib_dir: Path) -> str:
    """Relative URL of ``lib_dir`` seen from the page ``page`` (POSIX separators).

    Examples
    --------
    >>> lib_href(Path("/o/grids/g1.html"), Path("/o/lib"))
    '../lib'
    """
    return Path(os.path.relpath(Path(lib_dir).resolve(), Path(page).resolve().parent)).as_posix()


def local_assets(href: str, plugins: tuple[str, ...] = ()) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The (name, url) script and stylesheet lists of a page using ``plugins`` ('heat', 'timedimension').

    Set them as the ``default_js`` / ``default_css`` of the page's ``folium.Map`` instance
    (instance attributes: folium's classes keep their CDN defaults for other users).
    """
    unknown = set(plugins) - set(PLUGIN_JS)
    if unknown:
        raise ValueError(f"plugins were {sorted(unknown)} but are expected to be among {sorted(PLUGIN_JS)}")
    js = [*CORE_JS, *(item for p in plugins for item in PLUGIN_JS[p])]
    css = [*CORE_CSS, *(item for p in plugins for item in PLUGIN_CSS[p])]
    return [(n, f"{href}/{p}") for n, p in js], [(n, f"{href}/{p}") for n, p in css]


def external_references(html: str) -> list[str]:
    """URLs of resources the page would fetch from another host (scripts, stylesheets, images,
    frames, CSS ``url()`` / ``@import``). Relative and ``data:`` URLs are local.

    Tile URL templates live inside JavaScript strings, not in these places, so they are not
    reported: whether a page may contain them is the tile configuration's decision.

    Examples
    --------
    >>> external_references('<script src="lib/leaflet/leaflet.js"></script><link href="//cdn.x/a.css">')
    ['//cdn.x/a.css']
    """
    found = [m.group(1) for m in _FETCHING_ATTR.finditer(html)]
    found += [m.group(1) for m in _CSS_URL.finditer(html)]
    found += [m.group(1) for m in _CSS_IMPORT.finditer(html)]
    return [u for u in found if _REMOTE.match(u)]


def check_offline(html: str, where: str) -> str:
    """Return ``html`` unchanged, or raise :class:`OfflineError` naming what would be fetched."""
    remote = external_references(html)
    if remote:
        raise OfflineError(f"{where}: the page would load {', '.join(sorted(set(remote)))}; expected only local files")
    return html


__all__ = [
    "VENDOR_DIR",
    "LIB_DIRNAME",
    "CORE_JS",
    "CORE_CSS",
    "PLUGIN_JS",
    "PLUGIN_CSS",
    "OfflineError",
    "install_lib",
    "lib_href",
    "local_assets",
    "external_references",
    "check_offline",
]
