"""The job on a Spark standalone cluster (a master and two workers on 127.0.0.1), and on two
model-service replicas: every tweet counted, with a worker or a replica SIGKILLed mid-stream.

The scenarios are those of :mod:`harness.scenarios` (``python -m benchmarks.faults --scenario
kill-worker|kill-replica`` prints the same figures). The cluster tests share one cluster; the worker kill comes last.
"""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from harness.pipeline import Cluster, work_env
from harness.processes import free_port
from harness.scenarios import cluster_replay, run_scenario
from tests.conftest import ROOT
from tests.faults.test_faults import check

TWEETS = 800
RATE = 100.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    c.start()
    yield c
    c.stop()


def two_free_ports() -> int:
    """A free port whose successor is free too (the second replica's)."""
    while True:
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


@pytest.mark.cluster
@pytest.mark.slow
def test_run_pipeline_on_a_master_and_two_workers_with_two_replicas(cluster, tmp_path):
    import pandas as pd

    env = {
        **os.environ,
        **work_env(tmp_path),
        "TWEETSENT_SERVICE__PORT": str(two_free_ports()),
        "TWEETSENT_SERVICE__PRECISION": "fp32",
        "TWEETSENT_SERVICE__TORCH_THREADS": "1",
    }
    before = cluster.apps()
    run = subprocess.run(
        ["./run_pipeline.sh", "--master", cluster.url, "--replicas", "2", "--limit", "400", "--rate", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "pipeline: 400 row(s)" in run.stdout
    rows = pd.read_parquet(tmp_path / "tweets", columns=["id"])
    assert len(rows) == 400 and rows["id"].nunique() == 400
    assert cluster.executors(since=before) == ["worker-1", "worker-2"]
    assert run.stdout.count("model service http://127.0.0.1:") == 2  # both replicas started and healthy


@pytest.mark.cluster
@pytest.mark.slow
def test_worker_sigkilled_mid_stream_the_other_finishes(cluster, tmp_path):
    outcome = cluster_replay(tmp_path, TWEETS, RATE, kill_worker=True, cluster=cluster)
    check(outcome)
    assert "executors on worker-1, worker-2" in outcome.notes


@pytest.mark.faults
@pytest.mark.slow
def test_one_of_two_replicas_sigkilled_mid_stream(tmp_path):
    outcome = run_scenario("kill-replica", tmp_path, TWEETS, RATE, outage=0)
    check(outcome)
    named = int(outcome.notes.split("; ")[0].rsplit(": ", 1)[1])
    assert named >= 1, f"the job log does not name the dead replica: {outcome.notes}"
