"""``python -m maps --workspace DIR --month YYYY-MM``: write the month's map pages to out/YYYY-MM/.

Exit codes: :func:`trajectory.errors.exit_code` (docs/spec.md §4): 0 written, 1 the store or the
system failed, 2 refused (a bad month, workspace or input: the project's errors).
"""

from __future__ import annotations

import argparse
import logging
import sys

import duckdb

from maps.build import month_bounds, render_workspace_month
from trajectory.errors import GridpatrolError, exit_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maps", description="网格巡查地图：生成月度离线地图页面")
    parser.add_argument("--workspace", required=True, help="workspace folder")
    parser.add_argument("--month", required=True, help="month to draw, YYYY-MM")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # imported here so `--help` works without the store's dependencies
    from trajectory.store import connect
    from trajectory.workspace import load_workspace

    try:
        month_bounds(args.month)  # InputError: refused (2) before the workspace is read
        ws = load_workspace(args.workspace)
        con = connect(ws.paths, read_only=True)
        try:
            pages = render_workspace_month(ws, con, args.month)
        finally:
            con.close()
    except (GridpatrolError, ValueError, OSError, duckdb.Error) as exc:
        print(f"maps: {exc}", file=sys.stderr)
        return exit_code(exc)
    print(f"maps: wrote {len(pages)} pages to {pages[-1].parent}")
    return exit_code(None)


__all__ = ["main"]


if __name__ == "__main__":
    sys.exit(main())
