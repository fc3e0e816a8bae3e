"""Merging a sink's small files on a real SparkSession and real parquet: every row once, before,
during and after a merge; a batch run again replaces its rows, merged or not; the folder stays small."""

from __future__ import annotations

import datetime
import os
import threading
from pathlib import Path

import pandas as pd
import pytest

from sentiment.parquet_folder import read_folder
from sentiment.retention import CompactionConfig
from stream.compaction import Compactor, merge_partition
from stream.sink import sink_for
from stream.versions import VERSIONS, Catalog

pytestmark = pytest.mark.integration

DDL = "id string, created_at timestamp, date string"
T0 = datetime.datetime(2026, 12, 8, 10, 0)


def batch(spark, batch_id: int, rows: int = 3, days: int = 1):
    return spark.createDataFrame([(f"{batch_id}-{i}", T0, f"2026-12-{8 + i % days:02d}") for i in range(rows)], DDL)


def ids(folder: Path) -> list[str]:
    return sorted(pd.read_parquet(folder, columns=["id"])["id"])


def expected(batches: range, rows: int = 3) -> list[str]:
    return sorted(f"{b}-{i}" for b in batches for i in range(rows))


def data_files(folder: Path) -> list[str]:
    found = []
    for _parent, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        found += [n for n in names if n.endswith(".parquet") and n != "part-schema.parquet"]
    return found


def test_a_merge_keeps_every_row_once_in_fewer_files_and_the_catalog_follows(spark, tmp_path):
    sink = sink_for(tmp_path / "out", tmp_path / "ck")
    for b in range(12):
        sink.write(batch(spark, b, days=2), b, partition_by="date")
    assert len(data_files(sink.folder)) == 24

    merged = sum(merge_partition(sink, rel, before_batch=12, target_bytes=1 << 20) for rel in sorted(sink.touched))

    assert merged == 24 and len(data_files(sink.folder)) == 2  # one merged file a day
    assert ids(sink.folder) == expected(range(12))
    assert sorted(read_folder(sink.folder, columns=["id"])["id"]) == expected(range(12))
    assert sink.batch_ids() == set(range(12)) and sink.missing_batches(11) == []
    reread = Catalog(sink.ledger)  # as a restarted job reads it
    assert len(reread.files) == 2 and set(reread.by_batch) == set(range(12))
    assert len(sink.ledger.read_text().splitlines()) == 2


def test_files_of_batches_not_yet_committed_are_left_as_they_are(spark, tmp_path):
    sink = sink_for(tmp_path / "out", tmp_path / "ck")
    for b in range(6):
        sink.write(batch(spark, b), b, partition_by="date")
    merge_partition(sink, "date=2026-12-08", before_batch=4, target_bytes=1 << 20)
    names = sorted(data_files(sink.folder))
    assert [n for n in names if n.startswith("part-")] == [sink.file_name(4), sink.file_name(5)]
    assert len(names) == 3 and ids(sink.folder) == expected(range(6))


def test_a_batch_run_again_replaces_its_rows_also_once_merged(spark, tmp_path):
    sink = sink_for(tmp_path / "out", tmp_path / "ck")
    for b in range(5):
        sink.write(batch(spark, b), b, partition_by="date")
    merge_partition(sink, "date=2026-12-08", before_batch=5, target_bytes=1 << 20)

    again = spark.createDataFrame([("2-again", T0, "2026-12-09")], DDL)  # batch 2 again, another day
    sink.write(again, 2, partition_by="date")

    assert ids(sink.folder) == sorted([i for i in expected(range(5)) if not i.startswith("2-")] + ["2-again"])
    assert sink.batch_ids() == set(range(5)) and sink.missing_batches(4) == []


def test_a_merged_file_deleted_from_the_output_is_reported_missing(spark, tmp_path):
    sink = sink_for(tmp_path / "out", tmp_path / "ck")
    for b in range(4):
        sink.write(batch(spark, b), b, partition_by="date")
    sink.write(batch(spark, 4, days=2), 4, partition_by="date")
    merge_partition(sink, "date=2026-12-08", before_batch=4, target_bytes=1 << 20)
    merged = next(p for p in (sink.folder / "date=2026-12-08").iterdir() if p.name.startswith("merged-"))
    merged.unlink()
    assert sink_for(sink.folder, tmp_path / "ck").missing_batches(4) == [0, 1, 2, 3]


