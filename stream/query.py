"""The tweets' streaming query: read the relay, parse, de-duplicate, then per micro-batch
quarantine, clean, score, label and write, counting what it did.

:func:`build_query` builds the query from a source DataFrame and a :class:`JobConfig` without
starting it; :mod:`stream.job` starts it, watches it and restarts it.
"""

from __future__ import annotations

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

from ingest.spool import archive_dir
from sentiment.config import StreamConfig
from sentiment.labels import NeutralBand
from stream.cleaning import clean_tweets
from stream.parsing import drop_duplicate_tweets, parse_lines, unwrap
from stream.scoring import ScoringOptions, ServiceOutage, wait_for_service
from stream.sink import ParquetSink, sink_for
from stream.transforms import QUARANTINE_COLUMNS, enrich, score_tweets, track_filter
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
    model_version: str | None = None  # JobConfig.model_version_source's answer, once asked
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


@dataclass(frozen=True)
class Sinks:
    tweets: ParquetSink
    quarantine: ParquetSink

    @classmethod
    def for_job(cls, config: JobConfig) -> Sinks:
        return cls(sink_for(config.output, config.checkpoint), sink_for(config.quarantine, config.checkpoint))


def model_version(config: JobConfig, stats: JobStats) -> str:
    """The version written beside each score: asked of ``config.model_version_source`` once, then kept."""
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
                )
            except ServiceOutage as e:
                stats.outage = str(e)
                raise
            scored = enrich(score_tweets(clean_tweets(kept), config.scoring), config.band, model_version(config, stats))
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


def drive(query, stats: JobStats, lines: int, timeout: float) -> bool:
    """Run a started query until ``lines`` input lines were handled or ``timeout`` seconds passed.

    Returns whether all lines were handled. For tests and benchmarks; the job itself runs on its trigger.
    """
    deadline = time.monotonic() + timeout
    while stats.seen < lines and time.monotonic() < deadline and query.isActive:
        query.processAllAvailable()
    return stats.seen >= lines
