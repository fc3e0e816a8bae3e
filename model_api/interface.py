"""What the app asks of a predictor, and the error that means "not now, try again".

The app (:mod:`model_api.app`) stores one :class:`Predictor` and calls it. The model itself
(:class:`model_api.predictor.SentimentPredictor`), the micro-batcher that wraps it in the worker
(:class:`model_api.batching.MicroBatcher`) and the model in a child process
(:class:`model_api.engine_process.PredictorProcess`) and a pool of those
(:class:`model_api.engine_pool.EnginePool`) all have this interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


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


class ModelUnavailable(RuntimeError):
    """The model cannot answer now (restarting, overloaded); the client should retry after ``retry_after`` s."""

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
