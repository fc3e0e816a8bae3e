"""The spool's streaming source without Spark: offsets, partitions, reads and commits on a temp folder."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadMaxFiles
from pyspark.sql.types import StringType, StructField, StructType

from ingest.spool import Record, Spool
from sentiment.spool_format import archive_dir
from stream.checkpoint import made_by_file_source
from stream.spool_source import NumberedFilesReader, spool_options

pytestmark = pytest.mark.unit


def spool_of(tmp_path, segments: int, per_segment: int = 3):
    """A spool of ``segments`` sealed segments (and an open one, which is not read)."""
    folder = tmp_path / "spool"
    spool = Spool(folder, segment_records=per_segment, fsync=False)
    spool.open()
    spool.append([Record(json.dumps({"id": str(i)})) for i in range(segments * per_segment + 1)])
    spool.lock.release()  # the open segment stays open, as under a live relay
    return folder


def lines(reader: NumberedFilesReader, start: dict, end: dict) -> list[str]:
    return [row[0] for p in reader.partitions(start, end) for row in reader.read(p)]


def test_offsets_are_positions_taken_lowest_first_up_to_the_limit(tmp_path):
    folder = spool_of(tmp_path, 5)
    reader = NumberedFilesReader(spool_options(folder, 2))
    start = reader.initialOffset()
    assert start == {"next": 0} and reader.getDefaultReadLimit() == ReadMaxFiles(2)
    first = reader.latestOffset(start, reader.getDefaultReadLimit())
    assert first == {"next": 4}  # segments 0 and 3
    assert reader.latestOffset(first, ReadMaxFiles(2)) == {"next": 10}  # 6 and 9
    assert reader.latestOffset(first, ReadAllAvailable()) == {"next": 13}  # 6, 9 and 12; not the open one
    assert reader.latestOffset({"next": 13}, ReadAllAvailable()) == {"next": 13}  # nothing new: the start
    assert [n for p in reader.partitions(start, first) for n in p.names] == [
        "seg-000000000000.jsonl",
        "seg-000000000003.jsonl",
    ]
    assert reader.partitions(first, first) == []


def test_a_batch_is_spread_over_the_tasks_asked_neighbours_together(tmp_path):
    folder = spool_of(tmp_path, 5)
    reader = NumberedFilesReader(spool_options(folder, 10, partitions=2))
    tasks = [[int(n[4:16]) for n in p.names] for p in reader.partitions({"next": 0}, {"next": 13})]
    assert tasks == [[0, 3, 6], [9, 12]]
    assert [[int(n[4:16]) for n in p.names] for p in reader.partitions({"next": 9}, {"next": 10})] == [[9]]


def test_a_segment_is_read_whole_as_its_lines(tmp_path):
    folder = spool_of(tmp_path, 2)
    reader = NumberedFilesReader(spool_options(folder, 10))
    got = lines(reader, {"next": 0}, {"next": 4})
    assert [json.loads(v)["offset"] for v in got] == [0, 1, 2, 3, 4, 5]
    assert json.loads(json.loads(got[4])["line"]) == {"id": "4"}
    (folder / "seg-000000000006.jsonl").write_bytes(b'{"offset": 6, "line": "caf\xe9"}\r\n\nlast')
    assert lines(reader, {"next": 6}, {"next": 7}) == ['{"offset": 6, "line": "caf\ufffd"}', "", "last"]


def test_commit_archives_what_is_before_the_end_and_a_batch_run_again_reads_the_same(tmp_path):
    folder = spool_of(tmp_path, 4)
    reader = NumberedFilesReader(spool_options(folder, 2))
    first = {"next": 4}  # batches end where a file's number + 1 is: [0, 4) then [4, 10)
    second = reader.latestOffset(first, reader.getDefaultReadLimit())
    assert second == {"next": 10}
    planned, before = reader.partitions(first, second), lines(reader, first, second)
    reader.commit(first)  # the first batch committed: its segments 0 and 3 move
    archived = sorted(p.name for p in archive_dir(folder).glob("seg-*"))
    assert archived == ["seg-000000000000.jsonl", "seg-000000000003.jsonl"]
    assert lines(reader, first, second) == before
    reader.commit(second)  # a batch is planned, its segments archived, then it is run again (as after a crash)
    assert list(folder.glob("seg-*")) == []  # (offset 12 is in the open segment)
    assert [row[0] for p in planned for row in reader.read(p)] == before  # planned before the move
    assert lines(reader, first, second) == before  # planned after it: found in the archive
    assert [json.loads(v)["offset"] for v in lines(reader, {"next": 0}, {"next": 13})] == list(range(12))


def test_a_second_kind_of_folder_parquet_per_batch_deleted_once_committed(tmp_path):
    feed = tmp_path / "feed"
    feed.mkdir()
    for batch in (0, 1, 7):
        table = pa.table({"n": [0, 1, 2], "id": [f"{batch}-{i}" for i in range(3)]})
        pq.write_table(table, feed / f"feed-{batch:010d}.parquet")
    (feed / "feed-0000000009.parquet.tmp").write_bytes(b"not yet")
    options = {"path": str(feed), "pattern": r"feed-(\d{10})\.parquet", "format": "parquet", "archive": ""}
    reader = NumberedFilesReader(options, StructType([StructField("id", StringType())]))  # the schema's, by name
    assert reader.getDefaultReadLimit() == ReadAllAvailable()
    end = reader.latestOffset(reader.initialOffset(), ReadAllAvailable())
    assert end == {"next": 8}
    batches = [b for p in reader.partitions({"next": 0}, end) for b in reader.read(p)]
    assert {b.schema.names == ["id"] for b in batches} == {True}
    assert [i for b in batches for i in b.column("id").to_pylist()] == [f"{n}-{i}" for n in (0, 1, 7) for i in range(3)]
    reader.commit({"next": 2})
    assert sorted(p.name for p in feed.iterdir()) == ["feed-0000000007.parquet", "feed-0000000009.parquet.tmp"]


def test_options_that_cannot_work_are_refused_with_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="format must be one of"):
        NumberedFilesReader({"path": str(tmp_path), "format": "csv"})
    with pytest.raises(ValueError, match="needs one group"):
        NumberedFilesReader({"path": str(tmp_path), "pattern": r"seg-\d+"})
    missing = NumberedFilesReader({"path": str(tmp_path / "none")})
    assert missing.latestOffset({"next": 0}, ReadAllAvailable()) == {"next": 0}


def test_a_checkpoint_made_by_the_file_source_is_told_apart(tmp_path):
    assert not made_by_file_source(tmp_path / "absent")
    (tmp_path / "sources" / "0").mkdir(parents=True)
    assert not made_by_file_source(tmp_path)  # nothing read yet: the bounded source may take it
    (tmp_path / "sources" / "0" / "0").write_text('v1\n{"path":"file:///spool/seg-000000000000.jsonl"}\n')
    assert made_by_file_source(tmp_path)
