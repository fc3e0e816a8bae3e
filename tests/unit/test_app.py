import dataclasses
import os

import pytest

from sentiment.config import Config
from tests.support.front import FrontClient, front

pytestmark = pytest.mark.unit


@pytest.fixture
def client(fake_predictor):
    config = Config()
    config = dataclasses.replace(
        config, service=dataclasses.replace(config.service, max_batch=3, max_body_bytes=2048, max_text_chars=50)
    )
    return FrontClient(front(config, fake_predictor))


def test_predict_one(client):
    r = client.post("/predict", json={"text": "good good bad"})
    assert r.status_code == 200
    assert r.get_json() == {
        "sentiment": "Positive",
        "p_positive": pytest.approx(2 / 3),
        "confidence": pytest.approx(2 / 3),
        "model_version": "fake@0",
    }
    assert r.headers["X-Model-Version"] == "fake@0"


def test_batch_keeps_order(client):
    r = client.post("/predict/batch", json={"texts": ["bad", "good", "meh"]})
    assert r.status_code == 200
    assert [x["sentiment"] for x in r.get_json()["results"]] == ["Negative", "Positive", "Neutral"]


def test_long_text_is_truncated_not_rejected(client, fake_predictor):
    r = client.post("/predict", json={"text": "good " * 30})
    assert r.status_code == 200
    assert len(fake_predictor.calls[-1][0]) == 50


def test_health_and_model(client):
    health = client.get("/health").get_json()
    assert health["status"] == "ok" and health["worker"] == os.getpid()
    info = client.get("/model").get_json()
    assert info["name"] == "fake" and info["neutral_band"] == {"low": 0.4, "high": 0.6}


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "message"),
    [
        ("/predict", {"data": "text=hi"}, 415, "Content-Type: application/json"),
        ("/predict", {"data": "{not json", "content_type": "application/json"}, 400, "not valid JSON"),
        ("/predict", {"json": ["a"]}, 400, "expected a JSON object"),
        ("/predict", {"json": {"txt": "a"}}, 400, 'missing field "text"'),
        ("/predict", {"json": {"text": 5}}, 400, '"text" must be a string'),
        ("/predict/batch", {"json": {"texts": []}}, 400, "is empty"),
        ("/predict/batch", {"json": {"texts": "abc"}}, 400, "must be a list"),
        ("/predict/batch", {"json": {"texts": ["a", None]}}, 400, '"texts"[1] must be a string'),
        ("/predict/batch", {"json": {"texts": ["a"] * 4}}, 400, "limit is 3"),
        ("/predict/batch", {"json": {"texts": ["x" * 3000]}}, 413, "larger than the limit of 2048 bytes"),
    ],
)
def test_bad_input_gets_a_clear_json_error(client, fake_predictor, path, kwargs, status, message):
    r = client.post(path, **kwargs)
    assert r.status_code == status
    assert message in r.get_json()["error"]
    assert fake_predictor.calls == []


def test_unknown_route_and_method_are_json(client):
    assert client.get("/nope").status_code == 404
    r = client.get("/predict")
    assert r.status_code == 405 and "error" in r.get_json()


def test_metrics_count_requests_by_endpoint_and_status(client):
    client.post("/predict", json={"text": "good"})
    client.post("/predict/batch", json={"texts": ["bad", "good"]})
    client.post("/predict", json={})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'tweetsent_requests_total{endpoint="/predict",status="200"} 1.0' in text
    assert 'tweetsent_requests_total{endpoint="/predict",status="400"} 1.0' in text
    assert 'tweetsent_requests_total{endpoint="/predict/batch",status="200"} 1.0' in text
    assert "tweetsent_texts_total 3.0" in text
    assert 'tweetsent_model_info{name="fake",precision="none",version="0"} 1.0' in text
    assert "tweetsent_request_seconds_bucket" in text and "tweetsent_batch_texts_bucket" in text


def make_client(predictor, **service):
    config = Config()
    config = dataclasses.replace(config, service=dataclasses.replace(config.service, **service))
    return FrontClient(front(config, predictor))


