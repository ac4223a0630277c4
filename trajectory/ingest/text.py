"""Text files made safe for the readers: encoding (UTF-8, else GB18030/GBK) and overlong lines.

A text file is read as UTF-8 (with or without BOM) when its first MiB decodes so, else
transcoded from GB18030 (GBK's superset). A line longer than ``MAX_LINE_BYTES`` (a binary
blob, a lost newline) is cut out into a copy and quarantined alone, so that neither can
stop the reader. Streamed: memory is a block, not the file.

Examples
--------
>>> _long_line_in([b"ab\\ncdef\\n"], 3), _long_line_in([b"ab\\ncd\\n"], 3)
(True, False)
>>> import numpy as np
>>> original_lines(np.array([1, 2, 3]), np.array([2]))  # line 2 was cut out of the copy
array([1, 3, 4])
"""

from __future__ import annotations

import codecs
import gzip
import mmap
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

# the stage's interface inside the package; code outside imports from trajectory.ingest
__all__ = [
    "MAX_LINE_BYTES",
    "RAW_MAX_CHARS",
    "as_utf8",
    "drop_long_lines",
    "has_long_line",
    "is_blank",
    "original_lines",
]

_ENCODING_PROBE_BYTES = 1 << 20
RAW_MAX_CHARS = 2000  # a quarantined row's raw JSON is cut here (a broken file can have megabyte lines)
# A GPS line is ~100 bytes. A longer line than this is broken (a binary blob, a lost newline)
# and quarantined alone; DuckDB, whose own limit stops the whole file, is given twice as much.
MAX_LINE_BYTES = 1 << 20
_SCAN_BLOCK_BYTES = 1 << 22


def _open_bytes(path: Path) -> Any:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb")


def as_utf8(path: Path, tmp: Path) -> tuple[Path | None, list[str], str | None]:
    """UTF-8 (with or without BOM) is read as is; anything else as GB18030 (GBK's superset), transcoded.

    The encoding is decided on the first MiB; a later undecodable line is rejected by the
    CSV reader and quarantined.
    """
    try:
        with _open_bytes(path) as fh:
            head = fh.read(_ENCODING_PROBE_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        return None, [], f"cannot be read: {exc}"
    if _decodes(head, "utf-8"):
        return path, [], None
    if not _decodes(head, "gb18030"):
        return None, [], "not a text file in UTF-8 or GB18030/GBK (garbage or binary bytes)"
    out = tmp / (path.name.removesuffix(".gz") + ".utf8")
    decoder = codecs.getincrementaldecoder("gb18030")(errors="replace")
    try:
        with _open_bytes(path) as fin, out.open("w", encoding="utf-8", newline="") as fout:
            while chunk := fin.read(1 << 22):
                fout.write(decoder.decode(chunk))
            fout.write(decoder.decode(b"", final=True))
    except (OSError, EOFError, zlib.error) as exc:
        return None, [], f"cannot be read: {exc}"
    return out, [f"inbox file {path.name}: GB18030/GBK 编码 GB18030/GBK-encoded text, read as GB18030"], None


def _decodes(head: bytes, encoding: str) -> bool:
    # a probe cut in the middle of a multi-byte character still decodes (final=False)
    try:
        codecs.getincrementaldecoder(encoding)().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def is_blank(path: Path) -> bool:
    """A text file holding nothing but a BOM and blanks (an export of nothing)."""
    with _open_bytes(path) as fh:
        head = fh.read(4096)
    return len(head) < 4096 and not head.removeprefix(b"\xef\xbb\xbf").strip()


def has_long_line(path: Path, limit: int, block_bytes: int | None = None) -> bool:
    """Whether a line of the file is longer than ``limit`` bytes (newline excluded), streamed.

    Every window of ``limit + 1`` bytes must hold a newline: one ``rfind`` per window, each
    hop landing past the window before it, so a file costs a few searches per ``limit`` bytes,
    not one per line. An uncompressed file is searched in place (memory-mapped, no copy);
    ``block_bytes`` forces reading blocks of that size.
    """
    with _open_bytes(path) as fh:
        if block_bytes is None and not path.name.lower().endswith(".gz"):
            if os.fstat(fh.fileno()).st_size == 0:
                return False
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as whole:
                return _long_line_in([whole], limit)
        return _long_line_in(iter(lambda: fh.read(block_bytes or _SCAN_BLOCK_BYTES), b""), limit)


def _long_line_in(blocks: Iterable[Any], limit: int) -> bool:
    start = 0  # the current line's start, relative to the block (negative: in a block before)
    for block in blocks:
        size = len(block)
        while start + limit < size:
            nl = block.rfind(b"\n", max(start, 0), start + limit + 1)
            if nl < 0:
                return True
            start = nl + 1
        nl = block.rfind(b"\n", max(start, 0))  # the last line's start, carried to the next block
        start = (nl + 1 if nl >= 0 else start) - size
    return False


def drop_long_lines(path: Path, out: Path, limit: int, block_bytes: int = _SCAN_BLOCK_BYTES) -> list[tuple[int, str]]:
    """Copy ``path`` to ``out`` without its lines longer than ``limit`` bytes; returns those lines.

    Each removed line is given as (line number from 1, its first ``RAW_MAX_CHARS`` bytes as
    text). Streamed a block at a time: memory is a block plus at most one line's ``limit``.
    """
    removed: list[tuple[int, str]] = []
    line_no = 1  # of the line that ``pending`` begins
    pending = b""  # the current line so far, while not known to be long
    head: bytes | None = None  # the current line's head once it is known to be long

    def drop(number: int, text: bytes) -> None:
        removed.append((number, text[:RAW_MAX_CHARS].decode("utf-8", errors="replace")))

    with _open_bytes(path) as fin, out.open("wb") as fout:
        while block := fin.read(block_bytes):
            ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 0x0A)
            if not len(ends):
                if head is not None:
                    head += block[: RAW_MAX_CHARS - len(head)]
                else:
                    pending += block
                    if len(pending) > limit:
                        head, pending = pending[:RAW_MAX_CHARS], b""
                continue
            first = int(ends[0])
            if head is not None or len(pending) + first > limit:
                drop(line_no, (head if head is not None else pending) + block[:first])
            else:
                fout.write(pending)
                fout.write(block[: first + 1])
            pending, head = b"", None
            # whole lines of the block: the long ones (few) are cut out of what is written
            lengths = np.diff(ends) - 1
            written = first + 1
            for j in np.flatnonzero(lengths > limit):
                lo, hi = int(ends[j]) + 1, int(ends[j + 1])
                fout.write(block[written:lo])
                drop(line_no + 1 + int(j), block[lo:hi])
                written = hi + 1
            fout.write(block[written : int(ends[-1]) + 1])
            line_no += len(ends)
            tail = block[int(ends[-1]) + 1 :]
            if len(tail) > limit:
                head = tail[:RAW_MAX_CHARS]
            else:
                pending = tail
        if head is not None:
            drop(line_no, head)
        else:
            fout.write(pending)
    return removed


def original_lines(lines: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Line numbers in the copy without the ``removed`` lines (sorted) -> line numbers in the file."""
    if not len(removed):
        return lines
    before = removed - np.arange(len(removed))  # a removed line's number in the copy, were it kept
    return lines + np.searchsorted(before, lines, side="right")


def _rejects_options() -> str:
    return (
        "store_rejects = true, rejects_table = '_gp_rejects', rejects_scan = '_gp_reject_scans', "
        f"max_line_size = {2 * MAX_LINE_BYTES}"
    )
