import threading
import time

import pytest

from model_api.batching import MicroBatcher

pytestmark = pytest.mark.unit


def test_concurrent_calls_share_forward_passes_and_get_their_own_results():
    calls: list[list[str]] = []

    def predict(texts):
        calls.append(list(texts))
        time.sleep(0.02)  # a forward pass takes time; callers queue up meanwhile
        return [t.upper() for t in texts]

    batcher = MicroBatcher(predict, max_batch=16, max_wait_ms=20)
    results: dict[int, list[str]] = {}
    barrier = threading.Barrier(40)

    def call(i: int) -> None:
        barrier.wait()
        results[i] = batcher.submit([f"t{i}"], timeout=10)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: [f"T{i}"] for i in range(40)}
    assert len(calls) < 40 and max(len(c) for c in calls) > 1
    assert all(len(c) <= 16 for c in calls)


def test_a_failing_pass_fails_its_callers_only():
    def predict(texts):
        if "boom" in texts:
            raise RuntimeError("model exploded")
        return texts

    batcher = MicroBatcher(predict, max_batch=4, max_wait_ms=0)
    with pytest.raises(RuntimeError, match="model exploded"):
        batcher.submit(["boom"], timeout=5)
    assert batcher.submit(["fine"], timeout=5) == ["fine"]


def test_batch_observer_sees_sizes():
    seen = []
    batcher = MicroBatcher(lambda texts: texts, max_batch=8, max_wait_ms=0, on_batch=lambda n, s: seen.append(n))
    batcher.submit(["a", "b", "c"], timeout=5)
    assert seen == [3]
