"""A steady stream through the pipeline: per-tweet latency from the relay to a row readers can see.

Usage (from ``benchmarks.pipeline --steady-rate R --steady-seconds S``)::

    result = steady_stream(query, stats, spool, records, rate=R, output=folder, lines_before=n)

The relay appends tweets to the spool at a rate the machine sustains while the job runs on its
trigger; a :class:`ParquetPoller` lists the output folder every ``interval`` seconds from outside
the job and notes when each batch file first appears there (the sink renames a whole file into
place, so that is when its rows become visible to a reader). A row's latency is that moment minus
its ``relayed_at`` (the time the relay appended it to the spool): p50 and p95 over every row. The
rate is not sustained, and no figure is given, when the latency grows along the run (the second
half's p95 above the first half's by more than half, plus ``slack`` seconds) or when rows are
still missing ``drain_timeout`` seconds after the last one was sent.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ingest.relay import write_records
from ingest.spool import Record, Spool
from stream.query import JobStats, drive, percentiles

SCALE = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


def epoch_seconds(column: pa.ChunkedArray) -> np.ndarray:
    """Seconds since the epoch of a parquet timestamp column (any unit; with or without a time zone: UTC)."""
    return column.cast(pa.timestamp(column.type.unit)).cast(pa.int64()).to_numpy() / SCALE[column.type.unit]


def batch_files(folder: Path) -> list[Path]:
    """The batch files a reader of ``folder`` sees: ``part-*.parquet`` at any depth but the schema file
    (merged files hold rows seen before, in the batch files they replace).

    Never enters ``_staging`` or hidden folders, follows a partition's link to its version, and a
    folder removed while it is listed is skipped.
    """
    found = []
    for parent, dirs, files in os.walk(folder, followlinks=True):  # os.walk passes over a folder that vanished
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        found += [
            Path(parent, f)
            for f in files
            if f.startswith("part-") and f.endswith(".parquet") and f != "part-schema.parquet"
        ]
    return found


@dataclass
class ParquetPoller:
    """Notes, from outside the job, when each batch file first appears in a folder (a thread; a context manager).

    Files already there when it starts are not counted (:attr:`seen` holds only new ones).
    """

    folder: Path
    interval: float = 0.05
    seen: dict[Path, float] = field(default_factory=dict)
    stamps: dict[Path, np.ndarray] = field(default_factory=dict)  # each seen file's relayed_at, read at once
    _before: set[Path] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def poll(self) -> None:
        """List the folder once, noting the wall-clock time of each file seen for the first time."""
        now = time.time()
        for path in batch_files(self.folder):
            if path not in self._before and path not in self.seen:
                try:  # read at once: a merge may take the file away before the figures are made
                    self.stamps[path] = relayed_at(path)
                except OSError:
                    continue
                self.seen[path] = now

    def __enter__(self) -> ParquetPoller:
        self._before = set(batch_files(self.folder))
        self._thread = threading.Thread(target=self._run, name="parquet-poller", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.poll()  # files placed since the last round count too (seen late by at most one interval)


def relayed_at(path: Path) -> np.ndarray:
    """The ``relayed_at`` of a file's rows, in epoch seconds."""
    return epoch_seconds(pq.read_table(path, columns=["relayed_at"]).column("relayed_at"))


def visible_latencies(
    seen: dict[Path, float], stamps: dict[Path, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``relayed_at`` (epoch s) and latency: the time its file was first seen minus ``relayed_at``.

    Returns:
        The two arrays, in the order of ``relayed_at``.
    """
    relayed, latency = [], []
    for path, seen_at in seen.items():
        times = stamps[path] if stamps is not None and path in stamps else relayed_at(path)
        relayed.append(times)
        latency.append(seen_at - times)
    if not relayed:
        return np.array([]), np.array([])
    relayed_all, latency_all = np.concatenate(relayed), np.concatenate(latency)
    order = np.argsort(relayed_all, kind="stable")
    return relayed_all[order], latency_all[order]


def drive_or_fail(query, stats: JobStats, lines: int, what: str, timeout: float = 1800) -> None:
    """Run the query until ``lines`` lines are handled.

    Raises:
        RuntimeError: when the query failed or did not handle them all in time (no figure is printed).
    """
    if not drive(query, stats, lines, timeout) or query.exception() is not None:
        error = query.exception()
        raise RuntimeError(
            f"{what}: {stats.seen} of {lines} line(s) handled"
            + (f"; the query failed: {str(error).splitlines()[0][:300]}" if error else f" in {timeout:.0f} s")
        )


def summarise(relayed: np.ndarray, latency: np.ndarray, rate: float, slack: float = 2.0) -> dict:
    """p50/p95 of the latencies, of each half of the run, and the rate rows became visible at.

    Raises:
        RuntimeError: when there is no row, or when the latency grew along the run (the rate was not sustained).
    """
    if len(latency) == 0:
        raise RuntimeError("the steady stream: no row became visible in the output")
    half = len(latency) // 2
    p50, p95 = percentiles(latency.tolist(), (0.5, 0.95))
    first = percentiles((latency[:half] if half else latency).tolist(), (0.95,))[0]
    second = percentiles(latency[half:].tolist(), (0.95,))[0]
    if second > 1.5 * first + slack:
        raise RuntimeError(
            f"the steady stream: the job did not keep up with {rate:g} tweets/s (latency p95 grew from "
            f"{first:.2f} s in the first half to {second:.2f} s in the second); try a lower --steady-rate"
        )
    span = float(relayed[-1] + latency[-1] - relayed[0]) if len(relayed) > 1 else 0.0
    return {
        "offered_rate": rate,
        "rows": int(len(latency)),
        "visible_rows_per_s": round(len(latency) / span, 1) if span > 0 else None,
        "latency_p50_s": round(p50, 2),
        "latency_p95_s": round(p95, 2),
        "latency_p95_first_half_s": round(first, 2),
        "latency_p95_second_half_s": round(second, 2),
        "latency_max_s": round(float(latency.max()), 2),
    }


def steady_stream(
    query,
    stats: JobStats,
    spool: Spool,
    records: list[Record],
    rate: float,
    output: str | Path,
    lines_before: int,
    drain_timeout: float = 120.0,
    interval: float = 0.05,
) -> dict:
    """Send ``records`` at ``rate`` into the spool of a running ``query``; the latency of each row as a reader sees it.

    Raises:
        RuntimeError: when the query failed, rows were still missing ``drain_timeout`` s after the last
            send, or the rate was not sustained (see :func:`summarise`); no figure then.
    """
    if rate <= 0:
        raise ValueError(f"a steady stream needs a rate above 0 tweets/s, got {rate}")
    with stats.lock:
        rows_before = stats.rows
    with ParquetPoller(Path(output), interval) as poller:
        feeder = threading.Thread(target=write_records, args=(records, spool, rate), daemon=True)
        feeder.start()
        feeder.join()
        drive_or_fail(query, stats, lines_before + len(records), "the steady stream", timeout=drain_timeout)
    relayed, latency = visible_latencies(poller.seen, poller.stamps)
    written = stats.rows - rows_before
    if len(latency) != written:
        raise RuntimeError(f"the steady stream: the job wrote {written} row(s), the output shows {len(latency)}")
    result = summarise(relayed, latency, rate)
    result["seconds_sent"] = round(len(records) / rate, 1)
    result["poll_interval_s"] = interval
    return result
