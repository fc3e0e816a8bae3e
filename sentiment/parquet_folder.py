"""Reading a parquet folder that a streaming job is still writing: skip what cannot be read yet.

A folder of the pipeline's output (``output/tweets``, ``output/trends``, ``output/alerts``) holds
``*.parquet`` files at any depth (``date=2026-11-28/part-....parquet``), next to the job's
bookkeeping (``_spark_metadata/``, ``.part-....crc``, ``_temporary/``), which is ignored. A file
being written (no footer yet) or removed between listing and reading is skipped, never an error.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParquetFile:
    path: Path
    mtime_ns: int
    size: int


def list_parquet_files(folder: str | Path) -> list[ParquetFile]:
    """Every ``*.parquet`` file under ``folder``, oldest first (by mtime, then path).

    Names starting with ``_`` or ``.`` (files or folders) are left out. A missing folder has none.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(("_", "."))]
        for name in filenames:
            if name.endswith(".parquet") and not name.startswith(("_", ".")):
                path = Path(dirpath, name)
                try:
                    st = path.stat()
                except OSError:  # removed since the listing
                    continue
                found.append(ParquetFile(path, st.st_mtime_ns, st.st_size))
    found.sort(key=lambda f: (f.mtime_ns, str(f.path)))
    return found


def read_parquet_file(path: str | Path, columns: Sequence[str] | None = None, filters=None) -> pd.DataFrame | None:
    """One file as a DataFrame, or None when it cannot be read now (partial, removed, not parquet).

    Args:
        path: the file.
        columns: the columns to read (those missing from the file are left out); all by default.
        filters: a pyarrow filter, e.g. ``[("keyword", "=", "python")]``.
    """
    try:
        if columns is not None:
            present = set(pq.read_schema(path).names)
            columns = [c for c in columns if c in present]
        return pq.read_table(path, columns=columns, filters=filters).to_pandas()
    except Exception as e:  # noqa: BLE001 - a file in progress raises many kinds of error
        log.debug("skipped %s: %s", path, e)
        return None


def read_folder(folder: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """All readable files of ``folder`` in one DataFrame (empty, with no columns, when there are none)."""
    frames = [read_parquet_file(f.path, columns) for f in list_parquet_files(folder)]
    frames = [f for f in frames if f is not None and not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


class FolderReader:
    """Reads a growing folder again and again, opening only the files that are new or changed.

    Each file's rows are kept, keyed by its path, mtime and size; a file that failed is tried again
    only once it changes. Thread-safe, so one reader can serve every page of a dashboard.
    """

    def __init__(self, folder: str | Path, columns: Sequence[str] | None = None) -> None:
        self.folder = Path(folder)
        self.columns = list(columns) if columns is not None else None
        self._frames: dict[Path, tuple[ParquetFile, pd.DataFrame | None]] = {}
        self._result = pd.DataFrame()
        self._lock = threading.Lock()

    def read(self) -> pd.DataFrame:
        """Every readable row now in the folder, oldest file first. Do not modify the result: it is shared."""
        with self._lock:
            files = list_parquet_files(self.folder)
            changed = len(files) != len(self._frames)
            frames: dict[Path, tuple[ParquetFile, pd.DataFrame | None]] = {}
            for f in files:
                known = self._frames.get(f.path)
                if known is not None and known[0] == f:
                    frames[f.path] = known
                else:
                    frames[f.path] = (f, read_parquet_file(f.path, self.columns))
                    changed = True
            if changed:
                self._frames = frames
                parts = [df for _, df in frames.values() if df is not None and not df.empty]
                self._result = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
            return self._result


def latest_rows(
    folder: str | Path,
    n: int,
    columns: Sequence[str] | None = None,
    filters=None,
    max_files: int = 200,
) -> pd.DataFrame:
    """Rows of the newest files of ``folder`` until there are at least ``n`` (or ``max_files`` were read).

    The rows come newest file first; sort them by a time column to be sure of their order.
    """
    frames = []
    total = 0
    for f in reversed(list_parquet_files(folder)[-max_files:]):
        df = read_parquet_file(f.path, columns, filters)
        if df is None or df.empty:
            continue
        frames.append(df)
        total += len(df)
        if total >= n:
            break
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
