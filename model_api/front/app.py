"""The service as a Flask application: the routes of :mod:`model_api.front.routes` under any WSGI server.

``python -m model_api --server gunicorn`` runs it in gthread workers (:func:`model_api.front.wsgi.create`);
under granian, :mod:`model_api.front.asgi` answers the scoring and admin routes on its event loop and
hands the others to this app. Every route, check and error answer is a call to one
:class:`~model_api.front.routes.Service`; this module only reads Flask's request and writes its
response, and maps Werkzeug's own errors (404, 405, a body over ``MAX_CONTENT_LENGTH``) to the
same JSON form.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from model_api.front.admin import ADMIN_PATH
from model_api.front.protocol import is_json, json_object, too_large
from model_api.front.routes import Answer, Service, error
from model_api.runner.interface import Predictor
from model_api.runner.swap import ModelSlot
from sentiment.config import Config, load_config


def create_app(config: Config | None = None, predictor: Predictor | ModelSlot | Service | None = None) -> Flask:
    """The Flask app around a :class:`~model_api.front.routes.Service`, or one made of ``config`` and
    ``predictor`` (a worker's service with its model loaded: :func:`model_api.front.worker.create_service`)."""
    if predictor is None:
        raise TypeError("create_app needs the predictor to serve (model_api.front.worker.create_service loads one)")
    service = predictor if isinstance(predictor, Service) else Service(config or load_config(), predictor)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = service.settings.max_body_bytes
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

    app.add_url_rule("/predict", "predict", lambda: _scoring("/predict"), methods=["POST"])
    app.add_url_rule("/predict/batch", "predict_batch", lambda: _scoring("/predict/batch"), methods=["POST"])
    app.add_url_rule("/health", "health", lambda: response(service.health()))
    app.add_url_rule("/model", "model", lambda: response(service.model()))
    app.add_url_rule("/metrics", "metrics", lambda: response(service.prometheus()))
    app.add_url_rule("/openapi.json", "openapi", lambda: response(service.openapi_answer()))
    app.add_url_rule(ADMIN_PATH, "admin_model", lambda: response(service.admin(_json_object())), methods=["POST"])
    return app


def response(answer: Answer) -> Response:
    result = Response(answer.payload(), status=answer.status, content_type=answer.content_type)
    result.headers.update(answer.headers)
    return result


def _service() -> Service:
    return current_app.extensions["tweetsent.service"]


def _scoring(route: str) -> Response:
    service = _service()
    version, results = service.slot.score(service.texts(route, *_body_and_type()))
    return response(service.scored(route, version, results))


def _json_object() -> dict:
    return json_object(*_body_and_type())


def _body_and_type() -> tuple[bytes, str]:
    # The body is read only for a JSON request (a 415 needs no body).
    content_type = request.headers.get("Content-Type", "")
    return (_body() if is_json(content_type) else b""), content_type


def _body() -> bytes:
    """The request body, read up to the limit, with a length or chunked.

    Raises:
        BadRequest: 413 when it is longer than ``service.max_body_bytes``.
    """
    limit = _service().settings.max_body_bytes
    if request.content_length is not None:
        if request.content_length > limit:
            raise too_large(limit)
        return request.get_data(cache=False)
    # Chunked: no length to check first, so read one byte past the limit. Only from a server that
    # marks the input terminated (granian, gunicorn, Werkzeug's for chunked bodies): elsewhere a read
    # could wait for the client forever, and there is no body to read (as Werkzeug does).
    stream = request.environ.get("wsgi.input")
    if stream is None or not request.environ.get("wsgi.input_terminated"):
        return b""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise too_large(limit)
    return data


def _http_error(service: Service, e: HTTPException) -> Response:
    """Werkzeug's own errors (no such route, a method it does not take, a body over the limit) as JSON."""
    message = e.description
    if e.code == 413:
        message = f"request body is larger than the limit of {service.settings.max_body_bytes} bytes"
    service.errors.report(f"client error {e.code}", f"{request.method} {request.path}: {e.name}", logging.INFO)
    headers = {name: value for name, value in e.get_headers() if name.lower() != "content-type"}  # e.g. Allow of a 405
    return response(error(e.code or 500, message or "", headers))
