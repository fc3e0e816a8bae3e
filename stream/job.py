"""Score the relayed tweets with the model service and write them to parquet, exactly once.

Usage: spark-submit stream/job.py [KEYWORD ...] [--track KEYWORD ...] [--transport spool|socket]
       [--spool DIR] [--service-url URL] [--output DIR] [--checkpoint DIR] [--trigger SECONDS]
       [--until-done] [--stop-after N] [--start-over]
   or: python -m stream [same options]

Reads the relay's spool (segments of JSON-line envelopes, by default) with the spool's source
(:mod:`stream.spool_source`: offsets are positions in the spool, so the checkpoint stays small however
long the stream runs; a checkpoint made by Spark's file source goes on with that source until
``--start-over``), or the relay's plain socket. Validates each line (:mod:`stream.parsing`), sends unusable ones to the
quarantine with the raw line and the reason, drops tweet ids seen again within the de-duplication
window, cleans the text with native Spark SQL, scores it through ``POST /predict/batch`` from each
partition (``mapInPandas``), labels it with the neutral band and writes each micro-batch as one
file per date, atomically and idempotently (:mod:`stream.sink`). The checkpoint is one folder per
output, so the same command resumes after a crash; while the model service is down a batch waits
for it, and a failed query restarts from its checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script by spark-submit: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark import SparkContext
from pyspark.sql import SparkSession

from sentiment.config import TRANSPORTS, Config, ConfigError, load_config, service_token
from sentiment.folders import FolderBusy, UnsafeDelete, mark_ours, remove_ours
from sentiment.logs import setup_logging
from sentiment.spool_format import read_complete
from stream.checkpoint import SpoolMismatch, check_spool, lock_checkpoint
from stream.outputs import prepare_outputs
from stream.query import JobConfig, JobStats, ProgressListener, Sinks, build_query, read_source
from stream.scoring import ScoringOptions, check_client_limits, fetch_model_version
from stream.session import build_spark
from stream.trends import TrendsJob, build_trends_query, close_windows

log = logging.getLogger("stream")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stream", description="Score the relayed tweets into parquet.")
    p.add_argument(
        "--track",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEYWORD",
        help="keep only tweets containing a KEYWORD (case-insensitive): --track love hate; repeatable",
    )
    p.add_argument("keywords", nargs="*", help="keywords to track (same as --track)")
    p.add_argument(
        "--transport",
        choices=TRANSPORTS,
        help="spool: read the relay's durable log, exactly once (default from conf); "
        "socket: Spark's socket source, at most once",
    )
    p.add_argument("--spool", help="the relay's spool folder (default from conf: output/spool)")
    p.add_argument("--host", help="relay host, --transport socket (default from conf)")
    p.add_argument("--port", type=int, help="relay port, --transport socket (default from conf)")
    p.add_argument(
        "--service-url",
        action="append",
        metavar="URL[,URL...]",
        help="model service URL; several replicas: repeat it or separate with commas (default from conf)",
    )
    p.add_argument("--output", help="parquet output folder (default from conf: output/tweets)")
    p.add_argument("--quarantine", help="quarantine parquet folder (default from conf)")
    p.add_argument(
        "--checkpoint", help="checkpoint root; this job's is <root>/tweets, kept across runs (default from conf)"
    )
    p.add_argument(
        "--start-over",
        action="store_true",
        help="delete the checkpoint and the outputs first, instead of resuming where the last run stopped",
    )
    p.add_argument("--trigger", type=float, help="seconds between micro-batches (default from conf)")
    p.add_argument("--no-trends", action="store_true", help="no windowed trends and alerts this run (trends.enabled)")
    p.add_argument(
        "--trends-time",
        choices=("created_at", "relayed_at"),
        help="event time of the trends windows: the tweets' own or the relay's (default from conf: trends.event_time)",
    )
    p.add_argument(
        "--until-done",
        action="store_true",
        help="stop once the relay has marked its finite replay complete and all of it is written",
    )
    p.add_argument("--stop-after", type=int, help="stop once N input lines have been handled by this run")
    p.add_argument(
        "--wait-for-service",
        type=float,
        default=300.0,
        help="seconds the first batch waits for the service's GET /model (which model scores), once it is healthy",
    )
    p.add_argument("--master", help="Spark master (default local[2] unless set by spark-submit)")
    p.add_argument("--config", help="TOML configuration file")
    return p


def job_config_from_args(args: argparse.Namespace, config: Config) -> JobConfig:
    check_client_limits(config)
    s = config.stream
    transport = args.transport or config.relay.transport
    root = config.resolve(args.checkpoint or s.checkpoint)
    if transport == "socket":
        # The socket source cannot resume from an old checkpoint, so each socket run checkpoints apart.
        checkpoint = root / time.strftime("socket-run-%Y%m%dT%H%M%SZ", time.gmtime())
    else:
        checkpoint = root / "tweets"
    return JobConfig(
        transport=transport,
        spool=str(config.resolve(args.spool or config.relay.spool)),
        host=args.host or config.relay.host,
        port=args.port if args.port is not None else config.relay.port,
        output=str(config.resolve(args.output or s.output)),
        quarantine=str(config.resolve(args.quarantine or s.quarantine)),
        checkpoint=str(checkpoint),
        trigger_seconds=args.trigger if args.trigger is not None else s.trigger_seconds,
        max_files_per_trigger=s.max_files_per_trigger,
        dedup_minutes=s.dedup_minutes,
        outage_limit_seconds=s.outage_limit_seconds,
        scoring=ScoringOptions(
            service_url=",".join(args.service_url) if args.service_url else config.service_url,
            batch_size=s.request_batch,
            concurrency=s.request_concurrency,
            timeout=s.request_timeout_seconds,
            retries=s.retries,
            backoff=s.backoff_seconds,
            cooldown=s.replica_cooldown_seconds,
            max_request_bytes=s.request_max_bytes,
            max_text_chars=s.max_text_chars,
            token=service_token(config.service),
        ),
        band=config.band.band(),
        track=tuple(dict.fromkeys(args.track + args.keywords)),
        stop_after=args.stop_after,
        until_done=args.until_done,
        trends=trends_job(args, config, root, str(config.resolve(args.output or s.output)))
        if transport == "spool"
        else None,
        compaction=config.compaction,
    )


def trends_job(args: argparse.Namespace, config: Config, checkpoint_root: Path, tweets: str) -> TrendsJob | None:
    t = config.trends
    if args.no_trends or not t.enabled:
        return None
    if args.trends_time:
        t = dataclasses.replace(t, event_time=args.trends_time)
    return TrendsJob(
        tweets=tweets,
        checkpoint=str(checkpoint_root / "trends"),
        config=t,
        output=str(config.resolve(t.output)),
        alerts=str(config.resolve(t.alerts)),
        compaction=config.compaction,
    )


def job_folders(job: JobConfig) -> list[str]:
    """The folders this job writes (its checkpoints and outputs)."""
    folders = [job.checkpoint, job.output, job.quarantine]
    if job.trends is not None:
        folders += [job.trends.checkpoint, str(job.trends.ticks), str(job.trends.feed), job.trends.output]
        folders += [job.trends.alerts]
    return folders


def start_over(job: JobConfig) -> None:
    """Forget the job's progress: delete its checkpoint (all but the lock this job holds) and what it
    wrote, only folders the project made (:func:`sentiment.folders.remove_ours`)."""
    folders = job_folders(job)
    for folder in folders:
        remove_ours(folder)
    print(f"stream: starting over (deleted {', '.join(folders)})", flush=True)


def claim_folders(job: JobConfig) -> None:
    """Mark the job's folders as the project's, so that a later ``--start-over`` may empty them."""
    for folder in job_folders(job):
        mark_ours(folder, "written by the Spark job")


def check_source(job: JobConfig) -> None:
    """Stop with :class:`~stream.checkpoint.SpoolMismatch` if the spool is not the checkpoint's."""
    if job.transport == "spool":
        check_spool(job.checkpoint, job.spool)


