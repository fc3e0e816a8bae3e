"""The tweets' streaming query: read the relay, parse, de-duplicate, then per micro-batch
quarantine, clean, score, label and write, counting what it did.

:func:`build_query` builds the query from a source DataFrame and a :class:`JobConfig` without
starting it; :mod:`stream.job` starts it, watches it and restarts it.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQueryListener

from sentiment.config import StreamConfig
from sentiment.labels import NeutralBand
from sentiment.retention import CompactionConfig
from sentiment.schema import QUARANTINE_COLUMNS
from sentiment.spool_format import archive_dir
from stream.checkpoint import check_spool, made_by_file_source
from stream.cleaning import clean_tweets
from stream.compaction import Compactor
from stream.parsing import drop_duplicate_tweets, parse_lines, unwrap
from stream.scoring import ScoringOptions, ServiceOutage, wait_for_service
from stream.sink import ParquetSink, sink_for
from stream.spool_source import read_spool
from stream.transforms import enrich, score_tweets, track_filter
from stream.trends import TRENDS_QUERY, TrendsJob

log = logging.getLogger("stream")


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
    # Asked once, when the first batch is scored, if given (the job: the service's GET /model), so
    # that Spark starts and plans while the service still loads; its answer replaces model_version.
    model_version_source: Callable[[], str] | None = field(default=None, repr=False, compare=False)  # holds the token
    stop_after: int | None = None
    until_done: bool = False
    trends: TrendsJob | None = None  # the second query (windows per keyword, alerts), when on
    compaction: CompactionConfig = CompactionConfig()


@dataclass
class JobStats:
    """Counts kept by the driver across micro-batches (and query restarts) of one run."""

    rows: int = 0
    quarantined: int = 0
    filtered: int = 0
    duplicates: int = 0
    late: int = 0  # tweets beyond the trends watermark, counted in output/tweets but in no window
    # Lines older than the de-duplication watermark (a relay whose clock went back): dropped by
    # Spark before the batch, counted here so that in = written + quarantined + duplicates + stale.
    stale: int = 0
    batches: int = 0
    outage: str | None = None  # set when a batch gave up waiting for the service
    model_version: str | None = None  # JobConfig.model_version_source's answer, once asked
    # Seconds from the relay accepting a tweet to its batch being committed, most recent first out.
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def seen(self) -> int:
        return self.rows + self.quarantined + self.filtered + self.duplicates + self.stale


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
        stale = sum(int(op.numRowsDroppedByWatermark or 0) for op in operators)
        with self.stats.lock:
            self.stats.duplicates += dropped
            self.stats.stale += stale
        if dropped:
            log.info("batch %d: %d duplicate tweet id(s) dropped", event.progress.batchId, dropped)
        if stale:
            log.warning(
                "batch %d: %d line(s) older than the de-duplication watermark (stream.dedup_minutes behind the "
                "newest relay time) dropped, %d so far: did the relay's clock go back?",
                event.progress.batchId,
                stale,
                self.stats.stale,
            )

    def onQueryIdle(self, event) -> None:  # noqa: N802
        pass

    def onQueryTerminated(self, event) -> None:  # noqa: N802
        pass


@dataclass(frozen=True)
class Sinks:
    """The tweets' and the quarantine's sinks, and what merges their files between batches."""

    tweets: ParquetSink
    quarantine: ParquetSink
    compactor: Compactor = field(default_factory=lambda: Compactor(CompactionConfig()))

    @classmethod
    def for_job(cls, config: JobConfig) -> Sinks:
        trends = config.trends
        if trends is not None and trends.reads_output:
            log.warning(
                "the trends checkpoint %s predates the trends feed: it reads %s itself, which is therefore "
                "not merged; --start-over starts both afresh, with merges",
                trends.checkpoint,
                config.output,
            )
            tweets = sink_for(config.output, config.checkpoint, versioned=False)
        else:
            tweets = sink_for(config.output, config.checkpoint, feed=trends.feed if trends is not None else None)
        return cls(tweets, sink_for(config.quarantine, config.checkpoint), Compactor(config.compaction))

    def compact(self, batch_id: int) -> None:
        """Merge small files, when it is time (:mod:`stream.compaction`): in the batch's thread, after its writes."""
        for sink in (self.tweets, self.quarantine):
            self.compactor.after_batch(sink, batch_id)


