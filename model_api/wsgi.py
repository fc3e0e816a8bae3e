"""The service as a WSGI application, ready for any WSGI server.

``create()`` builds one worker's app: the configured model loaded once, torch threads matched to
the worker count, and a warm-up (for compiled engines: the compile) before the first request.
``python -m model_api`` calls it in every worker; another server can too, e.g.
``granian --interface wsgi --factory model_api.wsgi:create``. ``TWEETSENT_CONFIG`` names the
configuration file (default ``conf/pipeline.toml``); ``TWEETSENT_SERVICE__<KEY>`` variables override it.
"""

from __future__ import annotations

import logging
import os
import sys

from flask import Flask

from sentiment.config import Config, load_config


def torch_threads(config: Config) -> int:
    """Intra-op threads per worker: as configured, else cores / workers (so workers x threads <= cores)."""
    service = config.service
    return service.torch_threads or max(1, (os.cpu_count() or 1) // service.workers)


def quiet_torch_logs() -> None:
    # torchao notes at import that its optional CUDA kernels do not load; nothing to act on here.
    logging.getLogger("torchao").setLevel(logging.ERROR)
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)


def create(config: Config | None = None) -> Flask:
    """One worker's app, warmed up."""
    from model_api.app import create_app

    config = config or load_config()
    predictor = None
    if config.service.engine_process:
        from model_api.engine_process import PredictorProcess

        predictor = PredictorProcess(config)
    else:
        import torch

        quiet_torch_logs()
        torch.set_num_threads(torch_threads(config))
        # The engine thread gives up the GIL inside every kernel and must win it back from the
        # request threads after each one; a short switch interval keeps that wait small.
        sys.setswitchinterval(0.0005)
    app = create_app(config, predictor)
    app.extensions["tweetsent.predictor"].warm_up()
    return app