def run_query(spark: SparkSession, query, trends, job: JobConfig, stats: JobStats) -> Exception | None:
    """Watch the started queries (the tweets' and, when on, the trends') until one fails, the run is
    stopped, or its end condition holds. Returns the error, or None when they ended as asked."""
    queries = [q for q in (query, trends) if q is not None]
    try:
        while all(q.isActive for q in queries) and not stats.stopping.is_set():
            query.awaitTermination(0.5)
            check_source(job)
            if job.stop_after is not None and stats.seen >= job.stop_after:
                return None
            if job.until_done and read_complete(job.spool) is not None:
                # Everything the relay will write is sealed: take what is there, close the windows, stop.
                query.processAllAvailable()
                if trends is not None:
                    close_windows(spark, trends, job.trends)
                return None
    except SpoolMismatch:
        raise
    except Exception as e:  # a query failed (StreamingQueryException and the like)
        return e
    finally:
        for q in queries:
            if q.isActive:
                q.stop()
    return next((q.exception() for q in queries if q.exception() is not None), None)


def run(
    spark: SparkSession,
    job: JobConfig,
    stats: JobStats,
    max_failures_in_a_row: int = 5,
    at_work: threading.Event | None = None,
) -> int:
    """Run the query; restart it from its checkpoint after a failure, with a growing pause.

    Refuses to start (returns 2) when batches the checkpoint has committed are missing from the
    output (:func:`stream.outputs.prepare_outputs`). Gives up (returns 1) when the service stayed
    down longer than ``outage_limit_seconds``, or when the query fails again after
    ``max_failures_in_a_row`` restarts with no batch written in between (on the 6th failure by default).
    Sets ``at_work`` once the queries are about to start (from then on a stop waits for the batch in hand).
    """
    problem = prepare_outputs(spark, job)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr, flush=True)
        return 2
    if at_work is not None:
        at_work.set()
    sinks = Sinks.for_job(job)
    failures = 0
    while True:
        check_source(job)
        batches_before = stats.batches
        query = build_query(read_source(spark, job), job, stats, sinks).start()
        trends = None
        if job.trends is not None:
            trends = build_trends_query(spark, job.trends, job.trigger_seconds, job.max_files_per_trigger).start()
        error = run_query(spark, query, trends, job, stats)
        if error is None or stats.stopping.is_set():
            return 0
        if stats.outage:
            print(f"error: {stats.outage}", file=sys.stderr)
            return 1
        failures = 1 if stats.batches > batches_before else failures + 1
        summary = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
        if failures > max_failures_in_a_row or job.transport == "socket":
            print(f"error: the streaming query failed: {summary}", file=sys.stderr)
            return 1
        pause = min(60.0, 2.0**failures)
        log.error(
            "the streaming query failed (%s); restarting it from its checkpoint in %.0fs (failure %d in a row)",
            summary,
            pause,
            failures,
        )
        if stats.stopping.wait(pause):
            return 0


