"""The reading routes in Flask: ``/health``, ``/model``, ``/metrics``, ``/openapi.json``, and
Flask's own answers to other methods and paths (HEAD, OPTIONS, 404, 405), as JSON.

:class:`model_api.front.asgi.ServiceApp` runs this app (a2wsgi, a few threads) for every request
but a ``POST`` to a scoring or admin route, which it answers itself: those are the routes that
read a body, wait on the model and are admitted against the worker's queue, and their sequence is
written once, there. None of the routes here waits on the model. Each answer is a call to the
worker's :class:`~model_api.front.routes.Service`; this module only writes Flask's response and
maps Werkzeug's errors to the same JSON form.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from model_api.front.admin import ADMIN_PATH
from model_api.front.routes import SCORING, Answer, Service, error


def create_app(service: Service) -> Flask:
    """The Flask app of the reading routes of ``service``."""
    app = Flask(__name__)
    app.extensions["tweetsent.service"] = service

    @app.before_request
    def _start() -> Response | None:
        g.started = time.perf_counter()
        refused = service.refusal(
            request.method, request.path, request.headers.get("Authorization", ""), request.remote_addr
        )
        return None if refused is None else response(refused)

    @app.after_request
    def _record(answer: Response) -> Response:
        service.record(request.url_rule.rule if request.url_rule else "unmatched", answer.status_code, g.get("started"))
        return answer

    @app.errorhandler(Exception)
    def _failed(e: Exception) -> Response:
        if isinstance(e, HTTPException):
            return _http_error(service, e)
        return response(service.failed(request.path, e))

    app.add_url_rule("/health", "health", lambda: response(service.health()))
    app.add_url_rule("/model", "model", lambda: response(service.model()))
    app.add_url_rule("/metrics", "metrics", lambda: response(service.prometheus()))
    app.add_url_rule("/openapi.json", "openapi", lambda: response(service.openapi_answer()))
    # The POST routes are known here only so that Flask answers their other methods (405 with
    # Allow, OPTIONS); a POST to them never reaches this app.
    for path in (*SCORING, ADMIN_PATH):
        app.add_url_rule(path, path, _answered_by_the_front, methods=["POST"])
    return app


def response(answer: Answer) -> Response:
    result = Response(answer.payload(), status=answer.status, content_type=answer.content_type)
    result.headers.update(answer.headers)
    return result


def _answered_by_the_front() -> Response:
    raise RuntimeError(f"POST {request.path} is answered by model_api.front.asgi.ServiceApp, not by the Flask app")


def _http_error(service: Service, e: HTTPException) -> Response:
    """Werkzeug's own errors (no such route, a method it does not take) as JSON."""
    service.errors.report(f"client error {e.code}", f"{request.method} {request.path}: {e.name}", logging.INFO)
    headers = {name: value for name, value in e.get_headers() if name.lower() != "content-type"}  # e.g. Allow of a 405
    return response(error(e.code or 500, e.description or "", headers))
