"""Score the relayed tweets with the model service and write them to parquet, exactly once.

Usage: spark-submit stream/job.py [KEYWORD ...] [--track KEYWORD ...] [--transport spool|socket]
       [--spool DIR] [--service-url URL] [--output DIR] [--checkpoint DIR] [--trigger SECONDS]
       [--until-done] [--stop-after N] [--start-over]
   or: python -m stream [same options]

Reads the relay's spool (segments of JSON-line envelopes, by default) with Spark's file source, or
the relay's plain socket. Validates each line (:mod:`stream.parsing`), sends unusable ones to the
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
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import zipfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script by spark-submit: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQueryListener
from pyspark.sql.types import DoubleType, StructField, StructType

from ingest.spool import archive_dir, read_complete
from sentiment.config import (
    PROJECT_ROOT,
    TRANSPORTS,
    Config,
    ConfigError,
    StreamConfig,
    load_config,
    service_token,
)
from sentiment.labels import NeutralBand
from stream.cleaning import clean_tweets, label_tweets
from stream.parsing import drop_duplicate_tweets, parse_lines, unwrap
from stream.scoring import ScoringOptions, ServiceOutage, fetch_model_version, score_partitions, wait_for_service
from stream.sink import ParquetSink, sink_id_for
from stream.trends import TRENDS_QUERY, TrendsJob, build_trends_query, close_windows

log = logging.getLogger("stream")

QUARANTINE_COLUMNS = ("raw", "reason", "offset", "batch_id", "received_at")
OUTPUT_COLUMNS = (
    "id",
    "created_at",
    "user",
    "keyword",
    "text",
    "clean_text",
    "p_positive",
    "sentiment",
    "model_version",
    "relayed_at",
    "processed_at",
    "date",
)


@dataclass(frozen=True)
class JobConfig:
    output: str
    quarantine: str
    checkpoint: str  # this query's own checkpoint folder
    trigger_seconds: float
    scoring: ScoringOptions
    transport: str = "spool"
    spool: str = ""
    host: str = "127.0.0.1"
    port: int = 0
    max_files_per_trigger: int = StreamConfig.max_files_per_trigger
    dedup_minutes: float = StreamConfig.dedup_minutes
    outage_limit_seconds: float = StreamConfig.outage_limit_seconds
    band: NeutralBand = NeutralBand()
    track: tuple[str, ...] = ()
    model_version: str = "unknown"
    stop_after: int | None = None
    until_done: bool = False
    trends: TrendsJob | None = None  # the second query (windows per keyword, alerts), when on


@dataclass
class JobStats:
    """Counts kept by the driver across micro-batches (and query restarts) of one run."""

    rows: int = 0
    quarantined: int = 0
    filtered: int = 0
    duplicates: int = 0
    late: int = 0  # tweets beyond the trends watermark, counted in output/tweets but in no window
    batches: int = 0
    outage: str | None = None  # set when a batch gave up waiting for the service
    # Seconds from the relay accepting a tweet to its batch being committed, most recent first out.
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def seen(self) -> int:
        return self.rows + self.quarantined + self.filtered + self.duplicates


class ProgressListener(StreamingQueryListener):
    """Adds each batch's de-duplicated rows (from the query's progress) to the stats."""

    def __init__(self, stats: JobStats) -> None:
        self.stats = stats

    def onQueryStarted(self, event) -> None:  # noqa: N802 (Spark's names)
        pass

    def onQueryProgress(self, event) -> None:  # noqa: N802
        operators = event.progress.stateOperators
        if event.progress.name == TRENDS_QUERY:
            late = sum(int(op.numRowsDroppedByWatermark or 0) for op in operators)
            if late:
                with self.stats.lock:
                    self.stats.late += late
                log.warning(
                    "trends: %d tweet(s) later than the watermark (trends.watermark) are in output/tweets but in "
                    "no window (%d so far)",
                    late,
                    self.stats.late,
                )
            return
        dropped = sum(int((op.customMetrics or {}).get("numDroppedDuplicateRows", 0)) for op in operators)
        if dropped:
            with self.stats.lock:
                self.stats.duplicates += dropped
            log.info("batch %d: %d duplicate tweet id(s) dropped", event.progress.batchId, dropped)

    def onQueryIdle(self, event) -> None:  # noqa: N802
        pass

    def onQueryTerminated(self, event) -> None:  # noqa: N802
        pass


def track_filter(df: DataFrame, track: tuple[str, ...]) -> tuple[DataFrame, DataFrame]:
    """Split tweets into those containing a tracked keyword (case-insensitive) and the rest.

    A kept tweet with no keyword gets the first tracked keyword it contains.
    """
    if not track:
        return df, df.limit(0)
    lowered = F.lower(F.col("text"))
    first_match = F.coalesce(*[F.when(lowered.contains(k.lower()), F.lit(k)) for k in track])
    tagged = df.withColumn("_match", first_match)
    kept = (
        tagged.where(F.col("_match").isNotNull())
        .withColumn("keyword", F.coalesce(F.col("keyword"), F.col("_match")))
        .drop("_match")
    )
    return kept, tagged.where(F.col("_match").isNull()).drop("_match")


def score_tweets(df: DataFrame, options: ScoringOptions) -> DataFrame:
    """Add ``p_positive`` by calling the model service from each partition."""
    schema = StructType(df.schema.fields + [StructField("p_positive", DoubleType())])
    return df.mapInPandas(lambda batches: score_partitions(batches, options), schema)


def enrich(scored: DataFrame, band: NeutralBand, model_version: str) -> DataFrame:
    """Label, stamp and select the output columns."""
    return (
        label_tweets(scored, band)
        .withColumn("model_version", F.lit(model_version))
        .withColumn("processed_at", F.current_timestamp())
        .withColumn("date", F.to_date("processed_at"))
        .select(*OUTPUT_COLUMNS)
    )


@dataclass(frozen=True)
class Sinks:
    tweets: ParquetSink
    quarantine: ParquetSink

    @classmethod
    def for_job(cls, config: JobConfig) -> Sinks:
        sink_id = sink_id_for(config.checkpoint)
        return cls(ParquetSink(config.output, sink_id), ParquetSink(config.quarantine, sink_id))


def process_batch(batch: DataFrame, batch_id: int, config: JobConfig, stats: JobStats, sinks: Sinks) -> None:
    """The ``foreachBatch`` body: quarantine, clean, score, label, write, report.

    ``batch`` holds parsed, de-duplicated lines (:func:`stream.parsing.parse_lines`). Each output
    gets this batch as whole files named by ``batch_id``, so a batch run again replaces its own.
    """
    started = time.monotonic()
    parsed = batch.persist()
    try:
        is_bad = F.col("reason").isNotNull()
        counts = parsed.agg(
            F.sum(F.when(is_bad, 1).otherwise(0)).alias("bad"), F.sum(F.when(is_bad, 0).otherwise(1)).alias("good")
        ).first()
        n_bad, n_good = counts["bad"] or 0, counts["good"] or 0
        if n_bad:
            bad = parsed.where(is_bad).withColumns({"batch_id": F.lit(batch_id), "received_at": F.col("relayed_at")})
            sinks.quarantine.write(bad.select(*QUARANTINE_COLUMNS), batch_id)
        n_rows, latencies = 0, []
        if n_good:
            kept, _ = track_filter(parsed.where(~is_bad).drop("raw", "reason", "offset"), config.track)
            try:
                wait_for_service(
                    config.scoring.service_url,
                    f"batch {batch_id} ({n_good} tweet(s))",
                    config.outage_limit_seconds,
                    stop=stats.stopping.is_set,
                    token=config.scoring.token,
                )
            except ServiceOutage as e:
                stats.outage = str(e)
                raise
            scored = enrich(score_tweets(clean_tweets(kept), config.scoring), config.band, config.model_version)
            scored = scored.persist()  # scored once: the collect fills the cache, the write reads it
            try:
                sent = [r[0] for r in scored.select("relayed_at").collect()]
                sinks.tweets.write(scored, batch_id, partition_by="date")
                committed = time.time()
            finally:
                scored.unpersist()
            n_rows = len(sent)
            latencies = [committed - t.timestamp() for t in sent if t is not None]
        n_dropped = n_good - n_rows
    finally:
        parsed.unpersist()
    elapsed = time.monotonic() - started
    with stats.lock:
        stats.rows += n_rows
        stats.quarantined += n_bad
        stats.filtered += n_dropped
        stats.batches += 1
        stats.latencies.extend(latencies)
    if n_rows or n_bad or n_dropped:
        latency = ""
        if latencies:
            p50, p95 = percentiles(latencies, (0.5, 0.95))
            latency = f", latency p50 {p50:.2f}s p95 {p95:.2f}s"
        print(
            f"batch {batch_id}: {n_rows} row(s) written, {n_bad} quarantined, {n_dropped} not tracked; "
            f"{elapsed:.2f}s, {n_rows / elapsed if elapsed else 0:.0f} rows/s{latency} "
            f"(total {stats.rows})",
            flush=True,
        )


def percentiles(values: list[float], qs: tuple[float, ...]) -> list[float]:
    """Nearest-rank percentiles of a non-empty list."""
    ordered = sorted(values)
    return [ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] for q in qs]


def read_source(spark: SparkSession, config: JobConfig) -> DataFrame:
    """The relay's lines as a streaming DataFrame with a ``value`` column."""
    if config.transport == "socket":
        return spark.readStream.format("socket").option("host", config.host).option("port", config.port).load()
    folder = Path(config.spool)
    folder.mkdir(parents=True, exist_ok=True)
    return (
        spark.readStream.format("text")
        .option("maxFilesPerTrigger", config.max_files_per_trigger)
        .option("cleanSource", "archive")
        .option("sourceArchiveDir", str(archive_dir(folder)))
        .load(str(folder))
    )


