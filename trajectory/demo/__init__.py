"""A realistic, deterministic demo workspace (SPEC §2), built from a seed.

``build_demo_workspace`` writes a whole workspace near 常州西太湖: grid polygons that tile an
area (a relaxed Voronoi tessellation, communities 社区 in the core and larger villages 村 on
the outskirts), a roster with one full-time worker per grid plus part-timers, key sites,
leave, a calendar override, a month of phone GPS in mixed file formats, and the centre's
indicator tables. Every full-time worker follows a behaviour profile (diligent, lazy, phone
left on a desk, car patrols, absences with leave filed in time or late, mock locations,
mornings only, a replayed track), so each rule of the assessment has something to find.

Everything is synthetic: names are placeholders (网格员甲一, 重点人员（示例）) and no record
describes a real person. The same seed gives byte-identical files.

The package follows the data it makes (docs/ARCHITECTURE.md):

- ``base``: area, month, seed, profiles, site labels, the seeded rng streams;
- ``city``: the grid polygons and their GeoJSON text (the shipped sample is package data);
- ``streets``: a street network per grid, with shortest routes;
- ``phones``: walks and stays sampled as a phone does, the one phone-noise model
  (``phone_noise``, shared with ``benchmarks/`` and the tests);
- ``patrols``: workers, profiles, grids with sites, absences, visits, one worker's day;
- ``gps_files``: the inbox files in CSV, Parquet and JSON Lines, with planted faults;
- ``records``: roster, sites, leave, calendar, settings and the indicator tables;
- ``workspace``: ``build_demo_workspace`` and the command line.

Examples
--------
>>> import tempfile
>>> grids = make_grids(seed=7, n_grids=6)
>>> len(grids), sorted(set(grids["grid_type"]))
(6, ['村', '社区'])

Command line: ``python -m trajectory.demo --out DIR [--month 2026-10] [--seed N]``.
"""

from __future__ import annotations

from trajectory.demo.base import (
    ABSENT_LEAVE_IN_TIME,
    ABSENT_LEAVE_LATE,
    CAR,
    DEFAULT_MONTH,
    DEFAULT_N_GRIDS,
    DEFAULT_SEED,
    DESK_PHONE,
    DILIGENT,
    LAZY,
    MOCK_LOCATION,
    MORNING_ONLY,
    PART_TIME,
    PROFILES,
    REPLAY,
    DemoManifest,
)
from trajectory.demo.city import SAMPLE_GRIDS_PATH, grids_geojson_text, make_grids, write_sample_grids
from trajectory.demo.phones import phone_noise
from trajectory.demo.workspace import build_demo_workspace, main

__all__ = [
    "ABSENT_LEAVE_IN_TIME", "ABSENT_LEAVE_LATE", "CAR", "DEFAULT_MONTH", "DEFAULT_N_GRIDS", "DEFAULT_SEED",
    "DESK_PHONE", "DILIGENT", "LAZY", "MOCK_LOCATION", "MORNING_ONLY", "PART_TIME", "PROFILES", "REPLAY",
    "SAMPLE_GRIDS_PATH", "DemoManifest", "build_demo_workspace", "grids_geojson_text", "main", "make_grids",
    "phone_noise", "write_sample_grids",
]  # fmt: skip
