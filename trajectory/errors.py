"""The project's few exception classes (STYLE lesson 6) and the one exit-code map of its commands.

Every entry point (``python -m trajectory.run``, ``python -m scoring.export``, ``python -m maps``)
turns what it caught into its exit code with :func:`exit_code` (docs/spec.md §4):

====  =====================================================================================
code  meaning
====  =====================================================================================
0     success
1     the command failed while working: the store or the system (DuckDB, disk, a bug); run again
2     refused: bad arguments or usage, a wrong workspace, input file or ``patrol.toml``, the
      store busy or inconsistent: every :class:`GridpatrolError`; fix what the line names
130   interrupted (Ctrl-C)
====  =====================================================================================
"""

from __future__ import annotations


class GridpatrolError(Exception):
    """Base class: every error the pipeline raises on purpose."""


class WorkspaceError(GridpatrolError):
    """The workspace folder itself is unusable (missing, locked, unreadable)."""


class InputError(GridpatrolError):
    """An input file is wrong. Names the file, and the row and column where known.

    Rows are 1-based data rows (the header is row 0 for CSV files); features are
    counted from 1 in GeoJSON files.

    Examples
    --------
    >>> str(InputError("workers.csv", "grid_id is empty", row=3, column="grid_id"))
    'workers.csv, row 3, column grid_id: grid_id is empty'
    """

    def __init__(
        self,
        file: str,
        message: str,
        *,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file = str(file)
        self.row = row
        self.column = column
        self.message = message
        where = [self.file]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column}")
        super().__init__(f"{', '.join(where)}: {message}")


class PolicyError(InputError):
    """The policy file (patrol.toml) is wrong."""


class StoreError(GridpatrolError):
    """The DuckDB/Parquet store is inconsistent or busy (another run holds the lock)."""


EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_INTERRUPTED = 130


def exit_code(exc: BaseException | None) -> int:
    """The exit code of a command that stopped on ``exc`` (``None``: it succeeded).

    Examples
    --------
    >>> exit_code(None), exit_code(InputError("--month", "month was '2026-13'"))
    (0, 2)
    >>> exit_code(StoreError("busy")), exit_code(OSError("disk full")), exit_code(KeyboardInterrupt())
    (2, 1, 130)
    """
    if exc is None:
        return EXIT_OK
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, GridpatrolError):
        return EXIT_REFUSED
    return EXIT_FAILED


__all__ = [
    "GridpatrolError",
    "WorkspaceError",
    "InputError",
    "PolicyError",
    "StoreError",
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_REFUSED",
    "EXIT_INTERRUPTED",
    "exit_code",
]
