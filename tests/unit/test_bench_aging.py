"""The aging benchmark's pure parts: the job's batch lines, the window's percentiles, the projection's
straight lines, and the CSV a cut-off run is resumed from."""

from __future__ import annotations

import math
import os

import pytest

from benchmarks.aging import build_parser, prepare
from benchmarks.aging_measure import BatchLine, BatchLog, batch_percentiles, folder_usage, parse_batch_line
from benchmarks.aging_report import COLUMNS, append_row, linear_fit, project, projection, read_rows

pytestmark = pytest.mark.unit

LINE = (
    "batch 12: 40 row(s) written, 1 quarantined, 3 not tracked; 1.25s, 32 rows/s, latency p50 0.90s p95 1.40s "
    "(total 480)"
)


def test_a_batch_line_gives_its_id_rows_duration_and_latency():
    assert parse_batch_line(LINE) == BatchLine(12, 40, 1.25, 1.40)


def test_a_batch_line_without_latency_and_other_lines():
    line = "batch 3: 0 row(s) written, 2 quarantined, 0 not tracked; 0.40s, 0 rows/s (total 0)"
    assert parse_batch_line(line) == BatchLine(3, 0, 0.40, None)
    for other in ("batch 3: 2 duplicate tweet id(s) dropped", "01:05:05 WARN BlockManager: batch 1", ""):
        assert parse_batch_line(other) is None


def test_the_job_log_is_read_as_it_grows_a_partial_line_next_time(tmp_path):
    log = BatchLog(tmp_path / "job.log")
    assert log.read_new() == []  # no log yet
    (tmp_path / "job.log").write_text(f"stream: reading\n{LINE}\nbatch 13: 5 row(s) written, 0 quar")
    assert [b.batch_id for b in log.read_new()] == [12]
    with (tmp_path / "job.log").open("a") as f:
        f.write("antined, 0 not tracked; 2.00s, 2 rows/s (total 485)\n")
    assert [(b.batch_id, b.rows) for b in log.read_new()] == [(13, 5)]
    assert [b.batch_id for b in log.batches] == [12, 13]


def test_batch_percentiles_are_nearest_rank_and_nan_when_empty():
    window = [BatchLine(i, 1, float(s), None) for i, s in enumerate(range(1, 21))]
    assert batch_percentiles(window) == (10.0, 19.0)
    assert all(math.isnan(x) for x in batch_percentiles([]))


def test_folder_usage_counts_the_files_a_reader_lists_and_every_byte_on_disk_once(tmp_path):
    (tmp_path / "date=2026-01-01" / "_staging").mkdir(parents=True)
    (tmp_path / "date=2026-01-01" / "a.parquet").write_bytes(b"x" * 10)
    (tmp_path / "date=2026-01-01" / "_staging" / ".b.crc").write_bytes(b"y" * 5)
    version = tmp_path / "_versions" / "date=2026-01-02" / "000002"
    version.mkdir(parents=True)
    (version / "m.parquet").write_bytes(b"z" * 7)
    (tmp_path / "date=2026-01-02").symlink_to(version)  # a partition linked to its version
    old = tmp_path / "_versions" / "date=2026-01-02" / "000001"
    old.mkdir()
    os.link(version / "m.parquet", old / "m.parquet")  # a replaced version shares the file
    assert folder_usage(tmp_path) == (2, 22)
    assert folder_usage(tmp_path / "absent") == (0, 0)


def test_linear_fit_and_projection_of_a_straight_line():
    assert linear_fit([1, 2, 3], [5, 7, 9]) == pytest.approx((3.0, 2.0))
    assert linear_fit([1, float("nan"), 3], [5, 100, 9]) == pytest.approx((3.0, 2.0))
    assert linear_fit([1], [5]) is None and linear_fit([2, 2], [1, 3]) is None
    rows = [{"batches": b, "rows_total": 40.0 * b, "tweets_files": b + 2, "tweets_bytes": 1000.0 * b} for b in (20, 40)]
    assert project(rows, "tweets_files", "batches", 1000) == pytest.approx(1002)


def test_projection_counts_batches_by_trigger_and_bytes_by_tweets():
    rows = [
        {c: math.nan for c in COLUMNS}
        | {"batches": b, "rows_total": 40.0 * b, "tweets_files": b, "tweets_bytes": b * 40.0 * 2**10}
        for b in (20.0, 40.0, 60.0)
    ]
    text = projection(rows, days=1, rate=10, trigger_s=2)
    assert "43,200 batches, 864,000 tweets" in text
    assert "tweets       43,200 files, 0.82 GiB" in text  # 864,000 tweets x 1 KiB
    assert "alerts       n/a files, n/a" in text
    rows = [r | {"spool_done_bytes": r["rows_total"] * 2**20, "read_day_s": r["batches"] / 100} for r in rows]
    text = projection(rows, days=30, rate=10, trigger_s=2, retention=(24, 2**30))
    assert "spool_done   n/a files, 1.00 GiB (kept" in text  # 30 days of tweets, but at most 1 GiB kept
    assert "read_day_s     432.0 s" in text  # one day's partition: 43,200 batches, not 30 days of them


def test_rows_go_to_the_csv_one_at_a_time_and_come_back_as_numbers(tmp_path):
    csv = tmp_path / "aging.csv"
    append_row(csv, {"batches": 20, "wall_s": 12.5, "rss_job_mib": 900.0, "not_a_column": 1})
    append_row(csv, {"batches": 40, "wall_s": 30.0})
    assert csv.read_text().splitlines()[0] == ",".join(COLUMNS)
    rows = read_rows(csv)
    assert [r["batches"] for r in rows] == [20.0, 40.0] and rows[0]["rss_job_mib"] == 900.0
    assert math.isnan(rows[1]["rss_job_mib"])
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not the aging benchmark's"):
        read_rows(tmp_path / "other.csv")


def test_resume_continues_the_rows_and_wall_time_and_a_fresh_run_keeps_off_an_old_one(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match="no run in"):
        prepare(build_parser().parse_args(["--out", str(out), "--resume"]))
    out.mkdir()
    append_row(out / "aging.csv", {"batches": 500, "wall_s": 1000.0})
    with pytest.raises(SystemExit, match="holds a run already"):
        prepare(build_parser().parse_args(["--out", str(out)]))
    run = prepare(build_parser().parse_args(["--out", str(out), "--resume", "--trigger", "0.5"]))
    assert [r["batches"] for r in run.rows] == [500.0] and run.wall_offset == 1000.0
    assert run.pipeline.env["TWEETSENT_STREAM__TRIGGER_SECONDS"] == "0.5" and run.pipeline.procs == {}
