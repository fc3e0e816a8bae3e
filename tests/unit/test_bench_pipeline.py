"""The pipeline benchmark cannot print a figure for a phase that failed; its steady stream's latency per row."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from benchmarks.pipeline import bench_replicas, run
from benchmarks.steady import ParquetPoller, batch_files, summarise, visible_latencies
from harness.processes import free_port

pytestmark = pytest.mark.unit


def test_a_replica_that_refuses_connections_gives_an_error_not_a_figure():
    with pytest.raises(requests.ConnectionError):
        bench_replicas([f"http://127.0.0.1:{free_port()}"], ["a tweet"] * 10, repeats=1)


def write_batch(path: Path, relayed_at: list[float], unit: str = "us") -> Path:
    """A batch file as the sink leaves it: written under a staging name, then renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scale = {"us": 10**6, "ns": 10**9}[unit]
    stamps = pa.array(
        [round(t * scale) for t in relayed_at], type=pa.timestamp(unit, tz="UTC" if unit == "us" else None)
    )
    staged = path.parent / "_staging" / path.name
    staged.parent.mkdir(exist_ok=True)
    pq.write_table(pa.table({"id": [str(i) for i in range(len(relayed_at))], "relayed_at": stamps}), staged)
    staged.replace(path)
    return path


def test_a_row_s_latency_is_when_its_file_was_first_seen_minus_its_relayed_at(tmp_path):
    first = write_batch(tmp_path / "date=2026-12-04" / "part-a-1.parquet", [1000.0, 1000.5])
    second = write_batch(tmp_path / "date=2026-12-04" / "part-a-2.parquet", [1001.25], unit="ns")  # Spark's INT96
    relayed, latency = visible_latencies({second: 1003.0, first: 1002.0})
    assert list(relayed) == [1000.0, 1000.5, 1001.25]  # in the order the relay sent them
    assert list(latency) == pytest.approx([2.0, 1.5, 1.75])


def test_the_poller_notes_new_batch_files_only(tmp_path):
    old = write_batch(tmp_path / "date=2026-12-04" / "part-a-1.parquet", [1.0])
    write_batch(tmp_path / "part-schema.parquet", [])  # the columns, no row: no batch
    with ParquetPoller(tmp_path, interval=0.01) as poller:
        before = time.time()
        new = write_batch(tmp_path / "date=2026-12-05" / "part-a-2.parquet", [2.0])
        (tmp_path / "_staging" / "part-a-3.parquet").write_bytes(b"PAR1")  # still being written
        while new not in poller.seen and time.time() < before + 5:
            time.sleep(0.01)  # the poller's own thread notes it; bounded
        after = time.time()
    assert list(poller.seen) == [new] and old not in poller.seen
    assert before <= poller.seen[new] <= after


def test_a_steady_run_gives_its_percentiles():
    relayed = np.arange(100.0)
    latency = np.array([1.0 + (i % 10) / 10 for i in range(100)])  # 1.0 to 1.9 s all along
    figures = summarise(relayed, latency, rate=1.0)
    assert figures["rows"] == 100
    assert (figures["latency_p50_s"], figures["latency_p95_s"]) == (1.4, 1.9)
    assert figures["latency_p95_first_half_s"] == figures["latency_p95_second_half_s"] == 1.9
    assert figures["visible_rows_per_s"] == pytest.approx(100 / (99 + 1.9), abs=0.1)
    assert all(type(v) in (int, float) for v in figures.values())  # plain numbers: printed and JSON as such


def test_a_rate_the_job_cannot_keep_up_with_gives_no_figure():
    relayed = np.arange(100.0)
    growing = 1.0 + relayed * 0.2  # a backlog that grows: 1 s at the start, 20.8 s at the end
    with pytest.raises(RuntimeError, match="did not keep up with 50 tweets/s"):
        summarise(relayed, growing, rate=50.0)
    with pytest.raises(RuntimeError, match="no row became visible"):
        summarise(np.array([]), np.array([]), rate=50.0)


@pytest.mark.parametrize(
    "argv",
    [["--steady-rate", "-1"], ["--steady-rate", "10", "--steady-seconds", "0"], ["--steady-rate", "10", "--floor"]],
)
def test_steady_options_that_cannot_run_are_refused_before_anything_starts(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(argv)
    assert exit_info.value.code == 2 and "--steady" in capsys.readouterr().err


def test_listing_skips_staging_and_hidden_folders_and_survives_one_removed_meanwhile(tmp_path, monkeypatch):
    placed = write_batch(tmp_path / "date=2026-12-04" / "part-a-1.parquet", [1.0])
    write_batch(tmp_path / "_staging" / "x" / "part-0.parquet", [1.0])
    write_batch(tmp_path / ".hidden" / "part-0.parquet", [1.0])
    gone = tmp_path / "date=2026-12-05"
    gone.mkdir()
    real_scandir, refused = os.scandir, []

    def vanishing(path):  # the sink removes a folder between listing its parent and reading it
        if Path(path) == gone:
            refused.append(path)
            raise FileNotFoundError(path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", vanishing)
    assert batch_files(tmp_path) == [placed]
    assert refused  # the removed folder was met, and passed over
