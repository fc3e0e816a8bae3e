"""Merging a sink's small files, so that a folder written for months holds few files and reads fast.

Usage: ``Compactor(config.compaction).after_batch(sink, batch_id)`` in the sink's writer thread, after each batch

A live stream writes a file per micro-batch and partition (:mod:`stream.sink`): up to 43,200 a day
on a 2-second trigger. Every ``every_batches`` batches, each partition written since the last merge
is merged: its files of committed batches (those before the batch being written) are bin-packed, in
batch order, into files of at most ``target_bytes``; a group of two or more becomes one file,
``merged-<sink>-<first batch>-<last batch>-v<version>.parquet``, whose metadata lists the row range
of each batch in it. The steps, each safe to be killed at:

1. the next version folder is made beside the current one: the merged files, and a hard link of
   every file left as it is (readers see nothing of it: the partition link still points at the old);
2. the catalog in the checkpoint is rewritten listing the old files and the new ones;
3. the partition's link is swapped to the new version by one atomic rename: a reader lists either
   the old files or the new, never both;
4. the catalog is rewritten without the merged-away files;
5. versions older than ``keep_seconds`` are deleted (a reader that listed one has that long to read it).

A kill before 3 leaves an unused folder (deleted by a later merge); after 3, a catalog that still
lists the old files too, whose batches are found in the new. The same batch run again after a
crash takes its rows out of a merged file the same way (:func:`drop_batch`), so the sink stays
idempotent after a merge. Writers and merges of one sink run in one thread (the query's), under the
job's lock on its checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sentiment.retention import CompactionConfig
from stream.sink import VERSIONS, ParquetSink, batches_of, link_partition

log = logging.getLogger(__name__)

BATCHES_KEY = b"tweetsent.batches"  # merged file metadata: [[batch, first row, rows], ...]


def batches_in(path: Path, sink_id: str) -> list[int]:
    """The batches whose rows a data file holds: from its name, and for a merged file its metadata."""
    batches = batches_of(path.name, sink_id)
    if batches is None:
        return []
    if not path.name.startswith("merged-"):
        return list(batches)
    return [b for b, _, _ in _ranges(path)]


def _ranges(path: Path) -> list[tuple[int, int, int]]:
    meta = pq.read_metadata(path).metadata or {}
    return [tuple(r) for r in json.loads(meta.get(BATCHES_KEY, b"[]"))]


@dataclass
class _File:
    name: str
    size: int
    batches: tuple[int, ...]


def _files(version: Path, sink_id: str) -> list[_File]:
    files = []
    for entry in os.scandir(version):
        batches = batches_of(entry.name, sink_id)
        if batches is not None and entry.is_file():
            files.append(_File(entry.name, entry.stat().st_size, batches))
    files.sort(key=lambda f: (f.batches[0], f.name))
    return files


def _groups(files: list[_File], before_batch: int, target_bytes: int) -> list[list[_File]]:
    """Bin-pack the files of batches before ``before_batch``, in batch order, into groups to merge."""
    groups: list[list[_File]] = []
    current: list[_File] = []
    size = 0
    for f in files:
        if max(f.batches) >= before_batch:
            break  # batches not yet committed (and all after them) stay as they are
        if current and size + f.size > target_bytes:
            groups.append(current)
            current, size = [], 0
        current.append(f)
        size += f.size
    groups.append(current)
    return [g for g in groups if len(g) > 1]


def _read_with_ranges(folder: Path, group: list[_File], drop: int | None = None) -> tuple[pa.Table, list]:
    """The group's rows in batch order (less batch ``drop``), with each batch's row range."""
    tables, ranges, row = [], [], 0
    for f in group:
        table = pq.read_table(folder / f.name)
        spans = _ranges(folder / f.name) if f.name.startswith("merged-") else [(f.batches[0], 0, table.num_rows)]
        for batch, start, n in spans:
            if batch == drop or n == 0:
                continue
            tables.append(table.slice(start, n))
            ranges.append((batch, row, n))
            row += n
    return pa.concat_tables(tables, promote_options="permissive") if tables else None, ranges


def _write_merged(table: pa.Table, ranges: list, like: Path, target: Path) -> None:
    """Write the merged rows as the sink's files are written (timestamps as Spark writes them), fsynced."""
    schema = pq.ParquetFile(like).schema
    int96 = any(schema.column(i).physical_type == "INT96" for i in range(len(schema)))
    meta = dict(table.schema.metadata or {})
    meta[BATCHES_KEY] = json.dumps(ranges).encode()
    tmp = target.with_name(f".{target.name}.tmp")
    pq.write_table(
        table.replace_schema_metadata(meta),
        tmp,
        compression="snappy",
        use_deprecated_int96_timestamps=int96,
        coerce_timestamps=None if int96 else "us",
        allow_truncated_timestamps=True,
    )
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.rename(target)


def _next_version(sink: ParquetSink, rel: str) -> Path:
    numbers = [int(p.name) for p in sink.versions_dir(rel).iterdir() if p.name.isdigit()]
    path = sink.versions_dir(rel) / f"{max(numbers, default=0) + 1:06d}"
    shutil.rmtree(path, ignore_errors=True)  # a folder left by a merge killed before its swap
    path.mkdir(parents=True)
    return path


