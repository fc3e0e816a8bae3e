"""The predictor a worker serves: the configured model in a child process, or in the worker."""

from __future__ import annotations

import sys

from model_api.model.torch_setup import model_process_torch
from model_api.runner.interface import Predictor
from sentiment.config import Config


def build_predictor(config: Config) -> Predictor:
    """The configured model, ready to serve concurrent calls: a pool of child processes that batch
    them (``service.engine_process``: :class:`~model_api.runner.pool.EnginePool`), else loaded here
    behind a :class:`~model_api.runner.batching.MicroBatcher`."""
    service = config.service
    if service.engine_process:
        from model_api.runner.pool import EnginePool

        return EnginePool(config, max(1, service.engines_per_worker)).start()
    from model_api.model.predictor import SentimentPredictor
    from model_api.runner.batching import MicroBatcher

    model_process_torch(config)
    # The engine thread gives up the GIL inside every kernel and must win it back from the
    # request threads after each one; a short switch interval keeps that wait small.
    sys.setswitchinterval(0.0005)
    return MicroBatcher(
        SentimentPredictor.from_config(config),
        max_batch=service.micro_batch_max,
        max_wait_ms=service.micro_batch_wait_ms,
        timeout=service.timeout_seconds,
    ).start()
