"""A streaming source over a folder of files named by an increasing integer: the relay's spool.

Usage: ``register(spark)`` once (:func:`stream.session.build_spark` does), then
``lines = read_spool(spark, folder, max_files_per_trigger)`` (or ``spark.readStream.format("numbered_files")``)

Spark's file source remembers every file it has read (``<checkpoint>/sources/0``, compacted into
one file every 10 batches that holds all of them, and a map in the driver's memory), so on a live
spool that seals a segment every half second its log grows without end. This source's offsets are
positions instead: ``{"next": n}`` says that every file numbered below ``n`` is in a batch already.
Spark's checkpoint then keeps only these small entries, for ``spark.sql.streaming.minBatchesToRetain``
batches.

* :meth:`NumberedFilesReader.latestOffset` lists the folder and takes the files numbered from the
  start position on, lowest first, at most ``maxFilesPerTrigger`` of them.
* :meth:`~NumberedFilesReader.partitions` spreads a batch's files over a few tasks, neighbours
  together; :meth:`~NumberedFilesReader.read` runs on the executors (on a cluster the folder must be
  on a shared path) and reads each file whole, in order: its lines as ``value`` (``format=lines``),
  or a parquet file's columns as Arrow record batches (``format=parquet``, the schema given with
  ``readStream.schema``).
* :meth:`~NumberedFilesReader.commit` is called once a batch is committed and finishes the files
  wholly before its end: moves them to the ``archive`` folder, or deletes them (``archive`` empty).
  A batch run again after a crash reads the same files: they stay until committed, and one already
  moved is read from the archive.

The writer must give each new file a higher number than any before it (the relay names a segment by
its first offset and seals one at a time, with an atomic rename); a folder made anew, whose numbers
start again, is caught by :func:`stream.checkpoint.check_spool` before any batch.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadLimit, ReadMaxFiles
from pyspark.sql.types import StructType

from sentiment.spool_format import archive_dir

SOURCE_NAME = "numbered_files"
FORMATS = ("lines", "parquet")
SEGMENT_PATTERN = r"seg-(\d{12})\.jsonl"  # sentiment.spool_format.segment_name


@dataclass(frozen=True)
class Files(InputPartition):
    """Files of a batch, lowest number first, read by one task: their names and the folders they
    are in, or were moved to."""

    names: tuple[str, ...]
    folder: str
    archive: str


def numbered(folder: str | Path, pattern: re.Pattern, start: int = 0, end: int | None = None) -> list[tuple[int, str]]:
    """``(number, name)`` of the files in ``folder`` matching ``pattern`` numbered in ``[start, end)``, lowest first."""
    try:
        entries = os.scandir(folder)
    except FileNotFoundError:
        return []
    with entries:
        found = ((m, e.name) for e in entries if (m := pattern.fullmatch(e.name)))
        files = [(int(m.group(1)), name) for m, name in found]
    return sorted((n, name) for n, name in files if n >= start and (end is None or n < end))


class NumberedFilesReader(DataSourceStreamReader):
    """Offsets ``{"next": n}``: the files numbered below ``n`` were given to a batch."""

    def __init__(self, options: Mapping[str, str], schema: StructType | None = None) -> None:
        self.schema = schema  # a parquet file's columns to read, by name, cast to it (None: all, as they are)
        self.folder = options["path"]
        self.pattern = re.compile(options.get("pattern", SEGMENT_PATTERN))
        self.format = options.get("format", "lines")
        self.archive = options.get("archive", "")
        self.max_files = int(options.get("maxFilesPerTrigger", 0))
        self.tasks = max(1, int(options.get("partitions", 1)))
        if self.format not in FORMATS:
            raise ValueError(f"{SOURCE_NAME}: format must be one of {FORMATS}, got {self.format!r}")
        if self.pattern.groups != 1:
            raise ValueError(f"{SOURCE_NAME}: pattern {self.pattern.pattern!r} needs one group, the file's number")

    def initialOffset(self) -> dict:  # noqa: N802 (Spark's names)
        return {"next": 0}

    def getDefaultReadLimit(self) -> ReadLimit:  # noqa: N802
        return ReadMaxFiles(self.max_files) if self.max_files > 0 else ReadAllAvailable()

    def latestOffset(self, start: dict, limit: ReadLimit) -> dict:  # noqa: N802
        files = numbered(self.folder, self.pattern, start["next"])
        if isinstance(limit, ReadMaxFiles):
            files = files[: limit.max_files]
        return {"next": files[-1][0] + 1} if files else start

    def partitions(self, start: dict, end: dict) -> list[Files]:
        """The files numbered in ``[start, end)``, in runs of neighbours over at most ``partitions``
        tasks: those still in the folder and, if the batch's last file is gone from it (a commit
        moved it), those in the archive."""
        if end["next"] <= start["next"]:
            return []
        files = numbered(self.folder, self.pattern, start["next"], end["next"])
        if self.archive and (not files or files[-1][0] != end["next"] - 1):
            files = sorted({*files, *numbered(self.archive, self.pattern, start["next"], end["next"])})
        names = [name for _, name in files]
        size = -(-len(names) // self.tasks)  # rounded up
        return [Files(tuple(names[i : i + size]), self.folder, self.archive) for i in range(0, len(names), size)]

    def read(self, partition: Files) -> Iterator:
        for name in partition.names:
            path = Path(partition.folder, name)
            if partition.archive and not path.exists():
                path = Path(partition.archive, name)
            yield from self.read_file(path)

    def read_file(self, path: Path) -> Iterator:
        """A file whole: its lines as 1-tuples (split at ``\n``, ``\r\n`` or ``\r`` and bytes that
        are not UTF-8 replaced, as by Spark's text source), or a parquet file's Arrow record batches."""
        if self.format == "parquet":
            import pyarrow.parquet as pq

            if self.schema is None:
                yield from pq.ParquetFile(path).iter_batches()
                return
            from pyspark.sql.pandas.types import to_arrow_schema

            target = to_arrow_schema(self.schema, timezone="UTC")
            for batch in pq.ParquetFile(path).iter_batches(columns=target.names):
                # Spark writes timestamps as INT96, read by Arrow as nanoseconds without a zone (UTC)
                yield batch.select(target.names).cast(target, safe=False)
            return
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                yield (line.rstrip("\n"),)

    def commit(self, end: dict) -> None:
        """Archive (or delete) every file numbered below ``end``: a committed batch's files."""
        if self.archive:
            os.makedirs(self.archive, exist_ok=True)
        for _, name in numbered(self.folder, self.pattern, 0, end["next"]):
            path = os.path.join(self.folder, name)
            if self.archive:
                shutil.move(path, os.path.join(self.archive, name))
            else:
                os.remove(path)


class NumberedFilesSource(DataSource):
    r"""``format("numbered_files")``; options ``path``, ``pattern`` (a regex whose one group is the
    file's number; the spool's segments by default), ``format`` (``lines`` or ``parquet``),
    ``archive`` (the folder committed files move to; empty: they are deleted), ``maxFilesPerTrigger``
    and ``partitions`` (the tasks a batch's files are spread over, 1 by default).

    A folder of per-batch parquet files, deleted once committed, is read the same way::

        spark.readStream.format("numbered_files").schema("id string, score double").options(
            path=folder, pattern=r"feed-(\d{10})\.parquet", format="parquet", archive=""
        ).load()
    """

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> str:
        if self.options.get("format", "lines") != "lines":
            raise ValueError(f"{SOURCE_NAME}: give the schema of format={self.options['format']} (readStream.schema)")
        return "value string"

    def streamReader(self, schema: StructType) -> NumberedFilesReader:  # noqa: N802
        return NumberedFilesReader(self.options, schema)


def spool_options(spool: str | Path, max_files_per_trigger: int, partitions: int = 1) -> dict[str, str]:
    """The options that read the relay's spool: its segments' lines, archived once committed."""
    return {
        "partitions": str(partitions),
        "path": str(spool),
        "pattern": SEGMENT_PATTERN,
        "format": "lines",
        "archive": str(archive_dir(Path(spool))),
        "maxFilesPerTrigger": str(max_files_per_trigger),
    }


def read_spool(spark: SparkSession, spool: str | Path, max_files_per_trigger: int) -> DataFrame:
    """The relay's spool as a streaming DataFrame of its lines (column ``value``), a batch's segments
    spread over as many tasks as Spark has cores (as the file source packs small files)."""
    options = spool_options(spool, max_files_per_trigger, spark.sparkContext.defaultParallelism)
    return spark.readStream.format(SOURCE_NAME).options(**options).load()


def register(spark: SparkSession) -> None:
    """Make ``format("numbered_files")`` known to ``spark`` (in the driver, before a query starts)."""
    spark.dataSource.register(NumberedFilesSource)
