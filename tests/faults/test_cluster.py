"""The job on a Spark standalone cluster (a master and two workers on 127.0.0.1), and on two
model-service replicas: every tweet counted, with a worker or a replica SIGKILLed mid-stream.

Each scenario is the one of ``python -m benchmarks.faults --scenario ...`` (cluster, kill-worker,
kill-replica), which prints the same figures.
"""

from __future__ import annotations

import pytest

from benchmarks.faults import run_scenario
from tests.faults.test_faults import check

TWEETS = 800
RATE = 100.0


@pytest.mark.cluster
@pytest.mark.slow
def test_replay_through_a_master_and_two_workers(tmp_path):
    outcome = run_scenario("cluster", tmp_path, TWEETS, RATE, outage=0)
    check(outcome)
    assert "executors on worker-1, worker-2" in outcome.notes


@pytest.mark.cluster
@pytest.mark.slow
def test_worker_sigkilled_mid_stream_the_other_finishes(tmp_path):
    outcome = run_scenario("kill-worker", tmp_path, TWEETS, RATE, outage=0)
    check(outcome)


@pytest.mark.faults
@pytest.mark.slow
def test_one_of_two_replicas_sigkilled_mid_stream(tmp_path):
    outcome = run_scenario("kill-replica", tmp_path, TWEETS, RATE, outage=0)
    check(outcome)
    assert "job log names" in outcome.notes and not outcome.notes.split("; ")[0].endswith(": 0"), outcome.notes
