import dataclasses
import os

import pytest

from model_api.app import create_app
from sentiment.config import Config

pytestmark = pytest.mark.unit


@pytest.fixture
def client(fake_predictor):
    config = Config()
    config = dataclasses.replace(
        config, service=dataclasses.replace(config.service, max_batch=3, max_body_bytes=2048, max_text_chars=50)
    )
    app = create_app(config, predictor=fake_predictor)
    return app.test_client()


def test_predict_one(client):
    r = client.post("/predict", json={"text": "good good bad"})
    assert r.status_code == 200
    assert r.get_json() == {
        "sentiment": "Positive",
        "p_positive": pytest.approx(2 / 3),
        "confidence": pytest.approx(2 / 3),
    }


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
        ("/predict/batch", {"json": {"texts": ["a"] * 4}}, 413, "limit is 3"),
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
