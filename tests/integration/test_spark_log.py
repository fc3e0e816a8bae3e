"""Spark's warnings that tell a user nothing go to the log file, not the console; the others go to both."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCRIPT = """
import sys
from sentiment.config import Config
from stream.session import build_spark

spark = build_spark(Config(), master="local[1]", ui=False, log_file=sys.argv[1])
manager = spark._jvm.org.apache.logging.log4j.LogManager
runtime = "org.apache.spark.sql.execution.streaming.runtime."
manager.getLogger(runtime + "ProcessingTimeExecutor").warn(
    "Current batch is falling behind. The trigger interval is 2000 milliseconds, but spent 3100 milliseconds"
)
aqe = "Disabling AQE since AQE is not supported in stateful workloads."
manager.getLogger(runtime + "MicroBatchExecution").warn(aqe)
manager.getLogger("org.apache.spark.scheduler.TaskSetManager").warn("Lost task 0.0 in stage 1.0: a real problem")
spark.stop()
"""


def test_noise_goes_to_the_log_file_and_real_warnings_to_both(tmp_path):
    log_file = tmp_path / "logs" / "spark.log"
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(log_file)], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert run.returncode == 0, run.stderr[-2000:]
    logged = log_file.read_text()
    for line in ("Current batch is falling behind", "Disabling AQE", "Lost task 0.0"):
        assert line in logged
    assert "falling behind" not in run.stderr and "Disabling AQE" not in run.stderr
    assert "Lost task 0.0 in stage 1.0: a real problem" in run.stderr


ROTATING = """
import sys
from sentiment.config import load_config
from stream.session import build_spark

spark = build_spark(load_config(), master="local[1]", ui=False, log_file=sys.argv[1])
logger = spark._jvm.org.apache.logging.log4j.LogManager.getLogger("org.apache.spark.scheduler.TaskSetManager")
for i in range(200):
    logger.error("Lost task %d: %s" % (i, "x" * 80))
spark.stop()
"""


def test_the_spark_log_is_rotated_past_its_size_and_keeps_the_backups(tmp_path):
    log_file = tmp_path / "logs" / "spark.log"
    env = {**os.environ, "TWEETSENT_LOGS__MAX_BYTES": "4096", "TWEETSENT_LOGS__BACKUPS": "2"}
    run = subprocess.run(
        [sys.executable, "-c", ROTATING, str(log_file)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(p.name for p in log_file.parent.iterdir()) == ["spark.log", "spark.log.1", "spark.log.2"]
    assert all(p.stat().st_size <= 4096 + 200 for p in log_file.parent.iterdir())  # one line over, at most
    assert "Lost task 199:" in log_file.read_text()  # the newest in spark.log, the older in .1, .2
    assert "Lost task 199:" not in (log_file.parent / "spark.log.1").read_text()
