"""The relay's durable log: offsets, sealing, recovery after a kill, resumption, retention, full disks."""

from __future__ import annotations

import errno
import json
import os
import time

import pytest

from ingest.replay import jsonl_records, replay_records
from ingest.spool import Record, Spool, SpoolError, SpoolFull
from sentiment.sentiment140 import ReadStats
from sentiment.spool_format import OPEN_SEGMENT, archive_dir, read_complete

pytestmark = pytest.mark.unit


def lines_of(folder) -> list[dict]:
    out = []
    for seg in sorted(folder.glob("seg-*.jsonl")):
        out += [json.loads(line) for line in seg.read_text().splitlines()]
    return out


def test_offsets_are_consecutive_and_segments_sealed_by_size(tmp_path):
    with Spool(tmp_path / "s", segment_records=3) as spool:
        spool.append([Record(f'{{"id": "{i}"}}') for i in range(7)])
    records = lines_of(tmp_path / "s")
    assert [r["offset"] for r in records] == list(range(7))
    assert sorted(p.name for p in (tmp_path / "s").glob("seg-*")) == [
        "seg-000000000000.jsonl",
        "seg-000000000003.jsonl",
        "seg-000000000006.jsonl",
    ]
    assert not (tmp_path / "s" / OPEN_SEGMENT).exists()


def test_an_open_segment_is_sealed_only_when_old_enough(tmp_path):
    spool = Spool(tmp_path / "s", segment_records=100, segment_seconds=10)
    spool.open()
    spool.append([Record("{}")])
    spool.tick(now=time.monotonic())
    assert not list((tmp_path / "s").glob("seg-*"))
    spool.tick(now=time.monotonic() + 11)
    assert len(list((tmp_path / "s").glob("seg-*"))) == 1


def test_a_killed_relay_loses_nothing_it_accepted_and_offsets_go_on(tmp_path):
    spool = Spool(tmp_path / "s", segment_records=100)
    spool.open()
    spool.append([Record("a", src="f", seq=0), Record("b", src="f", seq=1)])
    # Killed here: the open segment holds two whole lines and a torn third.
    with (tmp_path / "s" / OPEN_SEGMENT).open("a") as f:
        f.write('{"offset": 2, "at": 1, "li')
    spool.lock.release()  # what the kernel does when the relay dies
    again = Spool(tmp_path / "s")
    again.open()
    assert again.next_offset == 2 and again.last == {"offset": 1, "src": "f", "seq": 1}
    again.append([Record("c")])
    again.close()
    assert [(r["offset"], r["line"]) for r in lines_of(tmp_path / "s")] == [(0, "a"), (1, "b"), (2, "c")]


def test_offsets_go_on_after_the_job_archived_every_segment(tmp_path):
    with Spool(tmp_path / "s") as spool:
        spool.append([Record("a"), Record("b")])
    for seg in (tmp_path / "s").glob("seg-*"):
        seg.rename(archive_dir(tmp_path / "s") / seg.name)
    with Spool(tmp_path / "s") as spool:
        assert spool.next_offset == 2


def test_completion_marker(tmp_path):
    with Spool(tmp_path / "s") as spool:
        spool.append([Record("a")])
        assert read_complete(tmp_path / "s") is None
        spool.mark_complete("src", 1, limit=None)
        assert read_complete(tmp_path / "s")["records"] == 1
        spool.clear_complete()
        assert spool.complete() is None


def test_too_much_unread_data_refuses_more(tmp_path):
    with Spool(tmp_path / "s", segment_records=1, max_pending_bytes=100) as spool:
        spool.append([Record("x" * 200)])
        with pytest.raises(SpoolFull, match="max_pending_bytes"):
            spool.append([Record("y")])


def test_a_full_disk_is_a_clear_error(tmp_path, monkeypatch):
    spool = Spool(tmp_path / "s", segment_records=100)
    spool.open()
    spool.append([Record("a")])

    def full(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool._file, "write", full)
    with pytest.raises(SpoolError, match="disk holding .* is full"):
        spool.append([Record("b")])


def test_retention_deletes_old_and_excess_archived_segments(tmp_path):
    spool = Spool(tmp_path / "s", retention_hours=1, retention_bytes=25)
    spool.open()
    done = archive_dir(tmp_path / "s")
    now = time.time()
    for i, age in enumerate((0, 60, 7200)):
        p = done / f"seg-{i:012d}.jsonl"
        p.write_text("x" * 10)
        os.utime(p, (now - age, now - age))
    assert spool.prune(now=now) == 1  # the two-hour-old one
    (done / "seg-000000000003.jsonl").write_text("x" * 10)
    assert spool.prune(now=now) == 1  # three of 10 bytes are over 25: the oldest goes
    assert sorted(p.name for p in done.glob("seg-*")) == ["seg-000000000000.jsonl", "seg-000000000003.jsonl"]