def model_version(config: JobConfig, stats: JobStats) -> str:
    """The version written beside a score whose answer named none (a service from before answers
    carried ``model_version``): asked of ``config.model_version_source`` once, then kept. Each
    answer's own version wins (:func:`stream.transforms.enrich`), so a model swapped mid-stream
    stamps the rows it scored."""
    if config.model_version_source is None:
        return config.model_version
    if stats.model_version is None:
        stats.model_version = config.model_version_source()
        print(f"stream: the model service serves {stats.model_version}", flush=True)
    return stats.model_version


def process_batch(batch: DataFrame, batch_id: int, config: JobConfig, stats: JobStats, sinks: Sinks) -> None:
    """The ``foreachBatch`` body: quarantine, clean, score, label, write, report.

    ``batch`` holds parsed, de-duplicated lines (:func:`stream.parsing.parse_lines`). Each output
    gets this batch as whole files named by ``batch_id``, so a batch run again replaces its own.
    The quarantine gets the lines that are not tweets and the tweets the service refused.
    """
    started = time.monotonic()
    parsed = batch.persist()
    try:
        is_bad = F.col("reason").isNotNull()
        counts = parsed.agg(
            F.sum(F.when(is_bad, 1).otherwise(0)).alias("bad"), F.sum(F.when(is_bad, 0).otherwise(1)).alias("good")
        ).first()
        n_bad, n_good = counts["bad"] or 0, counts["good"] or 0
        quarantine = parsed.where(is_bad).select("raw", "reason", "offset", "relayed_at") if n_bad else None
        written = Written()
        if n_good:
            written = score_and_write(parsed.where(~is_bad), batch_id, config, stats, sinks.tweets)
        if written.refused:
            quarantine = _union(quarantine, refused_lines(parsed.where(~is_bad), written.refused))
        if quarantine is not None:
            stamped = quarantine.withColumns({"batch_id": F.lit(batch_id), "received_at": F.col("relayed_at")})
            sinks.quarantine.write(stamped.select(*QUARANTINE_COLUMNS), batch_id)
        n_quarantined = n_bad + len(written.refused)
        n_dropped = n_good - written.rows - len(written.refused)
    finally:
        parsed.unpersist()
    sinks.compact(batch_id)
    with stats.lock:
        stats.rows += written.rows
        stats.quarantined += n_quarantined
        stats.filtered += n_dropped
        stats.batches += 1
        stats.latencies.extend(written.latencies)
    if written.rows or n_quarantined or n_dropped:
        report_batch(batch_id, written, n_quarantined, n_dropped, time.monotonic() - started, stats.rows)


@dataclass
class Written:
    """What a batch wrote to the tweets' output, and the tweets the service refused (id, reason)."""

    rows: int = 0
    latencies: list[float] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def score_and_write(good: DataFrame, batch_id: int, config: JobConfig, stats: JobStats, sink: ParquetSink) -> Written:
    """Track, clean, score, label and write a batch's tweets, once the service is healthy."""
    kept, _ = track_filter(good.drop("raw", "reason", "offset"), config.track)
    try:
        wait_for_service(
            config.scoring.service_url,
            f"batch {batch_id}",
            config.outage_limit_seconds,
            stop=stats.stopping.is_set,
            token=config.scoring.token,
        )
    except ServiceOutage as e:
        stats.outage = str(e)
        raise
    scored = score_tweets(clean_tweets(kept), config.scoring).persist()  # scored once, read twice
    try:
        outcome = scored.select("id", "relayed_at", "score_error").collect()
        refused = [(r["id"], r["score_error"]) for r in outcome if r["score_error"] is not None]
        sent = [r["relayed_at"] for r in outcome if r["score_error"] is None]
        ok = scored.where(F.col("score_error").isNull()) if refused else scored
        if sent:
            sink.write(enrich(ok, config.band, model_version(config, stats)), batch_id, partition_by="date")
        committed = time.time()
    finally:
        scored.unpersist()
    latencies = [committed - t.timestamp() for t in sent if t is not None]
    return Written(len(sent), latencies, refused)


