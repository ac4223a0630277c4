"""``python -m maps --workspace DIR --month YYYY-MM``: write the month's map pages to out/YYYY-MM/."""

from __future__ import annotations

import argparse
import logging
import sys

from maps.build import month_bounds, render_workspace_month
from trajectory.errors import GridpatrolError


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
        month_bounds(args.month)
        ws = load_workspace(args.workspace)
        con = connect(ws.paths, read_only=True)
        try:
            pages = render_workspace_month(ws, con, args.month)
        finally:
            con.close()
    except (GridpatrolError, ValueError, OSError) as exc:
        print(f"maps: {exc}", file=sys.stderr)
        return 1
    print(f"maps: wrote {len(pages)} pages to {pages[-1].parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
