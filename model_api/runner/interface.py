"""What the HTTP layer asks of a predictor, and the error that means "not now, try again".

The app (:mod:`model_api.front.app`) stores one :class:`Predictor` and calls it. The model itself
(:class:`model_api.model.predictor.SentimentPredictor`) and the micro-batcher that wraps it in the worker
(:class:`model_api.runner.batching.MicroBatcher`) have this interface. The model in child processes
(:class:`model_api.runner.pool.PredictorProcess`, and :class:`model_api.runner.pool.EnginePool` for several)
has :class:`ProcessPredictor`: the same, plus what lets the HTTP layer await predictions without a
thread (``pending``), count them (``on_batch``) and retire the model (``in_flight``, ``close``).
"""

from __future__ import annotations

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
class ProcessPredictor(Predictor, Protocol):
    """A predictor whose model runs in other processes, which batch and time the predictions."""

    # Called with (texts, seconds) after each prediction in a model process; None: nobody counts.
    on_batch: Callable[[int, float], None] | None

    def pending(self, texts: Sequence[str]) -> list[PendingPart]:
        """Send ``texts`` and return at once: the parts of the answer, in order (``future`` each)."""
        ...

    def in_flight(self) -> int:
        """Requests sent and not yet answered (a model being retired waits for 0)."""
        ...

    def close(self) -> None:
        """Stop the model processes."""
        ...


class ModelUnavailable(RuntimeError):
    """The model cannot answer now (restarting, overloaded); the client should retry after ``retry_after`` s."""

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
