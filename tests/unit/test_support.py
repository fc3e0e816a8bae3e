"""The test-support helpers that decide when a part is ready: a wrong answer here hides a failure."""

from __future__ import annotations

import pytest

from harness.processes import free_port, wait_for_workers

pytestmark = pytest.mark.unit


def test_waiting_for_no_worker_still_waits_for_one():
    with pytest.raises(RuntimeError, match="0 of 1 service worker"):
        wait_for_workers(f"http://127.0.0.1:{free_port()}", 0, timeout=0.5)