STOP_GRACE_SECONDS = 7.0


def install_stop_handlers(stats: JobStats, grace: float = STOP_GRACE_SECONDS) -> threading.Event:
    """SIGTERM or Ctrl-C: stop after the batch in hand; if that takes longer than ``grace`` seconds,
    or the signal comes again, exit at once. Safe: the checkpoint and the idempotent sink make a cut
    batch run again on the next start, as after a SIGKILL.

    Returns the event to set once the queries start: before that (Spark starting, the outputs'
    checks, which can take many seconds on a busy machine) there is no batch to finish, and a signal
    exits at once."""
    at_work = threading.Event()

    def hard_exit(reason: str) -> None:
        print(f"stream: {reason}; exiting now (the next run resumes from the checkpoint)", file=sys.stderr, flush=True)
        jvm = getattr(SparkContext._gateway, "proc", None)  # the JVM would take seconds to notice
        if jvm is not None:
            jvm.kill()
        os._exit(143)

    def request_stop(*_: object) -> None:
        if stats.stopping.is_set():
            hard_exit("asked to stop again")
        if not at_work.is_set():
            hard_exit("stopped while starting")
        stats.stopping.set()
        timer = threading.Timer(grace, hard_exit, args=(f"not stopped within {grace:.0f}s of the signal",))
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return at_work


def prepare(args: argparse.Namespace) -> tuple[Config, JobConfig]:
    """Read the settings, take the checkpoint's lock (held until the process ends), start over if
    asked, and check that the spool is the checkpoint's.

    Raises:
        ConfigError, FileNotFoundError, FolderBusy, UnsafeDelete, SpoolMismatch: each with a message.
    """
    config = load_config(args.config)
    job = job_config_from_args(args, config)
    if job.stop_after is not None and job.stop_after < 1:
        raise ConfigError(f"--stop-after must be at least 1, got {job.stop_after}")
    if job.until_done and job.transport != "spool":
        raise ConfigError("--until-done needs --transport spool (a socket has no end)")
    lock_checkpoint(job.checkpoint)  # released by the kernel when the process ends, however it ends
    if args.start_over:
        start_over(job)
    claim_folders(job)
    check_source(job)
    return config, job


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    try:
        config, job = prepare(args)
    except (ConfigError, FileNotFoundError, FolderBusy, UnsafeDelete, SpoolMismatch) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stats = JobStats()
    at_work = install_stop_handlers(stats)
    # Spark starts, and the query reads, parses and plans its first batch, while the service may
    # still be loading its model: the first batch to score waits for it (as in an outage) and then
    # asks which model it serves.
    job = dataclasses.replace(
        job,
        model_version_source=functools.partial(
            fetch_model_version, job.scoring.service_url, args.wait_for_service, job.scoring.token
        ),
    )
    # Spark's own log beside the others: <checkpoint root>/../logs/spark.log (output/logs/spark.log).
    spark_log = Path(job.checkpoint).parents[1] / "logs" / "spark.log"
    spark = build_spark(config, args.master, log_file=spark_log)
    spark.streams.addListener(ProgressListener(stats))
    where = job.spool if job.transport == "spool" else f"{job.host}:{job.port} (socket, at most once)"
    print(
        f"stream: reading {where}, scoring with {job.scoring.service_url}, "
        f"writing {job.output}, checkpoint {job.checkpoint}, Spark's log {spark_log}"
        + (f", tracking {list(job.track)}" if job.track else ""),
        flush=True,
    )
    try:
        status = run(spark, job, stats, at_work=at_work)
    except SpoolMismatch as e:
        print(f"error: {e}", file=sys.stderr)
        status = 2
    finally:
        spark.stop()
    if status == 2:  # it did not start: the error says why
        return status
    print(summary_line(job, stats), flush=True)
    return status


def summary_line(job: JobConfig, stats: JobStats) -> str:
    return (
        f"stream: {stats.rows} row(s) written to {job.output}, {stats.quarantined} quarantined "
        f"({job.quarantine}), {stats.duplicates} duplicate(s) dropped, {stats.filtered} not tracked, "
        + (f"{stats.stale} older than the de-duplication watermark dropped, " if stats.stale else "")
        + f"in {stats.batches} batch(es)"
        + (f"; trends in {job.trends.output}, {stats.late} late tweet(s) in no window" if job.trends else "")
    )


if __name__ == "__main__":
    raise SystemExit(main())
