"""Spark's warnings that tell a user nothing go to the log file, not the console; the others go to both."""

from __future__ import annotations

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
