"""What the front asks of the served model, the one wait for its answers, and the error that
means "not now, try again".

A :class:`Predictor` predicts, describes itself, reports its health and warms up: the model itself
(:class:`model_api.model.predictor.SentimentPredictor`), the micro-batcher that wraps it in the
worker (:class:`model_api.runner.batching.MicroBatcher`), a test's fake. What the front serves is a
:class:`ServedPredictor`: the same, plus what lets it await predictions without a thread
(``pending``: the parts of the answer, as futures), count them (``on_batch``) and retire the model
(``in_flight``, ``close``). The model processes (:class:`model_api.runner.pool.EnginePool`) are one
natively; the slot (:class:`model_api.runner.swap.ModelSlot`) makes any other predictor one by
running it on threads (:class:`model_api.runner.batching.InWorker`). So the front waits for every
model the same way, on its event loop; :func:`collect` is the one wait for those that block.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Protocol, runtime_checkable


class Predictor(Protocol):
    def predict(self, texts: Sequence[str]) -> list[Any]:
        """One prediction per text, in order; each has ``to_dict()``."""
        ...

    def describe(self) -> dict:
        """What ``GET /model`` reports: name, version, precision, neutral band."""
        ...

    def health(self) -> dict:
        """``{"status": "ok"}`` when it can predict, else ``{"status": "degraded", "reason": ...}``."""
        ...

    def warm_up(self) -> None:
        """Run a first prediction (for compiled engines: compile) before serving."""
        ...


class PendingPart(Protocol):
    """Predictions on their way (:class:`model_api.runner.engine_process.Pending`)."""

    future: Future

    def forget(self) -> None:
        """Give up waiting: the answer, when it comes, is dropped."""
        ...


@runtime_checkable
class ServedPredictor(Predictor, Protocol):
    """A predictor that answers through futures, timing its own predictions (see the module docstring)."""

    # Called with (texts, seconds) after each prediction; None: nobody counts.
    on_batch: Callable[[int, float], None] | None

    def pending(self, texts: Sequence[str]) -> list[PendingPart]:
        """Send ``texts`` and return at once: the parts of the answer, in order (``future`` each)."""
        ...

    def in_flight(self) -> int:
        """Requests sent and not yet answered (a model being retired waits for 0)."""
        ...

    def close(self) -> None:
        """Stop the model (its processes, its threads)."""
        ...


def collect(parts: Sequence[PendingPart], timeout: float) -> list:
    """The predictions of ``parts``, in order, waiting at most ``timeout`` seconds for all of them.

    Raises:
        TimeoutError: not all in time; every part is forgotten (its answer is dropped when it comes).
        ModelUnavailable, RemotePredictionError: as the part's future raises them.
    """
    deadline = time.monotonic() + timeout
    try:
        return [
            prediction for part in parts for prediction in part.future.result(max(0.0, deadline - time.monotonic()))
        ]
    except TimeoutError:
        for part in parts:
            part.forget()
        raise


class ModelUnavailable(RuntimeError):
    """The model cannot answer now (restarting, overloaded); the client should retry after ``retry_after`` s."""

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
