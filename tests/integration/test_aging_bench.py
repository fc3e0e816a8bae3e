"""``python -m benchmarks.aging`` in quick mode, end to end: the real relay, service, job and dashboard
on loopback ports, a CSV row every few micro-batches, the picture, the projection, and nothing left running."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PORT_BASE = 18350  # the service, the dashboard, Spark's UI, driver and block manager: +0..+4


def started_for(folder: Path) -> list[int]:
    """Processes whose environment names ``folder`` (every part the benchmark starts gets its paths so)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if str(folder).encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            continue  # gone, or not ours to read
    return found


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_quick_mode_writes_its_rows_draws_them_projects_and_stops_every_part(tmp_path):
    out = tmp_path / "aging"
    args = ["--batches", "6", "--every", "3", "--trigger", "1", "--segment-seconds", "0.25", "--rate", "10"]
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.aging", *args, "--out", str(out), "--port-base", str(PORT_BASE)],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=420,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "shorter than the live configuration, to age faster" in run.stdout
    with (out / "aging.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["batches"]) >= n for r, n in zip(rows, (3, 6), strict=True)] == [True, True]
    last = rows[-1]
    assert int(last["rows_total"]) > 0 and int(last["tweets_files"]) >= 1 and int(last["checkpoints_files"]) > 0
    assert int(last["spool_done_files"]) + int(last["spool_files"]) > 0
    assert all(float(last[f"rss_{part}_mib"]) > 10 for part in ("job", "service", "relay", "dashboard"))
    assert float(last["batch_p95_s"]) >= float(last["batch_p50_s"]) > 0
    assert float(last["read_all_s"]) > 0 and float(last["dash_render_s"]) > 0
    assert (out / "aging.png").stat().st_size > 10_000
    assert "projection to 30 days at 20 tweets/s" in run.stdout
    assert started_for(out) == [] and not any(listening(PORT_BASE + i) for i in range(2))
