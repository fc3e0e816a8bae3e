"""An idempotent, atomic parquet sink for ``foreachBatch``: a batch written twice leaves one copy.

Usage: ``sink_for(folder, checkpoint).write(df, batch_id, partition_by="date")``

Spark writes the batch, as one file per partition value, into ``<folder>/_staging/`` (readers and
Spark's own listing skip names starting with ``_``); each file is then renamed into place under a
name made of the sink's id and the batch id, ``part-<sink id>-<batch id>.parquet``. A rename is
atomic, so a reader polling the folder sees a batch whole or not at all, and a batch that Spark
runs again after a crash (same id, same input) replaces its own file instead of adding a second.

Partitions are versioned, so that small files can be merged with no reader ever seeing a row twice
or missing (:mod:`stream.compaction`): ``<folder>/date=2026-12-08`` is a symbolic link to
``<folder>/_versions/date=2026-12-08/000001/``, the folder that holds the files; a merge writes the
next version beside it and swaps the link with one atomic rename. A sink without partition columns
keeps its files the same way in ``<folder>/data`` (a folder name without ``=`` adds no column).
Folders written before versioning (plain ``date=...`` folders, files at the top) are read as before
and never merged.

The sink id is made once per checkpoint and kept in it (``sink_id``), so that starting over with
a new checkpoint can never overwrite the files of an earlier run. The checkpoint also holds the
sink's catalog (``written/<folder name>``): a JSON line per file placed, with the batches it holds,
rewritten whole by each merge, so its length is bounded by the files in the folder. A batch the
checkpoint has committed whose rows are in no file of the folder any more is found before the job
starts (:meth:`ParquetSink.missing_batches`), and a batch run again finds its earlier files there
without listing the folder: a batch's work does not grow with the age of the output.

Before the first batch, :meth:`ParquetSink.write_schema` puts an empty file holding the columns,
``part-schema.parquet``, in the folder, so that a reader of a folder with no batch yet
(``pandas.read_parquet``) gets an empty table with the documented columns instead of an error.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from sentiment.parquet_folder import list_parquet_files
from stream.versions import (
    FIRST_VERSION,
    VERSIONS,
    Catalog,
    batches_in,
    drop_batch,
    link_partition,
)

STAGING = "_staging"
SCHEMA_FILE = "part-schema.parquet"
WRITTEN = "written"
UNPARTITIONED = "data"  # the one partition folder of a sink without partition columns


def sink_id_for(checkpoint: str | Path) -> str:
    """The sink id kept in a checkpoint folder, made on first use."""
    path = Path(checkpoint) / "sink_id"
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    sink_id = uuid.uuid4().hex[:8]
    tmp = path.with_name(".sink_id.tmp")
    tmp.write_text(sink_id)
    tmp.replace(path)
    return sink_id


def last_committed_batch(checkpoint: str | Path) -> int | None:
    """The id of the newest batch a streaming checkpoint has committed; None before the first."""
    commits = Path(checkpoint) / "commits"
    ids = [int(p.name) for p in commits.glob("*") if p.name.isdigit()] if commits.is_dir() else []
    return max(ids, default=None)


def sink_for(
    folder: str | Path, checkpoint: str | Path, feed: str | Path | None = None, versioned: bool = True
) -> ParquetSink:
    """The sink of ``folder`` for the query checkpointed in ``checkpoint`` (its id and catalog)."""
    ledger = Path(checkpoint) / WRITTEN / Path(folder).name
    return ParquetSink(folder, sink_id_for(checkpoint), ledger=ledger, feed=feed, versioned=versioned)


class ParquetSink:
    """Writes each micro-batch of a ``foreachBatch`` query as whole, deterministically named files.

    Args:
        folder: the output folder.
        sink_id: this sink's id (:func:`sink_id_for`).
        ledger: the catalog file in the checkpoint; None keeps the catalog in memory only.
        feed: a folder that gets a hard link of each batch's files (:func:`feed_name`): a second
            query reads the batches from there (:mod:`stream.trends`), deleting what it committed,
            however the folder's own files are merged since.
        versioned: new partitions are links to versions (mergeable); False: plain folders, as a
            reader of the folder with Spark's file source needs (a trends checkpoint from before the feed).
    """

    def __init__(
        self,
        folder: str | Path,
        sink_id: str,
        ledger: str | Path | None = None,
        feed: str | Path | None = None,
        versioned: bool = True,
    ) -> None:
        self.folder = Path(folder)
        self.sink_id = sink_id
        self.ledger = Path(ledger) if ledger is not None else None
        self.catalog = Catalog(self.ledger)
        self.feed = Path(feed) if feed is not None else None
        self.versioned = versioned
        self.touched: set[str] = set()  # partitions written since the last merge (stream.compaction)

    def file_name(self, batch_id: int) -> str:
        return f"part-{self.sink_id}-{batch_id:010d}.parquet"

    # -- the versioned partitions -------------------------------------------------------------

    def versions_dir(self, rel: str) -> Path:
        return self.folder / VERSIONS / rel

    def partition(self, rel: str) -> Path:
        """The partition folder ``rel`` (``date=...`` or :data:`UNPARTITIONED`), made on first use."""
        path = self.folder / rel
        if path.is_symlink() or path.is_dir():
            return path
        if not self.versioned:
            path.mkdir(parents=True, exist_ok=True)
            return path
        first = self.versions_dir(rel) / f"{FIRST_VERSION:06d}"
        first.mkdir(parents=True, exist_ok=True)
        link_partition(self.folder, rel, first)
        return path

    def is_versioned(self, rel: str) -> bool:
        return (self.folder / rel).is_symlink()

    # -- writing a batch ------------------------------------------------------------------------

    def _stage(self, df: DataFrame, name: str, partition_by: str | None) -> Path:
        staging = self.folder / STAGING / name
        shutil.rmtree(staging, ignore_errors=True)
        writer = df.coalesce(1).write.mode("overwrite")
        if partition_by:
            writer = writer.partitionBy(partition_by)
        writer.parquet(str(staging))
        return staging

    def _remove_earlier(self, batch_id: int, partition_by: str | None) -> None:
        """Take a batch run again out of the folder: its own files, and its rows from merged files."""
        rels = sorted(self.catalog.by_batch.get(batch_id, ()))
        for rel in rels:
            if Path(rel).name.startswith("merged-"):
                drop_batch(self.folder, rel, self.sink_id, self.catalog, batch_id)
            else:
                (self.folder / rel).unlink(missing_ok=True)
        self.catalog.remove([r for r in rels if not Path(r).name.startswith("merged-")])
        if batch_id in self.catalog.legacy:  # written before the catalog knew where: look by name
            for old in self.folder.glob(
                ("*/" if partition_by else "") + f"part-{self.sink_id}-{batch_id:010d}*.parquet"
            ):
                old.unlink(missing_ok=True)

    def write(self, df: DataFrame, batch_id: int, partition_by: str | None = None) -> list[Path]:
        """Write ``df`` (already small: one batch) and move its files into place; return their paths."""
        staging = self._stage(df, f"{self.sink_id}-{batch_id:010d}", partition_by)
        self._remove_earlier(batch_id, partition_by)
        name = self.file_name(batch_id)
        placed: dict[str, tuple[int, ...]] = {}
        for part in sorted(staging.rglob("part-*.parquet")):
            rel_dir = part.parent.relative_to(staging).as_posix()
            rel_dir = UNPARTITIONED if rel_dir == "." else rel_dir
            target_dir = self.partition(rel_dir)
            suffix = "" if not placed else f"-{len(placed)}"
            target = target_dir / (name if not suffix else name.replace(".parquet", f"{suffix}.parquet"))
            part.replace(target)
            placed[f"{rel_dir}/{target.name}"] = (batch_id,)
            self.touched.add(rel_dir)
        shutil.rmtree(staging, ignore_errors=True)
        self.catalog.add(placed)
        if self.feed is not None and placed:
            self._link_to_feed(batch_id, list(placed))
        return [self.folder / rel for rel in placed]

    def _link_to_feed(self, batch_id: int, rels: list[str]) -> None:
        """Hard-link the batch's files into the feed as ``feed-<batch><i>.parquet``, numbered in order."""
        self.feed.mkdir(parents=True, exist_ok=True)
        for i, rel in enumerate(rels):
            final = self.feed / feed_name(batch_id, i)
            tmp = self.feed / f".{final.name}.tmp"
            tmp.unlink(missing_ok=True)
            os.link(self.folder / rel, tmp)
            tmp.replace(final)  # a batch run again replaces its own

    def write_schema(self, spark: SparkSession, ddl: str) -> Path:
        """Put an empty file with the columns ``ddl`` in the folder (once): what a reader gets before any batch."""
        target = self.folder / SCHEMA_FILE
        if not target.exists():
            staging = self._stage(spark.createDataFrame([], ddl), "schema", None)
            target.parent.mkdir(parents=True, exist_ok=True)
            next(staging.glob("part-*.parquet")).replace(target)
            shutil.rmtree(staging, ignore_errors=True)
        return target

    # -- what is in place -----------------------------------------------------------------------

    def batch_ids(self) -> set[int]:
        """Ids of the batches of this sink whose rows are in the folder (lists it: for checks, not per batch)."""
        found: set[int] = set()
        for f in list_parquet_files(self.folder):  # each linked partition listed at its version
            found.update(batches_in(Path(f.path), self.sink_id))
        return found

    def missing_batches(self, up_to: int) -> list[int]:
        """Batches up to ``up_to`` that the catalog says wrote rows, whose rows are in no file of the folder.

        A whole partition taken away on purpose (an old day moved to other storage) is not missing,
        unless every partition is gone (the folder deleted to compute it again).
        """
        present = {p: (self.folder / p).exists() for p in {rel.split("/")[0] for rel in self.catalog.files}}
        kept_some = any(present.values())
        missing = set()
        for batch, rels in self.catalog.by_batch.items():
            if batch > up_to or any((self.folder / rel).is_file() for rel in rels):
                continue
            if not kept_some or any(present[rel.split("/")[0]] for rel in rels):
                missing.add(batch)
        legacy = {b for b in self.catalog.legacy if b <= up_to and b not in self.catalog.by_batch}
        if legacy:
            missing |= legacy - self.batch_ids()
        return sorted(missing)


FEED_PATTERN = r"feed-(\d{14})\.parquet"  # the number: the batch id, then the file's index in the batch


def feed_name(batch_id: int, index: int) -> str:
    """The feed's name of the ``index``-th file of batch ``batch_id``: numbers grow with both."""
    return f"feed-{batch_id:010d}{index:04d}.parquet"
