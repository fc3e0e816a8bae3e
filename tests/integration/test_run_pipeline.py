"""The one command of the README, ``./run_pipeline.sh``, end to end on loopback ports: the bundled
sample relayed, scored by the bundled model and written to parquet, every tweet exactly once."""

from __future__ import annotations

import os
import subprocess

import pytest

from harness.pipeline import spooled, work_env
from harness.processes import free_port, healthy, process_tree, wait_until
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_run_pipeline_writes_every_relayed_tweet_once_and_exits(tmp_path):
    import pandas as pd

    env = {
        **os.environ,
        **work_env(tmp_path),
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


def test_run_pipeline_restarts_a_killed_relay_and_service_and_loses_nothing(tmp_path):
    """The supervisor in run_pipeline.sh: the relay and then the whole service SIGKILLed mid-stream."""
    import signal
    from pathlib import Path

    import pandas as pd

    port = free_port()
    env = {
        **os.environ,
        **work_env(tmp_path),
        "TWEETSENT_SERVICE__PORT": str(port),
        "TWEETSENT_SERVICE__PRECISION": "fp32",
    }
    proc = subprocess.Popen(
        ["./run_pipeline.sh", "--limit", "900", "--rate", "20"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )

    def part(word: bytes) -> list[int]:
        """The pipeline's own child running ``python -m <word>`` (not that child's workers)."""
        out = []
        for pid in process_tree(proc.pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if argv[1:3] == [b"-m", word] and parent == proc.pid:
                out.append(pid)
        return out

    try:
        wait_until(lambda: spooled(tmp_path / "spool") >= 100, 300, "100 tweets in the spool")
        (relay,) = part(b"ingest")
        os.kill(relay, signal.SIGKILL)
        wait_until(lambda: part(b"ingest") and part(b"ingest") != [relay], 60, "a new relay")
        wait_until(
            lambda: healthy(f"http://127.0.0.1:{port}") and any((tmp_path / "tweets").rglob("part-*.parquet")),
            300,
            "a first row",
        )
        (service,) = part(b"model_api")
        for pid in process_tree(service):
            os.kill(pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=60)
    assert proc.returncode == 0, out[-5000:]
    assert "the relay exited (status 137); restarting it to resume" in out
    assert f"the model service http://127.0.0.1:{port} exited" in out and "restarting it (restart 1)" in out
    rows = pd.read_parquet(tmp_path / "tweets")
    assert len(rows) == 900 and rows["id"].nunique() == 900
