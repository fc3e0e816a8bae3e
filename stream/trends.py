"""The job's second output: sentiment per keyword per event-time window, and alerts on it.

A second streaming query reads the scored tweets as the tweets' sink writes them: each batch's files
are hard-linked into a feed folder beside the checkpoint (``checkpoints/trends-feed``,
:meth:`stream.sink.ParquetSink`), which this query reads by number and empties as it commits
(:mod:`stream.spool_source`), so merges of ``output/tweets`` never show it a row twice and its
checkpoint stays small however long it runs. It groups
them by keyword and window of ``trends.event_time`` (``created_at``, the tweet's own time, or
``relayed_at``, when the relay took it, as a live stream would) with a watermark, and writes each
window once it is closed (append mode) to ``output/trends`` with the same idempotent sink as the
tweets. Each batch's closed windows are judged against their keyword's baseline
(:func:`sentiment.trends.find_alerts`); alerts go to ``output/alerts``, to the log and, when set,
to a webhook. Tweets later than the watermark are counted (``numRowsDroppedByWatermark``) and
reported, not silently lost.

When a finite replay ends, :func:`close_windows` writes "tick" rows whose time is past the last
window plus the watermark: the watermark moves on and the windows still open are written.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sentiment.config import TrendsConfig
from sentiment.labels import NEGATIVE, NEUTRAL, POSITIVE
from sentiment.parquet_folder import read_folder
from sentiment.retention import CompactionConfig
from sentiment.schema import ALERTS_COLUMNS, ALERTS_DDL, TRENDS_COLUMNS, TRENDS_DDL, TWEETS_DDL
from sentiment.trends import NO_KEYWORD, find_alerts
from sentiment.webhook import notify_alerts
from stream.checkpoint import made_by_file_source
from stream.compaction import Compactor
from stream.sink import FEED_PATTERN, ParquetSink, sink_for
from stream.spool_source import SOURCE_NAME

log = logging.getLogger(__name__)

TRENDS_QUERY = "tweet_sentiment_trends"
TICK = "\u0000tick"  # the keyword of tick rows: no real keyword can hold a NUL
TICK_DDL = "at TIMESTAMP"


@dataclass(frozen=True)
class TrendsJob:
    """Where the trends query reads and writes."""

    tweets: str  # the job's tweets output, read as a stream
    checkpoint: str  # this query's checkpoint
    config: TrendsConfig
    output: str
    alerts: str
    compaction: CompactionConfig = CompactionConfig()

    @property
    def ticks(self) -> Path:
        return Path(self.checkpoint).with_name(Path(self.checkpoint).name + "-ticks")

    @property
    def reads_output(self) -> bool:
        """Whether this query's checkpoint was made reading the tweets' folder with Spark's file
        source (before the feed): it goes on that way until started over."""
        return made_by_file_source(self.checkpoint)

    @property
    def feed(self) -> Path:
        """Where the tweets' sink links each batch's files for this query (emptied as it commits)."""
        return Path(self.checkpoint).with_name(Path(self.checkpoint).name + "-feed")


def window_trends(tweets: DataFrame, time_column: str, window: str, watermark: str) -> DataFrame:
    """Trends rows (:data:`sentiment.trends.TRENDS_COLUMNS`) of a stream of scored tweets."""
    is_label = {label: F.when(F.col("sentiment") == label, 1).otherwise(0) for label in (NEGATIVE, NEUTRAL, POSITIVE)}
    return (
        tweets.select(
            F.coalesce(F.col("keyword"), F.lit(NO_KEYWORD)).alias("keyword"),
            F.col(time_column).alias("t"),
            "sentiment",
            "p_positive",
        )
        .withWatermark("t", watermark)
        .groupBy(F.window("t", window), "keyword")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(is_label[NEGATIVE]).alias("n_negative"),
            F.sum(is_label[NEUTRAL]).alias("n_neutral"),
            F.sum(is_label[POSITIVE]).alias("n_positive"),
            F.avg("p_positive").alias("mean_p_positive"),
        )
        .select(
            "keyword",
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            "n",
            "n_negative",
            "n_neutral",
            "n_positive",
            "mean_p_positive",
            (F.col("n_negative") / F.col("n")).alias("negative_share"),
        )
    )


def read_tweets_and_ticks(spark: SparkSession, job: TrendsJob, time_column: str, max_files: int) -> DataFrame:
    """The tweets' feed as a stream, with the tick rows of :func:`close_windows` mixed in."""
    job.feed.mkdir(parents=True, exist_ok=True)
    job.ticks.mkdir(parents=True, exist_ok=True)
    if job.reads_output:  # a checkpoint from before the feed
        tweets = (
            spark.readStream.schema(TWEETS_DDL)
            .option("maxFilesPerTrigger", max_files)
            .option("recursiveFileLookup", "true")
            .parquet(job.tweets)
        )
    else:
        tweets = (
            spark.readStream.format(SOURCE_NAME)
            .schema(TWEETS_DDL)
            .option("path", str(job.feed))
            .option("pattern", FEED_PATTERN)
            .option("format", "parquet")
            .option("maxFilesPerTrigger", max_files)
            .load()
        )
    tweets = tweets.select("keyword", time_column, "sentiment", "p_positive")
    ticks = (
        spark.readStream.schema(TICK_DDL)
        .json(str(job.ticks))
        .select(
            F.lit(TICK).alias("keyword"),
            F.col("at").alias(time_column),
            F.lit(None).cast("string").alias("sentiment"),
            F.lit(None).cast("double").alias("p_positive"),
        )
    )
    return tweets.unionByName(ticks)