def test_a_lone_surrogate_is_replaced_and_its_neighbours_are_scored(client, fake_predictor):
    r = client.post("/predict/batch", json={"texts": ["good", "bad \ud800 day", "bad"]})
    assert r.status_code == 200
    assert [x["sentiment"] for x in r.get_json()["results"]] == ["Positive", "Negative", "Negative"]
    assert fake_predictor.calls == [["good", "bad \ufffd day", "bad"]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 1000 + b"]" * 1000, "nested too deeply"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "nested too deeply"),
        (b'{"text": "\xff\xfe"}', "not valid UTF-8 (byte 10)"),
        (b'{"text": "a",}', "not valid JSON"),
        (b'{"text": ' + b"9" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_bodies_no_parser_takes_are_400(fake_predictor, body, message):
    r = make_client(fake_predictor).post("/predict", data=body, content_type="application/json")
    assert r.status_code == 400
    assert message in r.get_json()["error"]
    assert fake_predictor.calls == []


def test_an_oversized_chunked_body_is_413_like_one_with_a_length(fake_predictor):
    client = make_client(fake_predictor, max_body_bytes=2048)
    body = b'{"text": "' + b"x" * 4000 + b'"}'
    r = client.post("/predict", data=body, content_type="application/json", chunked=True)
    assert r.status_code == 413
    assert "larger than the limit of 2048 bytes" in r.get_json()["error"]
    small = client.post("/predict", data=b'{"text": "good"}', content_type="application/json", chunked=True)
    assert small.status_code == 200 and small.get_json()["sentiment"] == "Positive"


class FailingPredictor:
    """A predictor whose every call raises ``error``; its health is ``state``."""

    def __init__(self, error: Exception, state: dict | None = None) -> None:
        self.error = error
        self.state = state or {"status": "ok"}

    def predict(self, texts):
        raise self.error

    def describe(self) -> dict:
        return {"name": "failing", "version": "0", "precision": "none"}

    def health(self) -> dict:
        return self.state

    def warm_up(self) -> None:
        pass


def test_an_unavailable_model_is_503_with_retry_after_and_health_degraded():
    from model_api.runner.interface import ModelUnavailable

    state = {"status": "degraded", "reason": "the model process killed by SIGKILL; restarting"}
    client = make_client(FailingPredictor(ModelUnavailable("restarting", retry_after=7), state), retry_after_seconds=3)
    r = client.post("/predict", json={"text": "hello"})
    assert r.status_code == 503 and r.headers["Retry-After"] == "7"
    assert "model unavailable: restarting" in r.get_json()["error"]
    health = client.get("/health")
    assert health.status_code == 503 and health.headers["Retry-After"] == "3"
    assert health.get_json()["status"] == "degraded" and "SIGKILL" in health.get_json()["reason"]


def test_a_prediction_timeout_is_503_not_500():
    r = make_client(FailingPredictor(TimeoutError())).post("/predict/batch", json={"texts": ["a"]})
    assert r.status_code == 503 and "Retry-After" in r.headers
    assert "timeout_seconds" in r.get_json()["error"]


def test_a_fault_of_the_service_is_500_logged_once_with_a_count_and_without_the_text(caplog):
    client = make_client(FailingPredictor(KeyError("boom")))
    with caplog.at_level("INFO", logger="model_api.front.app"):
        for _ in range(5):
            r = client.post("/predict", json={"text": "my secret tweet"})
            assert r.status_code == 500 and r.get_json() == {"error": "internal error: KeyError"}
    errors = [rec for rec in caplog.records if rec.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].exc_info is not None  # one traceback, not five
    assert all("my secret tweet" not in rec.getMessage() for rec in caplog.records)


def test_client_errors_are_logged_at_info_once_per_interval(caplog, fake_predictor):
    client = make_client(fake_predictor)
    with caplog.at_level("INFO", logger="model_api.front.app"):
        for _ in range(20):
            client.post("/predict", json={"text": 5})
    lines = [rec for rec in caplog.records if rec.name == "model_api.front.app"]
    assert len(lines) == 1 and lines[0].levelname == "INFO"
    assert '"text" must be a string' in lines[0].getMessage()


def test_a_configured_token_is_required_except_on_open_paths(fake_predictor, monkeypatch):
    monkeypatch.setenv("TWEETSENT_SERVICE_TOKEN", "s3cret-token")
    client = make_client(fake_predictor)
    r = client.post("/predict", json={"text": "good"})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in r.get_json()["error"]
    wrong = client.post("/predict", json={"text": "good"}, headers={"Authorization": "Bearer s3cret-tokeN"})
    assert wrong.status_code == 401
    ok = client.post("/predict", json={"text": "good"}, headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200
    assert client.get("/model").status_code == 401
    for path in ("/health", "/metrics", "/openapi.json"):
        assert client.get(path).status_code == 200, path
    assert fake_predictor.calls == [["good"]]


def test_open_paths_are_configurable(fake_predictor, monkeypatch):
    monkeypatch.setenv("TWEETSENT_SERVICE_TOKEN", "t")
    client = make_client(fake_predictor, open_paths="/health")
    assert client.get("/health").status_code == 200
    assert client.get("/metrics").status_code == 401


def test_the_token_comes_from_a_file(fake_predictor, monkeypatch, tmp_path):
    monkeypatch.delenv("TWEETSENT_SERVICE_TOKEN", raising=False)
    (tmp_path / "token").write_text("from-a-file\n")
    client = make_client(fake_predictor, token_file=str(tmp_path / "token"))
    assert client.post("/predict", json={"text": "a"}).status_code == 401
    assert (
        client.post("/predict", json={"text": "a"}, headers={"Authorization": "Bearer from-a-file"}).status_code == 200
    )


def test_openapi_names_every_route_and_the_error_shape(client):
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        "/predict",
        "/predict/batch",
        "/health",
        "/model",
        "/metrics",
        "/openapi.json",
        "/admin/model",
    }
    assert doc["components"]["schemas"]["Error"]["required"] == ["error"]
    assert (
        doc["paths"]["/predict/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"][
            "texts"
        ]["maxItems"]
        == 3
    )


def test_json_depth_counts_brackets_outside_strings_only():
    from model_api.front.protocol import MAX_JSON_DEPTH, json_depth

    assert json_depth('{"texts": ["a", "b"]}') == 0  # few brackets: not scanned
    deep = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    assert json_depth(deep) == MAX_JSON_DEPTH + 1
    brackets_in_text = '{"texts": ["' + "[{" * 100 + '\\"]"]}'
    assert json_depth(brackets_in_text) == 2


def test_deep_json_is_400_whatever_the_recursion_limit(fake_predictor):
    import sys

    before = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)  # as some libraries do in the same process
    try:
        body = b"[" * 1000 + b"]" * 1000
        r = make_client(fake_predictor).post("/predict", data=body, content_type="application/json")
    finally:
        sys.setrecursionlimit(before)
    assert r.status_code == 400
    assert "nested too deeply" in r.get_json()["error"]
