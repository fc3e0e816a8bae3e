import threading
import time

import pytest

from model_api.runner.batching import MicroBatcher

pytestmark = pytest.mark.unit


def test_concurrent_calls_share_forward_passes_and_get_their_own_results():
    calls: list[list[str]] = []

    def predict(texts):
        calls.append(list(texts))
        return [t.upper() for t in texts]

    # A pass waits (up to its generous deadline, which only a broken batcher reaches) until it holds
    # max_batch texts: 48 concurrent one-text calls make exactly three full passes.
    batcher = MicroBatcher(predict, max_batch=16, max_wait_ms=10_000).start()
    results: dict[int, list[str]] = {}
    barrier = threading.Barrier(48)

    def call(i: int) -> None:
        barrier.wait()
        results[i] = batcher.submit([f"t{i}"], timeout=30)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(48)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: [f"T{i}"] for i in range(48)}
    assert [len(c) for c in calls] == [16, 16, 16]
    assert sorted(t for c in calls for t in c) == sorted(f"t{i}" for i in range(48))


def test_a_failing_pass_fails_its_callers_only():
    def predict(texts):
        if "boom" in texts:
            raise RuntimeError("model exploded")
        return texts

    batcher = MicroBatcher(predict, max_batch=4, max_wait_ms=0).start()
    with pytest.raises(RuntimeError, match="model exploded"):
        batcher.submit(["boom"], timeout=5)
    assert batcher.submit(["fine"], timeout=5) == ["fine"]


def test_batch_observer_sees_sizes():
    seen = []
    batcher = MicroBatcher(lambda texts: texts, max_batch=8, max_wait_ms=0, on_batch=lambda n, s: seen.append(n))
    batcher.start()
    batcher.submit(["a", "b", "c"], timeout=5)
    assert seen == [3]


def test_take_batch_takes_what_is_queued_up_to_the_limit_without_waiting():
    import queue

    from model_api.runner.batching import take_batch

    waiting: queue.Queue[list[str]] = queue.Queue()
    for texts in (["a", "b"], ["c"], ["d", "e", "f"], ["g"]):
        waiting.put(texts)
    started = time.monotonic()
    assert take_batch(waiting, 4, 10.0, len) == [["a", "b"], ["c"], ["d", "e", "f"]]  # 6 >= 4: stop
    assert time.monotonic() - started < 5.0  # far below the 10 s it would wait if it did
    assert take_batch(waiting, 4, 0.0, len) == [["g"]]  # no wait: what is queued, nothing more


def test_take_batch_waits_for_more_after_the_first():
    import queue

    from model_api.runner.batching import take_batch

    class Watched(queue.Queue):
        """Tells when a consumer blocks on it with a timeout: take_batch waiting for more."""

        def __init__(self) -> None:
            super().__init__()
            self.waiting_for_more = threading.Event()

        def get(self, block=True, timeout=None):
            if timeout is not None:
                self.waiting_for_more.set()
            return super().get(block, timeout)

    waiting: Watched = Watched()
    waiting.put(["first"])

    def late_arrival() -> None:
        if waiting.waiting_for_more.wait(timeout=30):
            waiting.put(["late"])

    producer = threading.Thread(target=late_arrival)
    producer.start()
    # The wait (30 s) only bounds a broken take_batch; "late" arrives while it waits and fills the batch.
    assert take_batch(waiting, 2, 30.0, len) == [["first"], ["late"]]
    producer.join()


def test_model_process_answers_each_request_when_its_last_pass_ends_and_isolates_a_bad_one():
    from model_api.runner.model_process import answer

    calls = []

    def passes(texts):
        """Two passes: the texts at even positions, then those at odd ones."""
        calls.append(list(texts))
        if None in texts:
            raise TypeError("text must be a string")
        for parity in (0, 1):
            idx = list(range(parity, len(texts), 2))
            yield idx, [texts[i].upper() for i in idx]

    replies = []
    answer(passes, [(1, ["a", "b"]), (2, ["c"]), (3, [])], replies.append)
    # The empty request at once; "c" (position 2) in the first pass; "a", "b" need both passes.
    assert replies == [[(3, True, [])], [(2, True, ["C"])], [(1, True, ["A", "B"])]]
    assert calls == [["a", "b", "c"]]

    calls.clear()
    replies.clear()
    answer(passes, [(1, ["a"]), (2, [None]), (3, ["d", "e"])], replies.append)
    assert sorted(r for batch in replies for r in batch) == [
        (1, True, ["A"]),
        (2, False, "TypeError: text must be a string"),
        (3, True, ["D", "E"]),
    ]
    assert calls[0] == ["a", None, "d", "e"] and len(calls) == 4  # the shared call, then one per request


def test_a_bad_call_in_a_shared_batch_fails_alone():
    first_call = threading.Event()
    release = threading.Event()

    def predict(texts):
        if not first_call.is_set():
            first_call.set()
            release.wait(10)  # hold the first pass so that the others queue into one batch
        if "boom" in texts:
            raise ValueError("cannot score boom")
        return [t.upper() for t in texts]

    batcher = MicroBatcher(predict, max_batch=16, max_wait_ms=0).start()
    results: dict[str, object] = {}

    def call(text: str) -> None:
        try:
            results[text] = batcher.submit([text], timeout=10)
        except ValueError as e:
            results[text] = e

    warm = threading.Thread(target=call, args=("first",))
    warm.start()
    assert first_call.wait(10)
    threads = [threading.Thread(target=call, args=(t,)) for t in ("a", "boom", "b")]
    for t in threads:
        t.start()
    while batcher._queue.qsize() < 3:  # all three wait for the same next batch
        threading.Event().wait(0.001)
    release.set()
    for t in [warm, *threads]:
        t.join()
    assert results["first"] == ["FIRST"] and results["a"] == ["A"] and results["b"] == ["B"]
    assert isinstance(results["boom"], ValueError)


def test_the_batcher_is_a_predictor_around_a_predictor(fake_predictor):
    batcher = MicroBatcher(fake_predictor, max_batch=8, max_wait_ms=0, timeout=5).start()
    assert [p.to_dict()["sentiment"] for p in batcher.predict(["good", "bad"])] == ["Positive", "Negative"]
    assert batcher.describe()["name"] == "fake" and batcher.health() == {"status": "ok"}


def test_a_cancelled_request_leaves_the_queue_unless_begun():
    from model_api.runner.batching import BudgetQueue

    queue = BudgetQueue(small_texts=2)
    for number, texts in [(1, ["a"]), (2, ["b"] * 5), (3, ["c"] * 5), (4, ["d"])]:
        queue.put((number, texts))
    first = queue.take(max_texts=3, max_wait=0)  # 1, 4 and the first text of 2
    assert [key[0] for key, _ in first] == [1, 4, 2]
    assert not queue.cancel(2)  # begun: finished, so its caller's answer is whole
    assert queue.cancel(3) and not queue.cancel(3)
    rest = queue.take(max_texts=100, max_wait=0)
    assert [(key[0], len(texts)) for key, texts in rest] == [(2, 4)]
