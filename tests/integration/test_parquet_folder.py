import os

import pandas as pd
import pytest

from sentiment.parquet_folder import FolderReader, latest_rows, list_parquet_files, read_folder

pytestmark = pytest.mark.integration


def write(path, frame: pd.DataFrame, mtime: int | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    if mtime is not None:
        os.utime(path, ns=(mtime * 10**9, mtime * 10**9))
    return path


def rows(*ids: int) -> pd.DataFrame:
    return pd.DataFrame({"id": list(ids), "keyword": ["a" if i % 2 else "b" for i in ids], "x": [0.5] * len(ids)})


def test_missing_and_empty_folders_have_no_rows(tmp_path):
    assert list_parquet_files(tmp_path / "nope") == []
    assert read_folder(tmp_path / "nope").empty
    (tmp_path / "empty").mkdir()
    assert FolderReader(tmp_path / "empty").read().empty
    assert latest_rows(tmp_path / "empty", 10).empty


def test_bookkeeping_partial_and_foreign_files_are_skipped(tmp_path):
    write(tmp_path / "date=2026-11-28" / "part-0.parquet", rows(1, 2))
    write(tmp_path / "_spark_metadata" / "0.parquet", rows(99))
    write(tmp_path / "date=2026-11-28" / ".part-1.parquet", rows(98))
    write(tmp_path / "_temporary" / "x" / "part-2.parquet", rows(97))
    (tmp_path / "date=2026-11-28" / "part-3.parquet").write_bytes(b"PAR1 still being wri")  # no footer yet
    (tmp_path / "date=2026-11-28" / "part-3.parquet.crc").write_bytes(b"x")
    assert sorted(read_folder(tmp_path).id) == [1, 2]
    assert sorted(FolderReader(tmp_path).read().id) == [1, 2]


def test_reader_opens_only_new_or_changed_files_and_forgets_removed_ones(tmp_path, monkeypatch):
    import sentiment.parquet_folder as module

    opened = []
    real = module.read_table
    monkeypatch.setattr(module, "read_table", lambda p, *a, **k: opened.append(os.path.basename(p)) or real(p, *a, **k))

    reader = FolderReader(tmp_path, columns=["id", "not-there"])
    first = write(tmp_path / "a.parquet", rows(1), mtime=1000)
    assert reader.read().id.tolist() == [1]
    assert list(reader.read().columns) == ["id"]
    write(tmp_path / "b.parquet", rows(2), mtime=1001)
    assert reader.read().id.tolist() == [1, 2]
    assert opened == ["a.parquet", "b.parquet"]

    partial = tmp_path / "c.parquet"
    partial.write_bytes(b"PAR1")
    assert reader.read().id.tolist() == [1, 2]
    assert reader.read().id.tolist() == [1, 2]
    assert opened.count("c.parquet") == 1  # not opened again while it has not changed
    write(partial, rows(3), mtime=1002)  # finished
    assert reader.read().id.tolist() == [1, 2, 3]

    first.unlink()
    assert reader.read().id.tolist() == [2, 3]


def test_latest_rows_reads_the_newest_files_first_and_stops(tmp_path):
    for i in range(10):
        write(tmp_path / f"date=2026-11-2{i % 2}" / f"part-{i}.parquet", rows(2 * i, 2 * i + 1), mtime=1000 + i)
    latest = latest_rows(tmp_path, 3, columns=["id"])
    assert latest.id.tolist() == [18, 19, 16, 17]  # two files of two rows
    only_a = latest_rows(tmp_path, 3, columns=["id", "keyword"], where=("keyword", ["a"]))
    assert only_a.id.tolist() == [19, 17, 15]
    assert latest_rows(tmp_path, 100, max_files=2).id.tolist() == [18, 19, 16, 17]
