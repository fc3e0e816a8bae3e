"""A sink's partitions as versions: the folders that hold a partition's files, the link that says
which is current, the catalog of what each file holds, and the rewrite that makes the next version.

Usage: ``rewrite(folder, "date=2026-12-08", sink_id, catalog, groups)`` (:mod:`stream.compaction`);
``drop_batch(...)`` (:mod:`stream.sink`, a batch run again after its rows were merged)

``<folder>/date=2026-12-08`` is a symbolic link to ``<folder>/_versions/date=2026-12-08/000003/``.
A version is never changed but by adding whole batch files; the next one is made beside it (new
files written, the files kept hard-linked) and made current by one atomic rename of the link.
A merged file ``merged-<sink>-<first>-<last>-v<version>.parquet`` holds its batches' rows in batch
order, and its metadata (``tweetsent.batches``) the row range of each.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

VERSIONS = "_versions"
FIRST_VERSION = 1
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
class DataFile:
    name: str
    size: int
    batches: tuple[int, ...]


def data_files(version: Path, sink_id: str) -> list[DataFile]:
    files = []
    for entry in os.scandir(version):
        batches = batches_of(entry.name, sink_id)
        if batches is not None and entry.is_file():
            files.append(DataFile(entry.name, entry.stat().st_size, batches))
    files.sort(key=lambda f: (f.batches[0], f.name))
    return files


def batches_of(name: str, sink_id: str) -> tuple[int, ...] | None:
    """The batches a data file of this sink holds, read from its name; None for another sink's file.

    ``part-<sink>-<batch>[-i].parquet`` holds one batch; ``merged-<sink>-<first>-<last>-v<n>.parquet``
    holds batches from ``first`` to ``last`` (those that wrote rows: its metadata says which).
    """
    for prefix in (f"part-{sink_id}-", f"merged-{sink_id}-"):
        if name.startswith(prefix) and name.endswith(".parquet"):
            fields = name[len(prefix) : -len(".parquet")].split("-")
            if prefix.startswith("part") and fields[0].isdigit():
                return (int(fields[0]),)
            if len(fields) >= 2 and fields[0].isdigit() and fields[1].isdigit():
                return tuple(range(int(fields[0]), int(fields[1]) + 1))
    return None


class Catalog:
    """The files a sink has placed and the batches each holds, kept in the checkpoint (JSON lines).

    A write appends a line; a merge rewrites the whole catalog (:meth:`snapshot`), so it holds about
    as many lines as the folder holds files. A catalog from before this format (a batch id a line)
    is read as batches whose files are to be found by name.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.files: dict[str, tuple[int, ...]] = {}  # relative path -> batches
        self.by_batch: dict[int, set[str]] = {}
        self.legacy: set[int] = set()  # batches of an old catalog: where their files are is not known
        if path is not None and path.is_file():
            for line in path.read_text().splitlines():
                self._read_line(line.strip())

    def _read_line(self, line: str) -> None:
        if line.isdigit():
            self.legacy.add(int(line))
        elif line.startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:  # a line torn by a crash mid-append: the batch is written again
                return
            if entry.get("gone"):
                self._forget(entry["file"])
            else:
                self._remember(entry["file"], tuple(entry["batches"]))

    def _remember(self, rel: str, batches: tuple[int, ...]) -> None:
        self._forget(rel)
        self.files[rel] = batches
        for b in batches:
            self.by_batch.setdefault(b, set()).add(rel)

    def _forget(self, rel: str) -> None:
        for b in self.files.pop(rel, ()):
            rels = self.by_batch.get(b)
            if rels is not None:
                rels.discard(rel)
                if not rels:
                    del self.by_batch[b]

    def _append(self, entries: list[dict]) -> None:
        if self.path is None or not entries:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write("".join(json.dumps(e) + "\n" for e in entries))

    def add(self, placed: dict[str, tuple[int, ...]]) -> None:
        for rel, batches in placed.items():
            self._remember(rel, batches)
        self._append([{"file": rel, "batches": list(b)} for rel, b in placed.items()])

    def remove(self, rels: list[str]) -> None:
        for rel in rels:
            self._forget(rel)
        self._append([{"file": rel, "gone": True} for rel in rels])

    def snapshot(self, extra: dict[str, tuple[int, ...]] | None = None, drop: set[str] | None = None) -> None:
        """Rewrite the catalog whole: its files, plus ``extra``, less ``drop`` (atomically)."""
        for rel in drop or ():
            self._forget(rel)
        for rel, batches in (extra or {}).items():
            self._remember(rel, batches)
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        lines = [str(b) for b in sorted(self.legacy)]
        lines += [json.dumps({"file": rel, "batches": list(b)}) for rel, b in sorted(self.files.items())]
        tmp.write_text("".join(line + "\n" for line in lines))
        tmp.replace(self.path)


