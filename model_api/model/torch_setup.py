"""Torch settings of a process that runs the model: its threads, quiet logs, Inductor's cache folder.

Both the worker (:mod:`model_api.runner.runtime`) and the model process (:mod:`model_api.runner.model_process`)
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


def model_process_torch(config: Config) -> None:
    """Set up torch in a process that runs the model: quiet logs, its share of the cores."""
    import torch

    quiet_torch_logs()
    torch.set_num_threads(torch_threads(config))


def quiet_torch_logs() -> None:
    # torchao notes at import that its optional CUDA kernels do not load; nothing to act on here.
    logging.getLogger("torchao").setLevel(logging.ERROR)
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)


def fresh_inductor_cache() -> str:
    """Point Inductor at a new, empty on-disk cache for the rest of this process, and return its
    folder: a process killed while Inductor wrote its cache can leave a damaged file there ("file
    too short") that fails every later compile."""
    import tempfile

    from torch._inductor.utils import clear_caches

    fresh = tempfile.mkdtemp(prefix="tweetsent-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = fresh  # Inductor reads its folder from here only
    clear_caches()  # Inductor's in-memory caches still point into the old folder
    return fresh
