"""Reading a parquet folder that a streaming job is still writing: skip what cannot be read yet.

A folder of the pipeline's output (``output/tweets``, ``output/trends``, ``output/alerts``) holds
``*.parquet`` files at any depth (``date=2026-11-28/part-....parquet``), next to the job's
bookkeeping (``_spark_metadata/``, ``.part-....crc``, ``_temporary/``), which is ignored, and an
empty ``part-schema.parquet`` that gives the columns before the first batch. A file
being written (no footer yet) or removed between listing and reading is skipped, never an error.

A partition that the job merges is a symbolic link to its current version folder
(:mod:`stream.compaction`); it is listed and read through the folder the link points at when it is
listed, so a merge that swaps the link mid-read never shows a reader a row twice or without it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

log = logging.getLogger(__name__)
READ_THREADS = 4


@dataclass(frozen=True)
class ParquetFile:
    path: str
    mtime_ns: int
    size: int


def _walk(folder: str, found: list[ParquetFile]) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError:  # missing, or removed while being listed
        return
    for entry in entries:
        if entry.name.startswith(("_", ".")):
            continue
        try:
            if entry.is_dir():  # a partition linked to its current version: read it there, whole
                _walk(os.path.realpath(entry.path) if entry.is_symlink() else entry.path, found)
            elif entry.name.endswith(".parquet"):
                st = entry.stat()
                found.append(ParquetFile(entry.path, st.st_mtime_ns, st.st_size))
        except OSError:  # removed since the listing
            continue


def list_parquet_files(folder: str | Path) -> list[ParquetFile]:
    """Every ``*.parquet`` file under ``folder``, oldest first (by mtime, then path).

    Names starting with ``_`` or ``.`` (files or folders) are left out. A missing folder has none. A
    linked folder is listed at the place it points to, and its files' paths are given there.
    """
    found: list[ParquetFile] = []
    _walk(os.fspath(folder), found)
    found.sort(key=lambda f: (f.mtime_ns, f.path))
    return found


def read_table(path: str | Path, columns: Sequence[str] | None = None) -> pa.Table | None:
    """One file as an Arrow table, or None when it cannot be read now (partial, removed, not parquet).

    Args:
        path: the file.
        columns: the columns to read (those missing from the file are left out); all by default.
    """
    try:
        with pq.ParquetFile(path) as f:
            if columns is not None:
                present = set(f.schema_arrow.names)
                columns = [c for c in columns if c in present]
            return f.read(columns=columns)
    except Exception as e:  # noqa: BLE001 - a file in progress raises many kinds of error
        log.debug("skipped %s: %s", path, e)
        return None


def read_parquet_file(path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame | None:
    """One file as a DataFrame, or None when it cannot be read now; see :func:`read_table`."""
    table = read_table(path, columns)
    return None if table is None else table.to_pandas()


def read_tables(paths: Sequence[str], columns: Sequence[str] | None = None) -> list[pa.Table | None]:
    """:func:`read_table` of each path, in order. Arrow reads without the GIL: many files at once (a
    first read) go faster on a few threads."""
    if len(paths) <= 8:
        return [read_table(p, columns) for p in paths]
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        return list(pool.map(lambda p: read_table(p, columns), paths))


def tables_to_pandas(tables: list[pa.Table]) -> pd.DataFrame:
    """Tables as one DataFrame, joined in Arrow (one conversion, not one per table) when their types agree."""
    with_rows = [t for t in tables if t.num_rows]
    if not with_rows:  # the columns of an empty file (the sink's part-schema.parquet) are kept
        return tables[0].to_pandas() if tables else pd.DataFrame()
    tables = with_rows
    try:
        return pa.concat_tables(tables, promote_options="permissive").combine_chunks().to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # files whose types cannot be unified: pandas does its best
        return pd.concat([t.to_pandas() for t in tables], ignore_index=True)


def read_folder(folder: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """All readable files of ``folder`` in one DataFrame.

    Empty when no file has a row: with the columns of an empty file if there is one (the job writes
    ``part-schema.parquet`` at start), with none when the folder has no file at all.
    """
    tables = [read_table(f.path, columns) for f in list_parquet_files(folder)]
    return tables_to_pandas([t for t in tables if t is not None])


class FolderReader:
    """Reads a growing folder again and again, opening only the files that are new or changed.

    Each file's rows are kept, keyed by its path, mtime and size; a file that failed is tried again
    only once it changes. Thread-safe, so one reader can serve every page of a dashboard.
    """

    def __init__(self, folder: str | Path, columns: Sequence[str] | None = None) -> None:
        self.folder = Path(folder)
        self.columns = list(columns) if columns is not None else None
        self._tables: dict[str, tuple[ParquetFile, pa.Table | None]] = {}
        self._result = pd.DataFrame()
        self._lock = threading.Lock()

    def read(self) -> pd.DataFrame:
        """Every readable row now in the folder, oldest file first. Do not modify the result: it is shared."""
        with self._lock:
            files = list_parquet_files(self.folder)
            changed = len(files) != len(self._tables)
            tables: dict[str, tuple[ParquetFile, pa.Table | None]] = {}
            new = []
            for f in files:
                known = self._tables.get(f.path)
                if known is not None and known[0] == f:
                    tables[f.path] = known
                else:
                    new.append(f)
            if not new and not changed:
                return self._result
            read = dict(zip([f.path for f in new], read_tables([f.path for f in new], self.columns), strict=True))
            for f in new:
                tables[f.path] = (f, read[f.path])
            tables = {f.path: tables[f.path] for f in files}  # oldest first
            kept = all(path in tables and tables[path][0] == f for path, (f, _) in self._tables.items())
            if kept:  # only new files (the usual refresh): their rows go after the others
                added = tables_to_pandas([t for t in read.values() if t is not None])
                if not added.empty:
                    self._result = added if self._result.empty else pd.concat([self._result, added], ignore_index=True)
            else:  # a file changed or went away: start again from the files kept
                self._result = tables_to_pandas([t for _, t in tables.values() if t is not None])
            self._tables = tables
            return self._result


def latest_rows(
    folder: str | Path,
    n: int,
    columns: Sequence[str] | None = None,
    where: tuple[str, Sequence] | None = None,
    max_files: int = 200,
) -> pd.DataFrame:
    """Rows of the newest files of ``folder`` until there are at least ``n`` (or ``max_files`` were read).

    Args:
        folder: the folder.
        n: how many rows are wanted.
        columns: the columns to read; all by default.
        where: ``(column, values)``: only rows whose column is one of the values.
        max_files: the most files opened, newest first, so a rare value cannot make it read everything.

    The rows come newest file first; sort them by a time column to be sure of their order.
    """
    tables = []
    total = 0
    for f in reversed(list_parquet_files(folder)[-max_files:]):
        table = read_table(f.path, columns)
        if table is None or table.num_rows == 0:
            continue
        if where is not None:
            column, values = where
            if column not in table.column_names:
                continue
            table = table.filter(pc.is_in(table[column], value_set=pa.array(list(values), type=table[column].type)))
        tables.append(table)
        total += table.num_rows
        if total >= n:
            break
    return tables_to_pandas(tables)
