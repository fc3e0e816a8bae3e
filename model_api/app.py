"""Flask application factory for the sentiment service.

Routes: ``POST /predict`` (``{"text": ...}``), ``POST /predict/batch`` (``{"texts": [...]}``),
``GET /health``, ``GET /model``, ``GET /metrics`` (Prometheus), ``GET /openapi.json`` and
``POST /admin/model`` (serve another model without stopping: :mod:`model_api.swap`). The app
stores one :class:`~model_api.swap.ModelSlot` around a :class:`~model_api.interface.Predictor`
and calls it; batching and the model process live behind that interface. Each scoring answer
names the model that scored it (``model_version``, and the ``X-Model-Version`` header). Every
error is a JSON body ``{"error": ...}``: 4xx for what the client must fix, 503 with
``Retry-After`` while the model cannot answer, 500 only for a fault of the service. With a
bearer token configured, every path but ``service.open_paths`` needs it (``/admin/model``
always; without a token it answers on loopback only).
"""

from __future__ import annotations

import logging
import os
import time

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from model_api.admin import ADMIN_PATH, admin_swap, allowed_without_token
from model_api.errorlog import ErrorLog
from model_api.interface import ModelUnavailable, Predictor
from model_api.metrics import ServiceMetrics
from model_api.openapi import openapi_document
from model_api.protocol import (
    BEARER_REALM,
    SWITCHING_HEADER,
    UNAUTHORIZED,
    VERSION_HEADER,
    BadRequest,
    Failure,
    authorized,
    batch_texts,
    failure,
    is_json,
    json_object,
    limits,
    retry_after,
    single_text,
    too_large,
)
from model_api.swap import ModelSlot
from sentiment.config import Config, load_config, service_token

log = logging.getLogger(__name__)

bp = Blueprint("sentiment", __name__)


def create_app(config: Config | None = None, predictor: Predictor | None = None) -> Flask:
    """Build the app around ``predictor``; without one, the configured model
    (:func:`model_api.runtime.build_predictor`)."""
    config = config or load_config()
    if predictor is None:
        from model_api.runtime import build_predictor

        predictor = build_predictor(config)
    service = config.service
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = service.max_body_bytes
    metrics = ServiceMetrics()
    slot = predictor if isinstance(predictor, ModelSlot) else ModelSlot(config, predictor)
    slot.observe = metrics.observe_batch
    slot.on_change = metrics.model_changed
    metrics.model_changed(None, slot.serving, None)
    errors = ErrorLog(log, service.log_interval_seconds)
    token = service_token(service)
    app.extensions["tweetsent.predictor"] = slot
    app.extensions["tweetsent.config"] = config
    app.extensions["tweetsent.metrics"] = metrics
    app.extensions["tweetsent.errors"] = errors
    app.extensions["tweetsent.openapi"] = openapi_document(service, token=bool(token))
    app.extensions["tweetsent.predict"] = slot.score
    app.register_blueprint(bp)
    open_paths = set(service.open_path_list) - {ADMIN_PATH}  # the admin route is never open

    @app.before_request
    def _start() -> Response | None:
        g.started = time.perf_counter()
        if request.path == ADMIN_PATH and not token and not allowed_without_token(request.remote_addr):
            return _refuse(403, f"{ADMIN_PATH} without a service token answers only on loopback")
        if token and request.path not in open_paths and not authorized(request.headers.get("Authorization", ""), token):
            errors.report("unauthorized request", f"{request.method} {request.path} without the bearer token")
            response = jsonify(error=UNAUTHORIZED)
            response.status_code = 401
            response.headers["WWW-Authenticate"] = BEARER_REALM
            return response
        return None

    @app.after_request
    def _record(response):
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        if "started" in g:
            metrics.latency.labels(endpoint).observe(time.perf_counter() - g.started)
        return response

    @app.errorhandler(BadRequest)
    @app.errorhandler(ModelUnavailable)
    @app.errorhandler(TimeoutError)
    def _failed(e: Exception):
        answer = failure(e, service, request.path)
        errors.report(answer.kind, answer.detail, answer.level)
        return _answer(answer)

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        message = e.description
        if e.code == 413:
            message = f"request body is larger than the limit of {service.max_body_bytes} bytes"
        errors.report(f"client error {e.code}", f"{request.method} {request.path}: {e.name}", logging.INFO)
        response = jsonify(error=message)
        response.status_code = e.code or 500
        for name, value in e.get_headers():
            if name.lower() != "content-type":  # e.g. Allow of a 405
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _internal(e: Exception):
        errors.report(f"internal error {type(e).__name__}", f"{request.path}: {e}", logging.ERROR, exc_info=e)
        return jsonify(error=f"internal error: {type(e).__name__}"), 500

    return app


