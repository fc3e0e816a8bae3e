"""Admission control of the service under granian (one worker, real sockets, a slow test model): a
flood beyond ``service.max_queued_texts`` gets 503s with Retry-After, never a 500, memory stays
bounded, and the work of clients that hang up is let go."""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.asgi_service import DELAY_ENV, asgi_service

pytestmark = pytest.mark.faults

QUEUE = 64
ENV = {
    "TWEETSENT_SERVICE__MAX_QUEUED_TEXTS": str(QUEUE),
    "TWEETSENT_SERVICE__MAX_BATCH": "32",
    "TWEETSENT_SERVICE__THREADS": "4",
    "TWEETSENT_SERVICE__RETRY_AFTER_SECONDS": "2",
    DELAY_ENV: "0.3",  # each prediction: a busy model
}
TEXTS = ["good"] * 16


def worker_rss_kb(url: str) -> int:
    """Resident memory of the worker that answers (its pid from /health)."""
    pid = requests.get(url + "/health", timeout=10).json()["worker"]
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def post(url: str) -> tuple[int, str, dict]:
    r = requests.post(url + "/predict/batch", json={"texts": TEXTS}, timeout=60)
    return r.status_code, r.headers.get("Retry-After", ""), r.json()


def test_a_flood_beyond_the_queue_bound_gets_503s_and_never_a_500(tmp_path):
    with asgi_service(tmp_path / "service.log", ENV) as url:
        before = worker_rss_kb(url)
        started = time.monotonic()
        with ThreadPoolExecutor(48) as pool:
            answers = list(pool.map(lambda _: post(url), range(480)))
        seconds = time.monotonic() - started
        after = worker_rss_kb(url)
        statuses = Counter(status for status, _, _ in answers)
        print(
            f"flood of 480 requests of 16 texts from 48 clients in {seconds:.1f}s: {dict(statuses)}; "
            f"worker RSS {before // 1024} MB before, {after // 1024} MB after"
        )
        assert statuses[500] == 0 and set(statuses) <= {200, 503}, statuses
        assert statuses[503] > 0 and statuses[200] > 0
        for status, retry_after, body in answers:
            if status == 503:
                assert retry_after == "2" and "service.max_queued_texts" in body["error"]
            else:
                assert [r["sentiment"] for r in body["results"]] == ["Positive"] * 16
        assert after - before < 100 * 1024, f"worker memory grew {(after - before) // 1024} MB"
        assert requests.get(url + "/health", timeout=5).ok


def test_the_room_of_a_client_that_hangs_up_is_freed(tmp_path):
    env = {**ENV, DELAY_ENV: "3"}
    body = json.dumps({"texts": ["good"] * 32}).encode()
    raw = (
        b"POST /predict/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    with asgi_service(tmp_path / "service.log", env) as url:
        port = int(url.rsplit(":", 1)[1])
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]  # 64 texts: the queue is full
        for s in held:
            s.sendall(raw)
        time.sleep(0.5)
        full = requests.post(url + "/predict/batch", json={"texts": ["good"]}, timeout=30)
        assert full.status_code == 503, full.text
        for s in held:
            s.close()  # the clients hang up before their answers
        deadline = time.monotonic() + 2.5  # well before their 3 s predictions end
        while time.monotonic() < deadline:
            r = requests.post(url + "/predict/batch", json={"texts": ["good"]}, timeout=30)
            if r.status_code != 503:
                break
            time.sleep(0.1)
        assert r.status_code == 200, "the room of the clients that hung up was not freed"
