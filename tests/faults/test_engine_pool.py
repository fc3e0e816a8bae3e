"""A pool of real model processes (fp32, one thread each): a large request is shared among them,
small ones go to the least busy, and when one is SIGKILLed the others answer while it restarts."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest

from model_api.runner.pool import SPLIT_AT, EnginePool, PredictorProcess
from sentiment.config import load_config

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TEXTS = ["I love this so much", "worst day ever", "it is a table", "not bad at all", "@user http great"]


def settled(counts: Counter, total: int) -> Counter:
    """``counts`` once they add up to ``total`` (a prediction's size is reported just after its answers)."""
    deadline = time.monotonic() + 5
    while sum(counts.values()) < total and time.monotonic() < deadline:
        time.sleep(0.01)
    return counts


@pytest.fixture(scope="module")
def config():
    return load_config(
        env={
            "TWEETSENT_SERVICE__PRECISION": "fp32",
            "TWEETSENT_SERVICE__TORCH_THREADS": "1",
            "TWEETSENT_SERVICE__ENGINE_RESTART_SECONDS": "0.5",
        }
    )


@pytest.fixture(scope="module")
def pool(config):
    pool = EnginePool(config, 2).start()
    yield pool
    pool.close()


def test_a_large_request_is_shared_and_scored_as_by_one_process(pool, config):
    texts = [TEXTS[i % len(TEXTS)] + f" {i}" for i in range(3 * SPLIT_AT)]
    scored = Counter()
    for i, member in enumerate(pool.members):
        member.on_batch = lambda n, _seconds, i=i: scored.update({i: n})
    shared = pool.predict(texts)
    alone = PredictorProcess(config).start()
    try:
        expected = alone.predict(texts)
    finally:
        alone.close()
    assert [p.sentiment for p in shared] == [p.sentiment for p in expected]
    assert [p.p_positive for p in shared] == pytest.approx([p.p_positive for p in expected], abs=1e-4)
    assert settled(scored, len(texts)) == {0: len(texts) // 2, 1: len(texts) // 2}  # half each


def test_small_requests_go_to_the_least_busy_process(pool):
    scored = Counter()
    for i, member in enumerate(pool.members):
        member.on_batch = lambda n, _seconds, i=i: scored.update({i: n})
    pool._waiting[0] += 1000  # as if member 0 had a large request in hand
    try:
        for text in TEXTS:
            pool.predict([text])
    finally:
        pool._waiting[0] -= 1000
    assert settled(scored, len(TEXTS)) == {1: len(TEXTS)}
    for text in TEXTS * 2:  # both idle: they take turns
        pool.predict([text])
    assert settled(scored, 3 * len(TEXTS))[0] > 0


def test_the_others_answer_while_a_killed_process_restarts(pool):
    victim = pool.members[0]
    old = victim.pid
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while victim.health()["status"] == "ok" and time.monotonic() < deadline:
        time.sleep(0.05)
    health = pool.health()
    assert health["status"] == "ok" and health["engines"].startswith("1 of 2 up")
    answers = [pool.predict(TEXTS) for _ in range(5)] + [pool.predict(TEXTS * SPLIT_AT)]
    assert all(len(a) == n for a, n in zip(answers, [len(TEXTS)] * 5 + [len(TEXTS) * SPLIT_AT], strict=True))
    deadline = time.monotonic() + 60
    while pool.health().get("engines") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pool.health() == {"status": "ok", "restarts": 1} and victim.pid != old
