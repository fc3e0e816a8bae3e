"""Flask application factory for the sentiment service.

Routes: ``POST /predict`` (``{"text": ...}``), ``POST /predict/batch`` (``{"texts": [...]}``),
``GET /health``, ``GET /model``, ``GET /metrics`` (Prometheus) and ``GET /openapi.json``. The app
stores one :class:`~model_api.interface.Predictor` and calls it; batching and the model process
live behind that interface. Every error is a JSON body ``{"error": ...}``: 4xx for what the client
must fix, 503 with ``Retry-After`` while the model cannot answer, 500 only for a fault of the
service. With a bearer token configured, every path but ``service.open_paths`` needs it.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import time
from collections.abc import Callable

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from model_api.errorlog import ErrorLog
from model_api.interface import ModelUnavailable, Predictor
from model_api.metrics import ServiceMetrics
from model_api.openapi import openapi_document
from sentiment.config import Config, load_config, service_token

log = logging.getLogger(__name__)

bp = Blueprint("sentiment", __name__)

# What JSON can carry but no tokenizer takes: halves of a surrogate pair on their own.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


class BadRequest(Exception):
    """A request the client must fix; becomes a JSON error with the given status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def clean_text(value: str, max_chars: int) -> str:
    """``value`` cut to ``max_chars`` characters, each lone surrogate replaced by U+FFFD."""
    return _LONE_SURROGATE.sub(REPLACEMENT, value[:max_chars])


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
    info = predictor.describe()
    metrics.model.labels(str(info.get("name")), str(info.get("version")), str(info.get("precision"))).set(1)
    errors = ErrorLog(log, service.log_interval_seconds)
    token = service_token(service)
    app.extensions["tweetsent.predictor"] = predictor
    app.extensions["tweetsent.config"] = config
    app.extensions["tweetsent.metrics"] = metrics
    app.extensions["tweetsent.openapi"] = openapi_document(service, token=bool(token))
    app.extensions["tweetsent.predict"] = _observed(predictor, metrics)
    app.register_blueprint(bp)
    open_paths = set(service.open_path_list)

    @app.before_request
    def _start() -> Response | None:
        g.started = time.perf_counter()
        if token and request.path not in open_paths and not _authorized(token):
            errors.report("unauthorized request", f"{request.method} {request.path} without the bearer token")
            response = jsonify(error="missing or wrong bearer token: send 'Authorization: Bearer <token>'")
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="tweet-sentiment"'
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
    def _bad_request(e: BadRequest):
        errors.report(f"client error {e.status}", f"{request.path}: {e.message}", logging.INFO)
        return jsonify(error=e.message), e.status

    @app.errorhandler(ModelUnavailable)
    def _unavailable(e: ModelUnavailable):
        errors.report("model unavailable", str(e))
        return _retry_later(f"model unavailable: {e}", e.retry_after)

    @app.errorhandler(TimeoutError)
    def _timeout(e: TimeoutError):
        message = f"no prediction within service.timeout_seconds = {service.timeout_seconds} s"
        errors.report("prediction timeout", message)
        return _retry_later(f"model overloaded: {message}", service.retry_after_seconds)

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


def _observed(predictor: Predictor, metrics: ServiceMetrics) -> Callable[[list[str]], list]:
    """``predictor.predict``, with each prediction's size and time in the metrics: reported by the
    predictor itself when it batches calls (it has ``on_batch``), else timed here."""
    if hasattr(predictor, "on_batch"):
        predictor.on_batch = metrics.observe_batch
        return predictor.predict

    def predict(texts: list[str]) -> list:
        started = time.perf_counter()
        results = predictor.predict(texts)
        metrics.observe_batch(len(texts), time.perf_counter() - started)
        return results

    return predict


def _authorized(token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Constant time: how much of a guess matched must not show in the answer's timing.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode())


def _retry_later(message: str | dict, retry_after: float) -> Response:
    """A 503 with ``Retry-After``: ``{"error": message}``, or ``message`` itself when it is a dict."""
    response = jsonify(message if isinstance(message, dict) else {"error": message})
    response.status_code = 503
    response.headers["Retry-After"] = str(max(1, round(retry_after)))
    return response


def _predictor() -> Predictor:
    return current_app.extensions["tweetsent.predictor"]


def _config() -> Config:
    return current_app.extensions["tweetsent.config"]


def _body() -> bytes:
    """The request body, read up to the limit, with a length or chunked.

    Raises:
        BadRequest: 413 when it is longer than ``service.max_body_bytes``.
    """
    limit = _config().service.max_body_bytes
    too_large = BadRequest(f"request body is larger than the limit of {limit} bytes", 413)
    if request.content_length is not None:
        if request.content_length > limit:
            raise too_large
        return request.get_data(cache=False)
    # Chunked: no length to check first, so read one byte past the limit. Only from a server that
    # marks the input terminated (granian, gunicorn, Werkzeug's for chunked bodies): elsewhere a read
    # could wait for the client forever, and there is no body to read (as Werkzeug does).
    stream = request.environ.get("wsgi.input")
    if stream is None or not request.environ.get("wsgi.input_terminated"):
        return b""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise too_large
    return data


# The routes take an object holding a list of strings; deeper JSON is refused before it is parsed,
# whatever the interpreter's recursion limit (which other libraries in the process may raise).
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """How deeply the arrays and objects of a JSON text nest (brackets inside strings do not count)."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return 0  # cannot be deeper than the limit: skip the scan
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _json_object() -> dict:
    if not request.is_json:
        raise BadRequest("expected a JSON body with Content-Type: application/json", 415)
    data = _body()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest(f"request body is not valid UTF-8 (byte {e.start}); send JSON encoded in UTF-8") from None
    if json_depth(text) > MAX_JSON_DEPTH:
        raise BadRequest(f"request body is not valid JSON: nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    try:
        body = json.loads(text)
    except RecursionError:
        raise BadRequest("request body is not valid JSON: nested too deeply") from None
    except json.JSONDecodeError as e:
        raise BadRequest(f"request body is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except ValueError as e:  # e.g. an integer of too many digits
        raise BadRequest(f"request body is not valid JSON: {str(e)[:200]}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"expected a JSON object, got {type(body).__name__}")
    return body


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{where} must be a string, got {type(value).__name__}")
    return clean_text(value, _config().service.max_text_chars)


@bp.post("/predict")
def predict():
    body = _json_object()
    if "text" not in body:
        raise BadRequest('missing field "text"')
    result = current_app.extensions["tweetsent.predict"]([_text(body["text"], '"text"')])[0]
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
    results = current_app.extensions["tweetsent.predict"](clean)
    return jsonify(results=[r.to_dict() for r in results])


@bp.get("/health")
def health():
    # 503 while degraded, so that a load balancer routes around this worker until it recovers.
    # The worker's pid lets a client see how many of several workers are up.
    state = dict(_predictor().health())
    state["worker"] = os.getpid()
    if state.get("status") != "ok":
        return _retry_later(state, _config().service.retry_after_seconds)
    state["version"] = _predictor().describe().get("version")
    return jsonify(state)


@bp.get("/model")
def model():
    # Which worker answered and how many there are: each worker reports its own engine.
    return jsonify({**_predictor().describe(), "worker": os.getpid(), "workers": _config().service.worker_processes})


@bp.get("/metrics")
def metrics():
    body, content_type = current_app.extensions["tweetsent.metrics"].exposition()
    return Response(body, content_type=content_type)


@bp.get("/openapi.json")
def openapi():
    return jsonify(current_app.extensions["tweetsent.openapi"])
