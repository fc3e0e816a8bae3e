"""The service's front (model_api.front.asgi): generated hostile requests answered the same whether
the model runs in model processes or in the worker, and its own waiting (timeouts, a model process
that is gone) becomes 503s."""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import Future

import pytest
from hypothesis import HealthCheck, given, settings

from model_api.front.asgi import ServiceApp
from model_api.front.routes import Service
from model_api.runner.interface import ModelUnavailable
from sentiment.config import Config
from tests.hostile_requests import HostileRequest, check_answer, hostile_requests
from tests.support.front import FrontClient
from tests.unit.test_hostile_requests import MAX_BATCH, MAX_BODY, TokenizerLikePredictor

pytestmark = pytest.mark.unit

HEADERS = ("Content-Type", "Retry-After", "WWW-Authenticate", "Allow")


def config(**service) -> Config:
    base = dict(max_body_bytes=MAX_BODY, max_batch=MAX_BATCH) | service
    return dataclasses.replace(Config(), service=dataclasses.replace(Config().service, **base))


class FakePending:
    """A part of a prediction on its way, as :class:`model_api.runner.engine_process.Pending`."""

    def __init__(self, future: Future) -> None:
        self.future = future
        self.forgotten = False

    def forget(self) -> None:
        self.forgotten = True


class ProcessLikePredictor(TokenizerLikePredictor):
    """The fake model behind ``pending`` (as a pool of model processes): each part's future is
    answered by a thread, or never (``hang``), or the call raises (``gone``)."""

    def __init__(self) -> None:
        super().__init__()
        self.hang = False
        self.gone: ModelUnavailable | None = None
        self.sent: list[FakePending] = []
        self.on_batch = None  # set by the app: (texts, seconds) of each prediction, as the model processes report

    def predict(self, texts: list[str]) -> list:
        results = super().predict(texts)
        if self.on_batch is not None:
            self.on_batch(len(texts), 0.001)
        return results

    def pending(self, texts: list[str]) -> list[FakePending]:
        if self.gone is not None:
            raise self.gone
        parts = [texts[: len(texts) // 2], texts[len(texts) // 2 :]] if len(texts) > 1 else [texts]
        sent = [FakePending(Future()) for _ in parts]
        self.sent += sent
        for part, pending in zip(parts, sent, strict=True):
            if not self.hang:
                try:
                    pending.future.set_result(self.predict(part))
                except Exception as e:
                    pending.future.set_exception(e)
        return sent

    def in_flight(self) -> int:
        return sum(not part.future.done() for part in self.sent)

    def close(self) -> None:
        self.gone = ModelUnavailable("closed")


CLIENTS: dict[int, FrontClient] = {}


def call(app: ServiceApp, request: HostileRequest) -> tuple[int, dict, bytes]:
    """Send ``request`` to the ASGI ``app`` as a server would (:class:`tests.support.front.FrontClient`:
    a chunked body in pieces, without a length); return status, lower-cased headers and body."""
    if id(app) not in CLIENTS:
        CLIENTS[id(app)] = FrontClient(app)
    r = CLIENTS[id(app)].open(
        request.path, method=request.method, headers=dict(request.headers), data=request.body, chunked=request.chunked
    )
    return r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.get_data()


APPS = {
    "model processes": ServiceApp(Service(config(), ProcessLikePredictor())),
    "in-process model": ServiceApp(Service(config(), TokenizerLikePredictor())),
}
PATHS = APPS["in-process model"].service.openapi["paths"]


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=hostile_requests(MAX_BODY, MAX_BATCH))
def test_every_request_gets_the_same_answer_wherever_the_model_runs(request):
    # The front waits on the loop for model processes, or calls a model in the worker on a thread:
    # the client cannot tell which.
    answers = {}
    for name, app in APPS.items():
        status, headers, body = call(app, request)
        check_answer(request, status, {k.title(): v for k, v in headers.items()}, body, PATHS)
        answers[name] = (status, body, tuple(headers.get(h.lower()) for h in HEADERS))
    if request.path == "/metrics":
        return  # each app counts its own requests
    assert len(set(answers.values())) == 1, (request, answers)


def scoring(body: bytes, path: str = "/predict/batch", **headers: str) -> HostileRequest:
    return HostileRequest("texts", "POST", path, body, {"Content-Type": "application/json", **headers})


def test_the_scoring_routes_are_answered_on_the_event_loop_and_counted():
    predictor = ProcessLikePredictor()
    app = ServiceApp(Service(config(), predictor))
    status, _, body = call(app, scoring(b'{"texts": ["good", "bad", "meh", "good good"]}'))
    assert status == 200
    assert [r["sentiment"] for r in json.loads(body)["results"]] == [
        "Positive",
        "Negative",
        "Neutral",
        "Positive",
    ]
    assert len(predictor.sent) == 2  # both parts, in order
    metrics = app.service.metrics.exposition()[0].decode()
    assert 'tweetsent_requests_total{endpoint="/predict/batch",status="200"} 1.0' in metrics
    assert "tweetsent_texts_total 4.0" in metrics  # reported by the predictor, as the model processes do


def test_a_prediction_that_does_not_come_in_time_is_a_503_and_forgotten():
    predictor = ProcessLikePredictor()
    predictor.hang = True
    app = ServiceApp(Service(config(timeout_seconds=1), predictor))
    status, headers, body = call(app, scoring(b'{"text": "good"}', "/predict"))
    assert status == 503 and headers["retry-after"] == str(Config().service.retry_after_seconds)
    assert b"model overloaded: no prediction within service.timeout_seconds = 1 s" in body
    assert predictor.sent and all(p.forgotten for p in predictor.sent)


def test_a_model_that_is_gone_is_a_503_with_its_retry_after():
    predictor = ProcessLikePredictor()
    predictor.gone = ModelUnavailable("the model process killed by SIGKILL; a new one is starting", 7)
    app = ServiceApp(Service(config(), predictor))
    status, headers, body = call(app, scoring(b'{"text": "good"}', "/predict"))
    assert status == 503 and headers["retry-after"] == "7"
    assert b"model unavailable: the model process killed by SIGKILL" in body


def test_a_bearer_token_guards_the_scoring_routes_as_every_other(monkeypatch):
    monkeypatch.setenv("TWEETSENT_SERVICE_TOKEN", "s3cret")
    app = ServiceApp(Service(config(), ProcessLikePredictor()))
    status, headers, body = call(app, scoring(b'{"text": "good"}', "/predict"))
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert b"s3cret" not in body
    status, _, _ = call(app, scoring(b'{"text": "good"}', "/predict", Authorization="Bearer s3cret"))
    assert status == 200
    status, _, _ = call(app, HostileRequest("get", "GET", "/model"))
    assert status == 401  # through Flask, the same token
