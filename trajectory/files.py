"""Atomic file writing, in one place: a file appears whole under its name or not at all.

Every writer of the store and of ``out/`` goes through :func:`write_atomic`: the data is
written to a temporary ``.<name>.<random>.tmp`` beside the target (readers glob ``*.parquet``,
``*.csv``, ...: they never see it), optionally fsync'ed, then renamed onto the target
(``os.replace``, atomic on POSIX). A run killed in between leaves only the temporary, which
:func:`trajectory.store.remove_stale_temporaries` deletes at the next run.

>>> import tempfile
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> write_bytes_atomic(folder / "a.csv", b"x,y\\n").read_bytes()
b'x,y\\n'
>>> sorted(p.name for p in folder.iterdir())
['a.csv']
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["TEMP_SUFFIX", "temp_path", "write_atomic", "write_bytes_atomic"]

TEMP_SUFFIX = ".tmp"


def temp_path(path: Path) -> Path:
    """A fresh temporary name beside ``path``: ``.<name>.<random>.tmp`` (hidden, never globbed)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")


def write_atomic(path: Path, write: Callable[[Path], object], *, fsync: bool = True) -> Path:
    """Write ``path`` atomically: ``write(tmp)`` writes a temporary beside it, which is renamed.

    Parameters
    ----------
    path : Path
        The target; its folder is created when missing.
    write : callable
        Called with the temporary path; writes the whole file there (its return value is ignored).
    fsync : bool
        Flush the data to disk before the rename (a power cut then leaves the old or the new
        file, not an empty one).

    Returns ``path``. When ``write`` raises, the temporary is deleted and the target is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: Path, data: bytes, *, fsync: bool = True) -> Path:
    """:func:`write_atomic` of ``data``."""
    return write_atomic(path, lambda tmp: tmp.write_bytes(data), fsync=fsync)
