"""Fixtures of the scoring tests (the builders live in ``scoring_helpers``)."""

from scoring_helpers import grids, grids_gdf, load_month, policy  # noqa: F401  (fixtures)
