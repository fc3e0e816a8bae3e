"""The service as a WSGI application (the Flask app alone), ready for any WSGI server.

``create()`` builds one worker's app (:func:`model_api.front.worker.create_service`: the configured
model loaded once and warmed up). ``python -m model_api --server gunicorn`` calls it in every
worker; another WSGI server can too, e.g. ``granian --interface wsgi --factory model_api.front.wsgi:create``.
``TWEETSENT_CONFIG`` names the configuration file (default ``conf/pipeline.toml``);
``TWEETSENT_SERVICE__<KEY>`` variables override it.
"""

from __future__ import annotations

from flask import Flask

from model_api.front.app import create_app
from model_api.front.worker import create_service
from sentiment.config import Config


def create(config: Config | None = None) -> Flask:
    """One worker's app, warmed up."""
    return create_app(predictor=create_service(config))
