"""An idempotent, atomic parquet sink for ``foreachBatch``: a batch written twice leaves one copy.

Usage: ``sink_for(folder, checkpoint).write(df, batch_id, partition_by="date")``

Spark writes the batch, as one file per partition value, into ``<folder>/_staging/`` (readers and
Spark's own listing skip names starting with ``_``); each file is then renamed into place under a
name made of the sink's id and the batch id, ``part-<sink id>-<batch id>.parquet``. A rename is
atomic, so a reader polling the folder sees a batch whole or not at all, and a batch that Spark
runs again after a crash (same id, same input) replaces its own file instead of adding a second.
Files of the same batch left in another partition (a rerun on another day) are removed first.

The sink id is made once per checkpoint and kept in it (``sink_id``), so that starting over with
a new checkpoint can never overwrite the files of an earlier run. The checkpoint also lists the
batches that wrote a file (``written/<folder name>``): a batch the checkpoint has committed whose
file is gone from the folder is found before the job starts (:meth:`ParquetSink.missing_batches`).

Before the first batch, :meth:`ParquetSink.write_schema` puts an empty file holding the columns,
``part-schema.parquet``, in the folder, so that a reader of a folder with no batch yet
(``pandas.read_parquet``) gets an empty table with the documented columns instead of an error.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

STAGING = "_staging"
SCHEMA_FILE = "part-schema.parquet"
WRITTEN = "written"


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


def sink_for(folder: str | Path, checkpoint: str | Path) -> ParquetSink:
    """The sink of ``folder`` for the query checkpointed in ``checkpoint`` (its id and list of written batches)."""
    return ParquetSink(folder, sink_id_for(checkpoint), ledger=Path(checkpoint) / WRITTEN / Path(folder).name)


class ParquetSink:
    """Writes each micro-batch of a ``foreachBatch`` query as whole, deterministically named files."""

    def __init__(self, folder: str | Path, sink_id: str, ledger: str | Path | None = None) -> None:
        self.folder = Path(folder)
        self.sink_id = sink_id
        self.ledger = Path(ledger) if ledger is not None else None

    def file_name(self, batch_id: int) -> str:
        return f"part-{self.sink_id}-{batch_id:010d}.parquet"

    def _stage(self, df: DataFrame, name: str, partition_by: str | None) -> Path:
        staging = self.folder / STAGING / name
        shutil.rmtree(staging, ignore_errors=True)
        writer = df.coalesce(1).write.mode("overwrite")
        if partition_by:
            writer = writer.partitionBy(partition_by)
        writer.parquet(str(staging))
        return staging

    def write(self, df: DataFrame, batch_id: int, partition_by: str | None = None) -> list[Path]:
        """Write ``df`` (already small: one batch) and move its files into place; return their paths."""
        staging = self._stage(df, f"{self.sink_id}-{batch_id:010d}", partition_by)
        name = self.file_name(batch_id)
        for old in self.folder.glob(("*/" if partition_by else "") + f"part-{self.sink_id}-{batch_id:010d}*.parquet"):
            old.unlink(missing_ok=True)
        placed = []
        for part in sorted(staging.rglob("part-*.parquet")):
            relative = part.parent.relative_to(staging)
            target_dir = self.folder / relative
            target_dir.mkdir(parents=True, exist_ok=True)
            suffix = "" if not placed else f"-{len(placed)}"
            target = target_dir / (name if not suffix else name.replace(".parquet", f"{suffix}.parquet"))
            part.replace(target)
            placed.append(target)
        shutil.rmtree(staging, ignore_errors=True)
        if placed and self.ledger is not None:
            self.ledger.parent.mkdir(parents=True, exist_ok=True)
            with self.ledger.open("a") as f:
                f.write(f"{batch_id}\n")
        return placed

    def write_schema(self, spark: SparkSession, ddl: str) -> Path:
        """Put an empty file with the columns ``ddl`` in the folder (once): what a reader gets before any batch."""
        target = self.folder / SCHEMA_FILE
        if not target.exists():
            staging = self._stage(spark.createDataFrame([], ddl), "schema", None)
            target.parent.mkdir(parents=True, exist_ok=True)
            next(staging.glob("part-*.parquet")).replace(target)
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def batch_ids(self) -> set[int]:
        """Ids of the batches of this sink that are in place."""
        prefix = f"part-{self.sink_id}-"
        return {int(p.name[len(prefix) : len(prefix) + 10]) for p in self.folder.rglob(f"{prefix}*.parquet")}

    def missing_batches(self, up_to: int) -> list[int]:
        """Batches up to ``up_to`` that the ledger says wrote a file, whose file is not in the folder."""
        if self.ledger is None or not self.ledger.is_file():
            return []
        written = {int(line) for line in self.ledger.read_text().split() if line.isdigit()}
        return sorted(b for b in written - self.batch_ids() if b <= up_to)