def current_version(folder: Path, rel: str) -> Path:
    """The version folder the partition's link points at now."""
    return Path(os.path.realpath(folder / rel))


def link_partition(folder: Path, rel: str, version: Path) -> None:
    """Point the partition ``folder/rel`` at ``version`` with one atomic rename of a symbolic link."""
    link = folder / rel
    target = os.path.relpath(version, link.parent)
    tmp = link.with_name(f".{link.name}.link.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _read_with_ranges(folder: Path, group: list[DataFile], drop: int | None = None) -> tuple[pa.Table, list]:
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


def _next_version(folder: Path, rel: str) -> Path:
    numbers = [int(p.name) for p in (folder / VERSIONS / rel).iterdir() if p.name.isdigit()]
    path = folder / VERSIONS / rel / f"{max(numbers, default=0) + 1:06d}"
    shutil.rmtree(path, ignore_errors=True)  # a folder left by a merge killed before its swap
    path.mkdir(parents=True)
    return path


def rewrite(
    folder: Path, rel: str, sink_id: str, catalog: Catalog, groups: list[list[DataFile]], drop: int | None = None
) -> int:
    """Steps 1-4 of a merge of partition ``rel`` (:mod:`stream.compaction`): the files of each group
    become one (less batch ``drop``'s rows); return how many files were merged away."""
    current = current_version(folder, rel)
    new = _next_version(folder, rel)
    merged_away = {f.name for g in groups for f in g}
    for f in data_files(current, sink_id):
        if f.name not in merged_away:
            os.link(current / f.name, new / f.name)
    added: dict[str, tuple[int, ...]] = {}
    for group in groups:
        table, ranges = _read_with_ranges(current, group, drop)
        if table is None:
            continue
        first, last = ranges[0][0], ranges[-1][0]
        name = f"merged-{sink_id}-{first:010d}-{last:010d}-v{new.name}.parquet"
        _write_merged(table, ranges, current / group[0].name, new / name)
        added[f"{rel}/{name}"] = tuple(b for b, _, _ in ranges)
    catalog.snapshot(extra=added)  # 2: old and new files both listed
    link_partition(folder, rel, new)  # 3: the swap
    catalog.snapshot(drop={f"{rel}/{n}" for n in merged_away})  # 4
    return len(merged_away)


def drop_batch(folder: Path, rel: str, sink_id: str, catalog: Catalog, batch_id: int) -> None:
    """Take batch ``batch_id``'s rows out of the merged file ``rel`` (a batch run again after a merge)."""
    partition, name = rel.rsplit("/", 1)
    group = [f for f in data_files(current_version(folder, partition), sink_id) if f.name == name]
    if group:
        rewrite(folder, partition, sink_id, catalog, [group], drop=batch_id)


def drop_old_versions(folder: Path, rel: str, keep_seconds: float, now: float | None = None) -> int:
    """Delete the partition's versions other than the current one, replaced more than ``keep_seconds`` ago."""
    root = folder / VERSIONS / rel
    if not (folder / rel).is_symlink() or not root.is_dir():
        return 0
    current = current_version(folder, rel)
    now = time.time() if now is None else now
    dropped = 0
    for version in root.iterdir():
        if version == current or not version.name.isdigit() or int(version.name) > int(current.name):
            continue
        if now - version.stat().st_mtime >= keep_seconds:
            shutil.rmtree(version, ignore_errors=True)
            dropped += 1
    return dropped
