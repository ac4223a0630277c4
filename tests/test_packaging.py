"""The installed package holds every subpackage: pyproject lists each folder with an __init__.py."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("trajectory", "scoring", "maps")
        for init in (ROOT / top).rglob("__init__.py")
        if "vendor" not in init.parts
    }
    assert found <= listed, f"not installed by a non-editable install: {sorted(found - listed)}"
