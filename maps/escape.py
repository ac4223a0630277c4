"""Escaping of workspace text for the map pages: the one place it happens.

Grid ids and names, worker ids, site ids, reason codes, the tile attribution of ``patrol.toml``,
file names of exports: everything a workspace supplies is hostile until escaped. The rule,
applied everywhere in :mod:`maps`:

1. **Workspace text is HTML-escaped once, with** :func:`html_text` (or :func:`html_texts` for a
   column), where it enters a page. From then on the value is HTML, and the browser inserts it as
   HTML (``innerHTML`` of an info box, Leaflet ``bindTooltip``/``bindPopup``, the layer control's
   labels, folium's GeoJSON tooltip table), where it shows exactly as typed. Text that is ours
   (labels, legends) is written as HTML directly; it is never concatenated with unescaped input.
2. **Data reaches JavaScript only as JSON, with** :func:`script_json`; workspace text is never
   concatenated into JavaScript code, a template literal or a Jinja template.
3. **URLs are built from our file names** (``maps.build._safe_name``) **and passed through**
   :func:`url_path`, then :func:`html_text` for the attribute, so no workspace value can become
   a ``javascript:`` link.

Why :func:`html_text` escapes more than ``html.escape(quote=True)``: folium's own elements
(``GeoJson``, ``LayerControl``, ``TileLayer``, ``Tooltip``) are rendered by branca, which parses
each element's output *again* as a Jinja template, so ``{{ … }}`` or ``{% … %}`` in a grid name
would run as template code when the page is built; folium's ``Tooltip`` puts its text in a
JavaScript template literal, where a backtick, ``${`` or a backslash is code. The braces,
backtick and backslash become character references, as do CR, LF, U+2028 and U+2029 (the
latter two ended JavaScript string literals before ES2019). The result contains no character
that is special in HTML text, a quoted attribute, a JavaScript string or template literal, or
Jinja, and still shows as the same text in the browser.

:func:`script_json` escapes ``<``, ``>`` and ``&`` (so ``</script>`` or ``<!--`` in a value
cannot end or confuse the ``<script>`` element) and U+2028/U+2029, as ``\\u003c`` etc.
"""

from __future__ import annotations

import html
import json
import string
import unicodedata
from urllib.parse import quote

import pandas as pd

# (character, replacement) applied after html.escape(quote=True); "&" is already "&amp;" then
_EXTRA_HTML = (
    ("{", "&#123;"),
    ("}", "&#125;"),
    ("`", "&#96;"),
    ("\\", "&#92;"),
    ("\r", "&#13;"),
    ("\n", "&#10;"),
    ("\u2028", "&#8232;"),
    ("\u2029", "&#8233;"),
)
_EXTRA_TABLE = str.maketrans(dict(_EXTRA_HTML))
_SCRIPT_JSON = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))
_URL_SAFE = frozenset(string.ascii_letters + string.digits + "-._~/")


def html_text(value: object) -> str:
    """Workspace text as HTML that shows as the same text, in element content or a quoted attribute.

    Parameters
    ----------
    value : object
        Converted with ``str``.

    Returns
    -------
    str
        ``html.escape(str(value), quote=True)`` with ``{ } ` \\``, CR, LF, U+2028 and U+2029 also
        as character references (see the module docstring for why).

    Examples
    --------
    >>> html_text("<b onclick='x'>${a}`</b>")
    '&lt;b onclick=&#x27;x&#x27;&gt;$&#123;a&#125;&#96;&lt;/b&gt;'
    """
    return html.escape(str(value), quote=True).translate(_EXTRA_TABLE)


def html_texts(values: pd.Series) -> pd.Series:
    """:func:`html_text` of each value of a column (missing values become ``""``), same index.

    Examples
    --------
    >>> html_texts(pd.Series(["a<b", None])).tolist()
    ['a&lt;b', '']
    """
    s = values.astype(object).where(values.notna(), "").astype(str)
    # html.escape per distinct value: a column of a month's points has a handful of them
    codes, uniques = pd.factorize(s)
    escaped = pd.Series([html_text(u) for u in uniques], dtype=object)
    return pd.Series(escaped.to_numpy()[codes] if len(codes) else [], index=values.index, dtype=object)


def script_json(value: object) -> str:
    """JSON to embed in a ``<script>`` element: a JavaScript expression, never code from the data.

    Examples
    --------
    >>> script_json({"t": "</script><!--\\u2028"})
    '{"t":"\\\\u003c/script\\\\u003e\\\\u003c!--\\\\u2028"}'
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for a, b in _SCRIPT_JSON:
        text = text.replace(a, b)
    return text


def url_path(path: str) -> str:
    """A relative URL of a file: ASCII other than ``A-Za-z0-9-._~/`` and non-ASCII control,
    format or space characters percent-encoded, so ``:`` cannot start a scheme (``javascript:``)
    and ``#``/``?``/``%`` keep their file-name meaning. Letters of other scripts (Chinese) stay
    as they are: browsers encode them themselves. Escape the result with :func:`html_text` for
    an attribute.

    Examples
    --------
    >>> url_path("javascript:alert(1)/考核 #1.xlsx")
    'javascript%3Aalert%281%29/考核%20%231.xlsx'
    """
    return "".join(
        ch if ch in _URL_SAFE or (ord(ch) > 127 and unicodedata.category(ch)[0] not in "CZ") else quote(ch, safe="")
        for ch in path
    )


__all__ = ["html_text", "html_texts", "script_json", "url_path"]
