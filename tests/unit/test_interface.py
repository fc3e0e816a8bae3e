"""The front's view of the served model: what each kind declares, and the one blocking wait."""

from __future__ import annotations

import pickle
from concurrent.futures import Future

import pytest

from model_api.runner.batching import InWorker, MicroBatcher
from model_api.runner.interface import Predictor, ServedPredictor, collect
from model_api.runner.messages import Batch, Cancel, Replies, Reply, Request
from model_api.runner.pool import EnginePool, PredictorProcess

pytestmark = pytest.mark.unit

CALLS = ("predict", "describe", "health", "warm_up")
PROCESS_CALLS = (*CALLS, "pending", "in_flight", "close")


def test_the_model_processes_have_everything_the_http_layer_calls():
    for kind in (PredictorProcess, EnginePool):
        assert all(callable(getattr(kind, name, None)) for name in PROCESS_CALLS), kind
    assert isinstance(EnginePool.on_batch, property)
    assert Predictor in ServedPredictor.__mro__ and "on_batch" in ServedPredictor.__annotations__


def test_a_model_in_the_worker_is_served_on_threads_as_the_model_processes_are():
    batcher = MicroBatcher(lambda texts: list(texts)).start()
    assert batcher.predict(["a", "b"]) == ["a", "b"]
    assert all(callable(getattr(batcher, name, None)) for name in CALLS)
    assert not isinstance(batcher, ServedPredictor)
    served, timed = InWorker(batcher, threads=2), []
    served.on_batch = lambda texts, seconds: timed.append(texts)
    assert isinstance(served, ServedPredictor)
    assert collect(served.pending(["a", "b"]) + served.pending(["c"]), timeout=5) == ["a", "b", "c"]
    assert sorted(timed) == [1, 2] and served.in_flight() == 0
    served.close()


class Part:
    def __init__(self) -> None:
        self.future: Future = Future()
        self.forgotten = False

    def forget(self) -> None:
        self.forgotten = True


def test_collect_waits_once_for_all_parts_and_forgets_them_all_when_late():
    done, late = Part(), Part()
    done.future.set_result(["x"])
    with pytest.raises(TimeoutError):
        collect([done, late], timeout=0.05)
    assert done.forgotten and late.forgotten
    failed = Part()
    failed.future.set_exception(ValueError("bad text"))
    with pytest.raises(ValueError, match="bad text"):
        collect([failed], timeout=1)


def test_messages_cross_a_pipe_as_their_types_and_are_told_apart_by_match():
    sent = [Request(1, ["hi"]), Cancel(2), Replies([Reply(1, True, ["p"])]), Batch(3, 0.5)]
    seen = []
    for message in pickle.loads(pickle.dumps(sent)):
        match message:
            case Request(number, texts):
                seen.append(("request", number, texts))
            case Cancel(number):
                seen.append(("cancel", number))
            case Replies(items):
                seen.append(("replies", items))
            case Batch(texts, seconds):
                seen.append(("batch", texts, seconds))
    assert seen == [("request", 1, ["hi"]), ("cancel", 2), ("replies", [(1, True, ["p"])]), ("batch", 3, 0.5)]
