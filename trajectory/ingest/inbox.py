"""The inbox listing: which entries of ``inbox/gps/`` are read, and which are skipped and why.

Nothing outside the inbox is ever opened: a symbolic link is followed only when its target
lies inside the inbox. Hidden and temporary names (``.x.csv``, ``x.csv.part``), folders,
pipes and broken links are skipped with a warning (docs/ingest.md).

Examples
--------
>>> from pathlib import Path
>>> format_of(Path("day.CSV.gz")), format_of(Path("a.ndjson")), format_of(Path("notes.xlsx"))
('csv', 'jsonl', None)
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

# the stage's interface inside the package; code outside imports from trajectory.ingest
__all__ = ["format_of", "inbox_files", "sha256_of"]

log = logging.getLogger("trajectory.ingest")

# file name ending -> format; checked longest first
_FORMATS = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonl.gz": "jsonl",
    ".ndjson.gz": "jsonl",
}

# Names an upload tool or editor gives a file it is still writing: never ingested
# (docs/ingest.md: upload as .x.csv or x.csv.part, then rename)
_TEMP_PREFIXES = (".", "~$")
_TEMP_SUFFIXES = (".part", ".partial", ".filepart", ".crdownload", ".download", ".tmp", ".temp", ".swp", "~", "#")


def inbox_files(inbox: Path) -> tuple[list[Path], list[str]]:
    """The inbox entries to read (sorted by name), and a warning for each entry skipped.

    Nothing outside the inbox is ever opened: a symbolic link (to a file or a folder) is
    followed only when its target lies inside the inbox, checked before any ``stat`` of the
    target. A plain sub-folder (an archive, say) is not a delivery and is passed silently.
    """
    if not inbox.is_dir():
        return [], []
    root = inbox.resolve()
    files, warnings = [], []
    for p in sorted(inbox.iterdir()):
        what = _skipped_entry(p, root)
        if what is None:
            files.append(p)
        elif what:
            msg = f"inbox entry {p.name}: {what}; skipped"
            log.warning(msg)
            warnings.append(msg)
    return files, warnings


def _skipped_entry(p: Path, root: Path) -> str | None:
    """Why inbox entry ``p`` is not read ("" = silently), or None when it is a file to read."""
    if p.is_symlink():
        try:
            target = p.resolve()
        except (OSError, RuntimeError):  # a loop of links
            return "损坏的符号链接 a broken symbolic link (a loop)"
        if not target.is_relative_to(root):
            if not p.exists():
                return "损坏的符号链接 a broken symbolic link (to a place outside the inbox), not a GPS file"
            return "指向收件箱以外的符号链接，拒绝读取 a symbolic link to a place outside the inbox, refused and not opened"
    name = p.name
    if p.is_dir() and not p.is_symlink() and (format_of(p) is None or name.startswith(_TEMP_PREFIXES)):
        return ""
    if name.startswith(_TEMP_PREFIXES) or name.lower().endswith(_TEMP_SUFFIXES):
        return (
            "隐藏或临时文件，未入库 a hidden or temporary name (starts with '.' or '~$', or ends like .part/.tmp): "
            "an upload or editor may still be writing it; it is read once renamed to its final name"
        )
    if p.is_file():
        return None
    if p.is_symlink() and not p.exists():
        return "损坏的符号链接 a broken symbolic link, not a GPS file"
    if p.is_dir():
        return "文件夹 a folder, not a GPS file"
    return "非普通文件 not a regular file (a pipe, socket or device), not a GPS file"


def format_of(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in sorted(_FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return _FORMATS[suffix]
    return None


def sha256_of(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
