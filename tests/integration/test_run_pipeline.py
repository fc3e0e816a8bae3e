"""The one command of the README, ``./run_pipeline.sh``, end to end on loopback ports: the bundled
sample relayed, scored by the bundled model and written to parquet, every tweet exactly once."""

from __future__ import annotations

import os
import subprocess

import pytest

from benchmarks.processes import free_port
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_run_pipeline_writes_every_relayed_tweet_once_and_exits(tmp_path):
    import pandas as pd

    env = {
        **os.environ,
        "TWEETSENT_STREAM__OUTPUT": str(tmp_path / "tweets"),
        "TWEETSENT_STREAM__CHECKPOINT": str(tmp_path / "checkpoints"),
        "TWEETSENT_STREAM__QUARANTINE": str(tmp_path / "quarantine"),
        "TWEETSENT_SERVICE__PORT": str(free_port()),
        "TWEETSENT_RELAY__PORT": str(free_port()),
        "TWEETSENT_SERVICE__PRECISION": "fp32",  # ready at once; the engine is not what this tests
    }
    run = subprocess.run(
        ["./run_pipeline.sh", "--limit", "400", "--rate", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "pipeline: 400 row(s)" in run.stdout
    rows = pd.read_parquet(tmp_path / "tweets")
    assert len(rows) == 400 and rows["id"].nunique() == 400
    assert set(rows["sentiment"]) <= {"Negative", "Neutral", "Positive"}
    relay_log = (ROOT / "output" / "logs" / "relay.log").read_text()
    # Only the Spark job connected: a readiness probe that connects would have been sent tweets.
    assert relay_log.count(" connected") == 1, relay_log
    assert "400 tweet(s) read, 400 sent, 0 unsent" in relay_log