def test_replay_keeps_going_past_a_row_over_the_csv_field_limit(tmp_path):
    path = tmp_path / "t.csv"
    row = '"0","{}","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY","u","{}"\n'
    path.write_text(row.format(1, "first") + row.format(2, "x" * 140_000) + row.format(3, "third") + '"4","5"\n')
    stats = ReadStats()
    records = list(replay_records(path, stats=stats))
    tweets = [json.loads(r.line)["id"] for r in records if not r.error]
    errors = [r.error for r in records if r.error]
    assert tweets == ["1", "3"]
    assert errors == [
        "t.csv:2: unreadable CSV row: field larger than field limit (131072)",
        "t.csv:4: expected 6 columns, got 2",
    ]
    assert [r.seq for r in records] == [0, 1, 2, 3]


def test_jsonl_records_keep_bad_lines_with_their_reason(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_bytes(b'{"id": "1"}\n\n{"t": "caf\xe9"}\n' + b"z" * 70_000 + b"\n")
    records = list(jsonl_records(path, max_line_bytes=65_536))
    assert [r.error for r in records] == [
        None,
        "l.jsonl:2: blank line",
        "l.jsonl:3: not valid UTF-8 (byte 0xe9 at position 10)",
        "l.jsonl:4: line of 70,000 bytes is over the limit of 65,536",
    ]
    assert len(records[3].line) == 1000


def _fail_writes(monkeypatch, spool, written: int = 0) -> None:
    """The disk fills up: the next write puts ``written`` characters down, then fails."""
    real = spool._file.write

    def full(text):
        real(text[:written])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool._file, "write", full)


@pytest.mark.parametrize("torn", [0, 30], ids=["nothing-written", "torn-line"])
def test_after_a_failed_write_the_state_is_not_ahead_of_the_data(tmp_path, monkeypatch, torn):
    spool = Spool(tmp_path / "s", segment_records=100)
    spool.open()
    spool.append([Record("a", src="f", seq=0), Record("b", src="f", seq=1)])
    _fail_writes(monkeypatch, spool, written=torn)
    with pytest.raises(SpoolError, match="is full"):
        spool.append([Record("c", src="f", seq=2), Record("d", src="f", seq=3)])
    assert spool.next_offset == 2 and spool.last["seq"] == 1
    with pytest.raises(SpoolError, match="after a failed write"):
        spool.append([Record("e", src="f", seq=4)])
    spool.close()  # must not seal the torn segment nor save offsets past what was written
    again = Spool(tmp_path / "s")
    again.open()
    assert again.next_offset == 2 and again.last == {"offset": 1, "src": "f", "seq": 1}
    again.append([Record("c", src="f", seq=2), Record("d", src="f", seq=3)])  # a resumed replay
    again.close()
    assert [(r["offset"], r["line"]) for r in lines_of(tmp_path / "s")] == [(0, "a"), (1, "b"), (2, "c"), (3, "d")]


def test_a_second_writer_is_refused_and_the_first_goes_on(tmp_path):
    from sentiment.folders import FolderBusy

    with Spool(tmp_path / "s") as first:
        with pytest.raises(FolderBusy, match="in use by another relay"):
            Spool(tmp_path / "s").open(start_over=True)
        first.append([Record("a")])
    assert [r["line"] for r in lines_of(tmp_path / "s")] == ["a"]


def test_a_spool_made_anew_has_a_new_identity(tmp_path):
    from sentiment.spool_format import spool_id

    with Spool(tmp_path / "s") as spool:
        first = spool.spool_id
    assert spool_id(tmp_path / "s") == first
    with Spool(tmp_path / "s"):
        pass
    assert spool_id(tmp_path / "s") == first  # reopened: the same spool
    with Spool(tmp_path / "s") as spool:
        spool.close()
        spool.open(start_over=True)
        assert spool.spool_id != first and spool.next_offset == 0
    assert spool_id(tmp_path / "s") not in (None, first)


def test_the_times_written_never_go_back_when_the_clock_does(tmp_path):
    now = 1_800_000_000.0
    with Spool(tmp_path / "s") as spool:
        spool.append([Record("a")], now=now)
        spool.append([Record("b")], now=now - 3600)  # the clock jumped back an hour
    with Spool(tmp_path / "s") as spool:  # and across a restart
        spool.append([Record("c")], now=now - 3500)
        spool.append([Record("d")], now=now + 10)
    assert [r["at"] for r in lines_of(tmp_path / "s")] == [now, now, now, now + 10]


def test_a_line_is_read_in_bounded_memory_even_without_a_newline(tmp_path):
    import tracemalloc

    path = tmp_path / "huge.jsonl"
    with path.open("wb") as f:
        f.write(b'{"id": "1", "text": "ok"}\n')
        for _ in range(64):
            f.write(b"x" * (1 << 20))  # 64 MiB and no newline: one line to the end of the file
    tracemalloc.start()
    try:
        records = list(jsonl_records(path, max_line_bytes=65_536))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [r.error for r in records] == [None, "huge.jsonl:2: line of 67,108,864 bytes is over the limit of 65,536"]
    assert peak < 4 << 20  # a few chunks, not the 64 MiB line
