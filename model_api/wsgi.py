"""The service as a WSGI application (the Flask app alone), ready for any WSGI server.

``create()`` builds one worker's app: the configured model loaded once (in a child process, or in
the worker behind a micro-batcher: :func:`model_api.runtime.build_predictor`), and a warm-up (for
compiled engines: the compile) before the first request. ``python -m model_api --server gunicorn``
calls it in every worker (under granian, :mod:`model_api.asgi` wraps it); another WSGI server can
too, e.g. ``granian --interface wsgi --factory model_api.wsgi:create``.
``TWEETSENT_CONFIG`` names the configuration file (default ``conf/pipeline.toml``);
``TWEETSENT_SERVICE__<KEY>`` variables override it.
"""

from __future__ import annotations

from flask import Flask

from model_api.app import create_app
from model_api.model_share import SharedModel, initial_model, share_dir
from model_api.runtime import build_predictor
from model_api.swap import ModelSlot
from sentiment.config import Config, load_config


def create(config: Config | None = None) -> Flask:
    """One worker's app, warmed up; with several workers (:data:`model_api.model_share.SHARE_ENV`),
    on the model the others serve, and following their swaps."""
    folder = share_dir()
    config, generation, previous = initial_model(config or load_config(), folder)
    predictor = build_predictor(config)
    predictor.warm_up()
    slot = ModelSlot(config, predictor, generation=generation, previous=previous)
    app = create_app(config, slot)
    if folder is not None:
        slot.share = SharedModel(folder, slot)
        slot.share.start()
    return app
