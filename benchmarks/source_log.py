"""Measure what Spark's checkpoint keeps for the spool: Spark's file source against the spool's source.

Usage: python -m benchmarks.source_log [--segments 2000 4000] [--per-trigger 20] [--job-segments 100]
       [--port 18201]

1. Checkpoint: the relay writes one-line segments into a spool (``--segments``: after each count the
   query is driven with ``processAllAvailable``); a query that only counts each batch reads them with
   each source, ``--per-trigger`` segments a batch. Printed: the bytes and files of the whole
   checkpoint and of the source's log (``sources/0``, the file source's list of every file read;
   Spark deletes its superseded compact files only after ``fileSource.log.cleanupDelay``, 10
   minutes), the checkpoint's growth per 1,000 segments, and the newest compact file (which lists
   every file read) with what a day of ``relay.segment_seconds = 0.5`` (172,800 segments) adds to it.
2. Job: the job's query (:func:`stream.query.build_query`: parse, de-duplicate, clean, score, write)
   over the same small stream with each source, scored by ``benchmarks/floor_server.py`` (answers at
   once): the batch duration (``triggerExecution``) p50 and p95.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from benchmarks.pipeline import start_floor
from harness.processes import stop_process
from ingest.spool import Record, Spool
from sentiment.config import Config
from sentiment.logs import setup_logging
from stream.query import JobConfig, JobStats, build_query, drive, file_source, percentiles
from stream.scoring import ScoringOptions
from stream.session import build_spark
from stream.spool_source import read_spool

SOURCES = ("file", "bounded")
DAY_OF_SEGMENTS = 172_800  # a day of segments sealed every relay.segment_seconds = 0.5


def tweet(i: int) -> str:
    return json.dumps({"id": f"t{i}", "created_at": "2026-11-20T10:00:00Z", "user": "u", "text": f"good day {i}"})


def source_of(spark, kind: str, spool: Path, per_trigger: int):
    return file_source(spark, spool, per_trigger) if kind == "file" else read_spool(spark, spool, per_trigger)


def usage(folder: Path) -> tuple[int, int]:
    """Bytes and files under ``folder`` (Spark's .crc files included)."""
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    return sum(p.stat().st_size for p in files), len(files)


def newest_compact(log: Path) -> tuple[int, int]:
    """Bytes and entries of the file source log's newest compact file (every file read so far), or (0, 0)."""
    compacts = sorted(log.glob("*.compact"), key=lambda p: int(p.name.split(".")[0])) if log.exists() else []
    if not compacts:
        return 0, 0
    return compacts[-1].stat().st_size, len(compacts[-1].read_text().splitlines()) - 1  # less its "v1" line


def batch_seconds(query) -> list[float]:
    """Seconds of each recent batch that read something (``triggerExecution``)."""
    return [p["durationMs"]["triggerExecution"] / 1000 for p in query.recentProgress if p["numInputRows"] > 0]


def measure(kind: str, segments: int, checkpoint: Path, batch_p50: float) -> dict:
    """The checkpoint's size, its source log's and its newest compact file's, after ``segments``."""
    (total, files), (log_bytes, log_files) = usage(checkpoint), usage(checkpoint / "sources" / "0")
    compact, entries = newest_compact(checkpoint / "sources" / "0")
    sizes = dict(bytes=total, files=files, log_bytes=log_bytes, log_files=log_files, compact=compact, entries=entries)
    return dict(source=kind, segments=segments, batch_p50=batch_p50, **sizes)


def checkpoint_growth(spark, kind: str, work: Path, counts: list[int], per_trigger: int) -> list[dict]:
    """Segments through a query that counts each batch; the checkpoint's size after each count."""
    spool, checkpoint = work / kind / "spool", work / kind / "checkpoint"
    spool.mkdir(parents=True)  # the file source wants it there
    read = [0]
    query = (
        source_of(spark, kind, spool.resolve(), per_trigger)
        .writeStream.option("checkpointLocation", str(checkpoint))
        .foreachBatch(lambda batch, _: read.__setitem__(0, read[0] + batch.count()))
        .start()
    )
    rows, written = [], 0
    try:
        with Spool(spool, segment_records=1, fsync=False) as relay:
            for count in counts:
                for i in range(written, count):
                    relay.append([Record(tweet(i))])
                written = count
                query.processAllAvailable()
                if read[0] != count:
                    raise RuntimeError(f"{kind}: {read[0]:,} lines read of {count:,}")
                rows.append(measure(kind, count, checkpoint, statistics.median(batch_seconds(query)[-50:])))
    finally:
        query.stop()
    return rows


def job_batches(spark, kind: str, work: Path, segments: int, service: str) -> dict:
    """The job's query over ``segments`` segments of 20 tweets, 5 segments a batch; batch seconds."""
    config = JobConfig(
        output=str(work / kind / "tweets"),
        quarantine=str(work / kind / "quarantine"),
        checkpoint=str(work / kind / "job-checkpoint"),
        trigger_seconds=0,
        scoring=ScoringOptions(service_url=service),
        spool=str(work / kind / "job-spool"),
        max_files_per_trigger=5,
        model_version="bench",
    )
    with Spool(config.spool, segment_records=20, fsync=False) as relay:
        relay.append([Record(tweet(i)) for i in range(segments * 20)])
    stats = JobStats()
    source = source_of(spark, kind, Path(config.spool).resolve(), config.max_files_per_trigger)
    query = build_query(source, config, stats).start()
    try:
        done = drive(query, stats, segments * 20, timeout=900)
        seconds = batch_seconds(query)
    finally:
        query.stop()
    p50, p95 = percentiles(seconds, (0.5, 0.95))
    return dict(source=kind, done=done, rows=stats.rows, batches=len(seconds), p50=p50, p95=p95)


def report_growth(rows: list[dict]) -> None:
    print("source   segments  checkpoint bytes  files  sources/0 bytes  files  newest compact  batch p50")
    for r in rows:
        print(
            f"{r['source']:8} {r['segments']:8,} {r['bytes']:17,} {r['files']:6,} {r['log_bytes']:16,} "
            f"{r['log_files']:6,} {r['compact']:15,} {r['batch_p50']:9.2f}s"
        )
    for kind in SOURCES:
        first, last = [r for r in rows if r["source"] == kind][0], [r for r in rows if r["source"] == kind][-1]
        per_k = (last["bytes"] - first["bytes"]) / (last["segments"] - first["segments"]) * 1000
        print(f"{kind}: the checkpoint grew {per_k:,.0f} bytes per 1,000 segments from {first['segments']:,} on")
        if last["entries"]:
            per_entry = last["compact"] / last["entries"]
            print(
                f"{kind}: the newest compact file lists {last['entries']:,} files, {per_entry:.0f} bytes each: a day "
                f"of 0.5 s segments adds {per_entry * DAY_OF_SEGMENTS / 1e6:.1f} MB to it, rewritten every 10 batches"
            )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.source_log", description=__doc__.splitlines()[0])
    p.add_argument("--segments", type=int, nargs="+", default=[2000, 4000])
    p.add_argument("--per-trigger", type=int, default=20, help="segments a batch (stream.max_files_per_trigger)")
    p.add_argument("--job-segments", type=int, default=100, help="segments of 20 tweets for the job's batches")
    p.add_argument("--port", type=int, default=18201, help="the floor server's port")
    args = p.parse_args(argv)
    setup_logging()
    work = Path(tempfile.mkdtemp(prefix="source-log-"))
    spark = build_spark(Config(), master="local[2]", app_name="tweet-sentiment-bench", ui=False)
    floor = start_floor(args.port)
    try:
        growth = [r for kind in SOURCES for r in checkpoint_growth(spark, kind, work, args.segments, args.per_trigger)]
        report_growth(growth)
        service = f"http://127.0.0.1:{args.port}"
        for kind in SOURCES:
            r = job_batches(spark, kind, work, args.job_segments, service)
            print(
                f"job, {kind} source: {r['rows']:,} rows in {r['batches']} batches (all: {r['done']}), "
                f"batch p50 {r['p50']:.2f}s p95 {r['p95']:.2f}s"
            )
    finally:
        stop_process(floor)
        spark.stop()
    print(f"(work folder {work})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