def build_query(source: DataFrame, config: JobConfig, stats: JobStats, sinks: Sinks | None = None):
    """Build (not start) the streaming query of a source DataFrame (column ``value``)."""
    sinks = sinks or Sinks.for_job(config)
    parsed = drop_duplicate_tweets(parse_lines(unwrap(source, config.transport)), config.dedup_minutes)
    writer = (
        parsed.writeStream.queryName("tweet_sentiment")
        .option("checkpointLocation", config.checkpoint)
        .foreachBatch(lambda df, batch_id: process_batch(df, batch_id, config, stats, sinks))
    )
    if config.trigger_seconds > 0:
        writer = writer.trigger(processingTime=f"{config.trigger_seconds} seconds")
    return writer


def ship_code(spark: SparkSession) -> None:
    """Send the ``sentiment``, ``stream`` and ``ingest`` packages to the executors (needed on a cluster)."""
    archive = Path(tempfile.mkdtemp(prefix="tweetsent-")) / "tweet_sentiment_code.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for package in ("sentiment", "stream", "ingest"):
            for path in (PROJECT_ROOT / package).rglob("*.py"):
                zf.write(path, path.relative_to(PROJECT_ROOT))
    spark.sparkContext.addPyFile(str(archive))


def is_loopback_master(master: str) -> bool:
    """Whether ``master`` is a standalone master on this machine (``spark://127.0.0.1:7077``)."""
    return master.startswith(("spark://127.0.0.1:", "spark://localhost:"))


