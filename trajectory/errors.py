"""The project's few exception classes (STYLE lesson 6)."""

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
