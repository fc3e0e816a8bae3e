"""The HTTP layer's view of a predictor: what each kind declares."""

from __future__ import annotations

import pickle

import pytest

from model_api.runner.batching import MicroBatcher
from model_api.runner.interface import Predictor, ProcessPredictor
from model_api.runner.messages import Batch, Cancel, Replies, Reply, Request
from model_api.runner.pool import EnginePool, PredictorProcess

pytestmark = pytest.mark.unit

CALLS = ("predict", "describe", "health", "warm_up")
PROCESS_CALLS = (*CALLS, "pending", "in_flight", "close")


def test_the_model_processes_have_everything_the_http_layer_calls():
    for kind in (PredictorProcess, EnginePool):
        assert all(callable(getattr(kind, name, None)) for name in PROCESS_CALLS), kind
    assert isinstance(EnginePool.on_batch, property)
    assert Predictor in ProcessPredictor.__mro__ and "on_batch" in ProcessPredictor.__annotations__


def test_the_in_worker_batcher_is_a_predictor_without_pending():
    batcher = MicroBatcher(lambda texts: list(texts)).start()
    assert batcher.predict(["a", "b"]) == ["a", "b"]
    assert all(callable(getattr(batcher, name, None)) for name in CALLS)
    assert not isinstance(batcher, ProcessPredictor)


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
