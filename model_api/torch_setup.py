"""Torch settings of a process that runs the model: its threads, and quiet logs.

Both the worker (:mod:`model_api.runtime`) and the model process (:mod:`model_api.model_process`)
use these.
"""

from __future__ import annotations

import logging
import os

from sentiment.config import Config


def torch_threads(config: Config) -> int:
    """Intra-op threads per model: as configured, else cores / (workers x model processes per worker),
    so that all the models' threads together never exceed the cores."""
    service = config.service
    models = service.worker_processes * service.engines_per_worker
    return service.torch_threads or max(1, (os.cpu_count() or 1) // models)


def quiet_torch_logs() -> None:
    # torchao notes at import that its optional CUDA kernels do not load; nothing to act on here.
    logging.getLogger("torchao").setLevel(logging.ERROR)
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
