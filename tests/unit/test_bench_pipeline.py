"""The pipeline benchmark cannot print a figure for a phase that failed."""

from __future__ import annotations

import pytest
import requests

from benchmarks.pipeline import bench_replicas
from tests.support.processes import free_port

pytestmark = pytest.mark.unit


def test_a_replica_that_refuses_connections_gives_an_error_not_a_figure():
    with pytest.raises(requests.ConnectionError):
        bench_replicas([f"http://127.0.0.1:{free_port()}"], ["a tweet"] * 10, repeats=1)
