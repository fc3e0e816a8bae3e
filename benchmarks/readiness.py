"""Wait until every worker of the model service answers: a compiled engine makes workers start apart."""

from __future__ import annotations

import time

import requests


def wait_for_workers(url: str, workers: int, timeout: float = 300.0) -> set[int]:
    """Poll ``GET /health`` on fresh connections until ``workers`` distinct worker pids answered.

    Raises:
        RuntimeError: when fewer workers answered within ``timeout`` seconds.
    """
    workers = max(1, workers)  # at least one answer, whatever the caller asked
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = requests.get(f"{url}/health", timeout=2, headers={"Connection": "close"}).json()
            seen.add(int(body["worker"]))
        except (requests.RequestException, ValueError, KeyError):
            pass
        if len(seen) >= workers:
            return seen
        time.sleep(0.05)
    raise RuntimeError(f"{len(seen)} of {workers} service worker(s) answered within {timeout:.0f} s")
