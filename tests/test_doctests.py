"""The Examples sections of the packages' docstrings run (STYLE: examples that run)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("trajectory", "scoring", "maps")
MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for pkg in PACKAGES
    for path in (ROOT / pkg).rglob("*.py")  # subpackages too (trajectory.demo.city, ...)
    if path.stem != "__main__" and "vendor" not in path.parts
)


def test_examples_exist() -> None:
    examples = sum(
        len(t.examples) for name in MODULES for t in doctest.DocTestFinder().find(importlib.import_module(name))
    )
    assert examples >= 30


@pytest.mark.parametrize("name", MODULES)
def test_module_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