class Baselines:
    """Each keyword's last ``keep`` windows that can be part of a baseline (at least ``min_count``
    tweets), read from the output once, then kept up to date.

    Windows with fewer tweets never count in a baseline (:func:`sentiment.trends.find_alerts`), so
    they are not kept: a sparse keyword's baseline then reaches as far back as it does when the
    whole output is judged at once.
    """

    def __init__(self, folder: str, keep: int, min_count: int = 1) -> None:
        self.folder, self.keep, self.min_count = folder, keep, min_count
        self._frame: pd.DataFrame | None = None

    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            stored = read_folder(self.folder, columns=list(TRENDS_COLUMNS))
            self._frame = self._trim(_typed_trends(stored) if not stored.empty else stored)
        return self._frame

    def add(self, trends: pd.DataFrame) -> None:
        self._frame = self._trim(pd.concat([self.frame(), _typed_trends(trends)], ignore_index=True))

    def _trim(self, df: pd.DataFrame) -> pd.DataFrame:
        if df.empty:
            return df
        df = df.drop_duplicates(["keyword", "window_start"], keep="last").sort_values("window_start")
        df = df[df["n"] >= self.min_count]
        return df.groupby("keyword", sort=False).tail(self.keep).reset_index(drop=True)


def _typed_trends(trends: pd.DataFrame) -> pd.DataFrame:
    out = trends.loc[:, list(TRENDS_COLUMNS)].copy()
    for c in ("window_start", "window_end"):
        out[c] = pd.to_datetime(out[c], utc=True)
    return out


def write_trends(
    batch: DataFrame,
    batch_id: int,
    job: TrendsJob,
    sinks: tuple[ParquetSink, ParquetSink],
    baselines: Baselines,
    compactor: Compactor | None = None,
) -> int:
    """``foreachBatch`` body: write the closed windows, judge them, write and send the alerts; merge
    the outputs' small files when it is time (:mod:`stream.compaction`)."""
    written = _write_windows(batch, batch_id, job, sinks, baselines)
    for sink in sinks if compactor is not None else ():
        compactor.after_batch(sink, batch_id)
    return written


def _write_windows(
    batch: DataFrame, batch_id: int, job: TrendsJob, sinks: tuple[ParquetSink, ParquetSink], baselines: Baselines
) -> int:
    trends = batch.where(F.col("keyword") != TICK).toPandas()
    if trends.empty:
        return 0
    trends_sink, alerts_sink = sinks
    spark = batch.sparkSession
    alerts = find_alerts(trends, baselines.frame(), job.config)
    trends_sink.write(spark.createDataFrame(trends[list(TRENDS_COLUMNS)], schema=TRENDS_DDL), batch_id)
    if not alerts.empty:
        alerts_sink.write(spark.createDataFrame(alerts[list(ALERTS_COLUMNS)], schema=ALERTS_DDL), batch_id)
        notify_alerts(alerts, job.config)  # a log line each, and the webhook when one is set
    baselines.add(trends)
    return len(trends)


def build_trends_query(spark: SparkSession, job: TrendsJob, trigger_seconds: float, max_files: int):
    """Build (not start) the trends query."""
    sinks = (sink_for(job.output, job.checkpoint), sink_for(job.alerts, job.checkpoint))
    baselines = Baselines(job.output, job.config.baseline_windows, job.config.min_count)
    compactor = Compactor(job.compaction)
    source = read_tweets_and_ticks(spark, job, job.config.event_time, max_files)
    trends = window_trends(source, job.config.event_time, job.config.window, job.config.watermark)
    writer = (
        trends.writeStream.queryName(TRENDS_QUERY)
        .outputMode("append")
        .option("checkpointLocation", job.checkpoint)
        .foreachBatch(lambda df, batch_id: write_trends(df, batch_id, job, sinks, baselines, compactor))
    )
    if trigger_seconds > 0:
        writer = writer.trigger(processingTime=f"{trigger_seconds} seconds")
    return writer


def close_windows(spark: SparkSession, query, job: TrendsJob) -> None:
    """Write the windows still open at the end of a finite replay, then return.

    Two ticks: the first moves the watermark past every window, the batch of the second writes them.
    """
    time_column = job.config.event_time
    times = read_folder(job.tweets, columns=[time_column])
    if times.empty or times[time_column].isna().all():
        return
    latest = pd.Timestamp(times[time_column].max())
    latest = latest.tz_localize("UTC") if latest.tzinfo is None else latest
    horizon = _seconds(job.config.window) + _seconds(job.config.watermark) + 1
    query.processAllAvailable()
    for step in (1, 2):
        at = latest.timestamp() + horizon * step
        tick = job.ticks / f"tick-{int(time.time() * 1000)}-{step}.json"
        tmp = tick.with_name("." + tick.name)
        tmp.write_text(json.dumps({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))}) + "\n")
        tmp.rename(tick)
        query.processAllAvailable()


def _seconds(interval: str) -> float:
    """Seconds of a Spark interval text such as ``1 minute`` or ``30 seconds``."""
    number, unit = interval.split()
    scale = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}[unit.rstrip("s")]
    return float(number) * scale