def _rewrite(sink: ParquetSink, rel: str, groups: list[list[_File]], drop: int | None = None) -> int:
    """Steps 1-4 of a merge of partition ``rel``: the files of each group become one; return files merged."""
    current = Path(os.path.realpath(sink.folder / rel))
    new = _next_version(sink, rel)
    merged_away = {f.name for g in groups for f in g}
    for f in _files(current, sink.sink_id):
        if f.name not in merged_away:
            os.link(current / f.name, new / f.name)
    added: dict[str, tuple[int, ...]] = {}
    for group in groups:
        table, ranges = _read_with_ranges(current, group, drop)
        if table is None:
            continue
        first, last = ranges[0][0], ranges[-1][0]
        name = f"merged-{sink.sink_id}-{first:010d}-{last:010d}-v{new.name}.parquet"
        _write_merged(table, ranges, current / group[0].name, new / name)
        added[f"{rel}/{name}"] = tuple(b for b, _, _ in ranges)
    sink.catalog.snapshot(extra=added)  # 2: old and new files both listed
    link_partition(sink.folder, rel, new)  # 3: the swap
    sink.catalog.snapshot(drop={f"{rel}/{n}" for n in merged_away})  # 4
    return len(merged_away)


def merge_partition(sink: ParquetSink, rel: str, before_batch: int, target_bytes: int) -> int:
    """Merge the partition's files of batches before ``before_batch``; return how many files were merged."""
    if not sink.is_versioned(rel):
        return 0  # a folder from before versioning: left as it is
    current = Path(os.path.realpath(sink.folder / rel))
    groups = _groups(_files(current, sink.sink_id), before_batch, target_bytes)
    return _rewrite(sink, rel, groups) if groups else 0


def drop_batch(sink: ParquetSink, rel: str, batch_id: int) -> None:
    """Take batch ``batch_id``'s rows out of the merged file ``rel`` (a batch run again after a merge)."""
    partition, name = rel.rsplit("/", 1)
    current = Path(os.path.realpath(sink.folder / partition))
    group = [f for f in _files(current, sink.sink_id) if f.name == name]
    if group:
        _rewrite(sink, partition, [group], drop=batch_id)


def drop_old_versions(sink: ParquetSink, rel: str, keep_seconds: float, now: float | None = None) -> int:
    """Delete the partition's versions other than the current one, replaced more than ``keep_seconds`` ago."""
    root = sink.versions_dir(rel)
    if not sink.is_versioned(rel) or not root.is_dir():
        return 0
    current = Path(os.path.realpath(sink.folder / rel))
    now = time.time() if now is None else now
    dropped = 0
    for version in root.iterdir():
        if version == current or not version.name.isdigit() or int(version.name) > int(current.name):
            continue
        if now - version.stat().st_mtime >= keep_seconds:
            shutil.rmtree(version, ignore_errors=True)
            dropped += 1
    return dropped


def partitions(sink: ParquetSink) -> list[str]:
    """Every versioned partition of the sink (lists the folder's top: once at start, not per batch)."""
    root = sink.folder / VERSIONS
    return sorted(p.name for p in root.iterdir() if (sink.folder / p.name).is_symlink()) if root.is_dir() else []


class Compactor:
    """Runs the merges of a sink on its schedule; called by the writer after every batch."""

    def __init__(self, settings: CompactionConfig) -> None:
        self.settings = settings
        self._last: dict[int, int] = {}  # id(sink) -> batch of its last merge
        self._retired: dict[int, dict[str, float]] = {}  # id(sink) -> partition -> when it was last merged

    def after_batch(self, sink: ParquetSink, batch_id: int, force: bool = False) -> int:
        """Merge the partitions written since the last merge, if it is time; return files merged."""
        s = self.settings
        key = id(sink)
        if key not in self._last:  # first call: every partition of earlier runs is a candidate
            self._last[key] = batch_id
            known = partitions(sink)
            sink.touched.update(known)
            self._retired[key] = {rel: time.time() for rel in known}
        if not s.enabled or (not force and batch_id - self._last[key] < s.every_batches):
            self._drop_due(sink)
            return 0
        started, merged = time.monotonic(), 0
        for rel in sorted(sink.touched):
            merged += merge_partition(sink, rel, batch_id, s.target_bytes)
            self._retired.setdefault(key, {})[rel] = time.time()
        sink.touched.clear()
        self._last[key] = batch_id
        if merged:
            log.info("%s: merged %d file(s) in %.2fs", sink.folder, merged, time.monotonic() - started)
        self._drop_due(sink)
        return merged

    def _drop_due(self, sink: ParquetSink) -> None:
        retired = self._retired.get(id(sink), {})
        for rel, at in list(retired.items()):
            if time.time() - at >= self.settings.keep_seconds:
                drop_old_versions(sink, rel, self.settings.keep_seconds)
                del retired[rel]