def build_spark(
    config: Config, master: str | None = None, app_name: str = "tweet-sentiment", ui: bool = True
) -> SparkSession:
    """A SparkSession with quiet logs and the project's code shipped to the executors.

    Runs on ``local[2]`` unless launched by spark-submit or given another master.
    """
    effective = master or (None if "PYSPARK_GATEWAY_PORT" in os.environ else "local[2]")
    if effective and (effective.startswith("local") or is_loopback_master(effective)):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no LAN lookups for a run on this machine
        # Python workers run this interpreter (the virtual environment's), not whatever python3 is on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    log4j = PROJECT_ROOT / "conf" / "log4j2.properties"
    builder = (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.shuffle.partitions", str(config.stream.shuffle_partitions))
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log4j}")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.ui.enabled", str(ui).lower())
        .config("spark.sql.session.timeZone", "UTC")
    )
    if effective:
        builder = builder.master(effective)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    ship_code(spark)
    return spark


def drive(query, stats: JobStats, lines: int, timeout: float) -> bool:
    """Run a started query until ``lines`` input lines were handled or ``timeout`` seconds passed.

    Returns whether all lines were handled. For tests and benchmarks; the job itself runs on its trigger.
    """
    deadline = time.monotonic() + timeout
    while stats.seen < lines and time.monotonic() < deadline and query.isActive:
        query.processAllAvailable()
    return stats.seen >= lines


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stream", description="Score the relayed tweets into parquet.")
    p.add_argument(
        "--track",
        action="append",
        default=[],
        metavar="KEYWORD",
        help="keep only tweets containing KEYWORD (case-insensitive); repeatable",
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
    p.add_argument("--wait-for-service", type=float, default=300.0, help="seconds to wait for the service at start")
    p.add_argument("--master", help="Spark master (default local[2] unless set by spark-submit)")
    p.add_argument("--config", help="TOML configuration file")
    return p


def job_config_from_args(args: argparse.Namespace, config: Config) -> JobConfig:
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
            token=service_token(config.service),
        ),
        band=config.band.band(),
        track=tuple(dict.fromkeys(args.track + args.keywords)),
        stop_after=args.stop_after,
        until_done=args.until_done,
        trends=trends_job(args, config, root, str(config.resolve(args.output or s.output)))
        if transport == "spool"
        else None,
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
    )


