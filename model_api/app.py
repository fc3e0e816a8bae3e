"""Flask application factory for the sentiment service.

Routes: ``POST /predict`` (``{"text": ...}``, micro-batched with concurrent calls: in the model
process when there is one, else by a :class:`MicroBatcher` in the worker),
``POST /predict/batch`` (``{"texts": [...]}``), ``GET /health``, ``GET /model`` and ``GET /metrics``
(Prometheus). Every error is a JSON body ``{"error": ...}`` with a 4xx or 5xx status.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Protocol

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from model_api.batching import MicroBatcher
from model_api.engine_process import EngineProcessError
from model_api.metrics import ServiceMetrics
from sentiment.config import Config, load_config

log = logging.getLogger(__name__)

bp = Blueprint("sentiment", __name__)


class Predictor(Protocol):
    def predict(self, texts: list[str]) -> list: ...

    def describe(self) -> dict: ...


class BadRequest(Exception):
    """A request the client must fix; becomes a JSON error with the given status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def create_app(config: Config | None = None, predictor: Predictor | None = None) -> Flask:
    """Build the app. Without a predictor, load the configured model (once, here)."""
    config = config or load_config()
    if predictor is None:
        from model_api.predictor import load_predictor

        predictor = load_predictor(config)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.service.max_body_bytes
    metrics = ServiceMetrics()
    info = predictor.describe()
    metrics.model.labels(str(info.get("name")), str(info.get("version")), str(info.get("precision"))).set(1)
    app.extensions["tweetsent.predictor"] = predictor
    app.extensions["tweetsent.config"] = config
    app.extensions["tweetsent.metrics"] = metrics
    # How the routes get predictions: ``(texts, timeout) -> results`` for a single text and a batch.
    if getattr(predictor, "batches_concurrent_calls", False):
        # The model process batches concurrent calls itself, next to the model, and reports them.
        predictor.on_batch = metrics.observe_batch
        submit_one = submit_batch = predictor.predict
    else:
        submit_one = MicroBatcher(
            predictor.predict,
            max_batch=config.service.micro_batch_max,
            max_wait_ms=config.service.micro_batch_wait_ms,
            on_batch=metrics.observe_batch,
        ).submit

        def submit_batch(texts: list[str], timeout: float | None = None) -> list:
            started = time.perf_counter()  # straight to the engine
            results = predictor.predict(texts)
            metrics.observe_batch(len(texts), time.perf_counter() - started)
            return results

    app.extensions["tweetsent.submit"] = submit_one
    app.extensions["tweetsent.submit_batch"] = submit_batch
    app.register_blueprint(bp)

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _record(response):
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        if "started" in g:
            metrics.latency.labels(endpoint).observe(time.perf_counter() - g.started)
        return response

    @app.errorhandler(BadRequest)
    def _bad_request(e: BadRequest):
        return jsonify(error=e.message), e.status

    @app.errorhandler(EngineProcessError)
    def _engine_gone(e: EngineProcessError):
        log.error("%s", e)
        return jsonify(error=f"model unavailable: {e}"), 503

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        message = e.description
        if e.code == 413:
            message = f"request body is larger than the limit of {config.service.max_body_bytes} bytes"
        return jsonify(error=message), e.code

    @app.errorhandler(Exception)
    def _internal(e: Exception):
        log.exception("prediction failed")
        return jsonify(error=f"internal error: {type(e).__name__}"), 500

    return app


def _predictor() -> Predictor:
    return current_app.extensions["tweetsent.predictor"]


def _config() -> Config:
    return current_app.extensions["tweetsent.config"]


def _json_object() -> dict:
    if not request.is_json:
        raise BadRequest("expected a JSON body with Content-Type: application/json", 415)
    body = request.get_json(silent=True)
    if body is None:
        raise BadRequest("request body is not valid JSON")
    if not isinstance(body, dict):
        raise BadRequest(f"expected a JSON object, got {type(body).__name__}")
    return body


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{where} must be a string, got {type(value).__name__}")
    return value[: _config().service.max_text_chars]


@bp.post("/predict")
def predict():
    body = _json_object()
    if "text" not in body:
        raise BadRequest('missing field "text"')
    submit = current_app.extensions["tweetsent.submit"]
    result = submit([_text(body["text"], '"text"')], timeout=_config().service.timeout_seconds)[0]
    return jsonify(result.to_dict())


@bp.post("/predict/batch")
def predict_batch():
    body = _json_object()
    if "texts" not in body:
        raise BadRequest('missing field "texts"')
    texts = body["texts"]
    if not isinstance(texts, list):
        raise BadRequest(f'"texts" must be a list of strings, got {type(texts).__name__}')
    if not texts:
        raise BadRequest('"texts" is empty; send at least one text')
    limit = _config().service.max_batch
    if len(texts) > limit:
        raise BadRequest(f'"texts" holds {len(texts)} texts; the limit is {limit} per request', 413)
    clean = [_text(t, f'"texts"[{i}]') for i, t in enumerate(texts)]
    submit_batch = current_app.extensions["tweetsent.submit_batch"]
    results = submit_batch(clean, timeout=_config().service.timeout_seconds)
    return jsonify(results=[r.to_dict() for r in results])


@bp.get("/health")
def health():
    # The worker's pid lets a client see how many of several workers are up.
    predictor = _predictor()
    if not getattr(predictor, "alive", True):
        return jsonify(status="model process exited", worker=os.getpid()), 503
    return jsonify(status="ok", version=predictor.describe().get("version"), worker=os.getpid())


@bp.get("/model")
def model():
    return jsonify(_predictor().describe())


@bp.get("/metrics")
def metrics():
    body, content_type = current_app.extensions["tweetsent.metrics"].exposition()
    return Response(body, content_type=content_type)
