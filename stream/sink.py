"""An idempotent, atomic parquet sink for ``foreachBatch``: a batch written twice leaves one copy.

Usage: ``ParquetSink(folder, sink_id).write(df, batch_id, partition_by="date")``

Spark writes the batch, as one file per partition value, into ``<folder>/_staging/`` (readers and
Spark's own listing skip names starting with ``_``); each file is then renamed into place under a
name made of the sink's id and the batch id, ``part-<sink id>-<batch id>.parquet``. A rename is
atomic, so a reader polling the folder sees a batch whole or not at all, and a batch that Spark
runs again after a crash (same id, same input) replaces its own file instead of adding a second.
Files of the same batch left in another partition (a rerun on another day) are removed first.

The sink id is made once per checkpoint and kept in it (``sink_id``), so that starting over with
a new checkpoint can never overwrite the files of an earlier run.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from pyspark.sql import DataFrame

STAGING = "_staging"


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


class ParquetSink:
    """Writes each micro-batch of a ``foreachBatch`` query as whole, deterministically named files."""

    def __init__(self, folder: str | Path, sink_id: str) -> None:
        self.folder = Path(folder)
        self.sink_id = sink_id

    def file_name(self, batch_id: int) -> str:
        return f"part-{self.sink_id}-{batch_id:010d}.parquet"

    def write(self, df: DataFrame, batch_id: int, partition_by: str | None = None) -> list[Path]:
        """Write ``df`` (already small: one batch) and move its files into place; return their paths."""
        staging = self.folder / STAGING / f"{self.sink_id}-{batch_id:010d}"
        shutil.rmtree(staging, ignore_errors=True)
        writer = df.coalesce(1).write.mode("overwrite")
        if partition_by:
            writer = writer.partitionBy(partition_by)
        writer.parquet(str(staging))
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
        return placed

    def batch_ids(self) -> set[int]:
        """Ids of the batches of this sink that are in place."""
        prefix = f"part-{self.sink_id}-"
        return {int(p.name[len(prefix) : len(prefix) + 10]) for p in self.folder.rglob(f"{prefix}*.parquet")}
