"""Mounting datasets on a provider node: CSV, Parquet or a SQL table, each bound to a catalog asset.

A mounted dataset is read into column arrays (NumPy) once and kept in memory; its rows never leave the node,
except for grade-1 (open) assets, which may be downloaded.

    ValueError
     └── DatasetError        a mount that cannot be read, or a column the dataset does not have
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

SOURCE_KINDS = ("csv", "parquet", "sql")


class DatasetError(ValueError):
    """A dataset cannot be mounted, or a request names what it does not hold."""


@dataclass(frozen=True)
class Mount:
    """How one dataset is mounted: the asset it serves, its grade, where the rows are."""

    asset: str
    name: str
    grade: int
    kind: str
    location: str
    table: str | None = None  # for sql: the table
    id_column: str | None = None


@dataclass
class Dataset:
    """A mounted dataset: its column arrays (numeric as float64, others as strings)."""

    mount: Mount
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    original: Any = None  # grade 1 only: the rows as read, so a download returns them unchanged

    def open_data(self) -> str:
        """Return an open (grade-1) dataset as CSV, values exactly as mounted."""
        if self.mount.grade != 1 or self.original is None:
            raise DatasetError(f"dataset {self.mount.name} is not open data")
        return self.original.to_csv(index=False)

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def select(self, names: list[str]) -> dict[str, np.ndarray]:
        """Return the named columns, refusing an unknown one."""
        unknown = [name for name in names if name not in self.columns]
        if unknown:
            raise DatasetError(f"dataset {self.mount.name} has no column {', '.join(unknown)}")
        return {name: self.columns[name] for name in names}


def _frame(mount: Mount):
    import pandas as pd

    if mount.kind == "csv":  # ids stay text: "0123" is not the number 123
        return pd.read_csv(mount.location, dtype={mount.id_column: str} if mount.id_column else None)
    if mount.kind == "parquet":
        return pd.read_parquet(mount.location)
    if mount.kind == "sql":
        from sqlalchemy import create_engine

        engine = create_engine(mount.location)
        try:
            return pd.read_sql_table(mount.table, engine)
        finally:
            engine.dispose()
    raise DatasetError(f"unknown source kind {mount.kind!r}; expected one of {', '.join(SOURCE_KINDS)}")


def load(mount: Mount) -> Dataset:
    """Read a mounted dataset into column arrays."""
    if mount.kind in ("csv", "parquet") and not Path(mount.location).exists():
        raise DatasetError(f"dataset {mount.name}: no file {mount.location}")
    try:
        frame = _frame(mount)
    except (OSError, ValueError, ImportError) as exc:
        raise DatasetError(f"dataset {mount.name} cannot be read from {mount.location}: {exc}") from exc
    columns: dict[str, np.ndarray] = {}
    for name in frame.columns:
        series = frame[name]
        if series.dtype.kind in "biuf" and name != mount.id_column:
            columns[str(name)] = series.to_numpy(dtype=np.float64)
        else:
            columns[str(name)] = series.astype(str).to_numpy()
    original = None
    if mount.grade == 1:  # open data is downloaded exactly as mounted: for CSV, every value as its text
        original = frame
        if mount.kind == "csv":
            import pandas as pd

            original = pd.read_csv(mount.location, dtype=str, keep_default_na=False)
    return Dataset(mount, columns, original=original)


def load_all(mounts: list[Mount]) -> Mapping[str, Dataset]:
    """Mount every dataset, keyed by asset id."""
    return {mount.asset: load(mount) for mount in mounts}
