"""How a worker runs the model: torch threads and log levels, and the predictor the service serves.

Both the worker (:mod:`model_api.wsgi`) and the model process (:mod:`model_api.engine_process`)
use these.
"""

from __future__ import annotations

import logging
import os
import sys

from model_api.interface import Predictor
from sentiment.config import Config


def torch_threads(config: Config) -> int:
    """Intra-op threads per worker: as configured, else cores / workers (so workers x threads <= cores)."""
    service = config.service
    return service.torch_threads or max(1, (os.cpu_count() or 1) // service.workers)


def quiet_torch_logs() -> None:
    # torchao notes at import that its optional CUDA kernels do not load; nothing to act on here.
    logging.getLogger("torchao").setLevel(logging.ERROR)
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)


def build_predictor(config: Config) -> Predictor:
    """The configured model, ready to serve concurrent calls: in a child process that batches them
    (``service.engine_process``), else loaded here behind a :class:`~model_api.batching.MicroBatcher`."""
    service = config.service
    if service.engine_process:
        from model_api.engine_process import PredictorProcess

        return PredictorProcess(config)
    import torch

    from model_api.batching import MicroBatcher
    from model_api.predictor import load_predictor

    quiet_torch_logs()
    torch.set_num_threads(torch_threads(config))
    # The engine thread gives up the GIL inside every kernel and must win it back from the
    # request threads after each one; a short switch interval keeps that wait small.
    sys.setswitchinterval(0.0005)
    return MicroBatcher(
        load_predictor(config),
        max_batch=service.micro_batch_max,
        max_wait_ms=service.micro_batch_wait_ms,
        timeout=service.timeout_seconds,
    )
