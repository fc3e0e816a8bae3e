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
crash takes its rows out of a merged file the same way (:func:`stream.versions.drop_batch`), so the sink stays
idempotent after a merge. Writers and merges of one sink run in one thread (the query's), under the
job's lock on its checkpoint.
"""

from __future__ import annotations

import logging
import time

from sentiment.retention import CompactionConfig
from stream.sink import ParquetSink
from stream.versions import VERSIONS, DataFile, current_version, data_files, drop_old_versions, rewrite

log = logging.getLogger(__name__)


def _groups(files: list[DataFile], before_batch: int, target_bytes: int) -> list[list[DataFile]]:
    """Bin-pack the files of batches before ``before_batch``, in batch order, into groups to merge."""
    groups: list[list[DataFile]] = []
    current: list[DataFile] = []
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


def merge_partition(sink: ParquetSink, rel: str, before_batch: int, target_bytes: int) -> int:
    """Merge the partition's files of batches before ``before_batch``; return how many files were merged."""
    if not sink.is_versioned(rel):
        return 0  # a folder from before versioning: left as it is
    groups = _groups(data_files(current_version(sink.folder, rel), sink.sink_id), before_batch, target_bytes)
    return rewrite(sink.folder, rel, sink.sink_id, sink.catalog, groups) if groups else 0


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
                drop_old_versions(sink.folder, rel, self.settings.keep_seconds)
                del retired[rel]