def start_over(job: JobConfig) -> None:
    """Forget the job's progress: delete its checkpoint and what it wrote."""
    folders = [job.checkpoint, job.output, job.quarantine]
    if job.trends is not None:
        folders += [job.trends.checkpoint, str(job.trends.ticks), job.trends.output, job.trends.alerts]
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"stream: starting over (deleted {', '.join(folders)})", flush=True)


def run_query(spark: SparkSession, query, trends, job: JobConfig, stats: JobStats) -> Exception | None:
    """Watch the started queries (the tweets' and, when on, the trends') until one fails, the run is
    stopped, or its end condition holds. Returns the error, or None when they ended as asked."""
    queries = [q for q in (query, trends) if q is not None]
    try:
        while all(q.isActive for q in queries) and not stats.stopping.is_set():
            query.awaitTermination(0.5)
            if job.stop_after is not None and stats.seen >= job.stop_after:
                return None
            if job.until_done and read_complete(job.spool) is not None:
                # Everything the relay will write is sealed: take what is there, close the windows, stop.
                query.processAllAvailable()
                if trends is not None:
                    close_windows(spark, trends, job.trends)
                return None
    except Exception as e:  # a query failed (StreamingQueryException and the like)
        return e
    finally:
        for q in queries:
            if q.isActive:
                q.stop()
    return next((q.exception() for q in queries if q.exception() is not None), None)


def run(spark: SparkSession, job: JobConfig, stats: JobStats, max_failures_in_a_row: int = 5) -> int:
    """Run the query; restart it from its checkpoint after a failure, with a growing pause.

    Gives up (returns 1) when the service stayed down longer than ``outage_limit_seconds`` or when
    the query fails ``max_failures_in_a_row`` times with no batch written in between.
    """
    sinks = Sinks.for_job(job)
    failures = 0
    while True:
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        config = load_config(args.config)
        job = job_config_from_args(args, config)
        if job.stop_after is not None and job.stop_after < 1:
            raise ConfigError(f"--stop-after must be at least 1, got {job.stop_after}")
        if job.until_done and job.transport != "spool":
            raise ConfigError("--until-done needs --transport spool (a socket has no end)")
    except (ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.start_over:
        start_over(job)

    stats = JobStats()

    def request_stop(*_: object) -> None:
        stats.stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    # Spark starts while the service may still be loading (or compiling) its model.
    spark = build_spark(config, args.master)
    try:
        job = dataclasses.replace(
            job, model_version=fetch_model_version(job.scoring.service_url, args.wait_for_service, job.scoring.token)
        )
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        spark.stop()
        return 2
    spark.streams.addListener(ProgressListener(stats))
    where = job.spool if job.transport == "spool" else f"{job.host}:{job.port} (socket, at most once)"
    print(
        f"stream: reading {where}, scoring with {job.scoring.service_url} ({job.model_version}), "
        f"writing {job.output}, checkpoint {job.checkpoint}" + (f", tracking {list(job.track)}" if job.track else ""),
        flush=True,
    )
    try:
        status = run(spark, job, stats)
    finally:
        spark.stop()
    print(
        f"stream: {stats.rows} row(s) written to {job.output}, {stats.quarantined} quarantined "
        f"({job.quarantine}), {stats.duplicates} duplicate(s) dropped, {stats.filtered} not tracked, "
        f"in {stats.batches} batch(es)"
        + (f"; trends in {job.trends.output}, {stats.late} late tweet(s) in no window" if job.trends else ""),
        flush=True,
    )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