def test_a_reader_polling_through_many_merges_sees_every_row_once(spark, tmp_path):
    """pandas.read_parquet and the project's own reader, polling while batches land and merges swap
    the partition: every read is batches 0..k, whole, for some k, never a row twice or a gap."""
    sink = sink_for(tmp_path / "out", tmp_path / "ck")
    compactor = Compactor(CompactionConfig(every_batches=3, keep_seconds=0.5))
    stop, reads, retried, wrong = threading.Event(), [0, 0], [0], []

    def poll(read, slot: int) -> None:
        while not stop.is_set():
            if not data_files(sink.folder):
                continue
            try:
                seen = read()
            except (FileNotFoundError, OSError):  # pandas: a file swapped out between listing and opening
                retried[0] += 1
                continue
            reads[slot] += 1
            k = len(seen) // 3
            if seen != expected(range(k)):
                wrong.append(seen)

    readers = [
        threading.Thread(target=poll, args=(lambda: ids(sink.folder), 0), daemon=True),
        threading.Thread(
            target=poll, args=(lambda: sorted(read_folder(sink.folder, columns=["id"])["id"]), 1), daemon=True
        ),
    ]
    for r in readers:
        r.start()
    try:
        for b in range(30):
            sink.write(batch(spark, b), b, partition_by="date")
            compactor.after_batch(sink, b)
    finally:
        stop.set()
        for r in readers:
            r.join(10)
    assert wrong == []
    assert min(reads) > 10
    assert ids(sink.folder) == expected(range(30))
    assert len(data_files(sink.folder)) <= 4  # merged through batch 26, then 27-29 (and the batch before)
    versions = list((sink.folder / VERSIONS / "date=2026-12-08").iterdir())
    assert len(versions) <= 3  # replaced versions are deleted once keep_seconds passed


def test_an_output_aged_over_days_stays_within_its_bounds(spark, tmp_path):
    """150 batches over three days, merged every 10: each day's folder, the catalog and the versions
    stay bounded by the merge interval, not by the batches written, and every row reads once."""
    sink = sink_for(tmp_path / "out", tmp_path / "ck")
    every = 10
    compactor = Compactor(CompactionConfig(every_batches=every, keep_seconds=0))
    most_files, most_lines, most_versions = 0, 0, 0
    for b in range(150):
        day = f"2026-12-{8 + b // 50:02d}"
        sink.write(spark.createDataFrame([(f"{b}-{i}", T0, day) for i in range(3)], DDL), b, "date")
        compactor.after_batch(sink, b)
        for rel in sink.touched | {f"date={day}"}:
            most_files = max(most_files, len(data_files(sink.folder / rel)))
            most_versions = max(most_versions, len(list((sink.folder / VERSIONS / rel).iterdir())))
        most_lines = max(most_lines, len(sink.ledger.read_text().splitlines()))
    assert most_files <= every + 2  # the batches since the last merge, the merged file, the batch in hand
    assert most_versions <= 2  # the current one and the one just replaced
    assert most_lines <= 3 + 2 * (every + 1)  # a line per file since the last snapshot
    assert ids(sink.folder) == expected(range(150))
    assert all(len(data_files(sink.folder / f"date=2026-12-{d:02d}")) <= every + 2 for d in (8, 9, 10))


def test_a_whole_day_retired_on_purpose_is_not_missing_but_a_lost_file_is(spark, tmp_path):
    sink = sink_for(tmp_path / "out", tmp_path / "ck")
    for b in range(4):
        day = f"2026-12-{8 + b // 2:02d}"
        sink.write(spark.createDataFrame([(f"{b}-0", T0, day)], DDL), b, partition_by="date")
    (sink.folder / "date=2026-12-08").unlink()  # the first day moved to other storage
    assert sink_for(sink.folder, tmp_path / "ck").missing_batches(3) == []
    (sink.folder / "date=2026-12-09" / sink.file_name(3)).unlink()  # a file lost from a day still there
    assert sink_for(sink.folder, tmp_path / "ck").missing_batches(3) == [3]
