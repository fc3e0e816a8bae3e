"""The service's routes, once, whatever the server: what each request gets as an answer.

``POST /predict`` (``{"text": ...}``), ``POST /predict/batch`` (``{"texts": [...]}``),
``GET /health``, ``GET /model``, ``GET /metrics`` (Prometheus), ``GET /openapi.json`` and
``POST /admin/model`` (serve another model without stopping: :mod:`model_api.runner.swap`).
:class:`Service` holds what a worker serves with (the configuration, the
:class:`~model_api.runner.swap.ModelSlot`, the metrics, the error log, the token, the OpenAPI document)
and turns each step of a request into an :class:`Answer`: who may ask, what the body says, what
the scoring answer is, how a failure is worded, what is recorded. It knows neither Flask nor ASGI:
the front (:mod:`model_api.front.asgi`, and the Flask app of the reading routes it runs,
:mod:`model_api.front.app`) reads the request, writes the answer and calls these functions for
everything in between.

Each scoring answer names the model that scored it (``model_version``, and the ``X-Model-Version``
header). Every error is a JSON body ``{"error": ...}``: 4xx for what the client must fix, 503 with
``Retry-After`` while the model cannot answer, 500 only for a fault of the service. With a bearer
token configured, every path but ``service.open_paths`` needs it (``/admin/model`` always; without
a token it answers on loopback only).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from model_api.front.admin import ADMIN_PATH, admin_swap, allowed_without_token
from model_api.front.errorlog import ErrorLog
from model_api.front.metrics import ServiceMetrics
from model_api.front.openapi import openapi_document
from model_api.front.protocol import (
    BEARER_REALM,
    SWITCHING_HEADER,
    UNAUTHORIZED,
    VERSION_HEADER,
    authorized,
    batch_texts,
    failure,
    json_object,
    limits,
    retry_after,
    single_text,
)
from model_api.runner.interface import Predictor
from model_api.runner.swap import ModelSlot, cannot_load
from sentiment.config import Config, service_token

log = logging.getLogger("model_api.front.app")  # the request log, under the name operators filter on

SCORING = {"/predict": single_text, "/predict/batch": batch_texts}


@dataclass(frozen=True)
class Answer:
    """One answer: a status, a JSON body (or bytes of ``content_type``) and headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def payload(self) -> bytes:
        """The body's bytes; JSON as Flask's ``jsonify`` writes it: sorted keys, ASCII, compact, a final newline."""
        if isinstance(self.body, bytes):
            return self.body
        return (json.dumps(self.body, sort_keys=True, separators=(",", ":"), default=str) + "\n").encode()


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, {"error": message}, headers or {})


class Service:
    """What one worker serves with, and every route's answer (see the module docstring).

    Args:
        predictor: the served model; a :class:`~model_api.runner.swap.ModelSlot`, or a predictor put in one
            that cannot swap (:func:`~model_api.runner.swap.cannot_load`: it has no way to load another model).
    """

    def __init__(self, config: Config, predictor: Predictor | ModelSlot) -> None:
        self.config = config
        self.settings = config.service
        self.slot = predictor if isinstance(predictor, ModelSlot) else ModelSlot(config, predictor, build=cannot_load)
        self.metrics = ServiceMetrics()
        self.slot.observe = self.metrics.observe_batch
        self.slot.on_change = self.metrics.model_changed
        self.metrics.model_changed(None, self.slot.serving, None)
        self.errors = ErrorLog(log, self.settings.log_interval_seconds)
        self.token = service_token(self.settings)
        self.open_paths = set(self.settings.open_path_list) - {ADMIN_PATH}  # the admin route is never open
        self.openapi = openapi_document(self.settings, token=bool(self.token))

    # Who may ask.

    def refusal(self, method: str, path: str, authorization: str, client: str | None) -> Answer | None:
        """The answer to a request that may not be served (401 without the token, 403 for the admin
        route off loopback when no token is set); None when it may."""
        if path == ADMIN_PATH and not self.token and not allowed_without_token(client):
            return error(403, f"{ADMIN_PATH} without a service token answers only on loopback")
        if self.token and path not in self.open_paths and not authorized(authorization, self.token):
            self.errors.report("unauthorized request", f"{method} {path} without the bearer token")
            return error(401, UNAUTHORIZED, {"WWW-Authenticate": BEARER_REALM})
        return None

    # Scoring.

    def texts(self, route: str, data: bytes, content_type: str) -> list[str]:
        """The texts a scoring request on ``route`` sends.

        Raises:
            BadRequest: what the client must fix (:mod:`model_api.front.protocol`).
        """
        return SCORING[route](json_object(data, content_type), self.settings)

    def scored(self, route: str, version: str, results: Sequence) -> Answer:
        """The answer to a scoring request: its predictions and the model that made them."""
        headers = {VERSION_HEADER: version}
        if self.slot.switching:
            headers[SWITCHING_HEADER] = "1"
        if route == "/predict":
            return Answer(200, {**results[0].to_dict(), "model_version": version}, headers)
        return Answer(200, {"results": [r.to_dict() for r in results], "model_version": version}, headers)

    def failed(self, route: str, e: Exception) -> Answer:
        """The answer to a request on ``route`` that raised ``e``, recorded in the error log: the
        client's fault or the model's state (:func:`model_api.front.protocol.failure`), else a 500."""
        answer = failure(e, self.settings, route)
        if answer is None:
            self.errors.report(f"internal error {type(e).__name__}", f"{route}: {e}", logging.ERROR, exc_info=e)
            return error(500, f"internal error: {type(e).__name__}")
        self.errors.report(answer.kind, answer.detail, answer.level)
        return error(answer.status, answer.message, answer.headers)

    # The other routes.

    def health(self) -> Answer:
        """200 while the model can answer; 503 while degraded (a load balancer routes around this
        worker until it recovers). The worker's pid shows how many of several workers are up."""
        state = dict(self.slot.health())
        state["worker"] = os.getpid()
        if state.get("status") != "ok":
            return Answer(503, state, {"Retry-After": retry_after(self.settings.retry_after_seconds)})
        current = self.slot.serving
        state["version"], state["model_version"] = current.info.get("version"), current.version
        return Answer(200, state)

    def model(self) -> Answer:
        """The served model, which worker answered and how many there are (each reports its own
        engine), and the limits a client packs its requests below."""
        answer = {**self.slot.describe(), "worker": os.getpid(), "workers": self.settings.worker_processes}
        return Answer(200, {**answer, "limits": limits(self.settings)})

    def prometheus(self) -> Answer:
        body, content_type = self.metrics.exposition()
        return Answer(200, body, content_type=content_type)

    def openapi_answer(self) -> Answer:
        return Answer(200, self.openapi)

    def admin(self, request: dict) -> Answer:
        """``POST /admin/model``: :func:`model_api.front.admin.admin_swap` (blocks until the swap ends).

        Raises:
            BadRequest: the body does not name a model.
        """
        status, body = admin_swap(self.slot, request, self.settings.worker_processes, self.errors)
        return Answer(status, body)

    def record(self, route: str, status: int, started: float | None) -> None:
        """Count the answer, and its latency since ``started`` (``time.perf_counter``)."""
        self.metrics.requests.labels(route, str(status)).inc()
        if started is not None:
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
