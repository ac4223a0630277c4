"""Shared fixtures: one small demo workspace, built and run through the whole pipeline once."""

from __future__ import annotations

from pathlib import Path

import pytest

DEMO_MONTH = "2026-10"
DEMO_GRIDS = 6  # small: the whole pipeline runs on it in well under a minute


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo workspace (6 grids, October 2026) after `trajectory.run --month 2026-10`."""
    from trajectory.demo import build_demo_workspace
    from trajectory.run import main

    root = tmp_path_factory.mktemp("demo") / "ws"
    build_demo_workspace(root, month=DEMO_MONTH, seed=7, n_grids=DEMO_GRIDS)
    code = main(["--workspace", str(root), "--month", DEMO_MONTH, "--no-progress", "-q"])
    assert code == 0, "the pipeline failed on the demo workspace"
    return root