def _refuse(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response


def _answer(answer: Failure) -> Response:
    response = jsonify(error=answer.message)
    response.status_code = answer.status
    response.headers.update(answer.headers)
    return response


def _predictor() -> ModelSlot:
    return current_app.extensions["tweetsent.predictor"]


def _config() -> Config:
    return current_app.extensions["tweetsent.config"]


def _body() -> bytes:
    """The request body, read up to the limit, with a length or chunked.

    Raises:
        BadRequest: 413 when it is longer than ``service.max_body_bytes``.
    """
    limit = _config().service.max_body_bytes
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


def _json_object() -> dict:
    # The body is read only for a JSON request (a 415 needs no body).
    content_type = request.headers.get("Content-Type", "")
    return json_object(_body() if is_json(content_type) else b"", content_type)


@bp.post("/predict")
def predict():
    texts = single_text(_json_object(), _config().service)
    version, results = current_app.extensions["tweetsent.predict"](texts)
    return _versioned(jsonify({**results[0].to_dict(), "model_version": version}), version)


@bp.post("/predict/batch")
def predict_batch():
    texts = batch_texts(_json_object(), _config().service)
    version, results = current_app.extensions["tweetsent.predict"](texts)
    return _versioned(jsonify(results=[r.to_dict() for r in results], model_version=version), version)


def _versioned(response: Response, version: str) -> Response:
    response.headers[VERSION_HEADER] = version
    if _predictor().switching:
        response.headers[SWITCHING_HEADER] = "1"
    return response


@bp.get("/health")
def health():
    # 503 while degraded, so that a load balancer routes around this worker until it recovers.
    # The worker's pid lets a client see how many of several workers are up.
    state = dict(_predictor().health())
    state["worker"] = os.getpid()
    if state.get("status") != "ok":
        response = jsonify(state)
        response.status_code = 503
        response.headers["Retry-After"] = retry_after(_config().service.retry_after_seconds)
        return response
    current = _predictor().serving
    state["version"], state["model_version"] = current.info.get("version"), current.version
    return jsonify(state)


@bp.get("/model")
def model():
    # Which worker answered and how many there are: each worker reports its own engine.
    # What it takes (limits): a client packs its requests below them.
    service = _config().service
    answer = {**_predictor().describe(), "worker": os.getpid(), "workers": service.worker_processes}
    return jsonify({**answer, "limits": limits(service)})


@bp.post(ADMIN_PATH)
def admin_model():
    """Serve another model: :func:`model_api.admin.admin_swap`."""
    workers = _config().service.worker_processes
    status, answer = admin_swap(_predictor(), _json_object(), workers, current_app.extensions["tweetsent.errors"])
    response = jsonify(answer)
    response.status_code = status
    return response


@bp.get("/metrics")
def metrics():
    body, content_type = current_app.extensions["tweetsent.metrics"].exposition()
    return Response(body, content_type=content_type)


@bp.get("/openapi.json")
def openapi():
    return jsonify(current_app.extensions["tweetsent.openapi"])
