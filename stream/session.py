"""The job's SparkSession: quiet logs, UTC, the project's code shipped to the executors and the
spool's source registered (:mod:`stream.spool_source`).

Usage: ``spark = build_spark(load_config())`` (``local[2]`` unless spark-submit or ``master`` says otherwise).
"""

from __future__ import annotations

import os
import sys
import tempfile
import zipfile
from pathlib import Path

from pyspark.sql import SparkSession

from sentiment.config import PROJECT_ROOT, Config
from stream.spool_source import register

MIN_BATCHES_TO_RETAIN = 100  # Spark's default, said here: the checkpoint's bound


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
    config: Config,
    master: str | None = None,
    app_name: str = "tweet-sentiment",
    ui: bool = True,
    log_file: str | Path | None = None,
) -> SparkSession:
    """A SparkSession with quiet logs, the project's code shipped to the executors and the spool's
    source (``format("numbered_files")``) registered.

    Runs on ``local[2]`` unless launched by spark-submit or given another master. Spark's warnings and
    errors go to ``log_file`` (none when not given; rotated past ``config.logs.max_bytes``) and, less
    those that tell a user nothing (``conf/log4j2.properties``), to the console.
    """
    effective = master or (None if "PYSPARK_GATEWAY_PORT" in os.environ else "local[2]")
    if effective and (effective.startswith("local") or is_loopback_master(effective)):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no LAN lookups for a run on this machine
        # Python workers run this interpreter (the virtual environment's), not whatever python3 is on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    java_options = f"-Dlog4j2.configurationFile=file:{PROJECT_ROOT / 'conf' / 'log4j2.properties'}"
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        java_options += f" -Dtweetsent.spark_log={Path(log_file).resolve()}"
        logs = config.logs
        java_options += f" -Dtweetsent.log_max_bytes={logs.max_bytes} -Dtweetsent.log_backups={logs.backups}"
    builder = (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.shuffle.partitions", str(config.stream.shuffle_partitions))
        .config("spark.driver.extraJavaOptions", java_options)
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.ui.enabled", str(ui).lower())
        .config("spark.sql.session.timeZone", "UTC")
        # The batches a checkpoint keeps (offsets, commits, state versions): with the spool's source,
        # whose offsets are positions, this bounds the whole of Spark's part of the checkpoint.
        .config("spark.sql.streaming.minBatchesToRetain", str(MIN_BATCHES_TO_RETAIN))
    )
    if effective:
        builder = builder.master(effective)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    ship_code(spark)
    register(spark)
    return spark
