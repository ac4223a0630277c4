"""Header mapping: which delivered column (or JSON key) is read as each contract column.

A header is compared after NFKC (full-width forms), case folding and removing blanks, and
maps by ``[gps.columns]`` of ``patrol.toml``, by the contract's own name, or by a built-in
Chinese alias (:data:`GPS_HEADER_ALIASES`).

Examples
--------
>>> normalise_header(" 定位时间（GPS） ")
'定位时间(gps)'
>>> resolve_columns(["人员编号", "定位时间", "经度", "纬度"], {}, "a.csv")
({'worker_id': '人员编号', 'ts': '定位时间', 'lon': '经度', 'lat': '纬度'}, [])
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

import pyarrow as pa

from trajectory import contract as c

# the stage's interface inside the package; code outside imports from trajectory.ingest
__all__ = [
    "GPS_HEADER_ALIASES",
    "REQUIRED_COLUMNS",
    "arrow_kind",
    "normalise_header",
    "resolve_columns",
    "sql_ident",
    "sql_safe_names",
    "sql_str",
]

REQUIRED_COLUMNS = c.GPS_POINT_COLUMNS  # worker_id, ts, lon, lat
_OPTIONAL = c.GPS_OPTIONAL_COLUMNS  # accuracy_m, speed_mps, mock, device_id
# Headers of the centre platform's own exports, per contract column in priority order (a file
# with two of them reads the first listed). Compared after NFKC (full-width brackets), case
# folding and removing blanks; ``[gps.columns]`` in patrol.toml adds more. 速度 is m/s, as
# phones report it (Android Location.getSpeed); a km/h column is mapped to "" (not read).
GPS_HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "worker_id": ("人员编号", "网格员编号", "网格员id", "人员id", "员工编号", "工号", "用户编号", "用户id"),
    "ts": ("定位时间", "采集时间", "gps时间", "时间", "时间戳"),
    "lon": ("经度",),
    "lat": ("纬度",),
    "accuracy_m": ("定位精度", "精度", "定位精度(米)", "精度(米)", "定位精度(m)", "精度(m)"),
    "speed_mps": ("速度", "速度(米/秒)", "速度(m/s)"),
    "mock": ("模拟定位", "是否模拟定位", "虚拟定位", "是否虚拟定位"),
    "device_id": ("设备编号", "设备号", "设备id", "终端编号", "终端号", "imei"),
}


def sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def normalise_header(name: str) -> str:
    """A header as compared: NFKC (full-width forms), case folded, without BOM and blanks."""
    return "".join(unicodedata.normalize("NFKC", name.replace("\ufeff", "")).casefold().split())


_ALIASES = {
    normalise_header(a): (col, rank) for col, aliases in GPS_HEADER_ALIASES.items() for rank, a in enumerate(aliases)
}


def sql_safe_names(names: list[str]) -> list[str]:
    """Rename columns SQL cannot name (an empty header cell) or tell apart (a repeated name).

    The raw values of quarantined rows are kept under these names; a repeated name is read
    from its first column (:func:`resolve_columns`), so renaming the others hides nothing.
    """
    seen: set[str] = set()
    out = []
    for i, name in enumerate(names):
        new = name if name.strip() else f"column{i}"
        while new in seen:
            new = f"{new}_{i}"
        seen.add(new)
        out.append(new)
    return out


def resolve_columns(names: list[str], columns: Mapping[str, str], file_name: str) -> tuple[dict[str, str], list[str]]:
    """Which delivered column (or JSON key) is read as each contract column, and warnings.

    A header means, in this order: what ``columns`` (``[gps.columns]``, normalised headers)
    says ("" = not read), the contract column it names, the column of its built-in alias
    (:data:`GPS_HEADER_ALIASES`). Of two headers for one contract column, the contract's own
    name beats ``[gps.columns]``, which beats an alias (the earlier listed first); then the
    first in the file is read, with a warning.
    """
    contract = (*REQUIRED_COLUMNS, *_OPTIONAL)
    best: dict[str, tuple[tuple[int, int, int], str]] = {}
    others: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        norm = normalise_header(name)
        if norm in columns:
            target, rank = columns[norm], (1, 0)
        elif norm in contract:
            target, rank = norm, (0, 0)
        elif norm in _ALIASES:
            target, alias_rank = _ALIASES[norm]
            rank = (2, alias_rank)
        else:
            continue
        if not target:
            continue
        key = (*rank, i)
        if target in best and best[target][0] < key:
            others.setdefault(target, []).append(name)
            continue
        if target in best:
            others.setdefault(target, []).append(best[target][1])
        best[target] = (key, name)
    found = {target: name for target, (_, name) in best.items()}
    warnings = [
        f"inbox file {file_name}: columns {', '.join(repr(h) for h in [found[t], *rest])} all read as {t}; "
        f"'{found[t]}' is used"
        for t, rest in others.items()
    ]
    return found, warnings


def arrow_kind(typ: pa.DataType) -> str:
    if pa.types.is_timestamp(typ):
        return "ts_tz" if typ.tz is not None else "ts_naive"
    if pa.types.is_integer(typ):
        return "int"
    if pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        return "float"
    if pa.types.is_boolean(typ):
        return "bool"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "text"
    return "other"


# --- classification (one SQL query per file) ----------------------------------------------------