def refused_lines(good: DataFrame, refused: list[tuple[str, str]]) -> DataFrame:
    """The received lines of the refused tweets (ids are unique in a de-duplicated batch), with the reason."""
    reasons = good.sparkSession.createDataFrame(refused, "id string, refusal string")
    return good.join(F.broadcast(reasons), "id").select("raw", F.col("refusal").alias("reason"), "offset", "relayed_at")


def _union(a: DataFrame | None, b: DataFrame) -> DataFrame:
    return b if a is None else a.unionByName(b)


def report_batch(batch_id: int, written: Written, quarantined: int, dropped: int, elapsed: float, total: int) -> None:
    latency = ""
    if written.latencies:
        p50, p95 = percentiles(written.latencies, (0.5, 0.95))
        latency = f", latency p50 {p50:.2f}s p95 {p95:.2f}s"
    print(
        f"batch {batch_id}: {written.rows} row(s) written, {quarantined} quarantined, {dropped} not tracked; "
        f"{elapsed:.2f}s, {written.rows / elapsed if elapsed else 0:.0f} rows/s{latency} (total {total})",
        flush=True,
    )


def percentiles(values: list[float], qs: tuple[float, ...]) -> list[float]:
    """Nearest-rank percentiles of a non-empty list."""
    ordered = sorted(values)
    return [ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] for q in qs]


def read_source(spark: SparkSession, config: JobConfig) -> DataFrame:
    """The relay's lines as a streaming DataFrame with a ``value`` column.

    The spool is read by :mod:`stream.spool_source`, but with a checkpoint that Spark's file source
    made (before that source existed), which goes on with the file source until started over.
    """
    if config.transport == "socket":
        return spark.readStream.format("socket").option("host", config.host).option("port", config.port).load()
    folder = Path(config.spool)
    folder.mkdir(parents=True, exist_ok=True)
    if made_by_file_source(config.checkpoint):
        log.warning(
            "the checkpoint %s predates the spool's bounded source: it goes on with Spark's file source, whose "
            "log grows with every segment read; python -m stream --start-over switches to the bounded source",
            config.checkpoint,
        )
        return file_source(spark, folder, config.max_files_per_trigger)
    return read_spool(spark, folder, config.max_files_per_trigger)


def file_source(spark: SparkSession, folder: Path, max_files_per_trigger: int) -> DataFrame:
    """The spool through Spark's file source, as the job read it before :mod:`stream.spool_source`:
    committed segments move to the archive under their full path (``cleanSource=archive``)."""
    return (
        spark.readStream.format("text")
        .option("maxFilesPerTrigger", max_files_per_trigger)
        .option("cleanSource", "archive")
        .option("sourceArchiveDir", str(archive_dir(folder)))
        .load(str(folder))
    )


def checked_batch(batch: DataFrame, batch_id: int, config: JobConfig, stats: JobStats, sinks: Sinks) -> None:
    """:func:`process_batch`, unless the spool was made anew since the checkpoint read the old one:
    failing here leaves its segments unarchived, for the job started over to read (stream.checkpoint)."""
    if config.transport == "spool":
        check_spool(config.checkpoint, config.spool)
    process_batch(batch, batch_id, config, stats, sinks)


def build_query(source: DataFrame, config: JobConfig, stats: JobStats, sinks: Sinks | None = None):
    """Build (not start) the streaming query of a source DataFrame (column ``value``)."""
    sinks = sinks or Sinks.for_job(config)
    parsed = drop_duplicate_tweets(parse_lines(unwrap(source, config.transport)), config.dedup_minutes)
    writer = (
        parsed.writeStream.queryName("tweet_sentiment")
        .option("checkpointLocation", config.checkpoint)
        .foreachBatch(functools.partial(checked_batch, config=config, stats=stats, sinks=sinks))
    )
    if config.trigger_seconds > 0:
        writer = writer.trigger(processingTime=f"{config.trigger_seconds} seconds")
    return writer


def drive(query, stats: JobStats, lines: int, timeout: float) -> bool:
    """Run a started query until ``lines`` input lines were handled or ``timeout`` seconds passed.

    Returns whether all lines were handled. For tests and benchmarks; the job itself runs on its trigger.
    """
    deadline = time.monotonic() + timeout
    while stats.seen < lines and time.monotonic() < deadline and query.isActive:
        query.processAllAvailable()
    return stats.seen >= lines
