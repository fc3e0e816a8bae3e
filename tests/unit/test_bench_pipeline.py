"""The pipeline benchmark cannot print a figure for a phase that failed."""

from __future__ import annotations

import pytest
import requests

from benchmarks.pipeline import bench_replicas
from benchmarks.processes import free_port
from benchmarks.readiness import wait_for_workers

pytestmark = pytest.mark.unit


def test_a_replica_that_refuses_connections_gives_an_error_not_a_figure():
    with pytest.raises(requests.ConnectionError):
        bench_replicas([f"http://127.0.0.1:{free_port()}"], ["a tweet"] * 10, repeats=1)


def test_waiting_for_no_worker_still_waits_for_one():
    with pytest.raises(RuntimeError, match="0 of 1 service worker"):
        wait_for_workers(f"http://127.0.0.1:{free_port()}", 0, timeout=0.5)
