"""Weigh a month's pages and time their opening in headless Chromium (issue 15).

``python tests/maps/measure_pages.py OUT/YYYY-MM [--repeat 3]`` prints the folder's size (the sum of
its files, as ``du --apparent-size``), the size by kind of page, and for the dashboard, the
overview, the heaviest grid page and the heaviest playback the time from ``navigationStart`` to
the end of the ``load`` event (our pages build their layers in inline scripts, which run before
``load``), median of ``--repeat`` cold opens from ``file://`` with every ``http(s)://`` request
blocked. Not a test: a measurement to quote in docs/maps.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from maps_fixtures import block_network, chromium_options

from maps.offline import LIB_DIRNAME


def _size_mb(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6


def _driver(profile: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or "/usr/bin/chromium"
    options = chromium_options(binary, "--window-size=1400,900", f"--user-data-dir={profile}")
    drv = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))
    block_network(drv)
    drv.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    return drv


def open_seconds(drv, page: Path) -> float:
    """navigationStart → loadEventEnd of one cold open of ``page``, in seconds."""
    drv.get("about:blank")
    drv.get(page.resolve().as_uri())
    t = drv.execute_script("var t = performance.timing; return [t.navigationStart, t.loadEventEnd];")
    return (t[1] - t[0]) / 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="out/YYYY-MM of a workspace")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--all", action="store_true", help="also open every page once and report the slowest")
    args = parser.parse_args(argv)
    out: Path = args.out
    files = [p for p in out.rglob("*") if p.is_file()]
    print(f"{out}: {len(files)} files, {_size_mb(files):.1f} MB")
    kinds = {
        "index.html": [out / "index.html"],
        "overview.html": [out / "overview.html"],
        "grids/": sorted((out / "grids").glob("*.html")),
        "playback/": sorted((out / "playback").glob("*.html")),
        "lib/": [p for p in (out / "lib").rglob("*") if p.is_file()],
    }
    for kind, paths in kinds.items():
        paths = [p for p in paths if p.exists()]
        if paths:
            big = max(paths, key=lambda p: p.stat().st_size)
            print(
                f"  {kind:<14} {len(paths):>3} files {_size_mb(paths):7.2f} MB  largest {big.name} {big.stat().st_size / 1e6:.2f} MB"
            )
    heaviest_grid = max(kinds["grids/"], key=lambda p: p.stat().st_size, default=None)
    heaviest_play = max(kinds["playback/"], key=lambda p: p.stat().st_size, default=None)
    pages = [out / "index.html", out / "overview.html", heaviest_grid, heaviest_play]
    with tempfile.TemporaryDirectory() as profile:
        drv = _driver(profile)
        try:
            for page in (p for p in pages if p is not None and p.exists()):
                times = [open_seconds(drv, page) for _ in range(max(1, args.repeat))]
                severe = [e["message"] for e in drv.get_log("browser") if e["level"] == "SEVERE"]
                print(
                    f"  open {page.relative_to(out).as_posix():<32} {page.stat().st_size / 1e6:5.2f} MB  "
                    f"median {statistics.median(times):.2f} s (max {max(times):.2f} s of {len(times)})"
                    + (f"  SEVERE: {severe[:2]}" if severe else "")
                )
            if args.all:
                every = sorted(p for p in out.rglob("*.html") if LIB_DIRNAME not in p.relative_to(out).parts)
                timed = sorted(((open_seconds(drv, p), p) for p in every), reverse=True)
                print(
                    f"  every page once: {len(timed)} pages, slowest {timed[0][0]:.2f} s "
                    f"({timed[0][1].relative_to(out).as_posix()}), median {statistics.median(s for s, _ in timed):.2f} s"
                )
        finally:
            drv.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
