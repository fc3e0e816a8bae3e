"""Score a socket stream of tweets with the model service and write them to parquet.

Usage: spark-submit stream/job.py [--track KEYWORD ...] [--host H] [--port P] [--service-url URL]
       [--output DIR] [--checkpoint DIR] [--trigger SECONDS] [--stop-after N]
   or: python -m stream [same options]

Reads JSON lines (``id``, ``created_at``, ``user``, ``text``, ``keyword``) from the relay, sends
lines that do not parse to a quarantine parquet with the raw line and the reason, cleans the text
with native Spark SQL expressions, scores it through ``POST /predict/batch`` from each partition
(``mapInPandas``), labels it with the neutral band and appends it to parquet partitioned by the
processing date. Each micro-batch prints its rows, rate and latency.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
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
from pyspark.sql.types import DoubleType, StringType, StructField, StructType

from sentiment.config import PROJECT_ROOT, Config, ConfigError, load_config
from sentiment.labels import NeutralBand
from sentiment.schema import TWEET_FIELDS
from stream.cleaning import clean_tweets, label_tweets
from stream.scoring import ScoringOptions, score_partitions

log = logging.getLogger("stream")

CORRUPT = "_corrupt_record"
LINE_SCHEMA = StructType(
    [StructField(name, StringType()) for name in TWEET_FIELDS]
    + [StructField("relayed_at", DoubleType()), StructField(CORRUPT, StringType())]
)
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
    host: str
    port: int
    output: str
    quarantine: str
    checkpoint: str
    trigger_seconds: float
    scoring: ScoringOptions
    band: NeutralBand = NeutralBand()
    track: tuple[str, ...] = ()
    model_version: str = "unknown"
    stop_after: int | None = None


@dataclass
class JobStats:
    """Counts kept by the driver across micro-batches."""

    rows: int = 0
    quarantined: int = 0
    filtered: int = 0
    batches: int = 0
    # Seconds from the relay sending a tweet to its batch being committed, most recent first out.
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def seen(self) -> int:
        return self.rows + self.quarantined + self.filtered


def parse_lines(lines: DataFrame) -> DataFrame:
    """Parse the ``value`` column; add ``reason`` (null when the line is a usable tweet)."""
    parsed = lines.select(
        F.col("value").alias("raw"),
        F.from_json("value", LINE_SCHEMA, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}).alias("j"),
    )
    created = F.coalesce(F.try_to_timestamp(F.col("j.created_at")), F.lit(None).cast("timestamp"))
    reason = (
        F.when(F.col("j").isNull() | F.col(f"j.{CORRUPT}").isNotNull(), F.lit("not a valid JSON object"))
        .when(F.col("j.id").isNull() | (F.trim(F.col("j.id")) == ""), F.lit('missing field "id"'))
        .when(F.col("j.text").isNull(), F.lit('missing field "text"'))
        .when(
            F.col("j.created_at").isNotNull() & created.isNull(),
            F.concat(F.lit('"created_at" is not an ISO 8601 timestamp: '), F.col("j.created_at")),
        )
    )
    return parsed.select(
        "raw",
        reason.alias("reason"),
        F.col("j.id").alias("id"),
        F.coalesce(created, F.current_timestamp()).alias("created_at"),
        F.col("j.user").alias("user"),
        F.col("j.keyword").alias("keyword"),
        F.col("j.text").alias("text"),
        F.col("j.relayed_at").alias("relayed_at"),
    )


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


def process_batch(batch: DataFrame, batch_id: int, config: JobConfig, stats: JobStats) -> None:
    """The ``foreachBatch`` body: quarantine, clean, score, label, write, report."""
    started = time.monotonic()
    parsed = parse_lines(batch).persist()
    try:
        is_bad = F.col("reason").isNotNull()
        counts = parsed.agg(
            F.sum(F.when(is_bad, 1).otherwise(0)).alias("bad"), F.sum(F.when(is_bad, 0).otherwise(1)).alias("good")
        ).first()
        n_bad, n_good = counts["bad"] or 0, counts["good"] or 0
        if n_bad:
            parsed.where(is_bad).select(
                "raw", "reason", F.lit(batch_id).alias("batch_id"), F.current_timestamp().alias("received_at")
            ).write.mode("append").parquet(config.quarantine)
        n_rows, latencies = 0, []
        if n_good:
            kept, _ = track_filter(parsed.where(~is_bad).drop("raw", "reason"), config.track)
            scored = enrich(score_tweets(clean_tweets(kept), config.scoring), config.band, config.model_version)
            scored = scored.persist()  # scored once: the write fills the cache, the collect reads it
            try:
                scored.write.mode("append").partitionBy("date").parquet(config.output)
                committed = time.time()
                sent = [r[0] for r in scored.select("relayed_at").collect()]
            finally:
                scored.unpersist()
            n_rows = len(sent)
            latencies = [committed - t for t in sent if t is not None]
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


def build_query(lines: DataFrame, config: JobConfig, stats: JobStats):
    """Build (not start) the streaming write of a DataFrame of JSON lines (column ``value``)."""
    writer = (
        lines.writeStream.queryName("tweet_sentiment")
        .option("checkpointLocation", config.checkpoint)
        .foreachBatch(lambda df, batch_id: process_batch(df, batch_id, config, stats))
    )
    if config.trigger_seconds > 0:
        writer = writer.trigger(processingTime=f"{config.trigger_seconds} seconds")
    return writer


def socket_source(spark: SparkSession, host: str, port: int) -> DataFrame:
    return spark.readStream.format("socket").option("host", host).option("port", port).load()


def ship_code(spark: SparkSession) -> None:
    """Send the ``sentiment`` and ``stream`` packages to the executors (needed on a cluster)."""
    archive = Path(tempfile.mkdtemp(prefix="tweetsent-")) / "tweet_sentiment_code.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for package in ("sentiment", "stream"):
            for path in (PROJECT_ROOT / package).rglob("*.py"):
                zf.write(path, path.relative_to(PROJECT_ROOT))
    spark.sparkContext.addPyFile(str(archive))


def fetch_model_version(service_url: str, wait_seconds: float) -> str:
    """Ask the service which model it serves, waiting for it to come up.

    Raises:
        RuntimeError: if the service does not answer within ``wait_seconds``.
    """
    import requests

    deadline = time.monotonic() + wait_seconds
    last = ""
    while True:
        try:
            r = requests.get(service_url.rstrip("/") + "/model", timeout=5)
            if r.ok:
                info = r.json()
                return f"{info.get('name', 'model')}@{info.get('version', 'unversioned')}"
            last = f"HTTP {r.status_code}"
        except requests.RequestException as e:
            last = type(e).__name__
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"model service at {service_url} did not answer within {wait_seconds:.0f}s "
                f"({last}); start it with: python -m model_api"
            )
        time.sleep(0.5)


def build_spark(
    config: Config, master: str | None = None, app_name: str = "tweet-sentiment", ui: bool = True
) -> SparkSession:
    """A SparkSession with quiet logs and the project's code shipped to the executors.

    Runs on ``local[2]`` unless launched by spark-submit or given another master.
    """
    effective = master or (None if "PYSPARK_GATEWAY_PORT" in os.environ else "local[2]")
    if effective and effective.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no LAN lookups for a local run
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
    p = argparse.ArgumentParser(prog="python -m stream", description="Score a socket stream of tweets into parquet.")
    p.add_argument(
        "--track",
        action="append",
        default=[],
        metavar="KEYWORD",
        help="keep only tweets containing KEYWORD (case-insensitive); repeatable",
    )
    p.add_argument("keywords", nargs="*", help="keywords to track (same as --track)")
    p.add_argument("--host", help="relay host (default from conf)")
    p.add_argument("--port", type=int, help="relay port (default from conf)")
    p.add_argument("--service-url", help="model service URL (default from conf)")
    p.add_argument("--output", help="parquet output folder (default from conf: output/tweets)")
    p.add_argument("--quarantine", help="quarantine parquet folder (default from conf)")
    p.add_argument(
        "--checkpoint", help="checkpoint folder; each run uses a subfolder run-<UTC time> (default from conf)"
    )
    p.add_argument("--trigger", type=float, help="seconds between micro-batches (default from conf)")
    p.add_argument("--stop-after", type=int, help="stop once N input lines have been processed")
    p.add_argument("--wait-for-service", type=float, default=120.0, help="seconds to wait for the service")
    p.add_argument("--master", help="Spark master (default local[2] unless set by spark-submit)")
    p.add_argument("--config", help="TOML configuration file")
    return p


def job_config_from_args(args: argparse.Namespace, config: Config) -> JobConfig:
    s = config.stream
    return JobConfig(
        host=args.host or config.relay.host,
        port=args.port if args.port is not None else config.relay.port,
        output=str(config.resolve(args.output or s.output)),
        quarantine=str(config.resolve(args.quarantine or s.quarantine)),
        # The socket source cannot resume from an old checkpoint, so each run checkpoints apart.
        checkpoint=str(
            config.resolve(args.checkpoint or s.checkpoint) / time.strftime("run-%Y%m%dT%H%M%SZ", time.gmtime())
        ),
        trigger_seconds=args.trigger if args.trigger is not None else s.trigger_seconds,
        scoring=ScoringOptions(
            service_url=(args.service_url or config.service_url),
            batch_size=s.request_batch,
            concurrency=s.request_concurrency,
            timeout=s.request_timeout_seconds,
            retries=s.retries,
            backoff=s.backoff_seconds,
        ),
        band=config.band.band(),
        track=tuple(dict.fromkeys(args.track + args.keywords)),
        stop_after=args.stop_after,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        config = load_config(args.config)
        job = job_config_from_args(args, config)
        if job.stop_after is not None and job.stop_after < 1:
            raise ConfigError(f"--stop-after must be at least 1, got {job.stop_after}")
    except (ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    # Spark starts while the service may still be loading (or compiling) its model.
    spark = build_spark(config, args.master)
    try:
        job = dataclasses.replace(
            job, model_version=fetch_model_version(job.scoring.service_url, args.wait_for_service)
        )
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        spark.stop()
        return 2
    stats = JobStats()
    query = build_query(socket_source(spark, job.host, job.port), job, stats).start()
    print(
        f"stream: reading {job.host}:{job.port}, scoring with {job.scoring.service_url} "
        f"({job.model_version}), writing {job.output}" + (f", tracking {list(job.track)}" if job.track else ""),
        flush=True,
    )

    stopping = threading.Event()

    def request_stop(*_: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        while query.isActive and not stopping.is_set():
            query.awaitTermination(0.5)
            if job.stop_after is not None and stats.seen >= job.stop_after:
                break
    finally:
        if query.isActive:
            query.stop()
        error = query.exception()
        spark.stop()
    print(
        f"stream: {stats.rows} row(s) written to {job.output}, {stats.quarantined} quarantined "
        f"({job.quarantine}), {stats.filtered} not tracked, in {stats.batches} batch(es)",
        flush=True,
    )
    if error is not None:
        print(f"error: the streaming query failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
