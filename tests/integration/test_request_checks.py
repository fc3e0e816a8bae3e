"""Crafted request bodies against the service under granian (one worker, real sockets): each is
answered at once, and ``/health`` answers while they are read."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from model_api.front.protocol import MAX_JSON_DEPTH, json_depth
from tests.asgi_service import asgi_service
from tests.hostile_requests import crafted_bodies

pytestmark = pytest.mark.integration

SIZE = 2_000_000  # under the service's 2 MiB body limit


def test_the_depth_check_is_linear_on_crafted_bodies():
    for name, body in crafted_bodies(SIZE).items():
        text = body.decode()
        started = time.perf_counter()
        depth = json_depth(text)
        seconds = time.perf_counter() - started
        print(f"json_depth, {name}: {len(body):,} bytes in {seconds * 1000:.1f} ms")
        assert depth > MAX_JSON_DEPTH
        assert seconds < 5.0, f"{name}: {seconds:.2f}s"  # about 0.03 s on an idle core: generous for a loaded one


def test_crafted_2_mb_bodies_are_answered_at_once_while_health_answers(tmp_path):
    with asgi_service(tmp_path / "service.log") as url, ThreadPoolExecutor(2) as pool:
        session = requests.Session()
        for name, body in crafted_bodies(SIZE).items():
            health = pool.submit(_health_times, url, 20)
            started = time.perf_counter()
            r = session.post(
                url + "/predict/batch", data=body, headers={"Content-Type": "application/json"}, timeout=60
            )
            seconds = time.perf_counter() - started
            slowest_health = max(health.result())
            print(
                f"{name}: {len(body):,} bytes answered {r.status_code} in {seconds * 1000:.0f} ms; "
                f"slowest /health meanwhile {slowest_health * 1000:.0f} ms"
            )
            assert r.status_code == 400 and "not valid JSON" in r.json()["error"], r.text[:300]
            assert seconds < 5.0, f"{name}: answered in {seconds:.1f}s"
            assert slowest_health < 5.0
        # The service is still itself afterwards.
        answer = session.post(url + "/predict/batch", json={"texts": ["good", "bad"]}, timeout=10)
        assert [x["sentiment"] for x in answer.json()["results"]] == ["Positive", "Negative"]


def _health_times(url: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        assert requests.get(url + "/health", timeout=30).ok
        times.append(time.perf_counter() - started)
    return times
