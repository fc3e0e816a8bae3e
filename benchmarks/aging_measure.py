"""What one row of the aging benchmark measures: batch lines, folder sizes, memory, read times, the dashboard.

Usage: ``BatchLog(job_log).read_new()``; ``folder_usage(path)``; ``rss_mib(pid)``; ``read_times(tweets)``;
``dashboard_times(root)`` (see :mod:`benchmarks.aging`).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from harness.processes import process_tree

# stream/query.py:report_batch:
# "batch 12: 40 row(s) written, 0 quarantined, 0 not tracked; 1.23s, 33 rows/s, latency p50 0.9s p95 1.4s (total 480)"
BATCH_LINE = re.compile(
    r"^batch (?P<id>\d+): (?P<rows>\d+) row\(s\) written.*?; (?P<elapsed>[0-9.]+)s, "
    r"[0-9.]+ rows/s(?:, latency p50 (?P<p50>[0-9.]+)s p95 (?P<p95>[0-9.]+)s)?"
)


@dataclass(frozen=True)
class BatchLine:
    """One micro-batch as the job reported it."""

    batch_id: int
    rows: int
    elapsed_s: float
    latency_p95_s: float | None


def parse_batch_line(line: str) -> BatchLine | None:
    """The batch a line of the job's output reports, or None for any other line."""
    m = BATCH_LINE.match(line.strip())
    if m is None:
        return None
    p95 = m.group("p95")
    return BatchLine(int(m.group("id")), int(m.group("rows")), float(m.group("elapsed")), p95 and float(p95))


@dataclass
class BatchLog:
    """Reads the job's log as it grows: each call to :meth:`read_new` returns the batches reported since the last."""

    path: Path
    offset: int = 0
    batches: list[BatchLine] = field(default_factory=list)

    def read_new(self) -> list[BatchLine]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        self.offset += end
        lines = data[:end].decode("utf-8", errors="replace").splitlines()
        new = [b for b in map(parse_batch_line, lines) if b is not None]
        self.batches += new
        return new


def batch_percentiles(window: list[BatchLine]) -> tuple[float, float]:
    """p50 and p95 (nearest rank) of the batches' durations in ``window``; NaNs when it is empty."""
    from stream.query import percentiles

    if not window:
        return float("nan"), float("nan")
    p50, p95 = percentiles([b.elapsed_s for b in window], (0.5, 0.95))
    return p50, p95


def folder_usage(folder: Path) -> tuple[int, int]:
    """Files a reader of ``folder`` lists (a partition's link followed to its version, names starting
    with ``_`` or ``.`` left out) and bytes on disk under it (every file, hidden, metadata and replaced
    versions too, a hard-linked file once); (0, 0) when absent."""
    files = 0
    for _, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        files += sum(1 for n in names if not n.startswith(("_", ".")))
    inodes: dict[tuple[int, int], int] = {}
    for parent, _, names in os.walk(folder):
        for name in names:
            try:
                st = os.stat(os.path.join(parent, name), follow_symlinks=False)
            except OSError:
                continue  # removed while walked (a staging file, an archived segment)
            inodes[(st.st_dev, st.st_ino)] = st.st_size
    return files, sum(inodes.values())


def rss_mib(pid: int | None) -> float:
    """Resident memory of ``pid`` and every process below it (the driver's JVM, the service's workers), MiB."""
    if pid is None:
        return 0.0
    total_kib = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return round(total_kib / 1024, 1)


def read_times(tweets: Path) -> dict[str, float]:
    """Seconds to ``pandas.read_parquet`` the whole tweets folder and today's ``date=`` partition, and their rows."""
    import pandas as pd

    out = {"read_all_s": float("nan"), "read_day_s": float("nan"), "rows_all": 0}
    if tweets.exists() and any(tweets.glob("date=*")):
        started = time.perf_counter()
        out["rows_all"] = len(pd.read_parquet(tweets))
        out["read_all_s"] = round(time.perf_counter() - started, 3)
    day = tweets / f"date={datetime.now(UTC):%Y-%m-%d}"
    if day.exists():
        started = time.perf_counter()
        pd.read_parquet(day)
        out["read_day_s"] = round(time.perf_counter() - started, 3)
    return out


def _overview(tweets: str, trends: str, alerts: str) -> None:
    """The dashboard's overview page (``dashboard.app.page``), as an AppTest script runs it."""
    from pathlib import Path

    from dashboard.app import page
    from dashboard.data import OutputPaths

    page(OutputPaths(Path(tweets), Path(trends), Path(alerts)))


def dashboard_times(root: Path) -> dict[str, float]:
    """The dashboard's data time (a new :class:`OutputReader`'s first snapshot: what a page load reads) and
    its first render (Streamlit's AppTest running the overview page in this process, cache cleared: the
    page's Python, its data and its charts built, no browser)."""
    import streamlit as st
    from streamlit.logger import set_log_level
    from streamlit.testing.v1 import AppTest

    from dashboard.data import OutputReader

    started = time.perf_counter()
    OutputReader(root).snapshot(None, "Last hour")
    data_s = time.perf_counter() - started
    set_log_level("error")  # not its warnings that no server runs: this render runs without one, on purpose
    st.cache_resource.clear()
    st.cache_data.clear()
    app = AppTest.from_function(_overview, args=(str(root / "tweets"), str(root / "trends"), str(root / "alerts")))
    started = time.perf_counter()
    app.run(timeout=120)
    render_s = time.perf_counter() - started
    failed = "; ".join(str(e.value)[:200] for e in app.exception)
    if failed:
        raise RuntimeError(f"the dashboard's overview page failed in AppTest: {failed}")
    return {"dash_data_s": round(data_s, 3), "dash_render_s": round(render_s, 3)}
