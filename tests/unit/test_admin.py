"""``POST /admin/model``: the token, the refusals and what a swap answers, through the service's
front with fake models (the real swap under load: tests/faults/test_model_rollout.py)."""

from __future__ import annotations

import dataclasses
import json
import re
import threading

import pytest

from model_api.model.locations import FAST_MODEL_DIR, FULL_MODEL_DIR
from model_api.runner.swap import ModelSlot
from sentiment.config import TOKEN_ENV, Config
from tests.conftest import FakePrediction, FakePredictor
from tests.support.front import FrontClient, front

pytestmark = pytest.mark.unit


class WordsPredictor(FakePredictor):
    """Reads "love" as positive and "hate" as negative, as any sentiment model must; ``version`` names it."""

    def __init__(self, version: str = "1", p_love: float = 0.9) -> None:
        super().__init__()
        self.version, self.p_love, self.closed = version, p_love, False

    def predict(self, texts: list[str]) -> list[FakePrediction]:
        self.calls.append(list(texts))
        return [FakePrediction(self.p_love if "love" in t else 0.1 if "hate" in t else 0.5, self.band) for t in texts]

    def describe(self) -> dict:
        return {**super().describe(), "version": self.version}

    def in_flight(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True


class Builds:
    """A fake ``build``: hands out the given predictors in turn (or raises), records the models asked for."""

    def __init__(self, *predictors: WordsPredictor | Exception) -> None:
        self.predictors, self.models = list(predictors), []

    def __call__(self, config: Config) -> WordsPredictor:
        self.models.append(config.service.model)
        made = self.predictors.pop(0)
        if isinstance(made, Exception):
            raise made
        return made


def service(build: Builds, first: WordsPredictor | None = None):
    config = dataclasses.replace(Config(), service=dataclasses.replace(Config().service, model=str(FAST_MODEL_DIR)))
    slot = ModelSlot(config, first or WordsPredictor("0"), build=build)
    return FrontClient(front(config, slot)), slot


def test_swap_answers_the_new_version_and_serves_it_with_the_previous_named():
    first, new = WordsPredictor("0"), WordsPredictor("1")
    app, slot = service(Builds(new), first)
    client = app
    r = client.post("/admin/model", json={"model": str(FULL_MODEL_DIR)})
    assert r.status_code == 200, r.get_json()
    answer = r.get_json()
    assert answer["status"] == "serving" and answer["version"] == "fake@1" and answer["previous_version"] == "fake@0"
    assert answer["model"] == str(FULL_MODEL_DIR) and answer["previous"] == str(FAST_MODEL_DIR)
    scored = client.post("/predict", json={"text": "i love it"})
    assert scored.get_json()["model_version"] == "fake@1" and scored.headers["X-Model-Version"] == "fake@1"
    batch = client.post("/predict/batch", json={"texts": ["a", "b"]}).get_json()
    assert batch["model_version"] == "fake@1" and len(batch["results"]) == 2
    info = client.get("/model").get_json()
    assert info["model_version"] == "fake@1" and info["previous"] == str(FAST_MODEL_DIR) and "loading" not in info
    assert 'tweetsent_model_info{name="fake",precision="none",version="1"} 1.0' in client.get("/metrics").text
    slot._retire(slot.serving)  # what the retiring thread does, here at once
    assert new.closed


@pytest.mark.parametrize(
    ("model", "build", "status", "message"),
    [
        ("/no/such/model", Builds(), 422, "no such model directory"),
        (".", Builds(), 422, "not a model directory (no config.json)"),
        (str(FULL_MODEL_DIR), Builds(OSError("out of memory")), 422, "did not load: OSError: out of memory"),
        (str(FULL_MODEL_DIR), Builds(WordsPredictor("1", p_love=0.5)), 422, "expected > 0.6"),
        ("", Builds(), 400, 'field "model" must be'),  # the document's minLength 1
        ("  ", Builds(), 422, "names no model"),  # a string the document allows, naming nothing
    ],
)
def test_a_refused_model_is_a_clear_answer_and_the_old_one_serves_on(model, build, status, message):
    app, slot = service(build)
    client = app
    r = client.post("/admin/model", json={"model": model})
    assert r.status_code == status and message in r.get_json()["error"], r.get_json()
    assert client.post("/predict", json={"text": "love"}).get_json()["model_version"] == "fake@0"
    assert client.get("/health").status_code == 200 and client.get("/model").get_json()["previous"] is None
    assert not re.search(r"tweetsent_model_loading\{[^}]*\} 1\.0", client.get("/metrics").text)


def test_an_app_made_of_a_bare_predictor_refuses_to_swap_and_serves_on():
    # A service of a bare predictor puts it in a slot that loads no other model.
    config = dataclasses.replace(Config(), service=dataclasses.replace(Config().service, model=str(FAST_MODEL_DIR)))
    client = FrontClient(front(config, WordsPredictor("0")))
    r = client.post("/admin/model", json={"model": str(FULL_MODEL_DIR)})
    assert r.status_code == 422 and "without a way to load models" in r.get_json()["error"], r.get_json()
    assert client.post("/predict", json={"text": "love"}).get_json()["model_version"] == "fake@0"
    assert client.get("/health").status_code == 200


def test_labels_that_cannot_be_read_are_refused(tmp_path):
    config = json.loads((FAST_MODEL_DIR / "config.json").read_text())
    config["id2label"], config["label2id"] = {"0": "foo", "1": "bar", "2": "baz"}, {}
    (tmp_path / "config.json").write_text(json.dumps(config))
    app, _ = service(Builds())
    r = app.post("/admin/model", json={"model": str(tmp_path)})
    assert r.status_code == 422 and "classes or metadata cannot be read" in r.get_json()["error"]


def test_the_token_is_needed_even_if_the_route_is_listed_open(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "s3cret")
    config = Config()
    config = dataclasses.replace(config, service=dataclasses.replace(config.service, open_paths="/health,/admin/model"))
    app = FrontClient(front(config, ModelSlot(config, WordsPredictor("0"), build=Builds(WordsPredictor("1")))))
    client = app
    assert client.post("/admin/model", json={"model": str(FULL_MODEL_DIR)}).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.post("/admin/model", json={"model": str(FULL_MODEL_DIR)}, headers=wrong).status_code == 401
    right = {"Authorization": "Bearer s3cret"}
    assert client.post("/admin/model", json={"model": str(FULL_MODEL_DIR)}, headers=right).status_code == 200


def test_without_a_token_only_loopback_may_swap():
    app, _ = service(Builds(WordsPredictor("1")))
    r = app.post("/admin/model", json={"model": str(FULL_MODEL_DIR)}, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert r.status_code == 403 and "loopback" in r.get_json()["error"]


def test_a_second_swap_while_one_loads_is_409_and_health_says_loading_in_model():
    loading, release = threading.Event(), threading.Event()

    def slow_build(config: Config) -> WordsPredictor:
        loading.set()
        release.wait(10)
        return WordsPredictor("1")

    app, slot = service(slow_build)
    client = app
    first = threading.Thread(target=lambda: client.post("/admin/model", json={"model": str(FULL_MODEL_DIR)}))
    first.start()
    try:
        assert loading.wait(10)
        info = client.get("/model").get_json()
        assert info["loading"]["model"] == str(FULL_MODEL_DIR) and info["model_version"] == "fake@0"
        assert 'tweetsent_model_loading{model="' + str(FULL_MODEL_DIR) + '"} 1.0' in client.get("/metrics").text
        again = client.post("/admin/model", json={"model": str(FULL_MODEL_DIR)})
        assert again.status_code == 409 and "is loading" in again.get_json()["error"]
    finally:
        release.set()
        first.join(10)
    assert client.get("/model").get_json()["model_version"] == "fake@1"


def test_a_switching_replica_answers_503_health_and_marks_its_answers():
    app, slot = service(Builds())
    client = app
    slot.switching = True
    health = client.get("/health")
    assert health.status_code == 503 and health.get_json()["status"] == "switching"
    assert client.post("/predict", json={"text": "x"}).headers["X-Model-Switching"] == "1"
    slot.switching = False
    assert client.get("/health").status_code == 200
    assert "X-Model-Switching" not in client.post("/predict", json={"text": "x"}).headers


def test_model_shows_the_engine_the_predictor_serves_now_not_the_one_it_started_with():
    # Fast start: the predictor switches from the eager engine to the compiled one after load.
    first = WordsPredictor("0")
    app, slot = service(Builds(), first)
    client = app
    first.describe = lambda: {**WordsPredictor.describe(first), "engine": "int8", "engine_state": "building"}
    assert client.get("/model").get_json()["engine"] == "int8"
    first.describe = lambda: {**WordsPredictor.describe(first), "engine": "int8-static", "engine_state": "ready"}
    info = client.get("/model").get_json()
    assert (info["engine"], info["engine_state"], info["model_version"]) == ("int8-static", "ready", "fake@0")
