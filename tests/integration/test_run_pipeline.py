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
        "TWEETSENT_RELAY__SPOOL": str(tmp_path / "spool"),
        "TWEETSENT_TRENDS__OUTPUT": str(tmp_path / "trends"),
        "TWEETSENT_TRENDS__ALERTS": str(tmp_path / "alerts"),
        "TWEETSENT_SERVICE__PORT": str(free_port()),
        "TWEETSENT_RELAY__PORT": str(free_port()),
        "TWEETSENT_SERVICE__PRECISION": "fp32",  # ready at once; the engine is not what this tests
    }

    def pipeline(*args: str) -> subprocess.CompletedProcess:
        run = subprocess.run(
            ["./run_pipeline.sh", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        return run

    run = pipeline("--limit", "400", "--rate", "0")
    assert "pipeline: 400 row(s)" in run.stdout
    rows = pd.read_parquet(tmp_path / "tweets")
    assert len(rows) == 400 and rows["id"].nunique() == 400
    assert set(rows["sentiment"]) <= {"Negative", "Neutral", "Positive"}
    relay_log = (ROOT / "output" / "logs" / "relay.log").read_text()
    assert "400 record(s) written" in relay_log and "replay complete" in relay_log

    # The same command again finds the replay done and writes nothing twice; a bigger limit resumes.
    assert "pipeline: 400 row(s)" in pipeline("--limit", "400", "--rate", "0").stdout
    assert "pipeline: 600 row(s)" in pipeline("--limit", "600", "--rate", "0").stdout
    rows = pd.read_parquet(tmp_path / "tweets")
    assert len(rows) == 600 and rows["id"].nunique() == 600
